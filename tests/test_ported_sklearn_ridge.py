"""Port of scikit-learn's ``linear_model/tests/test_ridge.py``: the solver tests on the
constructed data set with a known solution (fixture ``ols_ridge_dataset``).

Ported: ``test_ridge_regression``, ``test_ridge_regression_hstacked_X``,
``test_ridge_regression_vstacked_X``, ``test_ridge_regression_unpenalized``,
``test_ridge_regression_unpenalized_hstacked_X``,
``test_ridge_regression_unpenalized_vstacked_X`` and
``test_ridge_regression_sample_weights`` (dense and CSR).

scikit-learn's solvers (svd, cholesky, lsqr, sparse_cg, sag, saga) become ours: the exact
``qr`` and ``gram`` at the peer's tolerances, and ``lbfgs`` (iterative) at looser ones
(``LBFGS_TOL``). ``model.solver_`` (scikit-learn's resolved "auto") has no counterpart and is
not checked. ``global_random_seed`` runs over 0 and 42.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import linalg, sparse
from sklearn.datasets import make_low_rank_matrix

import torchlinreg as tlr
from torchlinreg.errors import RankWarning

SOLVERS = ["qr", "gram", "lbfgs"]
SEEDS = [0, 42]
# lbfgs stops on a loss tolerance: its coefficients are good to about 1e-5 relative here
LBFGS_TOL = dict(rtol=1e-4, atol=1e-5)


def _ridge(solver, **params):
    if solver == "lbfgs":
        params.update(tol=1e-14, max_iter=1000)
    return tlr.Ridge(solver=solver, **params)


def _fit(model, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)  # scikit-learn does not warn; we do
        return model.fit(X, y, **kwargs)


def _close(actual, desired, solver, **tol):
    assert_allclose(actual, desired, **(LBFGS_TOL if solver == "lbfgs" else tol))


def _approx(actual, desired, solver):
    if solver == "lbfgs":
        assert actual == pytest.approx(desired, rel=1e-4, abs=1e-5)
    else:
        assert actual == pytest.approx(desired)


@cache
def _ols_ridge_dataset(shape, seed):
    """X with a last column of ones, y, the minimum-norm OLS and the alpha=1 ridge solution.

    scikit-learn's fixture ``ols_ridge_dataset``; ``shape`` is "long" (12 x 4) or "wide".
    """
    n_samples, n_features = (12, 4) if shape == "long" else (4, 12)
    k = min(n_samples, n_features)
    rng = np.random.RandomState(seed)
    X = make_low_rank_matrix(
        n_samples=n_samples, n_features=n_features, effective_rank=k, random_state=rng
    )
    X[:, -1] = 1  # the last column acts as intercept
    U, s, Vt = linalg.svd(X)
    assert np.all(s > 1e-3)
    U1, U2 = U[:, :k], U[:, k:]
    Vt1 = Vt[:k, :]
    if shape == "long":
        coef_ols = rng.uniform(low=-10, high=10, size=n_features)
        y = X @ coef_ols
        y += U2 @ rng.normal(size=n_samples - n_features) ** 2  # vanishes in X'y
    else:
        y = rng.uniform(low=-10, high=10, size=n_samples)
        coef_ols = Vt1.T @ np.diag(1 / s) @ U1.T @ y  # w = X'(XX')^-1 y
    d = np.identity(n_features)
    d[-1, -1] = 0  # the intercept is not penalised
    coef_ridge = linalg.solve(X.T @ X + d, X.T @ y)
    assert np.linalg.norm(y - X @ coef_ols) < np.linalg.norm(y - X @ coef_ridge)
    for a in (X, y, coef_ols, coef_ridge):
        a.setflags(write=False)
    return X, y, coef_ols, coef_ridge


DATA = [(shape, seed) for shape in ("long", "wide") for seed in SEEDS]


def _centre_or_not(X, y, coef, fit_intercept):
    if fit_intercept:
        return X, y, coef[-1]
    return X - X.mean(axis=0), y - y.mean(), 0


@pytest.mark.parametrize("shape, seed", DATA)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_regression(solver, fit_intercept, shape, seed):
    X, y, _, coef = _ols_ridge_dataset(shape, seed)
    res_null = y - np.mean(y)
    res_ridge = y - X @ coef
    r2_ridge = 1 - np.sum(res_ridge**2) / np.sum(res_null**2)
    X, y, intercept = _centre_or_not(X[:, :-1], y, coef, fit_intercept)
    coef = coef[:-1]
    # (the peer fits with fit_intercept=True in both branches; so does this port)
    for sample_weight in (None, np.ones(X.shape[0])):
        model = _fit(_ridge(solver, alpha=1.0), X, y, sample_weight=sample_weight)
        _approx(model.intercept_, intercept, solver)
        _close(model.coef_, coef, solver)
        _approx(model.score(X, y), r2_ridge, solver)


@pytest.mark.parametrize("shape, seed", DATA)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_regression_hstacked_X(solver, fit_intercept, shape, seed):
    # [X] with alpha is [X, X] / 2 with alpha / 2; for long X, [X, X] is singular
    X, y, _, coef = _ols_ridge_dataset(shape, seed)
    n_samples, n_features = X.shape
    X = 0.5 * np.concatenate((X[:, :-1], X[:, :-1]), axis=1)
    assert np.linalg.matrix_rank(X) <= min(n_samples, n_features - 1)
    X, y, intercept = _centre_or_not(X, y, coef, fit_intercept)
    model = _fit(_ridge(solver, alpha=0.5, fit_intercept=fit_intercept), X, y)
    coef = coef[:-1]
    _approx(model.intercept_, intercept, solver)
    _close(model.coef_, np.r_[coef, coef], solver, atol=1e-8)


@pytest.mark.parametrize("shape, seed", DATA)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_regression_vstacked_X(solver, fit_intercept, shape, seed):
    # [X; X] with [y; y] and 2 alpha is [X] with alpha; for wide X, [X', X'] is singular
    X, y, _, coef = _ols_ridge_dataset(shape, seed)
    n_samples, n_features = X.shape
    X = np.concatenate((X[:, :-1], X[:, :-1]), axis=0)
    assert np.linalg.matrix_rank(X) <= min(n_samples, n_features)
    y = np.r_[y, y]
    X, y, intercept = _centre_or_not(X, y, coef, fit_intercept)
    model = _fit(_ridge(solver, alpha=2.0, fit_intercept=fit_intercept), X, y)
    _approx(model.intercept_, intercept, solver)
    _close(model.coef_, coef[:-1], solver, atol=1e-8)


def _unpenalized(X, y, coef, fit_intercept, stack):
    if fit_intercept:
        X, intercept, coef = X[:, :-1], coef[-1], coef[:-1]
    else:
        intercept = 0
    if stack == "h":
        X, coef = 0.5 * np.concatenate((X, X), axis=1), np.r_[coef, coef]
    elif stack == "v":
        X, y = np.concatenate((X, X), axis=0), np.r_[y, y]
    return X, y, coef, intercept


def _unpenalized_check(solver, fit_intercept, shape, seed, stack):
    dataset = _ols_ridge_dataset(shape, seed)
    X, y, coef, intercept = _unpenalized(*dataset[:3], fit_intercept, stack)
    n_samples, n_features = dataset[0].shape
    model = _fit(_ridge(solver, alpha=0, fit_intercept=fit_intercept), X, y)
    if solver == "lbfgs" and n_samples < n_features:
        # an iterative solver reaches *a* least-squares solution of an under-determined
        # problem (which one depends on its scaling), not the minimum-norm one; the
        # fitted values are the same for all of them
        _close(model.predict(X), X @ coef + intercept, solver)
    elif n_samples > n_features or not fit_intercept:
        _approx(model.intercept_, intercept, solver)
        _close(model.coef_, coef, solver)
    else:
        # under-determined with an intercept: the fit interpolates, and (like scikit-learn)
        # the unpenalised intercept is not part of the minimised norm
        _close(model.predict(X), y, solver)
        assert_allclose(X @ coef + intercept, y)
        norm = np.linalg.norm(np.r_[model.intercept_, model.coef_])
        assert norm > np.linalg.norm(np.r_[intercept, coef])


def _unpenalized_params(rank_deficient_shapes):
    """(solver, fit_intercept, shape, seed); the rank-deficient shapes without an intercept
    are issue 9 item 1's case (fixed: the refinement no longer writes into the solution)."""
    return [
        pytest.param(solver, fit_intercept, shape, seed)
        for solver in SOLVERS
        for fit_intercept in (True, False)
        for shape, seed in DATA
    ]


@pytest.mark.parametrize("solver, fit_intercept, shape, seed", _unpenalized_params({"wide"}))
def test_ridge_regression_unpenalized(solver, fit_intercept, shape, seed):
    _unpenalized_check(solver, fit_intercept, shape, seed, stack=None)


@pytest.mark.parametrize(
    "solver, fit_intercept, shape, seed", _unpenalized_params({"long", "wide"})
)
def test_ridge_regression_unpenalized_hstacked_X(solver, fit_intercept, shape, seed):
    _unpenalized_check(solver, fit_intercept, shape, seed, stack="h")


@pytest.mark.parametrize("solver, fit_intercept, shape, seed", _unpenalized_params({"wide"}))
def test_ridge_regression_unpenalized_vstacked_X(solver, fit_intercept, shape, seed):
    _unpenalized_check(solver, fit_intercept, shape, seed, stack="v")


def _sample_weights_check(solver, fit_intercept, alpha, shape, seed, container):
    # ||y - Xw||^2 = (z - Aw)' W (z - Aw) for z = [y; y], A = [X; X], W[:n] + W[n:] = 1
    X, y, _, coef = _ols_ridge_dataset(shape, seed)
    sw = np.random.RandomState(0).uniform(low=0, high=1, size=X.shape[0])
    X = np.concatenate((X[:, :-1], X[:, :-1]), axis=0)
    y = np.r_[y, y]
    sw = np.r_[sw, 1 - sw] * alpha
    X, y, intercept = _centre_or_not(X, y, coef, fit_intercept)
    model = _ridge(solver, alpha=alpha, fit_intercept=fit_intercept)
    _fit(model, container(X), y, sample_weight=sw)
    _approx(model.intercept_, intercept, solver)
    _close(model.coef_, coef[:-1], solver)


@pytest.mark.parametrize("shape, seed", DATA)
@pytest.mark.parametrize("alpha", [1.0, 1e-2])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_regression_sample_weights(solver, fit_intercept, alpha, shape, seed):
    _sample_weights_check(solver, fit_intercept, alpha, shape, seed, np.asarray)


@pytest.mark.parametrize("shape", ["long", "wide"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_regression_sample_weights_sparse(fit_intercept, shape):
    _sample_weights_check("qr", fit_intercept, 1.0, shape, 42, sparse.csr_array)
