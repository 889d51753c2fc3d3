"""Rolling and expanding fits (torchlinreg.rolling_ols) against statsmodels' RollingOLS."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import example, given, settings
from hypothesis import strategies as st
from statsmodels.regression.rolling import RollingOLS, RollingWLS

import torchlinreg
from torchlinreg.errors import DataError, DegenerateWarning, RankWarning

STATS = ("params", "bse", "rsquared", "rsquared_adj", "ssr", "llf", "aic", "bic", "tvalues",
         "pvalues", "fvalue", "centered_tss", "nobs")  # fmt: skip


def _assert_close(res, ref, rtol=1e-8, names=STATS):
    for name in names:
        got, want = np.asarray(getattr(res, name)), np.asarray(getattr(ref, name))
        if name == "nobs":  # statsmodels: 0 where there is no fit
            want = np.where(np.isnan(np.asarray(ref.rsquared)), 0, want)
        # 1. NaN exactly where statsmodels has no fit; 2. the values to rtol
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
        cols = [(got, want)] if want.ndim == 1 else zip(got.T, want.T, strict=True)
        for g, w in cols:  # a column's tolerance scales with the column (the intercept's)
            atol = rtol * np.nanmax(np.abs(w)) if want.ndim > 1 else 0
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=name)


def _macro():
    data = sm.datasets.macrodata.load_pandas().data
    return data[["realgdp", "realcons"]].to_numpy(), data["realinv"].to_numpy()


def test_macrodata_rolling_window_equals_rolling_ols():
    X, y = _macro()
    res = torchlinreg.rolling_ols(X, y, window=24)
    _assert_close(res, RollingOLS(y, sm.add_constant(X), window=24).fit())


def test_expanding_windows_start_at_min_nobs_and_roll_once_full():
    X, y = _macro()
    res = torchlinreg.rolling_ols(X, y, window=40, expanding=True, min_nobs=8)
    ref = RollingOLS(y, sm.add_constant(X), window=40, expanding=True, min_nobs=8).fit()
    _assert_close(res, ref)
    # window=None: never drops a row, the last window is the full fit; realgdp and
    # realcons in levels over up to 203 rows: the moments' bounds passed 1e-8 in 37 windows
    # (actual errors at most 1.1e-10 of a standard error) while the suffix sums ran about
    # a block mean; about a row they hold (NOTE [anchors inside]) they stay below
    full = torchlinreg.rolling_ols(X, y, window=None, expanding=True)
    np.testing.assert_allclose(full.params[-1], torchlinreg.ols(X, y).params, rtol=1e-10)


def test_weights_equal_rolling_wls():
    X, y = _macro()
    w = 1 + np.arange(len(y)) % 3
    res = torchlinreg.rolling_ols(X, y, window=30, sample_weight=w)
    ref = RollingWLS(y, sm.add_constant(X), window=30, weights=w).fit()
    _assert_close(res, ref)


def test_a_zero_weight_makes_its_windows_llf_minus_infinity_as_in_rolling_wls():
    X, y = _macro()
    w = 1 + np.arange(len(y)) % 3.0
    w[50] = 0.0
    res = torchlinreg.rolling_ols(X, y, window=30, sample_weight=w)
    with np.errstate(divide="ignore"):
        ref = RollingWLS(y, sm.add_constant(X), window=30, weights=w).fit()
    # 1. -inf exactly for the windows holding row 50; 2. the rest as statsmodels
    np.testing.assert_array_equal(np.isneginf(res.llf), np.isneginf(ref.llf))
    assert np.isneginf(res.llf[50:80]).all()
    _assert_close(res, ref, names=("params", "bse", "rsquared"))


def test_windows_without_enough_weight_are_nan_and_the_warning_says_why():
    # macrodata, rows 60-99 without weight: the windows of 30 inside them have no rows to
    # fit (statsmodels' RollingWLS raises ZeroDivisionError there), those reaching 2 rows
    # of weight fewer than 3 parameters. NaN for exactly those, one warning naming weight,
    # every other window as each window's own refined WLS fit.
    X, y = _macro()
    w = 1 + np.arange(len(y)) % 3.0
    w[60:100] = 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = torchlinreg.rolling_ols(X, y, window=30, sample_weight=w)
    msgs = [str(m.message) for m in caught if issubclass(m.category, DegenerateWarning)]
    assert len(msgs) == 1 and "nonzero weight" in msgs[0]
    for end in range(29, len(y)):
        rows = slice(end - 29, end + 1)
        if np.count_nonzero(w[rows]) < 3:
            assert np.isnan(res.params[end]).all(), end
            continue
        one = torchlinreg.ols(X[rows], y[rows], sample_weight=w[rows])
        np.testing.assert_allclose(res.params[end], one.params, rtol=1e-9, atol=0, err_msg=end)
        if np.count_nonzero(w[rows]) > 3:  # 3 rows: an exact fit, its ssr is rounding
            np.testing.assert_allclose(res.bse[end], one.bse, rtol=1e-9, err_msg=end)


def test_without_intercept_equals_rolling_ols_without_constant():
    X, y = _macro()
    res = torchlinreg.rolling_ols(X, y, window=20, fit_intercept=False)
    _assert_close(res, RollingOLS(y, X, window=20).fit())


def test_long_series_with_large_offsets_does_not_drift():
    # 50,000 rows near 1e6: the reference is statsmodels on the exactly shifted data
    # (centred, well conditioned), and numpy lstsq on the last windows
    rng = np.random.default_rng(3)
    n, W, off, offy = 50_000, 250, 1e6, 3e6
    small = np.round(rng.normal(size=(n, 2)) * 256) / 256
    ys = small @ np.array([0.7, -1.3]) + np.round(rng.normal(size=n) * 256) / 256
    res = torchlinreg.rolling_ols(small + off, ys + offy, window=W)
    ref = RollingOLS(ys, sm.add_constant(small), window=W).fit()
    # 1. slopes, their errors and R2 to 1e-8 all along the series
    _assert_close(res, ref, names=("rsquared", "ssr"))
    np.testing.assert_allclose(res.params[:, 1:], ref.params[:, 1:], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.bse[:, 1:], ref.bse[:, 1:], rtol=1e-8, equal_nan=True)
    # 2. the last windows against a fresh lstsq on the raw (shifted back) rows: no drift
    for t in (n - 1, n - 1000):
        rows = slice(t - W + 1, t + 1)
        A = np.c_[np.ones(W), small[rows]]
        b = np.linalg.lstsq(A, ys[rows], rcond=None)[0]
        np.testing.assert_allclose(res.params[t, 1:], b[1:], rtol=1e-10)
        want0 = b[0] + offy - off * b[1:].sum()
        np.testing.assert_allclose(res.params[t, 0], want0, rtol=0, atol=1e-9 * off)


def test_groups_roll_within_each_group_only():
    rng = np.random.default_rng(4)
    g = rng.integers(0, 3, size=600)
    X = rng.normal(size=(600, 2))
    y = X @ np.array([1.0, 2.0]) + g + rng.normal(size=600)
    res = torchlinreg.rolling_ols(X, y, window=25, groups=g)
    for label in range(3):
        m = g == label
        ref = RollingOLS(y[m], sm.add_constant(X[m]), window=25).fit()
        sub = torchlinreg.rolling_ols(X[m], y[m], window=25)
        # 1. a group's rows, wherever they are, give the group's own rolling fit
        np.testing.assert_allclose(res.params[m], ref.params, rtol=1e-9, equal_nan=True)
        np.testing.assert_allclose(res.bse[m], sub.bse, rtol=1e-12, equal_nan=True)
        assert (res.groups[m] == label).all()


def test_collinear_windows_are_nan_with_one_warning():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 2))
    X[50:120, 1] = 4.0  # constant for 70 rows: aliased with the intercept there
    y = X @ np.array([1.0, 1.0]) + rng.normal(size=200)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = torchlinreg.rolling_ols(X, y, window=30)
    msgs = [str(w.message) for w in caught if issubclass(w.category, DegenerateWarning)]
    # windows ending at rows 79..119 see only the constant stretch: 41 of them
    assert len(msgs) == 1 and msgs[0].startswith("41 windows")
    assert np.isnan(res.params[79:120]).all() and np.isfinite(res.params[120:]).all()
    ref = RollingOLS(y, sm.add_constant(X), window=30).fit()
    np.testing.assert_allclose(res.params[120:], ref.params[120:], rtol=1e-9)


def test_window_arguments_are_checked():
    X, y = np.arange(10.0), np.arange(10.0)
    with pytest.raises(DataError, match="window=W, or expanding=True"):
        torchlinreg.rolling_ols(X, y)
    with pytest.raises(DataError, match="too short"):
        torchlinreg.rolling_ols(X, y, window=2)
    with pytest.raises(DataError, match="min_nobs=1 must be between 2"):
        torchlinreg.rolling_ols(X, y, window=5, min_nobs=1, expanding=True)
    # a window longer than the data: no window is full (expanding ones still fit)
    assert np.isnan(torchlinreg.rolling_ols(X, y**2, window=24).params).all()
    grown = torchlinreg.rolling_ols(X, y**2, window=24, expanding=True, min_nobs=3).params
    assert np.isnan(grown[:2]).all() and np.isfinite(grown[2:]).all()


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(20, 120),
    d=st.integers(1, 3),
    window=st.integers(5, 40),
    expanding=st.booleans(),
    seed=st.integers(0, 2**16),
)
@example(n=65, d=3, window=5, expanding=False, seed=8)  # llf 6.8e-4, its terms near 1.4
@example(n=65, d=3, window=5, expanding=False, seed=4)  # a window said to be off
def test_any_window_equals_rolling_ols(n, d, window, expanding, seed):
    rng = np.random.default_rng(seed)
    window = min(max(window, d + 2), n)  # statsmodels fails on a window longer than the data
    X = rng.normal(size=(n, d)) * 10 + rng.normal(size=d) * 100
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    kw = {"window": window, "expanding": expanding, "min_nobs": d + 2 if expanding else None}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = torchlinreg.rolling_ols(X, y, **kw)
    ref = RollingOLS(y, sm.add_constant(X), **kw).fit()
    # windows of 5 rows and 3 columns can be nearly exact fits: where the fit says its
    # moments may be off (it quoted ssr up to 2e-8 on one such window), that is the test
    said = [w for w in seen if "windows may be off" in str(w.message)]
    assert len(seen) == len(said), [str(w.message) for w in seen]
    rtol = 1e-6 if said else 1e-8
    _assert_close(res, ref, rtol=rtol, names=("params", "bse", "rsquared", "ssr"))
    # llf sums terms of about 1.4 a row that may cancel to near 0 (6.8e-4 in one window):
    # its error is measured against those terms, not against the sum
    nobs = np.asarray(ref.nobs, dtype=float)
    np.testing.assert_allclose(res.llf, ref.llf, rtol=rtol, atol=rtol * 4 * np.nanmax(nobs))


def test_nearly_exact_fits_take_their_ssr_from_the_rows():
    # R2 = 1 - 1e-12: ssr = yy - xy'b from the moments would keep ~4 digits; the windows at
    # risk recompute it from their rows, so ssr, bse and llf still match statsmodels
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 2)) * 100
    y = X @ np.array([3.0, -2.0]) + 7 + rng.normal(size=400) * 1e-4
    # their ssr bounds pass 1e-8 (NOTE [bounds that warn]; the actual errors are at most
    # 7.2e-10 against exact rational fits) and say so
    with pytest.warns(RankWarning, match="windows may be off"):
        res = torchlinreg.rolling_ols(X, y, window=12)
    ref = RollingOLS(y, sm.add_constant(X), window=12).fit()
    _assert_close(res, ref, rtol=1e-8, names=("ssr", "bse", "llf", "params"))


def test_to_frame_gives_the_paths_labelled_by_the_rows():
    data = sm.datasets.macrodata.load_pandas().data
    X = data[["realgdp", "realcons"]]
    X.index = pd.period_range("1959Q1", periods=len(X), freq="Q")
    res = torchlinreg.rolling_ols(X, data["realinv"].to_numpy(), window=24)
    frame = res.to_frame()
    ref = RollingOLS(data["realinv"].to_numpy(), sm.add_constant(X.to_numpy()), window=24).fit()
    assert list(frame.index) == list(X.index)  # 1. one row per window end, by the rows' labels
    assert list(frame.columns[:4]) == ["nobs", "const", "realgdp", "realcons"]
    np.testing.assert_allclose(frame["realgdp"], ref.params[:, 1], rtol=1e-8, equal_nan=True)
    np.testing.assert_allclose(frame["se_realgdp"], ref.bse[:, 1], rtol=1e-8, equal_nan=True)
