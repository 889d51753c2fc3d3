"""HC0-HC3 standard errors of rolling fits against statsmodels (RollingOLS, OLS, WLS)."""

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.regression.rolling import RollingOLS, RollingWLS

import torchlinreg
from torchlinreg.errors import DataError
from torchlinreg.models import rollinghc, windows


def _macro():
    data = sm.datasets.macrodata.load_pandas().data
    return data[["realgdp", "realcons"]].to_numpy(), data["realinv"].to_numpy()


def _loop(X, y, t, W, kind, w=None):
    """statsmodels' single fit of the window ending at row t (pinv: the accurate one)."""
    rows = slice(t - W + 1, t + 1)
    A = sm.add_constant(X[rows], has_constant="add")
    model = sm.OLS(y[rows], A) if w is None else sm.WLS(y[rows], A, weights=w[rows])
    return model.fit(cov_type=kind)


def test_hc0_equals_rolling_ols_and_a_loop_of_ols_fits():
    X, y = _macro()
    res = torchlinreg.rolling_ols(X, y, window=24, cov_type="HC0")
    ref = RollingOLS(y, sm.add_constant(X), window=24).fit(cov_type="HC0")
    # 1. statsmodels' RollingOLS to 1e-8 (its moving inverse keeps ~9 digits here)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-8, equal_nan=True)
    cov, want = res.cov_params(), ref.cov_params()
    scale = np.nanmax(np.abs(want), axis=0)  # an entry's tolerance scales with its entry
    np.testing.assert_allclose(cov / scale, want / scale, rtol=1e-8, atol=1e-8, equal_nan=True)
    # 2. each window's own OLS fit (pinv) to 1e-10: every window, not only a few
    for t in range(23, len(y)):
        np.testing.assert_allclose(res.bse[t], _loop(X, y, t, 24, "HC0").bse, rtol=1e-10)
    # 3. the robust t statistics use the robust errors
    np.testing.assert_allclose(res.tvalues, res.params / res.bse)


def test_weighted_hc0_equals_rolling_wls_and_hccm_is_hc0():
    X, y = _macro()
    w = 1 + np.arange(len(y)) % 3
    res = torchlinreg.rolling_ols(X, y, window=30, sample_weight=w, cov_type="HCCM")
    ref = RollingWLS(y, sm.add_constant(X), window=30, weights=w).fit(cov_type="HC0")
    assert res.cov_type == "HC0"
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-8, equal_nan=True)


@pytest.mark.parametrize("kind", ["HC1", "HC2", "HC3"])
@pytest.mark.parametrize("weighted", [False, True])
def test_hc1_to_hc3_equal_each_windows_ols_or_wls_fit(kind, weighted):
    X, y = _macro()
    w = 1 + np.arange(len(y)) % 3.0 if weighted else None
    res = torchlinreg.rolling_ols(X, y, window=20, sample_weight=w, cov_type=kind)
    plain = torchlinreg.rolling_ols(X, y, window=20, sample_weight=w)
    assert np.isnan(res.bse[:19]).all()  # 1. no fit before the first full window
    for t in range(19, len(y), 7):  # 2. each window as statsmodels' single fit
        want = _loop(X, y, t, 20, kind, w).bse
        np.testing.assert_allclose(res.bse[t], want, rtol=1e-10)
        # 3. the HCk_se properties give the same whatever cov_type
        np.testing.assert_allclose(getattr(plain, f"{kind}_se")[t], want, rtol=1e-10)


def test_hc_without_intercept_equals_rolling_ols_without_constant():
    X, y = _macro()
    res = torchlinreg.rolling_ols(X, y, window=20, fit_intercept=False, cov_type="HC0")
    ref = RollingOLS(y, X, window=20).fit(cov_type="HC0")
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-8, equal_nan=True)


def test_hc_in_small_runs_with_groups_expanding_and_an_offset(monkeypatch):
    # runs of 64 windows and gathers of a few windows: every cut between them is crossed
    monkeypatch.setattr(windows, "ROWS", 64)
    monkeypatch.setattr(rollinghc, "_GATHER", 5_000)
    rng = np.random.default_rng(8)
    g = rng.integers(0, 3, size=900)
    small = rng.normal(size=(900, 2))
    e = rng.normal(size=900) * (1 + np.abs(small[:, 0]))  # heteroskedastic errors
    y = small @ np.array([1.0, -2.0]) + e
    res = torchlinreg.rolling_ols(
        small + 1e6, y, window=40, expanding=True, min_nobs=10, groups=g, cov_type="HC3"
    )
    for label in range(3):
        m = np.flatnonzero(g == label)
        for t in (9, 25, 39, 100, len(m) - 1):  # expanding, then full windows
            W = min(t + 1, 40)
            # 1. each window as statsmodels' fit of the group's rows (shifted exactly:
            # the slopes' errors do not depend on the shift)
            want = _loop(small[m], y[m], t, W, "HC3").bse[1:]
            np.testing.assert_allclose(res.bse[m[t], 1:], want, rtol=1e-9)
        assert np.isnan(res.bse[m[:9]]).all()  # 2. NaN before min_nobs rows of the group


def test_unknown_cov_type_is_one_clear_error():
    X, y = _macro()
    with pytest.raises(DataError, match="cov_type must be 'nonrobust' or one of"):
        torchlinreg.rolling_ols(X, y, window=20, cov_type="HAC")
