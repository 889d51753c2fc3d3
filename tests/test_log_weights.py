"""WLS from the state alone: the sum of log weights is kept, merged, saved and used.

statsmodels' ``WLS`` is the reference for the log-likelihood (``llf = OLS part + sum(log w)
/ 2``), AIC and BIC, and for the title of the summary ("WLS Regression Results").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import torchlinreg as tlr
from torchlinreg.datasets import make_regression
from torchlinreg.distributed.collectives import _meta, _rebuild, _tensor_keys
from torchlinreg.exact.state import LeastSquaresState

sm = pytest.importorskip("statsmodels.api")

MODELS = Path(__file__).resolve().parent / "data" / "models"


def _blocks(X, Y, w, size=97):
    return [(X[i : i + size], Y[i : i + size], w[i : i + size]) for i in range(0, len(X), size)]


def _longley():
    data = sm.datasets.longley.load_pandas()
    X, y = data.exog.to_numpy(), data.endog.to_numpy()
    w = 1.0 / np.linspace(1.0, 3.0, len(y))  # variances growing over the years
    return X, y, w


@pytest.mark.parametrize("method", ["qr", "gram"])
@pytest.mark.parametrize("intercept", [True, False])
def test_the_state_sums_log_weights_over_blocks_and_merges(method, intercept):
    X, Y, _, _ = make_regression(500, 3, 2, seed=3)
    w = np.random.default_rng(1).uniform(0.0, 4.0, 500)
    w[[3, 77, 400]] = 0.0  # zero weights are left out of the sum (log 0 is -inf)
    want = np.log(w[w > 0]).sum()
    kw = {"fit_intercept": intercept, "method": method}
    # 1) block by block
    state = LeastSquaresState(3, 2, **kw)
    for xb, yb, wb in _blocks(X, Y, w):
        state.absorb(xb, yb, wb)
    assert state.sum_log_weights == pytest.approx(want, rel=1e-13)
    # 2) merged from parts, and a float32 state keeps the float64 sum
    parts = [LeastSquaresState(3, 2, **kw).absorb(*b) for b in _blocks(X, Y, w, 211)]
    assert LeastSquaresState.merge_all(parts).sum_log_weights == pytest.approx(want, rel=1e-13)
    f32 = LeastSquaresState(3, 2, dtype=torch.float32, **kw).absorb(X, Y, w)
    assert f32.sum_log_weights == pytest.approx(want, rel=1e-13)
    # 3) unweighted rows add log(1) = 0
    assert LeastSquaresState(3, 2, **kw).absorb(X, Y).sum_log_weights == 0.0
    # 4) saved and rebuilt (state_dict is what model files keep)
    again = LeastSquaresState.from_state_dict(state.state_dict())
    assert again.sum_log_weights == state.sum_log_weights


def test_the_distributed_record_of_a_state_carries_its_shift_and_log_weights():
    # merge_across_ranks all-gathers _meta and the flat tensors, then _rebuild: the
    # rebuilt state must be the state, able to absorb more rows (its QR shift kept)
    X, Y, _, _ = make_regression(400, 3, 1, seed=8)
    X = X + 50.0
    w = np.random.default_rng(2).uniform(0.5, 2.0, 400)
    state = LeastSquaresState(3, 1).absorb(X[:200], Y[:200], w[:200])
    template = state.state_dict()
    keys = _tensor_keys(template)
    flat = torch.cat([template[k].reshape(-1).to(torch.float64) for k in keys])
    rebuilt = _rebuild(template, keys, _meta(state), flat, state)
    rebuilt.absorb(X[200:] + 10.0, Y[200:], w[200:])
    ref = LeastSquaresState(3, 1).absorb(X[:200], Y[:200], w[:200])
    ref.absorb(X[200:] + 10.0, Y[200:], w[200:])
    np.testing.assert_allclose(rebuilt.solve().coef, ref.solve().coef, rtol=1e-12)
    assert rebuilt.sum_log_weights == ref.sum_log_weights == pytest.approx(np.log(w).sum())


def _assert_llf_equal(res, ref):
    for name in ("llf", "aic", "bic"):
        np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-10)


@pytest.mark.parametrize("solver", ["qr", "gram"])
def test_streamed_weighted_fit_has_the_wls_log_likelihood(solver):
    X, y, _, _ = make_regression(700, 4, 1, noise=2.0, seed=5)
    w = np.random.default_rng(4).uniform(0.1, 5.0, 700)
    ref = sm.WLS(y, sm.add_constant(X), weights=w).fit()
    streamed = tlr.LinearRegression(solver=solver).fit_blocks(_blocks(X, y, w)).results_
    _assert_llf_equal(streamed, ref)
    # partial fits, and the in-memory fit, give the same
    partial = tlr.LinearRegression(solver=solver)
    for b in _blocks(X, y, w, 300):
        partial.partial_fit(*b)
    _assert_llf_equal(partial.results_, ref)
    _assert_llf_equal(tlr.LinearRegression(solver=solver).fit(X, y, w).results_, ref)


def test_longley_weighted_streamed_and_loaded_fit_has_the_wls_log_likelihood(tmp_path):
    X, y, w = _longley()
    ref = sm.WLS(y, sm.add_constant(X), weights=w).fit()
    model = tlr.LinearRegression().fit_blocks(_blocks(X, y, w, 5))
    _assert_llf_equal(model.results_, ref)
    tlr.save(model, tmp_path / "m.safetensors")
    loaded = tlr.load(tmp_path / "m.safetensors")
    _assert_llf_equal(loaded.results_, ref)
    # several targets: each target's llf is its own WLS fit's
    Y = np.column_stack([y, X[:, 0]])
    two = tlr.LinearRegression().fit_blocks(_blocks(X[:, 1:], Y, w, 5)).results_
    for j in range(2):
        refj = sm.WLS(Y[:, j], sm.add_constant(X[:, 1:]), weights=w).fit()
        np.testing.assert_allclose(two.llf[j], refj.llf, rtol=1e-10)
        np.testing.assert_allclose(two.aic[j], refj.aic, rtol=1e-10)


def test_zero_weights_give_the_statsmodels_log_likelihood():
    # statsmodels' WLS sums log(w) over every row: one zero weight makes llf -inf (and
    # AIC/BIC +inf); the state reports the same, in memory, streamed and loaded.
    X, y, _, _ = make_regression(120, 2, 1, noise=1.0, seed=9)
    w = np.random.default_rng(3).uniform(0.5, 2.0, 120)
    w[10] = 0.0
    with np.errstate(divide="ignore"):
        ref = sm.WLS(y, sm.add_constant(X), weights=w).fit()
        want = (ref.llf, ref.aic, ref.bic)
    assert want[0] == -np.inf
    for res in (
        tlr.LinearRegression().fit(X, y, w).results_,
        tlr.LinearRegression().fit_blocks(_blocks(X, y, w, 50)).results_,
    ):
        assert (float(res.llf), float(res.aic), float(res.bic)) == want


def test_model_files_of_the_previous_version_load_with_an_unknown_log_likelihood(capsys):
    # exact-qr was trained weighted before the sum was kept: llf/aic/bic stay NaN
    model = tlr.load(MODELS / "exact-qr.safetensors")
    res = model.results_
    assert np.isnan(res.llf).all() and np.isnan(res.aic).all() and np.isnan(res.bic).all()
    assert np.isfinite(res.bse).all()
    assert "WLS Regression Results" in res.summary()
    # 2) gram-ridge was trained unweighted: log(1) = 0, so its sum is known
    assert tlr.load(MODELS / "gram-ridge.safetensors").state_.sum_log_weights == 0.0


@pytest.mark.parametrize("weighted", [False, True])
def test_the_summary_says_wls_for_a_weighted_fit(weighted):
    X, y, w = _longley()
    w = w if weighted else None
    title = "WLS Regression Results" if weighted else "OLS Regression Results"
    other = "OLS Regression Results" if weighted else "WLS Regression Results"
    blocks = [(X[:8], y[:8]), (X[8:], y[8:])] if w is None else _blocks(X, y, w, 4)
    fits = [
        tlr.ols(X, y, sample_weight=w),
        tlr.LinearRegression().fit(X, y, w).results_,
        tlr.LinearRegression().fit_blocks(blocks).results_,
    ]
    for res in fits:
        text = res.summary()
        assert text.splitlines()[0].strip() == title and other not in text
        assert res.to_dict()["weighted"] is weighted


@pytest.mark.parametrize("scale", [1.0, 1e170, 1e200])
def test_weights_near_the_top_of_float64_keep_r2_and_f(scale):
    # sum w (y - s) near 1e175 was squared: R2 and F NaN under no warning (a weights hunt)
    import warnings

    import statsmodels.api as sm

    import torchlinreg as tlr

    d = sm.datasets.longley.load_pandas().data
    X, y = d.drop(columns="TOTEMP").to_numpy(), d["TOTEMP"].to_numpy()
    w = np.random.default_rng(0).uniform(0.5, 2, len(y))
    ref = sm.WLS(y, sm.add_constant(X), weights=w).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = tlr.ols(X, y, sample_weight=w * scale)
        for name in ("rsquared", "rsquared_adj", "fvalue", "f_pvalue"):
            np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-9)


def test_partial_fit_keeps_a_first_block_of_weight_zero():
    # an error said the block was refused while it had been absorbed
    import statsmodels.api as sm

    import torchlinreg as tlr

    d = sm.datasets.fair.load_pandas().data
    y, X = d["affairs"].to_numpy(), d[["rate_marriage", "age", "yrs_married"]].to_numpy()
    w = np.random.default_rng(1).uniform(0.1, 10, len(y))
    w[:700] = 0
    m = tlr.LinearRegression()
    with pytest.warns(UserWarning, match="no row so far has a positive sample_weight"):
        m.partial_fit(X[:700], y[:700], w[:700])
    assert not hasattr(m, "coef_")
    m.partial_fit(X[700:], y[700:], w[700:])
    ref = sm.WLS(y, sm.add_constant(X), weights=w).fit()
    np.testing.assert_allclose(np.r_[m.intercept_, m.coef_], ref.params, rtol=1e-10)
    assert m.results_.nobs == ref.nobs
