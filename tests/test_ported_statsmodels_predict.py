"""Port of statsmodels' ``regression/tests/test_predict.py`` (OLS and WLS prediction).

Ported: ``test_predict_se`` (against the direct formula, and statsmodels'
``wls_prediction_std`` where the peer uses it), ``TestWLSPrediction.test_ci`` and
``test_predict_remove_data`` (prediction from a scalar, a list and a Series).
Left out: ``TestWLSPrediction.test_glm``, ``test_prediction_results_t_test``,
``test_prediction_results_mean_conf_int_invalid_method``,
``test_prediction_results_mean_var_pred_mean`` (GLM prediction, a later issue).

statsmodels' ``exog`` holds the constant column; torchlinreg's ``X`` does not (the
intercept comes first in its design), so ``x2 = [x1, 1]`` becomes ``X = x1``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose, assert_almost_equal, assert_equal
from statsmodels.sandbox.regression.predstd import wls_prediction_std

from torchlinreg.stats.results import ols

# stats.t.isf(0.05 / 2, 50 - 2)
Q = 2.0106347546964458


def _predict_se_data():
    nsample = 50
    x1 = np.linspace(0, 20, nsample)
    x = np.c_[x1, (x1 - 5) ** 2, np.ones(nsample)]
    rs = np.random.RandomState(0)
    y_true2 = np.dot(x, [0.5, -0.01, 5.0])
    w = np.ones(nsample)
    w[int(nsample * 6.0 / 10) :] = 3
    y2 = y_true2 + 0.5 * w * rs.normal(size=nsample)
    return x1[:, None], y2, w


def _direct_predstd(res, X, extra_var):
    design = np.c_[np.ones(len(X)), X]
    covb = res.cov_params()
    return np.sqrt(extra_var + (design * np.dot(covb, design.T).T).sum(1))


def test_predict_se_ols_equals_direct_calculation():
    X, y2, _ = _predict_se_data()
    res2 = ols(X, y2)
    predstd = _direct_predstd(res2, X, res2.mse_resid)
    pred = res2.get_prediction()
    assert_almost_equal(pred.se_obs, predstd, 15)
    iv_l, iv_u = pred.conf_int(obs=True).T
    assert_allclose(iv_u, res2.fittedvalues + Q * predstd, rtol=1e-9)
    assert_allclose(iv_l, res2.fittedvalues - Q * predstd, rtol=1e-9)
    # the first three rows given as new exog
    iv_l, iv_u = res2.get_prediction(X[:3]).conf_int(obs=True).T
    assert_allclose(iv_u, res2.fittedvalues[:3] + Q * predstd[:3], rtol=1e-9)
    assert_allclose(iv_l, res2.fittedvalues[:3] - Q * predstd[:3], rtol=1e-9)
    # and statsmodels' own helper on its own fit agrees
    ref = sm.OLS(y2, sm.add_constant(X)).fit()
    assert_allclose(pred.se_obs, wls_prediction_std(ref)[0], rtol=1e-12)


def test_predict_se_wls_equals_direct_calculation():
    X, y2, w = _predict_se_data()
    res3 = ols(X, y2, sample_weight=1.0 / w)
    predstd = _direct_predstd(res3, X, res3.mse_resid * w)
    pred = res3.get_prediction()
    assert_almost_equal(pred.se_obs, predstd, 15)
    iv_l, iv_u = pred.conf_int(obs=True).T
    assert_allclose(iv_u, res3.fittedvalues + Q * predstd, rtol=1e-9)
    assert_allclose(iv_l, res3.fittedvalues - Q * predstd, rtol=1e-9)
    # new exog with no weights: weight 1, as statsmodels
    iv_l, iv_u = res3.get_prediction(X[:3]).conf_int(obs=True).T
    assert_allclose(iv_u, res3.fittedvalues[:3] + Q * predstd[:3], rtol=1e-9)
    assert_allclose(iv_l, res3.fittedvalues[:3] - Q * predstd[:3], rtol=1e-9)
    # a list of weights for two rows
    two = res3.get_prediction(X[-2:], weights=[3, 3]).se_obs
    assert two.shape == (2,)
    ref = sm.WLS(y2, sm.add_constant(X), 1.0 / w).fit()
    assert_allclose(two, wls_prediction_std(ref, sm.add_constant(X)[-2:], weights=[3, 3])[0])
    # the observation variance is scale / weight
    sew1 = res3.get_prediction(X[-3:]).se_obs ** 2
    for wv in np.linspace(0.5, 3, 5):
        sew = res3.get_prediction(X[-3:], weights=1.0 / wv * np.ones(3)).se_obs ** 2
        assert_allclose(sew, sew1 + res3.scale * (wv - 1))


def test_predict_se_wls_scalar_weight():
    X, y2, w = _predict_se_data()
    res3 = ols(X, y2, sample_weight=1.0 / w)
    one = res3.get_prediction(X[-1:], weights=3.0).se_obs
    two = res3.get_prediction(X[-2:], weights=3.0).se_obs
    assert one.shape == (1,) and two.shape == (2,)
    assert_allclose(two, res3.get_prediction(X[-2:], weights=[3.0, 3.0]).se_obs)


def test_predict_wrong_size_exog_raises_value_error():
    X, y2, w = _predict_se_data()
    res3 = ols(X, y2, sample_weight=1.0 / w)
    with pytest.raises(ValueError):
        res3.get_prediction(np.ones((1, 2)), weights=np.ones(1))


COLUMNS = ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper"]


def _wls_example():
    rs = np.random.RandomState(3237219)
    nsample = 50
    x = np.linspace(0, 20, nsample)
    X = sm.add_constant(np.column_stack((x, (x - 5) ** 2)))
    w = np.ones(nsample)
    w[int(nsample * 6.0 / 10) :] = 3
    y = np.dot(X, [5.0, 0.5, -0.01]) + 0.5 * w * rs.normal(size=nsample)
    return x[:, None], y, w


def test_wls_prediction_ci():
    X, y, w = _wls_example()
    res_wls = ols(X, y, sample_weight=1.0 / w)
    ref = sm.WLS(y, sm.add_constant(X), weights=1.0 / w).fit()
    prstd, iv_l, iv_u = wls_prediction_std(ref)
    pred_res = res_wls.get_prediction()
    assert_allclose(pred_res.se_obs, prstd, rtol=1e-13)
    assert_allclose(pred_res.conf_int(obs=True), np.column_stack((iv_l, iv_u)), rtol=1e-13)
    assert_equal(pred_res.summary_frame().columns.tolist(), COLUMNS)
    # a list works (statsmodels issue 4437): one row as a nested list or a flat one
    x = X.mean(0)
    pred3 = res_wls.get_prediction([x])
    pred3b = res_wls.get_prediction(x.tolist())
    assert_allclose(pred3b.se_obs, pred3.se_obs, rtol=1e-13)
    assert_allclose(pred3b.conf_int(obs=True), pred3.conf_int(obs=True), rtol=1e-13)
    assert_equal(pred3b.summary_frame().index.values, [0])
    x = X[-2:]
    pred3 = res_wls.get_prediction(x)
    pred3b = res_wls.get_prediction(x.tolist())
    assert_allclose(pred3b.se_obs, pred3.se_obs, rtol=1e-13)
    assert_allclose(pred3b.conf_int(obs=True), pred3.conf_int(obs=True), rtol=1e-13)
    assert_equal(pred3b.summary_frame().index.values, [0, 1])


def test_predict_from_scalar_list_and_series():
    # statsmodels GH6887: one regressor, no constant
    rs = np.random.RandomState(3821010)
    endog = [i + rs.normal(scale=0.1) for i in range(100)]
    exog = list(range(100))
    model = ols(exog, endog, fit_intercept=False, sample_weight=[1 for _ in range(100)])
    assert isinstance(model.scale, float)
    scalar = model.get_prediction(1).predicted_mean
    pred = model.get_prediction([1])
    assert_allclose(scalar, pred.predicted_mean)
    pred.summary_frame()
    series = model.get_prediction(pd.Series([1])).predicted_mean
    assert_allclose(scalar, series)
