"""Rank-deficient fits without an intercept, and nothing an exact fit touches is changed.

Issue 9, item 1: refinement zeroed the aliased columns through a view of the solution, so
``LinearRegression(fit_intercept=False)`` on rank-deficient data lost the minimum-norm
coefficients of the aliased columns. The references are ``numpy.linalg.lstsq`` (the
minimum-norm solution) and the tensors' own values and version counters before and after.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from torchlinreg import LinearRegression
from torchlinreg.errors import RankWarning
from torchlinreg.exact.refine import refine_blocks, refine_solution
from torchlinreg.exact.state import fit_exact
from torchlinreg.stats.fitstats import results_from_fit

SOLVERS = ("qr", "gram")


def _fit(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)
        return LinearRegression(fit_intercept=False, **kw).fit(X, y)


@pytest.mark.parametrize("solver", SOLVERS)
def test_issue_repro_gives_the_minimum_norm_coefficients(solver):
    x = np.array([1.0, 2.0, 3.0, 4.0])
    X, y = np.c_[x, 2 * x], np.array([1.0, 2.1, 2.9, 4.2])
    ref = np.linalg.lstsq(X, y, rcond=None)[0]  # [0.2047, 0.4093]
    m = _fit(X, y, solver=solver)
    np.testing.assert_allclose(m.coef_, ref, rtol=1e-12)
    rss = ((y - m.predict(X)) ** 2).sum()
    np.testing.assert_allclose(rss, ((y - X @ ref) ** 2).sum(), rtol=1e-10)  # 0.0437, not 20.15


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("solver", SOLVERS)
def test_duplicated_columns_without_intercept_match_lstsq(solver, k, dtype):
    rng = np.random.default_rng(k)
    X = rng.normal(size=(30, 3)).astype(dtype)
    X = np.c_[X, X[:, :1], 4 * X[:, 1:2]]  # two exact dependencies in either dtype
    Y = rng.normal(size=(30, k)).astype(dtype)
    y = Y[:, 0] if k == 1 else Y
    X64, Y64 = X.astype(np.float64), y.astype(np.float64)
    ref = np.linalg.lstsq(X64, Y64, rcond=None)[0].T
    m = _fit(X, y, solver=solver)
    np.testing.assert_allclose(m.coef_, ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(m.predict(X), X64 @ ref.T, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("solver", SOLVERS)
def test_wide_data_without_intercept_matches_lstsq(solver, k):
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(5, 8)), rng.normal(size=(5, k))
    y = Y[:, 0] if k == 1 else Y
    ref = np.linalg.lstsq(X, y, rcond=None)[0].T
    m = _fit(X, y, solver=solver)
    # 1. the minimum-norm solution (before the fix: off by about 1)
    np.testing.assert_allclose(m.coef_, ref, atol=1e-8)
    # 2. it interpolates the rows
    np.testing.assert_allclose(m.predict(X), y, atol=1e-8)


def _snapshot(*tensors):
    return [(t, t.clone(), t._version) for t in tensors]


def _assert_untouched(snapshot):
    # 1. same values; 2. no in-place write at all (the version counter is shared by views)
    for t, before, version in snapshot:
        assert torch.equal(t, before)
        assert t._version == version


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("solver", SOLVERS)
def test_refinement_never_writes_into_the_solution_or_the_rows(solver, fit_intercept):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(20, 3, generator=g, dtype=torch.float64)
    X = torch.cat([X, 2 * X[:, :1]], 1)  # aliased: refinement zeroes a parameter
    Y = torch.randn(20, 2, generator=g, dtype=torch.float64)
    w = torch.rand(20, generator=g, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)
        state, sol = fit_exact(X, Y, sample_weight=w, fit_intercept=fit_intercept, method=solver)
    assert sol.aliased == (3,)
    snap = _snapshot(X, Y, w, sol.coef, sol.intercept, sol.rss, state.r_factor())
    r_before = state.r_factor().clone()
    refine_solution(X, Y, w, fit_intercept, state, sol.coef, sol.intercept, aliased=sol.aliased)
    refine_blocks(
        lambda: [(X[:8], Y[:8], w[:8]), (X[8:], Y[8:], w[8:])],
        fit_intercept,
        state,
        sol.coef,
        sol.intercept,
        aliased=sol.aliased,
    )
    results_from_fit(X, Y, w, fit_intercept, state, sol)
    _assert_untouched(snap)
    assert torch.equal(state.r_factor(), r_before)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_leaves_inputs_and_its_own_solution_untouched(solver, fit_intercept):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(12, 3, generator=g, dtype=torch.float64)
    X = torch.cat([X, X[:, :1]], 1)
    y = torch.randn(12, generator=g, dtype=torch.float64)
    w = torch.rand(12, generator=g, dtype=torch.float64) + 0.5
    snap = _snapshot(X, y, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)
        m = LinearRegression(solver=solver, fit_intercept=fit_intercept).fit(X, y, w)
        fresh = m.state_.solve()
    _assert_untouched(snap)
    # the solution the estimator keeps is the state's, unchanged by what came after
    torch.testing.assert_close(m.solution_.coef, fresh.coef, rtol=0, atol=0)
    torch.testing.assert_close(m.solution_.intercept, fresh.intercept, rtol=0, atol=0)
    # and the published coefficients do not share memory with it
    assert m.model_.weight.data_ptr() != m.solution_.coef.data_ptr()
