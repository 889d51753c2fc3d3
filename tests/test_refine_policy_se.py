"""The refinement policy next to the standard error (NOTE [errors next to the standard
error] in exact/refine.py).

A target with nothing to fit (pure noise), or one orthogonal to the columns (residuals
regressed on the same X), has coefficients far below their standard errors. Taken relative
to the coefficients alone, the first-order bound flagged the first from about a million
rows and the second at any size, and their default fits took 6-13x an ordinary one for
digits far below the standard error. Checked here: they are no longer flagged as rows are
added, what the default fit then returns is right to 1e-12 of each standard error against
the exact rational solution, and a forced refinement of such a target takes one pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchlinreg as tlr
from test_refine import _rational_wls
from torchlinreg.exact.refine import targets_at_risk
from torchlinreg.exact.state import LeastSquaresState
from torchlinreg.stats.results import OLSResults


def _design(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 20, d) + rng.uniform(-10, 10, d)
    return rng, X


def _orthogonal(X, z, w=None):
    """``z`` less its weighted projection on ``[1 | X]``: orthogonal up to rounding."""
    A = np.c_[np.ones(len(z)), X]
    wa = A if w is None else A * w[:, None]
    return z - A @ np.linalg.solve(wa.T @ A, wa.T @ z)


@pytest.mark.parametrize("method", ["qr", "gram"])
def test_targets_with_nothing_to_fit_are_not_flagged_as_rows_grow(method):
    for n in (10_000, 100_000, 1_000_000):
        rng, X = _design(n, 10, seed=n)
        Y = np.c_[rng.normal(size=n) + 5, _orthogonal(X, rng.normal(size=n))]
        state = LeastSquaresState(10, 2, method=method)
        state.absorb(torch.from_numpy(X), torch.from_numpy(Y))
        assert targets_at_risk(state, 11) == [False, False], n


@pytest.mark.parametrize("method", ["qr", "gram"])
@pytest.mark.parametrize("weighted", [False, True])
def test_an_unrefined_orthogonal_target_is_right_to_its_standard_error(method, weighted, passes):
    rng, X = _design(20_000, 3, seed=3)  # 20,000 x 4 params: past the always-refined size
    w = rng.uniform(0.1, 3, len(X)) if weighted else None
    y = _orthogonal(X, rng.normal(size=len(X)) + 2.0, w) + 1e3  # an intercept of 1e3
    model = tlr.LinearRegression(solver=method).fit(X, y, sample_weight=w)
    assert passes == []  # nothing refined
    got = np.r_[model.intercept_, model.coef_]
    exact = _rational_wls(X, y, np.ones(len(X)) if w is None else w, 1)
    se = np.asarray(model.results_.bse)
    assert np.max(np.abs(got - exact) / se) <= 1e-12
    assert np.max(np.abs(np.asarray(model.results_.params) - exact) / se) <= 1e-12


@pytest.mark.parametrize("intercept", [True, False])
def test_a_forced_refinement_of_an_orthogonal_target_takes_one_pass(intercept, passes):
    rng, X = _design(30_000, 3, seed=4)  # past the always-refined size, intercept or not
    z = rng.normal(size=len(X))
    y = _orthogonal(X, z) if intercept else z - X @ np.linalg.lstsq(X, z, rcond=None)[0]
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(y)[:, None]
    model = tlr.LinearRegression(fit_intercept=intercept).fit(Xt, Yt)
    passes.clear()
    res = OLSResults.from_fit(Xt, Yt, None, intercept, model.state_, model.solution_, refine=True)
    assert passes == [True]  # before: three (a second step, and the first again at 106 bits)
    exact = _rational_wls(X, y, np.ones(len(X)), int(intercept))
    se = np.asarray(res.bse).reshape(-1)
    got = np.asarray(res.params).reshape(-1)
    # the certified step's promise: eps / 4 of sigma, which is below every standard error
    assert np.max(np.abs(got - exact) / se) <= 2.3e-16


def test_small_coefficients_beside_a_dominant_one_are_right_to_their_standard_errors(passes):
    # a dummy with an effect of 1e6 against a noise of 1, and three slopes of ordinary
    # size: the norm is the dummy's, and 1% of it hid errors of 4e-8 standard errors in
    # the others (a hunt found 7.9 for an intercept with an effect of 1.5e11, which the
    # sums now catch); the floor is capped at 1000 standard errors
    from exact_ls import exact_statistics

    rng, Z = _design(100_000, 3, seed=6)
    d = (rng.random(len(Z)) < 0.3).astype(float)
    X = np.c_[d, Z]
    y = 1e6 * d + Z @ [0.5, -1.0, 2.0] + rng.normal(size=len(Z))
    model = tlr.LinearRegression().fit(X, y)
    assert passes  # refined
    exact = exact_statistics(X, y)
    got = np.r_[model.intercept_, model.coef_]
    assert np.max(np.abs(got - exact["params"]) / exact["bse"]) <= 1e-9
