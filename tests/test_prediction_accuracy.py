"""Prediction standard errors against mpmath (NOTE [prediction variances as sums of squares]).

The variance of a predicted mean, a' V a, cancelled when formed from an explicit V: without
an intercept and with columns near 1e6 mean_se was 4.4% off (near 1e9 20-140x off, or NaN),
and with a high-leverage row (Longley's last one x1e4) 2e-5 off, all without a word, while
the standard errors of the parameters were right. The reference here is the same statistic
of the float64 data in mpmath at 60 digits, from the normal equations (no cancellation left
at that precision).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import statsmodels.api as sm

import torchlinreg as tlr

mp.mp.dps = 60


def _reference(A, y, rows, cov_type="nonrobust", w=None, groups=None, new_w=None):
    """mean_se and obs_se (float arrays) of the basis ``rows`` for the fit of ``y`` on the
    basis ``A`` (weights ``w``), in mpmath: V the nonrobust, HC or one-way cluster
    covariance as statsmodels defines it."""
    n, p = A.shape
    w = np.ones(n) if w is None else w
    rw = [mp.sqrt(mp.mpf(float(v))) for v in w]
    Aw = mp.matrix([[rw[i] * mp.mpf(float(v)) for v in A[i]] for i in range(n)])
    yw = mp.matrix([rw[i] * mp.mpf(float(y[i])) for i in range(n)])
    Gi = mp.inverse(Aw.T * Aw)
    e = yw - Aw * (Gi * (Aw.T * yw))
    s2 = sum(v**2 for v in e) / (n - p)
    if cov_type == "nonrobust":
        V = Gi * s2
    elif cov_type == "cluster":
        meat = mp.matrix(p, p)
        for g in np.unique(groups):
            s = mp.matrix(1, p)
            for i in np.flatnonzero(groups == g).tolist():
                s += e[i] * Aw[i, :]
            meat += s.T * s
        G = len(np.unique(groups))
        V = Gi * meat * Gi * (mp.mpf(G) / (G - 1) * mp.mpf(n - 1) / (n - p))
    else:
        meat = mp.matrix(p, p)
        for i in range(n):
            u2 = e[i] ** 2
            if cov_type in ("HC2", "HC3"):
                h = (Aw[i, :] * Gi * Aw[i, :].T)[0]
                u2 = u2 / (1 - h) if cov_type == "HC2" else u2 / (1 - h) ** 2
            meat += u2 * (Aw[i, :].T * Aw[i, :])
        V = Gi * meat * Gi * (mp.mpf(n) / (n - p) if cov_type == "HC1" else 1)
    new_w = np.ones(len(rows)) if new_w is None else new_w
    mean_se, obs_se = [], []
    for r, wr in zip(rows, new_w, strict=True):
        a = mp.matrix([[mp.mpf(float(v)) for v in r]])
        var = (a * V * a.T)[0]
        mean_se.append(float(mp.sqrt(var)))
        obs_se.append(float(mp.sqrt(var + s2 / mp.mpf(float(wr)))))
    return np.array(mean_se), np.array(obs_se)


def _rel(got, ref) -> float:
    return float(np.max(np.abs(np.asarray(got) - ref) / ref))


def _check_frame(pred, mean_se, obs_se, tol):
    """summary_frame's mean_se and both intervals' half-widths against the reference."""
    frame = pred.summary_frame(alpha=0.05)
    q = pred.dist.ppf(0.975)
    assert _rel(frame["mean_se"].to_numpy(), mean_se) < tol
    half_mean = (frame["mean_ci_upper"] - frame["mean_ci_lower"]).to_numpy() / 2
    half_obs = (frame["obs_ci_upper"] - frame["obs_ci_lower"]).to_numpy() / 2
    assert _rel(half_mean / q, mean_se) < tol
    assert _rel(half_obs / q, obs_se) < tol


def _copper(offset: float):
    d = sm.datasets.copper.load_pandas().data
    X = d.drop(columns="WORLDCONSUMPTION").to_numpy(dtype=float) + offset
    return X, d["WORLDCONSUMPTION"].to_numpy(dtype=float)


def _longley_high_leverage():
    d = sm.datasets.longley.load_pandas().data
    X = d.drop(columns="TOTEMP").to_numpy(dtype=float)
    X[-1] *= 1e4
    return X, d["TOTEMP"].to_numpy(dtype=float)


def test_no_intercept_columns_near_1e6_copper():
    # was 4.4e-2 off on the fitted rows, 3e-3 to 9e-3 on the new ones
    X, y = _copper(1e6)
    new = X[:3] + 0.5
    res = tlr.ols(X, y, fit_intercept=False)
    _check_frame(res.get_prediction(), *_reference(X, y, X), 1e-10)
    _check_frame(res.get_prediction(new), *_reference(X, y, new), 1e-10)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1"])
def test_no_intercept_columns_near_1e9_copper(cov_type):
    # was 20-140x too large, or NaN with numpy's "invalid value in sqrt" (an error here)
    X, y = _copper(1e9)
    new = np.r_[X[:4], X[4:5] - 3.0]
    res = tlr.ols(X, y, fit_intercept=False, cov_type=cov_type)
    mean_se, obs_se = _reference(X, y, new, cov_type)
    _check_frame(res.get_prediction(new), mean_se, obs_se, 1e-8)


def test_no_intercept_weighted_copper():
    # WLS takes the rows about the reference column before the weights, as the fit does
    X, y = _copper(1e7)
    w = np.linspace(0.5, 2.0, len(y))
    new, new_w = X[[2, 7]] - 1.0, np.array([1.0, 4.0])
    res = tlr.ols(X, y, fit_intercept=False, sample_weight=w)
    ref = _reference(X, y, new, w=w, new_w=new_w)
    _check_frame(res.get_prediction(new, weights=new_w), *ref, 1e-10)


def test_high_leverage_row_longley():
    # a' (R^-1 R^-T) a cancelled: 3.3e-6 off on the fitted rows, 2.0e-5 on a new row near
    # the last (x1e4) one
    X, y = _longley_high_leverage()
    new = X[[0, 8, 15]] * 1.001
    A = np.c_[np.ones(len(y)), X]
    res = tlr.ols(X, y)
    _check_frame(res.get_prediction(), *_reference(A, y, A), 1e-10)
    _check_frame(res.get_prediction(new), *_reference(A, y, np.c_[np.ones(3), new]), 1e-10)


def test_high_leverage_row_longley_hc1():
    # the sandwich formed explicitly left 1.9e-9 on the fitted rows; the last row's own
    # variance is its residual's square (leverage near 1), and that residual has the
    # coefficients' accuracy (NOTE [the residuals HC squares]): it is left out
    X, y = _longley_high_leverage()
    A = np.c_[np.ones(len(y)), X]
    res = tlr.ols(X, y, cov_type="HC1")
    _check_frame(res.get_prediction(X[:-1]), *_reference(A, y, A[:-1], "HC1"), 5e-10)


@pytest.mark.parametrize("cov_type", ["HC3", "cluster"])
def test_no_intercept_columns_near_1e8_grunfeld(cov_type):
    # invest ~ 0 + value + capital, the columns near 1e8; clustered by firm
    d = sm.datasets.grunfeld.load_pandas().data
    X = d[["value", "capital"]].to_numpy(dtype=float) + 1e8
    y = d["invest"].to_numpy(dtype=float)
    groups = d["firm"].astype("category").cat.codes.to_numpy()
    kw = {"groups": groups} if cov_type == "cluster" else {}
    res = tlr.ols(X, y, fit_intercept=False).get_robustcov_results(cov_type, **kw)
    new = X[[0, 50, 219]] + 10.0
    ref = _reference(X, y, new, cov_type, groups=groups)
    _check_frame(res.get_prediction(new), *ref, 1e-9)
