"""Port of statsmodels' ``regression/tests/test_rolling.py`` (RollingOLS / RollingWLS).

Same generated data (``gen_data``: seed 987499302, 250 rows, 3 or 0 regressors, with or
without a constant column, numpy or pandas, chi2(5)/5 weights), same windows, assertions
and tolerances, with ``torchlinreg.rolling_ols`` in place of statsmodels' rolling results.
Where statsmodels compares with its own ``WLS`` on each window, so does this file.

Ported:
- ``test_weighted_against_wls`` (params, nobs, ssr, llf, aic, bic, tss, df, ess, mse_*,
  R2, adj R2 per window against ``WLS``; weighted and unweighted);
- ``test_against_wls_inference`` (bse, t, p, F, F p-value, conf_int, cov_type, use_t;
  nonrobust and HC0, use_t None/True/False; ``cov_params()`` smoke test);
- ``test_raise`` (its ``missing="drop"`` part on complete data: windows from row 99 finite);
- ``test_error`` (unknown cov_type, min_nobs below the parameters or above the window);
- ``test_methods`` / ``test_params_only``: ours against statsmodels' ``inv``, ``lstsq``,
  ``pinv`` fits, with and without ``params_only``;
- ``test_expanding`` (window 150, min_nobs 50).

Adapted:
- gen_data's ``const`` column becomes ``fit_intercept=True`` on the other columns (an
  intercept-only model is X with 0 columns); ``const=False`` is ``fit_intercept=False``;
- ``df_model`` is one value per window here (NaN where there is no fit), a scalar there;
- ``conf_int()`` is ``(n, p, 2)``, so a window's row needs no transpose;
- data with missing values (``missing=0.1``): rolling_ols has no ``missing=`` and refuses
  NaN with a DataError naming the row (statsmodels' ``missing="raise"``); tested as such.

Left out (no torchlinreg equivalent):
- ``test_has_nan`` and ``test_min_nobs`` (per-window dropping of missing rows, ``_has_nan``;
  test_min_nobs returns early on complete data) and ``missing="skip"`` of ``test_raise``;
- ``test_error``'s ``fit(reset=-1)`` and ``fit(method="unknown")`` (no reset, no method);
- ``test_save_load``: results are not picklable (they hold a closure over the rows;
  torchlinreg saves models as safetensors, never pickle);
- ``test_formula`` (no ``from_formula`` for rolling fits);
- ``test_plot`` (no ``plot_recursive_coefficient``).

Trimmed: none (24 weighted cases as upstream, less the 12 with missing values).
Added beyond upstream: ``test_extra_weighted_inference_against_wls`` (weighted, rolling and
expanding, nonrobust and HC0-HC3, against WLS per window, rtol 1e-9).
"""

from __future__ import annotations

import warnings
from itertools import product

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose
from statsmodels import tools
from statsmodels.regression.linear_model import WLS
from statsmodels.regression.rolling import RollingOLS

import torchlinreg
from torchlinreg.errors import DataError

torch.set_num_threads(1)


def gen_data(nobs, nvar, const, pandas=False, missing=0.0, weights=False):
    rs = np.random.RandomState(987499302)
    x = rs.standard_normal((nobs, nvar))
    cols = [f"x{i}" for i in range(nvar)]
    if const:
        x = tools.add_constant(x)
        cols = ["const", *cols]
    if missing > 0.0:
        mask = rs.random_sample(x.shape) < missing
        x[mask] = np.nan
    if x.shape[1] > 1:
        y = x[:, :-1].sum(1) + rs.standard_normal(nobs)
    else:
        y = x.sum(1) + rs.standard_normal(nobs)
    w = rs.chisquare(5, y.shape[0]) / 5
    if pandas:
        idx = pd.date_range("12-31-1999", periods=nobs)
        x = pd.DataFrame(x, index=idx, columns=cols)
        y = pd.Series(y, index=idx, name="y")
        w = pd.Series(w, index=idx, name="weights")
    if not weights:
        w = None

    return y, x, w


nobs = (250,)
nvar = (3, 0)
tf = (True, False)
missing = (0, 0.1)
params = list(product(nobs, nvar, tf, tf, missing))
params = [param for param in params if param[1] + param[2] > 0]
# rolling_ols takes no missing values: the complete data sets are ported, the others
# checked for the refusal (test_missing_values_are_refused)
complete = [param for param in params if param[4] == 0]
with_missing = [param for param in params if param[4] > 0]
ids = ["-".join(map(str, param)) for param in complete]
weighted_params = [(*param, w) for param in complete for w in (True, False)]
weighted_ids = ["-".join(map(str, param)) for param in weighted_params]


def _with_const(param):
    y, x, w = gen_data(*param)
    return y, x, w, bool(param[2])


@pytest.fixture(scope="module", params=complete, ids=ids)
def data(request):
    return _with_const(request.param)


@pytest.fixture(scope="module", params=complete, ids=ids)
def basic_data(request):  # upstream's filter keeps every data set (it tests ``params[2]``)
    return _with_const(request.param)


@pytest.fixture(scope="module", params=weighted_params, ids=weighted_ids)
def weighted_data(request):
    return _with_const(request.param)


def rolling(y, x, const, w=None, **kwargs):
    """rolling_ols on gen_data's design: its constant column is ``fit_intercept``."""
    X = (x.iloc[:, 1:] if isinstance(x, pd.DataFrame) else x[:, 1:]) if const else x
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # statsmodels' data: nothing to warn about
        return torchlinreg.rolling_ols(X, y, fit_intercept=const, sample_weight=w, **kwargs)


def get_single(x, idx):
    if isinstance(x, (pd.Series, pd.DataFrame)):
        return x.iloc[idx]
    return x[idx]


def get_sub(x, idx, window):
    if isinstance(x, (pd.Series, pd.DataFrame)):
        out = x.iloc[idx - window : idx]
        return np.asarray(out)
    return x[idx - window : idx]


def test_weighted_against_wls(weighted_data):
    y, x, w, const = weighted_data
    res = rolling(y, x, const, w, window=100, use_t=True)
    for i in range(100, y.shape[0]):
        _y = get_sub(y, i, 100)
        _x = get_sub(x, i, 100)
        _w = get_sub(w, i, 100) if w is not None else np.ones_like(_y)
        wls = WLS(_y, _x, weights=_w, missing="drop").fit()
        rolling_params = get_single(res.params, i - 1)
        rolling_nobs = get_single(res.nobs, i - 1)
        assert_allclose(rolling_params, wls.params)
        assert_allclose(rolling_nobs, wls.nobs)
        assert_allclose(get_single(res.ssr, i - 1), wls.ssr)
        assert_allclose(get_single(res.llf, i - 1), wls.llf)
        assert_allclose(get_single(res.aic, i - 1), wls.aic)
        assert_allclose(get_single(res.bic, i - 1), wls.bic)
        assert_allclose(get_single(res.centered_tss, i - 1), wls.centered_tss)
        # adapted: one df_model per window here, a scalar in statsmodels
        assert_allclose(get_single(res.df_model, i - 1), wls.df_model)
        assert_allclose(get_single(res.df_resid, i - 1), wls.df_resid)
        assert_allclose(get_single(res.ess, i - 1), wls.ess, atol=1e-8)
        assert_allclose(res.k_constant, wls.k_constant)
        assert_allclose(get_single(res.mse_model, i - 1), wls.mse_model)
        assert_allclose(get_single(res.mse_resid, i - 1), wls.mse_resid)
        assert_allclose(get_single(res.mse_total, i - 1), wls.mse_total)
        assert_allclose(get_single(res.rsquared, i - 1), wls.rsquared, atol=1e-8)
        assert_allclose(get_single(res.rsquared_adj, i - 1), wls.rsquared_adj, atol=1e-8)
        assert_allclose(get_single(res.uncentered_tss, i - 1), wls.uncentered_tss)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
@pytest.mark.parametrize("use_t", [None, True, False])
def test_against_wls_inference(data, use_t, cov_type):
    y, x, w, const = data
    res = rolling(y, x, const, w, window=100, use_t=use_t, cov_type=cov_type)
    ci = res.conf_int()

    # This is a smoke test of cov_params to make sure it works
    res.cov_params()

    for i in range(100, y.shape[0]):
        _y = get_sub(y, i, 100)
        _x = get_sub(x, i, 100)
        wls = WLS(_y, _x, missing="drop").fit(use_t=use_t, cov_type=cov_type)
        assert_allclose(get_single(res.tvalues, i - 1), wls.tvalues)
        assert_allclose(get_single(res.bse, i - 1), wls.bse)
        assert_allclose(get_single(res.pvalues, i - 1), wls.pvalues, atol=1e-8)
        assert_allclose(get_single(res.fvalue, i - 1), wls.fvalue)
        with np.errstate(invalid="ignore"):
            assert_allclose(get_single(res.f_pvalue, i - 1), wls.f_pvalue, atol=1e-8)
        assert res.cov_type == wls.cov_type
        assert res.use_t == wls.use_t
        wls_ci = wls.conf_int()
        ci_val = ci[i - 1]  # adapted: (n, p, 2), a window's row is already (p, 2)
        assert_allclose(ci_val, wls_ci)


def test_raise(data):
    y, x, w, const = data
    res = rolling(y, x, const, w, window=100)
    params = np.asarray(res.params)
    assert np.all(np.isfinite(params[99:]))


@pytest.mark.parametrize("param", with_missing, ids=["-".join(map(str, p)) for p in with_missing])
def test_missing_values_are_refused(param):
    # adapted from test_has_nan / test_raise: no missing="drop"/"skip" here; NaN refused
    # naming its row, as statsmodels' missing="raise" refuses it
    y, x, w, const = _with_const(param)
    xa = np.asarray(x)
    first = int(np.where(np.isnan(xa).any(axis=1))[0][0])
    with pytest.raises(DataError, match=f"row {first + 1}"):
        rolling(y, x, const, w, window=100)


def test_error():
    y, x, _ = gen_data(250, 2, True)
    X = x[:, 1:]
    with pytest.raises(ValueError):
        torchlinreg.rolling_ols(X, y, window=250, cov_type="unknown")
    # statsmodels' window=None is the whole sample: 250 rows
    with pytest.raises(ValueError, match="min_nobs"):
        torchlinreg.rolling_ols(X, y, window=250, min_nobs=1)
    with pytest.raises(ValueError, match="min_nobs"):
        torchlinreg.rolling_ols(X, y, window=60, min_nobs=100)


@pytest.mark.parametrize("params_only", [True, False])
def test_methods(basic_data, params_only):
    # adapted: ours against each of statsmodels' methods (we have one)
    y, x, _, const = basic_data
    ours = rolling(y, x, const, window=150).params
    mod = RollingOLS(y, x, 150)
    for method in ("inv", "lstsq", "pinv"):
        ref = mod.fit(method=method, params_only=params_only)
        assert_allclose(ours, np.asarray(ref.params), err_msg=method)


def test_expanding(basic_data):
    y, x, _w, const = basic_data
    xa = np.asarray(x)
    res = rolling(y, x, const, window=150, min_nobs=50, expanding=True)
    params = np.asarray(res.params)
    assert np.all(np.isnan(params[:49]))
    first = np.where(np.cumsum(np.all(np.isfinite(xa), axis=1)) >= 50)[0][0]
    assert np.all(np.isfinite(params[first:]))


# Beyond upstream (its inference test has no weights and no expanding windows): weighted
# windows, rolling and expanding, every cov_type here, against WLS on each window.
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3"])
@pytest.mark.parametrize("expanding", [False, True])
@pytest.mark.parametrize("param", [(250, 3, True), (250, 3, False), (250, 0, True)],
                         ids=["3-const", "3-noconst", "0-const"])  # fmt: skip
def test_extra_weighted_inference_against_wls(param, expanding, cov_type):
    y, x, w = gen_data(*param, weights=True)
    kw = dict(expanding=True, min_nobs=10) if expanding else {}
    res = rolling(y, x, param[2], w, window=100, cov_type=cov_type, use_t=True, **kw)
    ci = res.conf_int()
    assert np.isnan(res.params[: (9 if expanding else 99)]).all()
    for i in range(10 if expanding else 100, y.shape[0] + 1):
        lo = max(0, i - 100)
        wls = WLS(y[lo:i], x[lo:i], weights=w[lo:i]).fit(cov_type=cov_type, use_t=True)
        assert_allclose(res.params[i - 1], wls.params, rtol=1e-9)
        assert_allclose(res.bse[i - 1], wls.bse, rtol=1e-9)
        assert_allclose(res.pvalues[i - 1], wls.pvalues, rtol=1e-9, atol=1e-12)
        assert_allclose(res.fvalue[i - 1], wls.fvalue, rtol=1e-9)
        assert_allclose(res.llf[i - 1], wls.llf, rtol=1e-9)
        assert_allclose(ci[i - 1], wls.conf_int(), rtol=1e-9)
