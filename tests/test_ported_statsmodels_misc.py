"""Port of the module-level OLS/WLS tests of statsmodels' ``regression/tests/test_regression.py``.

Ported: ``test_const_indicator``, ``test_fvalue_const_only``,
``test_conf_int_single_regressor``, ``test_fvalue_implicit_constant``,
``test_fvalue_only_constant`` (its HC1 part; HAC is a later issue), ``test_ols_constant``,
``test_bool_regressor``, ``test_condition_number``, ``test_summary_no_constant`` and
``test_ridge`` (scalar alpha: statsmodels' ``fit_regularized(L1_wt=0)`` minimises
``RSS / (2n) + alpha / 2 ||b||^2``, which is torchlinreg's ``Ridge(alpha=n * alpha)``).

statsmodels' ``hasconst=True`` (a constant the user declares) is torchlinreg's
``fit_intercept=True`` with the constant column left out of ``X``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose, assert_almost_equal

import torchlinreg as tlr
from torchlinreg.errors import RankWarning
from torchlinreg.stats.results import ols


def _dummies(seed=12345):
    rs = np.random.RandomState(seed)
    x = rs.randint(0, 3, size=30)
    x = pd.get_dummies(pd.Series(x, dtype="category"), drop_first=False, dtype=float)
    y = np.dot(x, [1.0, 2.0, 3.0]) + rs.normal(size=30)
    return x.to_numpy(), y


def test_const_indicator():
    # a full set of dummies spans the constant: the same centred R2 as constant + k-1 dummies
    x, y = _dummies()
    resc = ols(x[:, 1:], y)
    with pytest.warns(RankWarning):
        res = ols(x, y)  # intercept and all three dummies: one column is aliased
    assert_almost_equal(resc.rsquared, res.rsquared, 12)
    assert res.k_constant == 1 and resc.k_constant == 1


def test_fvalue_const_only():
    # HC1 Wald F of the dummies against the constant-only model is a float, not NaN
    x, y = _dummies()
    res = ols(x[:, 1:], y, cov_type="HC1")
    assert not np.isnan(res.fvalue)
    assert isinstance(res.fvalue, float)
    assert isinstance(res.f_pvalue, float)


def test_conf_int_single_regressor():
    # GH#706: one regressor, no constant, 1-D exog: conf_int has shape (1, 2)
    rs = np.random.RandomState(3232121)
    y = pd.Series(rs.randn(10))
    x = pd.Series(np.ones(10))
    res = ols(x, y, fit_intercept=False)
    assert res.conf_int().shape == (1, 2)


def test_fvalue_implicit_constant():
    # statsmodels #2444: two dummies that sum to one imply a constant
    rs = np.random.RandomState(2)
    x = rs.randn(100, 1)
    x = ((x > 0) == [True, False]).astype(int)
    y = x.sum(1) + rs.randn(100)
    for weights in (None, np.ones(100)):  # OLS and WLS
        res = ols(x, y, fit_intercept=False, sample_weight=weights, cov_type="HC1")
        assert np.isnan(res.fvalue) and np.isnan(res.f_pvalue)
        res.summary()


def test_fvalue_only_constant():
    # statsmodels #3642: a constant-only model has no F statistic
    y = np.random.RandomState(2).randn(20)
    res = ols(np.empty((20, 0)), y, sample_weight=np.ones(20), cov_type="HC1")
    assert np.isnan(res.fvalue) and np.isnan(res.f_pvalue)
    res.summary()


def test_ols_constant():
    y = np.random.RandomState(323219).standard_normal(200)
    res = ols(np.empty((200, 0)), y)
    with warnings.catch_warnings(record=True) as recording:
        warnings.simplefilter("always")
        assert np.isnan(res.fvalue)
        assert np.isnan(res.f_pvalue)
    assert len(recording) == 0


def test_bool_regressor():
    rs = np.random.RandomState(3232127)
    exog = rs.randint(0, 2, size=(100, 2)).astype(bool)
    endog = rs.standard_normal(100)
    bool_res = ols(exog, endog, fit_intercept=False)
    res = ols(exog.astype(np.double), endog, fit_intercept=False)
    assert_allclose(bool_res.params, res.params)


def test_condition_number():
    rs = np.random.RandomState(323218)
    y = rs.standard_normal(100)
    x = rs.standard_normal((100, 1))
    x = x + rs.standard_normal((100, 5))
    res = ols(x, y, fit_intercept=False)
    assert_allclose(res.condition_number, np.sqrt(np.linalg.cond(x.T @ x)))
    assert_allclose(res.condition_number, np.linalg.cond(x))


def test_summary_no_constant():
    # statsmodels notes "R² is computed without centering"; ours labels the statistic
    rs = np.random.RandomState(0)
    x = rs.standard_normal((100, 2))
    y = rs.standard_normal(100)
    summary = ols(x, y, fit_intercept=False).summary()
    assert "R-squared (uncentered)" in summary


def test_ridge_matches_statsmodels_fit_regularized():
    n, p = 100, 5
    rs = np.random.RandomState(3132)
    xmat = rs.normal(size=(n, p))
    yvec = xmat.sum(1) + rs.normal(size=n)
    for a in (0, 1, 10):
        ref = sm.OLS(yvec, xmat).fit_regularized(alpha=a, L1_wt=0)
        for solver in ("qr", "gram"):
            ours = tlr.Ridge(alpha=n * a, fit_intercept=False, solver=solver).fit(xmat, yvec)
            assert_allclose(ours.coef_, ref.params, rtol=1e-7)
            assert_allclose(ours.predict(xmat), xmat @ ours.coef_, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("how", ["a column of ones", "dummies summing to one"])
def test_a_constant_in_the_columns_gives_statsmodels_centred_statistics(weighted, how):
    # add_constant then fit_intercept=False: R2 0.113 for 0.011, F 32 for 3.7 before
    # (NOTE [a constant in the columns])
    fair = sm.datasets.fair.load_pandas().data
    X = fair[["age", "yrs_married"]].to_numpy()
    if how == "a column of ones":
        X = sm.add_constant(X)
    else:
        X = np.column_stack([(fair["religious"] <= 2).astype(float),
                             (fair["religious"] > 2).astype(float), X])  # fmt: skip
    y = fair["affairs"].to_numpy()
    w = fair["educ"].to_numpy() if weighted else None
    res = ols(X, y, fit_intercept=False, sample_weight=w)
    ref = (sm.WLS(y, X, weights=w) if weighted else sm.OLS(y, X)).fit()
    for name in ("rsquared", "rsquared_adj", "fvalue", "f_pvalue", "df_model", "ess"):
        assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-9, err_msg=name)
    assert res.k_constant == ref.k_constant == 1


def test_the_estimator_counts_a_constant_in_the_columns_too():
    # LinearRegression(fit_intercept=False).results_ on an add_constant design: the
    # uncentred R2 where ols() and statsmodels centre (NOTE [a constant in the columns])
    fair = sm.datasets.fair.load_pandas().data
    X = sm.add_constant(fair[["age", "yrs_married"]].to_numpy())
    y = fair["affairs"].to_numpy()
    res = tlr.LinearRegression(fit_intercept=False).fit(X, y).results_
    ref = sm.OLS(y, X).fit()
    for name in ("rsquared", "rsquared_adj", "fvalue", "df_model"):
        assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-9, err_msg=name)
