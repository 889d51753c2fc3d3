"""Refinement and covariance about the state's offsets (NOTE [refinement about the shift]).

A column near 1e9 with a spread of 0.01 makes the raw design's factor useless for
refinement: it stalled and returned an intercept 3e-5 off, standard errors 14-58% off,
without a word. Everything here is scored against the exact least-squares solution of the
float64 data, computed in rationals.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch

import torchlinreg as tlr
import torchlinreg.exact.refine as refine
from torchlinreg.errors import RankWarning
from torchlinreg.exact.state import LeastSquaresState
from torchlinreg.stats.results import OLSResults


def _exact(x: np.ndarray, y: np.ndarray, w: np.ndarray | None):
    """Parameters, ``(A'WA)^-1`` diagonal and ssr of the weighted fit of ``[1 | x]``, exactly."""
    ws = [Fraction(1)] * len(y) if w is None else [Fraction(float(v)) for v in w]
    xs, ys = [Fraction(float(v)) for v in x], [Fraction(float(v)) for v in y]
    s0 = sum(ws)
    s1 = sum(a * b for a, b in zip(ws, xs, strict=True))
    s2 = sum(a * b * b for a, b in zip(ws, xs, strict=True))
    t0 = sum(a * b for a, b in zip(ws, ys, strict=True))
    t1 = sum(a * b * c for a, b, c in zip(ws, xs, ys, strict=True))
    det = s0 * s2 - s1 * s1
    b0, b1 = (s2 * t0 - s1 * t1) / det, (s0 * t1 - s1 * t0) / det
    ssr = sum(a * (c - b0 - b1 * b) ** 2 for a, b, c in zip(ws, xs, ys, strict=True))
    inv_diag = [s2 / det, s0 / det]
    return np.array([float(b0), float(b1)]), inv_diag, ssr


def _data(seed: int, offset: float = 1e8, spread: float = 1e-3, noise: float = 0.1):
    rng = np.random.default_rng(seed)
    n = 50
    x = offset + spread * rng.standard_normal(n)
    return x, 2.0 * x + noise * rng.standard_normal(n), rng.uniform(0.5, 2.0, n)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("solver", ["qr", "gram"])
@pytest.mark.parametrize("seed", [0, 3])
def test_a_column_far_from_its_spread_is_refined_to_the_exact_solution(seed, solver, weighted):
    x, y, w = _data(seed)
    w = w if weighted else None
    params, inv_diag, ssr = _exact(x, y, w)
    X, Y = torch.tensor(x[:, None]), torch.tensor(y[:, None])
    wt = None if w is None else torch.tensor(w)
    state = LeastSquaresState(1, 1, method=solver).absorb(X, Y, sample_weight=wt)
    res = OLSResults.from_fit(X, Y[:, 0], wt, True, state, state.solve())  # no warning
    np.testing.assert_allclose(res.params, params, rtol=2e-15)
    bse = [float((ssr / (len(y) - 2) * v) ** 0.5) for v in [Fraction(d) for d in inv_diag]]
    # the residuals are those of the float64 parameters: 1e-12 of ssr here
    np.testing.assert_allclose(res.bse, bse, rtol=1e-11)
    model = tlr.LinearRegression(solver=solver).fit(x[:, None], y, sample_weight=w)
    np.testing.assert_allclose([model.intercept_, model.coef_[0]], params, rtol=2e-15)


def test_a_refinement_that_stalls_says_how_far_off_it_may_be(monkeypatch):
    # without the shift, refinement from the raw factor stalls on these data (as it did
    # before the shift was used): it must say so, with the size of its last correction
    monkeypatch.setattr(refine, "_OFFSET_RATIO", float("inf"))
    x, y, _ = _data(0, noise=1e-5)
    params, _, _ = _exact(x, y, None)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = tlr.ols(x[:, None], y)
    stalled = [m.message for m in seen if isinstance(m.message, RankWarning)]
    assert len(stalled) == 1 and "did not converge" in str(stalled[0])
    actual = float(np.max(np.abs(res.params - params) / np.abs(params)))
    assert actual > 1e-8  # the stall is real: the data say so, not a tolerance
    assert stalled[0].error >= actual / 10  # the quoted size is of the error's order


def test_r2_and_ess_agree_with_rss_on_a_nearly_collinear_design():
    # cond ~ 3e11: the ess carried to the last correction was 1e-3 of tss off (R2 3e-6)
    rng = np.random.default_rng(3)
    n = 200
    for _ in range(5):  # the draws before the one that showed it
        rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(n)
        rng.standard_normal(n)
    x1, x2 = rng.standard_normal(n), rng.standard_normal(n)
    X = np.c_[x1, x2, x1 + x2 + 1e-11 * rng.standard_normal(n)]
    y = 1 + x1 - x2 + rng.standard_normal(n)
    res = tlr.ols(X, y)
    assert abs(res.ess + res.ssr - res.centered_tss) <= 1e-12 * res.centered_tss
    assert abs(res.rsquared - (1 - res.ssr / res.centered_tss)) <= 1e-12


def _exact_params(x, y, w):
    """The weighted least-squares intercept and slope of the float64 data, in rationals."""
    ws = [Fraction(1)] * len(y) if w is None else [Fraction(float(v)) for v in w]
    xs, ys = [Fraction(float(v)) for v in x], [Fraction(float(v)) for v in y]
    s0, s1 = sum(ws), sum(a * v for a, v in zip(ws, xs, strict=True))
    s2 = sum(a * v * v for a, v in zip(ws, xs, strict=True))
    sy = sum(a * c for a, c in zip(ws, ys, strict=True))
    sxy = sum(a * v * c for a, v, c in zip(ws, xs, ys, strict=True))
    b1 = (s0 * sxy - s1 * sy) / (s0 * s2 - s1 * s1)
    return (sy - b1 * s1) / s0, b1


def _sandwich_exact(x, y, w, params, cov_type):
    """The HC0/HC3 sandwich of the returned parameters' residuals (whitened as statsmodels'
    WLS), and ``(A'WA)^-1``, in rationals."""
    n = len(y)
    ws = [Fraction(1)] * n if w is None else [Fraction(float(v)) for v in w]
    xs, ys = [Fraction(float(v)) for v in x], [Fraction(float(v)) for v in y]
    b0, b1 = params if isinstance(params[0], Fraction) else (Fraction(float(v)) for v in params)
    s0 = sum(ws)
    s1 = sum(a * v for a, v in zip(ws, xs, strict=True))
    s2 = sum(a * v * v for a, v in zip(ws, xs, strict=True))
    det = s0 * s2 - s1 * s1
    inv = [[s2 / det, -s1 / det], [-s1 / det, s0 / det]]
    meat = [[Fraction(0)] * 2 for _ in range(2)]
    for a, v, c in zip(ws, xs, ys, strict=True):
        h = a * (inv[0][0] + 2 * inv[0][1] * v + inv[1][1] * v * v)
        u2 = a * a * (c - b0 - b1 * v) ** 2 / ((1 - h) ** 2 if cov_type == "HC3" else 1)
        for i in range(2):
            for j in range(2):
                meat[i][j] += u2 * v ** (i + j)
    cov = [[sum(inv[i][a] * meat[a][c] * inv[c][j] for a in range(2) for c in range(2))
            for j in range(2)] for i in range(2)]  # fmt: skip
    return cov, inv


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cov_type", ["HC0", "HC3"])
def test_robust_covariances_are_taken_about_the_offsets(cov_type, weighted):
    # the HC sandwich of the raw rows' QR was 6.8e-8 off for a column near 1e9 with a
    # spread of 0.01, and shifting the whitened rows left 1.6e-6 with weights; about the
    # offsets, subtracted before the weights, it is exact. Reference: the sandwich of the
    # least-squares solution's residuals (NOTE [the residuals HC squares]: the returned
    # parameters' residuals put it 2e-7 to 6e-7 away here)
    rng = np.random.default_rng(0)
    n = 50
    x = 1e9 + 0.01 * rng.standard_normal(n)
    y = 2.0 * x + 0.1 * rng.standard_normal(n) * (1 + 100 * np.abs(x - 1e9))
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    res = tlr.ols(x[:, None], y, sample_weight=w, cov_type=cov_type)
    cov, _ = _sandwich_exact(x, y, w, _exact_params(x, y, w), cov_type)
    exact = np.array([float(cov[i][i]) ** 0.5 for i in range(2)])
    np.testing.assert_allclose(res.bse, exact, rtol=1e-12)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
def test_prediction_variances_are_taken_about_the_offsets(cov_type):
    # a'Va of the raw rows cancelled: mean_se 884x too large for a column near 1e9 with a
    # spread of 0.01 (or NaN from a negative variance), without a word
    rng = np.random.default_rng(1)
    n = 60
    x = 1e9 + 0.01 * rng.standard_normal(n)
    y = 2.0 * x + 0.1 * rng.standard_normal(n) * (1 + 100 * np.abs(x - 1e9))
    res = tlr.ols(x[:, None], y, cov_type=cov_type)
    frame = res.get_prediction(x[:3, None]).summary_frame()
    cov, inv = _sandwich_exact(x, y, None, _exact_params(x, y, None), "HC0")
    if cov_type == "nonrobust":
        b0, b1 = (Fraction(float(v)) for v in res.params)
        ssr = sum(
            (Fraction(float(c)) - b0 - b1 * Fraction(float(v))) ** 2
            for v, c in zip(x, y, strict=True)
        )
        cov = [[ssr / (n - 2) * inv[i][j] for j in range(2)] for i in range(2)]
    for row in range(3):
        a = [Fraction(1), Fraction(float(x[row]))]
        var = sum(a[i] * cov[i][j] * a[j] for i in range(2) for j in range(2))
        np.testing.assert_allclose(frame["mean_se"].iloc[row], float(var) ** 0.5, rtol=1e-10)


def test_the_sums_are_those_of_the_least_squares_fit():
    # NOTE [the last correction]: a noiseless target near 1e9 kept the sums of the pass
    # before the last correction: ssr 1.7x that of the parameters returned, bse 30% off.
    # NOTE [the least-squares rss]: those parameters are the least-squares ones rounded
    # to float64, whose own rss is 3x the least-squares one here; ssr is the latter
    from exact_ls import exact_statistics

    rng = np.random.default_rng(0)
    n = 60
    X = np.column_stack([1e9 + rng.standard_normal(n), rng.standard_normal(n)])
    y = -1.25 * X[:, 0] + 3.0
    res = tlr.ols(X, y)
    b = [Fraction(float(v)) for v in res.params]
    rounded = sum(
        (Fraction(float(c)) - b[0] - b[1] * Fraction(float(u)) - b[2] * Fraction(float(v))) ** 2
        for (u, v), c in zip(X, y, strict=True)
    )
    exact = exact_statistics(X, y)["ssr"]
    assert float(rounded) > 2 * exact  # the case matters
    np.testing.assert_allclose(res.ssr, exact, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_a_nearly_exact_fit_at_an_offset_reports_the_least_squares_rss(weighted):
    # y = 3e7 + 2x + a noise of 1e-6: the intercept's ulp (3.7e-9) raised the rss of the
    # rounded parameters above the least-squares one, silently: 4.5e-7 here, 1.3e-5
    # weighted over six decades (3.3e-5 in a grouped hunt's case of 5 rows)
    from exact_ls import exact_statistics

    rng = np.random.default_rng(3)
    x = np.arange(12.0)
    y = 3e7 + 2 * x + 1e-6 * rng.standard_normal(12)
    w = 10.0 ** rng.uniform(-3, 3, 12) if weighted else None
    res = tlr.ols(x[:, None], y, sample_weight=w)
    exact = exact_statistics(x[:, None], y, w)
    np.testing.assert_allclose(res.ssr, exact["ssr"], rtol=1e-9)
    np.testing.assert_allclose(res.bse, exact["bse"], rtol=1e-9)
    np.testing.assert_allclose(res.fvalue, exact["fvalue"], rtol=1e-9)


def test_an_exact_weighted_fit_keeps_an_rss_of_zero():
    # integers fitted exactly (4 rows of weight, 3 parameters): taking the rounding's
    # share off the rss (NOTE [the least-squares rss]) left -4e-41, and NaN standard
    # errors; an exact fit's least-squares rss is 0
    from exact_ls import exact_statistics

    X = np.array([[-0.0, 3167357.0], [1.0, 3167358.0], [-0.0, 3167357.0], [1.0, 3167357.0],
                  [-1.0, 3167357.0]])  # fmt: skip
    y = np.array([-2453027980.0, -2453028755.0, -2453027980.0, -2453027980.0, -2453027980.0])
    w = np.array([0.0, 674.6802970148885, 8689.753119702722, 3817.154743785625,
                  0.011408331511050272])  # fmt: skip
    res = tlr.ols(X, y, sample_weight=w)
    assert exact_statistics(X, y, w)["ssr"] == 0.0
    assert res.ssr == 0.0 and np.all(res.bse == 0.0)


def test_a_large_nearly_exact_fit_carries_the_least_squares_rss():
    # 100,000 rows: one certified step carries the sums to x + dx before its rounding,
    # already the least-squares ones (NOTE [the least-squares rss]); taking the rounding's
    # share off them again left the ssr 1.2e-5 under the exact one
    from exact_ls import exact_statistics

    rng = np.random.default_rng(3)
    X = rng.standard_normal((100_000, 2))
    y = 3e7 + X @ [2.0, -1.0] + 1e-7 * rng.standard_normal(100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rounding-level residuals: the fit may say so
        res = tlr.ols(X, y)
        ssr = float(res.ssr)
    np.testing.assert_allclose(ssr, exact_statistics(X, y)["ssr"], rtol=1e-9)
