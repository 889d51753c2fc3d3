"""Port of the HC0-HC3 parts of statsmodels' ``regression/tests/test_robustcov.py``.

Against the Stata results statsmodels ships (``results/results_macro_ols_robust.py``:
``regress, vce(robust)`` and ``ivreg2, robust [small]`` on macrodata;
``results/results_grunfeld_ols_robust_cluster.py``: ``regress [aw=1/mvalue], robust`` on
Grunfeld), loaded from the installed package. Ported:

- ``CheckOLSRobust.test_basic`` and ``test_tests`` (t and F parts: the Wald F of all
  slopes is our ``fvalue``) for ``TestOLSRobust1`` (HC1), ``TestOLSRobust2`` (HC1, ivreg2
  small), ``TestOLSRobust3`` (HC0, ivreg2 large);
- ``CheckOLSRobustNewMixin.test_fvalue``, ``test_confint``, ``test_scale`` for
  ``TestOLSRobust2SmallNew`` (HC1, ``use_t=True``), ``TestOLSRobust2LargeNew`` (HC0, normal),
  ``TestWLSRobustSmall`` (WLS HC1, ``use_t=True``);
- ``TestWLSOLSRobustSmall.test_all`` (WLS equals OLS on whitened rows, HC0-HC3; its
  ``f_test`` of all parameters is left out with ``f_test``);
- ``test_qr_equiv`` (nonrobust, HC0-HC3: statsmodels' pinv and qr fits agree; ours:
  statsmodels' values, and our gram state against our qr state);
- ``test_cov_type_fixed_scale`` (only its default-covariance part: scipy's ``curve_fit``
  values; ``cov_type="fixed scale"`` does not exist here).

Left out: HAC, Newey-West and cluster classes, ``compare_lr_test``/``compare_f_test``,
``t_test``/``f_test`` smoke tests and ``fixed scale`` (later issues).
Stata lists the constant last; torchlinreg puts it first, so reference vectors are rotated.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from numpy.testing import assert_allclose, assert_equal
from scipy import stats
from statsmodels.regression.tests.results import results_grunfeld_ols_robust_cluster as grun
from statsmodels.regression.tests.results import results_macro_ols_robust as macro

from torchlinreg.exact.state import fit_exact
from torchlinreg.stats.results import OLSResults, ols


def _first(v):
    return np.roll(np.asarray(v, dtype=float), 1, axis=0)


def _first_cov(c):
    return np.roll(np.roll(np.asarray(c, dtype=float), 1, axis=0), 1, axis=1)


@cache
def _macro():
    d2 = sm.datasets.macrodata.load_pandas().data
    g_gdp = 400 * np.diff(np.log(d2["realgdp"].values))
    g_inv = 400 * np.diff(np.log(d2["realinv"].values))
    return np.c_[g_gdp, d2["realint"][:-1].values], g_inv


@cache
def _grunfeld():
    data = sm.datasets.grunfeld.load_pandas()
    exog = data.exog[:200]  # the Stata example misses the last firm
    X = np.asarray(exog[["value", "capital"]], dtype=float)
    return X, np.asarray(data.endog[:200], dtype=float), 1 / X[:, 0]


# peer class -> (cov_type, Stata results, small)
MACRO = {
    "TestOLSRobust1": ("HC1", macro.results_hc0, True),
    "TestOLSRobust2": ("HC1", macro.results_ivhc0_small, True),
    "TestOLSRobust3": ("HC0", macro.results_ivhc0_large, False),
}


@pytest.mark.parametrize("case", list(MACRO))
def test_macro_robust_basic_matches_stata(case):
    cov_type, res2, small = MACRO[case]
    X, y = _macro()
    res1 = ols(X, y, cov_type=cov_type)
    rtol = 1e-10
    assert_allclose(res1.params, _first(res2.params), rtol=rtol)
    assert_allclose(res1.bse, _first(res2.bse), rtol=rtol)
    assert_allclose(res1.cov_params(), _first_cov(res2.cov), rtol=rtol)
    assert_allclose(res1.tvalues, _first(res2.tvalues), rtol=rtol)
    if small:
        dof_corr = 1.0
    else:
        # large: a normal reference and no ddof correction of the Wald statistic
        assert_allclose(res1.pvalues, _first(res2.pvalues), rtol=5 * rtol, atol=1e-25)
        dof_corr = res1.df_resid / res1.nobs
    assert_allclose(res1.fvalue * dof_corr, res2.F, rtol=rtol)
    if hasattr(res2, "Fp") and small:
        assert_allclose(res1.f_pvalue, res2.Fp, rtol=rtol)
    df = (res2.df_m, res2.df_r) if hasattr(res2, "df_r") else (res2.Fdf1, res2.Fdf2)
    assert_equal((res1.df_model, res1.df_resid), df)


@pytest.mark.parametrize("case", ["TestOLSRobust1", "TestOLSRobust2"])
def test_macro_robust_small_uses_t(case):
    cov_type, res2, _ = MACRO[case]
    X, y = _macro()
    res1 = ols(X, y, cov_type=cov_type, use_t=True)
    assert_allclose(res1.pvalues, _first(res2.pvalues), rtol=5e-10)
    assert_allclose(res1.conf_int(), _first(res2.params_table[:, 4:6]), rtol=1e-10)


def _check_scale(res1, res2, weighted):
    # CheckOLSRobustNewMixin.test_scale
    if not weighted:  # Stata scales WLS differently
        scale = res2.rss / (res2.N - res2.df_m - 1) if hasattr(res2, "rss") else res2.rmse**2
        assert_allclose(res1.scale, scale, rtol=1e-5)
    r2 = res2.r2 if hasattr(res2, "r2") else res2.r2c
    assert_allclose(res1.rsquared, r2, rtol=1e-5)
    df_resid = res1.nobs - res1.df_model - 1
    assert_equal(res1.df_resid, df_resid)
    assert_allclose((res1.resid_pearson**2).sum(), df_resid, rtol=1e-13)


def test_macro_hc0_large_new_confint_scale():
    # TestOLSRobust2LargeNew: HC0 with the normal reference (our default for HC)
    X, y = _macro()
    res1, res2 = ols(X, y, cov_type="HC0"), macro.results_ivhc0_large
    assert_allclose(res1.conf_int(), _first(res2.params_table[:, 4:6]), rtol=1e-10)
    assert_allclose(res1.pvalues, _first(res2.pvalues), rtol=5e-10)
    _check_scale(res1, res2, weighted=False)


def test_macro_hc1_small_new_fvalue_and_scale():
    # TestOLSRobust2SmallNew: F and its p-value, scale, R2 (the t-based parts: item 8)
    X, y = _macro()
    res1, res2 = ols(X, y, cov_type="HC1"), macro.results_ivhc0_small
    assert_allclose(res1.fvalue, res2.F, rtol=1e-10)
    assert_allclose(res1.f_pvalue, res2.Fp, rtol=1e-10)
    _check_scale(res1, res2, weighted=False)


def test_grunfeld_wls_hc1_matches_stata():
    # TestWLSRobustSmall: regress invest mvalue kstock [aw=1/mvalue], robust (rtol 1e-6)
    X, y, w = _grunfeld()
    res1, res2 = ols(X, y, sample_weight=w, cov_type="HC1"), grun.results_hc1_wls_small
    assert_allclose(res1.params, _first(res2.params), rtol=1e-6)
    assert_allclose(res1.bse, _first(res2.bse), rtol=1e-6)
    assert_allclose(res1.cov_params(), _first_cov(res2.cov), rtol=1e-6)
    assert_allclose(res1.tvalues, _first(res2.tvalues), rtol=1e-6)
    _check_scale(res1, res2, weighted=True)


def test_grunfeld_wls_hc1_small_uses_t():
    X, y, w = _grunfeld()
    res1 = ols(X, y, sample_weight=w, cov_type="HC1", use_t=True)
    res2 = grun.results_hc1_wls_small
    assert_allclose(res1.pvalues, _first(res2.pvalues), rtol=5e-6)
    assert_allclose(res1.conf_int(), _first(res2.params_table[:, 4:6]), rtol=1e-6)


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
def test_wls_robust_equals_ols_on_whitened_rows(cov_type):
    X, y, w = _grunfeld()
    root_w = np.sqrt(w)
    design = np.c_[np.ones(len(y)), X] * root_w[:, None]  # the constant is whitened too
    res1 = ols(design, y * root_w, fit_intercept=False, cov_type=cov_type)
    res2 = ols(X, y, sample_weight=w, cov_type=cov_type)
    assert_allclose(res1.params, res2.params, rtol=1e-13)
    assert_allclose(res1.cov_params(), res2.cov_params(), rtol=1e-13)
    assert_allclose(res1.bse, res2.bse, rtol=1e-13)
    assert_allclose(res1.pvalues, res2.pvalues, rtol=1e-13)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3"])
def test_qr_equiv(cov_type):
    rs = np.random.RandomState(123498)
    x = rs.standard_normal((500, 3))
    y = x @ np.ones(3) + rs.standard_normal(500)
    ref = sm.OLS(y, x).fit(cov_type=cov_type)
    ours = ols(x, y, fit_intercept=False, cov_type=cov_type)
    assert_allclose(ours.bse, ref.bse)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    state, sol = fit_exact(X, Y, fit_intercept=False, method="gram")
    gram = OLSResults.from_fit(X, Y, None, False, state, sol, cov_type=cov_type)
    assert_allclose(gram.bse, ours.bse)


def test_wls_bse_matches_scipy_curve_fit():
    # the default (estimated scale) part of test_cov_type_fixed_scale
    xdata = np.array([0, 1, 2, 3, 4, 5], dtype=float)
    ydata = np.array([1, 1, 5, 7, 8, 12], dtype=float)
    sigma = np.array([1, 2, 1, 2, 1, 2], dtype=float)
    res = ols(xdata, ydata, sample_weight=1.0 / sigma**2)
    assert_allclose(res.bse, [0.57204404, 0.20659803], rtol=1e-3)  # constant first


def test_normal_reference_is_the_default_for_robust_covariances():
    # statsmodels: fit(cov_type="HC1") defaults to use_t=False (normal p-values)
    X, y = _macro()
    res = ols(X, y, cov_type="HC1")
    assert_allclose(res.pvalues, 2 * stats.norm.sf(np.abs(res.tvalues)), rtol=1e-12)
