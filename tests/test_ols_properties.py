"""`ols()` statistics against statsmodels, drawn across the parameter space (hypothesis).

Drawn: intercept or not, no weights / positive weights / a scalar weight, 1-3 targets
(statsmodels fits one at a time), full rank or rank-deficient (a duplicated, scaled
column), float64 or float32 input, nonrobust or HC covariances, columns with offsets and
scales as real data has. Where statsmodels is defined for a rank-deficient design (its
pinv solution), only what does not depend on the choice of solution is compared: fitted
values, sums of squares, R2, log-likelihood and degrees of freedom; our aliased parameters
are NaN, as R's ``lm`` shows NA.

Tolerances: statsmodels' pinv loses about ``eps * cond^2`` where we are accurate to about
``eps * cond``; the draws keep ``cond`` below ~1e4, so 1e-7 relative is safe for
everything variance-based and 1e-9 for parameters and sums of squares.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchlinreg as tlr

SCALARS = ("ssr", "rsquared", "llf", "df_resid", "df_model", "ess", "centered_tss")
ARRAYS = ("params", "bse", "pvalues")


@st.composite
def problems(draw):
    n = draw(st.integers(8, 40))
    d = draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-2, 3, d)
    offsets = rng.normal(scale=10.0, size=d) * scales
    X = rng.normal(size=(n, d)) * scales + offsets
    if draw(st.booleans()) and d > 1:  # rank-deficient: a scaled copy of a column
        X[:, -1] = 2.0 * X[:, 0]  # a power of two: still an exact copy in float32
        deficient = True
    else:
        deficient = False
    Y = X @ rng.normal(size=(d, k)) + 5.0 + rng.normal(size=(n, k))
    weights = draw(st.sampled_from(["none", "positive", "scalar"]))
    w = {"none": None, "positive": rng.uniform(0.2, 3.0, n), "scalar": 2.5}[weights]
    return {
        "X": X,
        "Y": Y if k > 1 else Y[:, 0],
        "w": w,
        "fit_intercept": draw(st.booleans()),
        "float32": draw(st.booleans()),
        "cov_type": draw(st.sampled_from(["nonrobust", "HC0", "HC3"])),
        "deficient": deficient,
    }


def _close(ours, theirs, rtol, what):
    np.testing.assert_allclose(
        ours, theirs, rtol=rtol, atol=rtol * max(1.0, np.nanmax(np.abs(theirs))), err_msg=what
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_ols_statistics_equal_statsmodels(p):
    X, Y = p["X"], p["Y"]
    if p["float32"]:
        X, Y = X.astype(np.float32), Y.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RankWarning, and HC3 on a leverage-1 row
        res = tlr.ols(X, Y, fit_intercept=p["fit_intercept"], sample_weight=p["w"],
                      cov_type=p["cov_type"])  # fmt: skip
        Xs = np.asarray(X, dtype=np.float64)
        Xs = sm.add_constant(Xs, has_constant="add") if p["fit_intercept"] else Xs
        Ys = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
        w = 1.0 if p["w"] is None else p["w"]
        for t in range(Ys.shape[1]):
            ref = sm.WLS(Ys[:, t], Xs, weights=w).fit(cov_type=p["cov_type"])

            def ours(name, t=t):
                value = np.asarray(getattr(res, name), dtype=np.float64)
                # degrees of freedom are one number for every target
                return value[..., t] if Ys.shape[1] > 1 and value.ndim else value

            for name in SCALARS:
                _close(ours(name), getattr(ref, name), 1e-7, name)
            fitted = np.asarray(res.fittedvalues).reshape(len(X), -1)[:, t]
            _close(fitted, ref.fittedvalues, 1e-9, "fittedvalues")
            if p["deficient"]:
                # the aliased parameter is NaN; statsmodels' pinv splits it over the copies
                assert np.isnan(ours("params")).sum() == 1
                continue
            _close(ours("params"), ref.params, 1e-9, "params")
            for name in ("bse", "pvalues"):
                theirs = np.asarray(getattr(ref, name))
                if np.isfinite(theirs).all():
                    _close(ours(name), theirs, 1e-6, name)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1"])
def test_the_drawn_space_includes_real_data(cov_type):
    # the same checks on statsmodels' own Longley data, in raw units
    data = sm.datasets.longley.load_pandas()
    res = tlr.ols(data.exog, data.endog, cov_type=cov_type)
    ref = sm.OLS(data.endog, sm.add_constant(data.exog)).fit(cov_type=cov_type)
    for name in (*SCALARS, *ARRAYS):
        _close(np.asarray(getattr(res, name)), np.asarray(getattr(ref, name)), 1e-7, name)
