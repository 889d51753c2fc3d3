"""Statistics of streamed, partial and loaded exact fits, built from the state alone."""

import numpy as np
import pytest

import torchlinreg as tlr
from torchlinreg.datasets import make_regression

sm = pytest.importorskip("statsmodels.api")


def _blocks(X, y, w=None, size=137):
    for lo in range(0, len(X), size):
        sl = slice(lo, lo + size)
        yield (X[sl], y[sl]) if w is None else (X[sl], y[sl], w[sl])


@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_fit_statistics_equal_statsmodels(weighted):
    X, y, _, _ = make_regression(600, 4, 1, noise=3.0, seed=21)
    w = np.random.default_rng(0).uniform(0.2, 3.0, 600) if weighted else None
    model = tlr.LinearRegression().fit_blocks(_blocks(X, y, w))
    res = model.results_
    A = sm.add_constant(X)
    ref = (sm.WLS(y, A, weights=w) if weighted else sm.OLS(y, A)).fit()
    for name in ("params", "bse", "tvalues", "pvalues"):
        np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-8)
    for name in ("rsquared", "rsquared_adj", "fvalue", "ssr", "ess", "mse_resid"):
        np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-8)
    np.testing.assert_allclose(res.conf_int(0.1), ref.conf_int(0.1), rtol=1e-8)
    # the state keeps sum(log w) for the weighted log-likelihood
    np.testing.assert_allclose(res.llf, ref.llf, rtol=1e-8)
    new = X[:5] + 0.5
    ours = res.get_prediction(new).summary_frame(alpha=0.05)
    theirs = ref.get_prediction(sm.add_constant(new, has_constant="add")).summary_frame(0.05)
    for col in ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper"):
        np.testing.assert_allclose(np.asarray(ours[col]), theirs[col], rtol=1e-8)


def test_what_needs_the_rows_says_so():
    X, y, _, _ = make_regression(200, 3, 1, seed=22)
    res = tlr.LinearRegression().partial_fit(X[:100], y[:100]).partial_fit(X[100:], y[100:])
    stats = res.results_
    assert np.isfinite(stats.bse).all()
    with pytest.raises(tlr.DataError, match="rows"):
        stats.resid  # noqa: B018
    with pytest.raises(tlr.DataError, match="rows"):
        stats.fittedvalues  # noqa: B018


def test_loaded_model_has_the_same_statistics(tmp_path):
    X, y, _, _ = make_regression(300, 3, 2, noise=1.0, seed=23)
    model = tlr.LinearRegression().fit(X, y)
    tlr.save(model, tmp_path / "m.safetensors")
    loaded = tlr.load(tmp_path / "m.safetensors")
    np.testing.assert_allclose(loaded.results_.bse, model.results_.bse, rtol=1e-9)
    np.testing.assert_allclose(loaded.results_.fvalue, model.results_.fvalue, rtol=1e-9)


def test_ridge_has_no_ols_results():
    X, y, _, _ = make_regression(100, 3, 1, seed=24)
    with pytest.raises(AttributeError, match="alpha=0"):
        tlr.Ridge().fit(X, y).results_  # noqa: B018
