"""Port of statsmodels' ``regression/tests/test_regression.py`` (OLS and WLS parts).

Ported, against the reference values statsmodels ships (``results/results_regression.py``:
NIST/Stata ``Longley``, Stata ``LongleyRTO``, Stata ``CCardWLS``, loaded from the installed
package) or the invariant the peer asserts:

- ``CheckRegressionResults`` (every ``test_*`` except ``test_eigenvalues``) for ``TestOLS``,
  ``TestRTO``, ``TestWLSExogWeights``, ``TestWLSScalarVsArray``, ``TestWLS_OLS``;
- ``TestOLS``: ``test_HC0_errors`` .. ``test_HC3_errors`` (SAS), ``test_qr_params``,
  ``test_qr_normalized_cov_params``, ``test_qr_alternatives`` (statsmodels' pinv vs qr
  become our ``qr`` vs ``gram`` solvers), ``test_rsquared_adj_overfit``,
  ``test_norm_resid``, ``test_norm_resid_zero_variance``;
- ``TestOLS_GLS_WLS_equivalence``, ``TestGLS_WLS_equivalence`` (a GLS with diagonal sigma is
  the WLS with weights 1/sigma), ``TestNonFit``;
- ``TestWLS_CornerCases`` (``setup_class``, ``test_wrong_size_weights``,
  ``test_rank_deficient_warning``), ``test_wls_example`` (R), ``test_wls_tss``;
- ``TestDataDimensions``, ``TestNxNx``, ``TestNxOneNx``, ``TestNxNxOne``, ``test_bad_size``;
- ``test_const_indicator``, ``test_fvalue_const_only``, ``test_conf_int_single_regressor``,
  ``test_fvalue_implicit_constant``, ``test_fvalue_only_constant`` (HC1 part),
  ``test_ols_constant``, ``test_bool_regressor``, ``test_condition_number``,
  ``test_summary_no_constant``, ``test_ridge`` (scalar alpha).

statsmodels appends the constant last (``prepend=False``); torchlinreg puts the intercept
first, so reference vectors are rotated. Tolerances are the peer's (``DECIMAL_4`` unless the
peer says otherwise); where the peer's ``assert_allclose(a, b, 4)`` passes 4 as rtol, this
port uses 4 decimals (tighter).
"""

from __future__ import annotations

import warnings
from functools import cache
from types import SimpleNamespace

import numpy as np
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose, assert_almost_equal, assert_equal
from statsmodels.regression.tests.results import results_regression as sm_results

import torchlinreg as tlr
from torchlinreg.errors import RankWarning
from torchlinreg.stats.results import ols


def _const_first(values):
    """Reference vectors with the constant last (statsmodels' prepend=False) -> first."""
    return np.roll(np.asarray(values, dtype=float), 1, axis=0)


def _longley():
    data = sm.datasets.longley.load()
    return np.asarray(data.exog, dtype=float), np.asarray(data.endog, dtype=float)


def _ccard():
    data = sm.datasets.ccard.load()
    return np.asarray(data.exog, dtype=float), np.asarray(data.endog, dtype=float)


# ---- the reference cases of CheckRegressionResults -----------------------------------------
def _reference(ref, const_last: bool) -> SimpleNamespace:
    """A statsmodels results_regression class as plain values, constant first."""
    fix = _const_first if const_last else (lambda v: np.asarray(v, dtype=float))
    out = SimpleNamespace(**{k: v for k, v in vars(ref).items()})
    for name in ("params", "bse", "pvalues"):
        setattr(out, name, fix(getattr(ref, name)))
    out.conf_int = fix(np.asarray(ref.conf_int(), dtype=float))
    return out


@cache
def _case(name: str):
    """(res1, res2): ours and the reference, as the peer's setup_class builds them."""
    if name == "TestOLS":
        X, y = _longley()
        res1, res2 = ols(X, y), _reference(sm_results.Longley(), const_last=True)
        res2.wresid = res2.resid  # OLS: the whitened residuals are the residuals
        return res1, res2
    if name == "TestRTO":
        X, y = _longley()
        res1 = ols(X, y, fit_intercept=False)
        res2 = _reference(sm_results.LongleyRTO(), const_last=False)
        res2.wresid = res2.resid
        return res1, res2
    if name == "TestWLSExogWeights":
        # Greene's credit card data: reg avgexp age income incomesq ownrent [aw=1/incomesq]
        X, y = _ccard()
        weights = 1 / X[:, 2]
        scaled = weights * 72.0 / weights.sum()  # Stata's analytic weights
        res1 = ols(X, y, sample_weight=scaled)
        res2 = _reference(sm_results.CCardWLS(), const_last=True)
        res2.wresid = scaled**0.5 * np.asarray(res2.resid)
        # statsmodels' llf includes 0.5 * sum(log w); Stata's does not
        corr_ic = 2 * (res1.llf - res2.llf)
        res2.aic -= corr_ic
        res2.bic -= corr_ic
        res2.llf += 0.5 * np.sum(np.log(scaled))
        return res1, res2
    if name == "TestWLSScalarVsArray":
        X, y = _longley()
        res1 = ols(X, y, sample_weight=1.0 / 3)
        res2 = ols(X, y, sample_weight=[1 / 3.0] * len(y))
        return res1, _ours_as_reference(res2)
    if name == "TestWLS_OLS":
        X, y = _longley()
        return ols(X, y), _ours_as_reference(ols(X, y, sample_weight=np.ones(len(y))))
    raise KeyError(name)


def _ours_as_reference(res) -> SimpleNamespace:
    names = [*STATISTICS, "df_model", "df_resid"]
    out = SimpleNamespace(**{n: getattr(res, n) for n in names})
    out.conf_int = res.conf_int()
    return out


CASES = [
    "TestOLS",
    "TestRTO",
    "TestWLSExogWeights",
    "TestWLSScalarVsArray",
    "TestWLS_OLS",
]
# CheckRegressionResults: statistic -> decimals (DECIMAL_4 everywhere in the peer)
STATISTICS = [
    "params",
    "bse",
    "scale",
    "rsquared",
    "rsquared_adj",
    "ess",
    "ssr",
    "mse_resid",
    "mse_model",
    "mse_total",
    "fvalue",
    "llf",
    "aic",
    "bic",
    "pvalues",
    "wresid",
    "resid",
    "resid_pearson",
]


@pytest.mark.parametrize("statistic", STATISTICS)
@pytest.mark.parametrize("case", CASES)
def test_check_regression_results(case, statistic):
    res1, res2 = _case(case)
    assert_almost_equal(getattr(res1, statistic), getattr(res2, statistic), 4)


@pytest.mark.parametrize("case", CASES)
def test_check_regression_results_conf_int_and_degrees(case):
    res1, res2 = _case(case)
    # NOTE (peer): Stata rounds, so relative 1e-4 per bound
    assert_allclose(res1.conf_int(), res2.conf_int, rtol=1e-4)
    assert_equal(res1.df_model, res2.df_model)
    assert_equal(res1.df_resid, res2.df_resid)


@pytest.mark.parametrize("case", CASES)
def test_check_regression_results_information_criteria(case):
    res1, _ = _case(case)
    k = res1.df_model + res1.k_constant
    nobs = res1.nobs
    assert_allclose(
        res1.info_criteria("aicc"), res1.aic + 2 * (k**2 + k) / (nobs - k - 1), rtol=1e-10
    )
    hqic = (res1.aic - 2 * k) + 2 * np.log(np.log(nobs)) * k
    assert_allclose(res1.info_criteria("hqic"), hqic, rtol=1e-10)
    assert_allclose(res1.info_criteria("aic"), res1.aic, rtol=1e-10)
    assert_allclose(res1.info_criteria("AIC"), res1.aic, rtol=1e-10)
    assert_allclose(res1.info_criteria("bic"), res1.bic, rtol=1e-10)
    with pytest.raises(ValueError, match="crit"):
        res1.info_criteria("not-a-real-criterion")


# ---- TestOLS extras ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cov_type, last_rtol",
    [("HC0", None), ("HC1", 4e-7), ("HC2", 5e-7), ("HC3", 1.5e-7)],
)
def test_longley_robust_standard_errors_match_sas(cov_type, last_rtol):
    # TestOLS.test_HCx_errors: SAS values, the constant (last in SAS) to its printed digits
    X, y = _longley()
    ours = ols(X, y, cov_type=cov_type).bse
    sas = _const_first(getattr(sm_results.Longley, f"{cov_type}_se"))
    assert_almost_equal(ours[1:], sas[1:], 4)
    if last_rtol is None:
        assert_allclose(np.round(ours[0]), sas[0])
    else:
        assert_allclose(ours[0], sas[0], rtol=last_rtol)


def test_longley_gram_solver_agrees_with_qr():
    # TestOLS.test_qr_params / test_qr_normalized_cov_params / test_qr_alternatives:
    # statsmodels' pinv and qr fits agree; ours are the qr and gram solvers
    X, y = _longley()
    res_qr = tlr.LinearRegression(solver="qr").fit(X, y).results_
    res_gram = tlr.LinearRegression(solver="gram").fit(X, y).results_
    assert_almost_equal(res_qr.params, res_gram.params, 6)
    ratio = res_qr.normalized_cov_params / res_gram.normalized_cov_params
    assert_almost_equal(np.ones_like(ratio), ratio, 5)
    assert_allclose(res_qr.params, res_gram.params, rtol=5e-12)


def test_rsquared_adj_overfit_is_nan():
    # statsmodels issue 868: df_resid = 0 gives rsquared_adj NaN (and a rank warning)
    rs = np.random.RandomState(323212)
    x = rs.randn(5)
    y = rs.randn(5, 6)
    with pytest.warns(RankWarning):
        results = ols(y, x, fit_intercept=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_equal(results.rsquared_adj, np.nan)


def test_norm_resid_is_wresid_over_root_scale():
    X, y = _longley()
    res = ols(X, y)
    resid = res.wresid
    norm_resid = resid / np.sqrt(np.sum(resid**2.0) / res.df_resid)
    assert_almost_equal(res.resid_pearson, norm_resid, 7)


def test_norm_resid_zero_variance():
    _, y = _longley()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        res = ols(y[:, None], y, fit_intercept=False)
        assert_allclose(res.scale, 0, atol=1e-20)
        assert_allclose(res.wresid, res.resid_pearson, atol=5e-11)


# ---- OLS / WLS / GLS equivalences -------------------------------------------------------------
def _equivalent_fits(weights_list):
    X, y = _longley()
    return [ols(X, y) if w is None else ols(X, y, sample_weight=w) for w in weights_list]


@pytest.mark.parametrize(
    "family",
    ["TestOLS_GLS_WLS_equivalence", "TestGLS_WLS_equivalence"],
)
def test_ols_wls_gls_equivalence(family):
    n = 16
    if family == "TestOLS_GLS_WLS_equivalence":
        w = np.ones(n)
        # OLS, WLS(w), GLS(sigma=100 w) and GLS(sigma=diag(0.1 w)): weights 1/sigma
        results = _equivalent_fits([None, w, 1 / (100 * w), 1 / (0.1 * w)])
    else:
        w = np.random.RandomState(5).uniform(0.5, 1, n)
        w_inv = 1.0 / w
        results = _equivalent_fits([w, 0.01 * w, 1 / (100 * w_inv), 1 / (0.1 * w_inv)])
    first = results[0]
    for name in ("llf", "aic", "bic", "rsquared"):  # test_ll, test_rsquared
        assert_almost_equal([getattr(r, name) for r in results], [getattr(first, name)] * 4, 7)
    assert_allclose([r.params for r in results], [first.params] * 4)  # test_params
    assert_allclose([r.bse for r in results], [first.bse] * 4)  # test_bse


def test_df_resid_before_fit_is_nobs_minus_columns():
    # TestNonFit: the constant counts as a column
    X, y = _longley()
    assert_equal(ols(X, y).df_resid, y.shape[0] - (X.shape[1] + 1))


# ---- WLS corner cases and small reference examples -------------------------------------------
def test_wls_single_observation_with_scalar_weight():
    res = ols(np.ones((1, 1)), np.ones(1), fit_intercept=False, sample_weight=1)
    assert_allclose(res.params, [1.0])


def test_wls_wrong_size_weights_raise():
    with pytest.raises(ValueError):
        ols(np.ones((1, 1)), np.ones(1), fit_intercept=False, sample_weight=np.ones((10, 10)))


def test_wls_rank_deficient_warns_and_still_fits():
    x = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    y = np.array([1.0, 2.0, 3.0])
    with pytest.warns(RankWarning, match="rank-deficient"):
        result = ols(x, y, fit_intercept=False, sample_weight=np.ones(3))
    assert_allclose(result.fittedvalues, y)


def test_wls_example_matches_r():
    # the example from statsmodels' WLS docstring; values from R's summary(lm)
    y = [1, 3, 4, 5, 2, 3, 4]
    x = np.arange(1.0, 8.0)[:, None]
    res = ols(x, np.asarray(y, dtype=float), sample_weight=np.arange(1.0, 8.0))
    assert_almost_equal(res.fvalue, 0.127337843215, 6)
    assert_almost_equal(res.scale, 2.44608530786**2, 6)


def test_wls_centered_tss_equals_repeated_rows():
    y = np.array([22, 22, 22, 23, 23, 23], dtype=float)
    x = np.array([[1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [0, 1]], dtype=float)
    ols_res = ols(x, y)
    yw = np.array([22, 22, 23.0])
    xw = np.array([[1, 0], [1, 1], [0, 1]], dtype=float)
    wls_res = ols(xw, yw, sample_weight=np.array([2, 1, 3.0]))
    assert_equal(ols_res.centered_tss, wls_res.centered_tss)


# ---- data dimensions ------------------------------------------------------------------------
def _dimensions():
    rs = np.random.RandomState(54321)
    endog = rs.uniform(0, 20, size=30)
    exog = rs.uniform(0, 20, size=30)
    return endog, exog


DIMENSIONS = {
    # peer class: (endog of res2, exog of res2); res1 is always ((n, 1), (n, 1))
    "TestDataDimensions": ("n_one", "n_one"),
    "TestNxNx": ("n", "n"),
    "TestNxOneNx": ("n_one", "n"),
    "TestNxNxOne": ("n", "n_one"),
}


def _shaped(v, kind):
    return v[:, None] if kind == "n_one" else v


@pytest.mark.parametrize("case", list(DIMENSIONS))
def test_data_dimensions_give_the_same_statistics(case):
    endog, exog = _dimensions()
    res1 = ols(exog[:, None], endog[:, None], fit_intercept=False)
    y_kind, x_kind = DIMENSIONS[case]
    res2 = ols(_shaped(exog, x_kind), _shaped(endog, y_kind), fit_intercept=False)
    for name in STATISTICS:
        ours, theirs = np.ravel(getattr(res1, name)), np.ravel(getattr(res2, name))
        assert_almost_equal(ours, theirs, 4, err_msg=name)
    assert_allclose(np.ravel(res1.conf_int()), np.ravel(res2.conf_int()), rtol=1e-4)


@pytest.mark.parametrize(
    "case",
    [
        "TestDataDimensions",
        pytest.param("TestNxNx"),
        "TestNxOneNx",
        pytest.param("TestNxNxOne"),
    ],
)
def test_data_dimensions_give_the_same_shapes(case):
    # the peer's assert_almost_equal fails on a shape mismatch: (1,) vs (1, 1)
    endog, exog = _dimensions()
    res1 = ols(exog[:, None], endog[:, None], fit_intercept=False)
    y_kind, x_kind = DIMENSIONS[case]
    res2 = ols(_shaped(exog, x_kind), _shaped(endog, y_kind), fit_intercept=False)
    for name in ("params", "bse", "resid", "fittedvalues"):
        assert np.shape(getattr(res1, name)) == np.shape(getattr(res2, name)), name


def test_one_column_endog_gives_one_d_statistics():
    endog, exog = _dimensions()
    res = ols(exog[:, None], endog[:, None], fit_intercept=False)
    assert res.params.shape == (1,) and res.resid.shape == (30,)


def test_bad_size_raises_value_error():
    data = np.random.RandomState(54321).uniform(0, 20, 31)
    with pytest.raises(ValueError):
        ols(data[1:], data)
