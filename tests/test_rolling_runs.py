"""rolling_ols a run of window ends at a time: runs of any size give statsmodels' answer.

The windows are computed in runs of ``windows.ROWS`` window ends (NOTE [rolling moments]);
these tests make the runs small, so that runs cut through groups, blocks and the table of
whole blocks, and compare with statsmodels' RollingOLS / RollingWLS fitted group by group.
"""

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.regression.rolling import RollingOLS, RollingWLS

import torchlinreg
from torchlinreg.models import rolling, windows


def _close(got, want, rtol=1e-8):
    got, want = np.asarray(got), np.asarray(want)
    # 1. NaN exactly where statsmodels has no fit
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    # 2. the values to rtol, a column's tolerance scaled by the column (the intercept's)
    cols = [(got, want)] if want.ndim == 1 else zip(got.T, want.T, strict=True)
    for g, w in cols:
        atol = rtol * np.nanmax(np.abs(w)) if want.ndim > 1 and np.isfinite(w).any() else 0
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def _per_group(X, y, g, w, **kw):
    """statsmodels' rolling fit of each group's rows, put back in the rows' places."""
    p = X.shape[1] + 1
    params, bse, r2 = (
        np.full((len(y), p), np.nan),
        np.full((len(y), p), np.nan),
        np.full(len(y), np.nan),
    )
    for label in np.unique(g):
        m = g == label
        A = sm.add_constant(X[m], has_constant="add")
        if w is None:
            ref = RollingOLS(y[m], A, **kw).fit()
        else:
            ref = RollingWLS(y[m], A, weights=w[m], **kw).fit()
        params[m], bse[m], r2[m] = ref.params, ref.bse, ref.rsquared
    return params, bse, r2


@settings(max_examples=8, deadline=None)
@given(
    rows=st.sampled_from([1, 7, 64, 300]),
    window=st.sampled_from([6, 40, 300, 700]),
    expanding=st.booleans(),
    weighted=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_runs_of_any_size_equal_rolling_ols_per_group(rows, window, expanding, weighted, seed):
    # window 300 and 700 > 256 rows a block: whole blocks come from the table (levels)
    rng = np.random.default_rng(seed)
    sizes = rng.integers(window + 5, window + 400, size=3)
    g = rng.permutation(np.repeat(np.arange(3), sizes))  # a group's rows anywhere
    n = len(g)
    X = rng.normal(size=(n, 2)) * [3.0, 0.5] + [100.0, -5.0]  # statsmodels: raw X
    y = X @ np.array([0.5, 2.0]) + g + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, size=n) if weighted else None
    kw = {"window": window, "expanding": expanding, "min_nobs": 5 if expanding else None}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(windows, "ROWS", rows)
        res = torchlinreg.rolling_ols(X, y, groups=g, sample_weight=w, **kw)
    params, bse, r2 = _per_group(X, y, g, w, **kw)
    _close(res.params, params)
    _close(res.bse, bse)
    _close(res.rsquared, r2)


def test_runs_hold_a_bounded_number_of_windows():
    # the extra memory is a run's summaries, never one (q x q) summary per row of the data
    n, rows = 20_000, 1024
    codes = torch.as_tensor(np.repeat([0, 1, 2], [9_000, 6_000, 5_000]))
    Z = torch.randn(n, 4, dtype=torch.float64)
    layout = windows.WindowLayout(codes, 250)
    seen = 0
    for idx, m in layout.chunks(Z, torch.ones(n, dtype=torch.float64), rows=rows):
        # 1. a run holds at most `rows` window ends (a block of K = 250 rows past it)
        assert m.M.shape[0] == idx.numel() <= rows + 250
        seen += idx.numel()
    assert seen == n  # 2. every row's window once


def test_expanding_over_a_long_series_at_an_offset_equals_one_fit_per_prefix():
    # window=None never drops a row: the table of whole blocks carries the fit (2,000 blocks)
    rng = np.random.default_rng(11)
    n = 40_000
    X = rng.normal(size=(n, 2)) + 1e6
    y = X @ np.array([1.5, -0.5]) + rng.normal(size=n)
    res = torchlinreg.rolling_ols(X, y, window=None, expanding=True)
    for t in (9, 999, 25_000, n - 1):  # 1. each prefix equals a fresh fit of its rows
        A = np.c_[np.ones(t + 1), X[: t + 1] - 1e6]
        b = np.linalg.lstsq(A, y[: t + 1], rcond=None)[0]
        np.testing.assert_allclose(res.params[t, 1:], b[1:], rtol=1e-9)
    # 2. the slopes' standard errors: statsmodels' on the exactly shifted rows (at 1e6 its
    # own are far off)
    A = sm.add_constant(X[:3000] - 1e6)
    ref = RollingOLS(y[:3000], A, window=3000, expanding=True, min_nobs=4).fit()
    _close(res.bse[3:3000, 1:], ref.bse[3:, 1:])


def test_cov_params_are_the_full_matrices_of_rolling_ols():
    # only the diagonal is kept while fitting; cov_params() computes the matrices again
    data = sm.datasets.macrodata.load_pandas().data
    X, y = data[["realgdp", "realcons", "unemp"]].to_numpy(), data["realinv"].to_numpy()
    res = torchlinreg.rolling_ols(X, y, window=30)
    ref = RollingOLS(y, sm.add_constant(X), window=30).fit()
    cov, want = res.cov_params(), ref.cov_params()
    assert cov.shape == (len(y), 4, 4)
    # 1. statsmodels' matrices; 2. their diagonal is bse squared
    for j in range(4):
        _close(cov[:, j], want[:, j])
    _close(np.diagonal(cov, axis1=1, axis2=2), res.bse**2, rtol=1e-12)


@pytest.mark.parametrize("d", [1, 13])
def test_one_feature_and_many_features_equal_rolling_ols(d):
    # up to 12 features the factor runs as vector operations; past it, batched LAPACK
    rng = np.random.default_rng(d)
    n = 400
    X = rng.normal(size=(n, d)) * rng.uniform(1, 100, d) + rng.uniform(-1e3, 1e3, d)
    y = X @ rng.normal(size=d) + rng.normal(size=n) * 10
    res = torchlinreg.rolling_ols(X, y, window=60)
    ref = RollingOLS(y, sm.add_constant(X), window=60).fit()
    _close(res.params, ref.params)
    _close(res.bse, ref.bse)
    _close(res.rsquared, ref.rsquared)


def test_runs_on_several_threads_give_the_same_numbers(monkeypatch):
    # NOTE [rolling threads]: runs in parallel write their own rows; the order is free
    rng = np.random.default_rng(12)
    g = rng.integers(0, 4, size=5_000)
    X = rng.normal(size=(5_000, 3)) + 50
    y = X @ np.array([1.0, -1.0, 0.5]) + rng.normal(size=5_000)
    monkeypatch.setattr(windows, "ROWS", 256)
    monkeypatch.setattr(rolling, "_workers", lambda: 1)
    one = torchlinreg.rolling_ols(X, y, window=50, groups=g)
    monkeypatch.setattr(rolling, "_workers", lambda: 4)
    four = torchlinreg.rolling_ols(X, y, window=50, groups=g)
    # 1. bit for bit: each run is computed the same way whichever thread takes it
    for name in ("params", "bse", "rsquared", "ssr", "nobs"):
        np.testing.assert_array_equal(getattr(four, name), getattr(one, name))
    ref = RollingOLS(y[g == 2], sm.add_constant(X[g == 2]), window=50).fit()
    _close(four.params[g == 2], ref.params)  # 2. and statsmodels' answer
