"""Non-negative least squares and ridge from the state (Lawson-Hanson), against scipy.

Invariants:
1. ``nnls`` equals ``scipy.optimize.nnls`` to 1e-10 on random problems.
2. ``LinearRegression(positive=True)`` equals scikit-learn's (scipy's nnls on the centred,
   weighted rows) to 1e-10, weighted or not, with and without an intercept, by fit and by
   fit_blocks; ``Ridge(positive=True)`` equals scipy's nnls on ``[X_c; sqrt(alpha) I]``.
3. Every coefficient is >= 0 and KKT holds: zero coefficients have a non-positive gradient.
4. Iterative solvers refuse positive=True in one line.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.optimize as so
import sklearn.linear_model as sk
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes

import torchlinreg as tlr
from torchlinreg.models.nonneg import nnls

X_DIA, Y_DIA = load_diabetes(return_X_y=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), m=st.integers(1, 30), n=st.integers(1, 12))
def test_nnls_equals_scipy(seed, m, n):
    rng = np.random.default_rng(seed)
    A, b = rng.normal(size=(m, n)), rng.normal(size=m)
    x = nnls(A, b)
    ref = so.nnls(A, b)[0]
    assert (x >= 0).all()  # 3.
    # the residual norm is what is unique when A has fewer rows than columns
    assert np.linalg.norm(A @ x - b) <= np.linalg.norm(A @ ref - b) + 1e-10
    if m >= n:
        np.testing.assert_allclose(x, ref, atol=1e-10)  # 1.


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_positive_linear_regression_equals_scikit_learn(intercept, weighted):
    w = np.random.default_rng(4).uniform(0.2, 2.0, len(Y_DIA)) if weighted else None
    ours = tlr.LinearRegression(positive=True, fit_intercept=intercept).fit(X_DIA, Y_DIA, w)
    ref = sk.LinearRegression(positive=True, fit_intercept=intercept)
    ref.fit(X_DIA, Y_DIA, sample_weight=w)
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-10 * scale)  # 2.
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-10 * scale)
    assert (ours.coef_ >= 0).all() and (ours.coef_ == 0).any()  # 3. the constraint binds
    blocks = [(X_DIA[i : i + 64], Y_DIA[i : i + 64]) for i in range(0, len(Y_DIA), 64)]
    if not weighted:
        streamed = tlr.LinearRegression(positive=True, fit_intercept=intercept, solver="gram")
        streamed.fit_blocks(blocks)
        np.testing.assert_allclose(streamed.coef_, ref.coef_, atol=1e-8 * scale)


@pytest.mark.parametrize("alpha", [0.01, 1.0, [0.1, 10.0]])
def test_positive_ridge_equals_scipy_nnls_on_the_augmented_rows(alpha):
    Y = np.c_[Y_DIA, -Y_DIA + 300 * X_DIA[:, 1]]
    ours = tlr.Ridge(alpha=alpha, positive=True).fit(X_DIA, Y)
    Xc, Yc = X_DIA - X_DIA.mean(0), Y - Y.mean(0)
    alphas = np.broadcast_to(alpha, (2,))
    for t in range(2):
        A = np.vstack([Xc, np.sqrt(alphas[t]) * np.eye(X_DIA.shape[1])])
        b = np.concatenate([Yc[:, t], np.zeros(X_DIA.shape[1])])
        ref = so.nnls(A, b)[0]
        np.testing.assert_allclose(ours.coef_[t], ref, atol=1e-10 * np.abs(ref).max())  # 2.
        # 3. KKT: the gradient of the objective is <= 0 where a coefficient is 0
        grad = A.T @ (b - A @ ours.coef_[t])
        assert (grad[ours.coef_[t] == 0] <= 1e-8 * np.abs(A.T @ b).max()).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk_ref = sk.Ridge(alpha=alpha, positive=True, tol=1e-12).fit(X_DIA, Y)
    np.testing.assert_allclose(ours.coef_, sk_ref.coef_, rtol=1e-4, atol=1e-4)


def test_iterative_solver_refuses_positive():
    with pytest.raises(ValueError, match="positive=True needs an exact solver"):  # 4.
        tlr.LinearRegression(positive=True, solver="sgd").fit(X_DIA, Y_DIA)


def test_positive_fit_gives_no_ols_statistics():
    m = tlr.LinearRegression(positive=True).fit(X_DIA, Y_DIA)
    with pytest.raises(AttributeError, match="without a penalty"):
        _ = m.results_


def test_positive_linear_regression_passes_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(tlr.LinearRegression(positive=True), on_fail=None)
    failed = [
        (r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"
    ]
    assert not failed


def test_saving_a_model_the_loader_cannot_check_is_refused(tmp_path):
    for m in (tlr.LinearRegression(positive=True), tlr.HuberRegressor(max_iter=1000)):
        m.fit(X_DIA, Y_DIA)
        with pytest.raises(ValueError, match="is not supported yet"):
            tlr.save(m, tmp_path / "m.safetensors")
        assert not (tmp_path / "m.safetensors").exists()


def _scaled_nnls(X, y, intercept):
    """scipy's nnls on the centred rows with unit columns, scaled back: a reference whose
    tolerance is each column's own."""
    xm, ym = (X.mean(0), y.mean()) if intercept else (np.zeros(X.shape[1]), 0.0)
    s = np.linalg.norm(X - xm, axis=0)
    c = so.nnls((X - xm) / s, y - ym)[0] / s
    return c, ym - xm @ c


@pytest.mark.parametrize("intercept", [True, False])
def test_columns_of_far_apart_scales_all_enter(intercept):
    # NOTE [columns at one scale]: the gradient tolerance was set by the largest column,
    # and a column of 1e-8 beside one of 1e8 stayed at zero (coefficient 2e8 in the
    # answer, rss 238 against 0.43), silently; stackloss in units 1e-6, 1 and 1e6
    # without an intercept: rss 1255 against 1196
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    Xr = rng.normal(size=(50, 3)) * [1e-8, 1e8, 1.0]
    yr = Xr @ [2e8, 3e-8, 1.0] + 0.1 * rng.normal(size=50)
    d = sm.datasets.stackloss.load_pandas().data
    Xs = d.drop(columns="STACKLOSS").to_numpy(float) * [1e-6, 1.0, 1e6]
    for X, y in ((Xr, yr), (Xs, d["STACKLOSS"].to_numpy(float))):
        m = tlr.LinearRegression(positive=True, fit_intercept=intercept).fit(X, y)
        coef, _ = _scaled_nnls(X, y, intercept)
        np.testing.assert_allclose(m.coef_, coef, rtol=1e-9, atol=1e-9 * np.abs(coef).max())
        assert (m.coef_ > 0).sum() == (coef > 0).sum()
        sk_coef = sk.LinearRegression(positive=True, fit_intercept=intercept).fit(X, y).coef_
        np.testing.assert_allclose(m.coef_, sk_coef, rtol=1e-7, atol=1e-9 * np.abs(coef).max())


def test_offset_columns_without_an_intercept_converge():
    # macrodata + 1e6 without an intercept: the unscaled active set stopped at its step
    # limit with every coefficient zero (rss 5323 against 2138), said only as "may not be
    # optimal"
    import statsmodels.api as sm

    d = sm.datasets.macrodata.load_pandas().data
    X = d[["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "tbilrate",
           "unemp", "pop"]].to_numpy(float) + 1e6  # fmt: skip
    y = d["infl"].to_numpy(float)
    m = tlr.LinearRegression(positive=True, fit_intercept=False).fit(X, y)  # no warning
    coef, _ = _scaled_nnls(X, y, False)
    rss = ((y - X @ m.coef_) ** 2).sum()
    assert rss <= ((y - X @ coef) ** 2).sum() * (1 + 1e-9)
    np.testing.assert_allclose(m.coef_, coef, rtol=1e-6, atol=1e-12)
