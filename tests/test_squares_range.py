"""Single and rolling fits of data whose squares leave float64 say so and keep their
coefficients (NOTE [squares out of range] in stats/fitstats.py, NOTE [values out of range]
in models/momentsolve.py).

Least squares is exact under scaling by a power of two: the fit of ``(X s, y s)`` has the
slopes of the fit of ``(X, y)`` and the intercept times ``s``, bit for bit in exact
arithmetic. That unscaled fit is the reference.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import torchlinreg as tlr
from torchlinreg.errors import DegenerateWarning, RankWarning
from torchlinreg.models.groupstate import GroupedMoments


def _data(n=30):
    rng = np.random.default_rng(43)
    X = rng.standard_normal((n, 2))
    return X, X @ [1.0, 2.0] + 3.0 + rng.standard_normal(n)


def _two(power_of_ten: float) -> float:
    return 2.0 ** round(power_of_ten * math.log2(10))


def _range_warnings(rec) -> list[str]:
    return [str(r.message) for r in rec if "beyond about 1e150" in str(r.message)]


@pytest.mark.parametrize("power", [-157, -160, -163, 153])
def test_a_single_fit_beyond_the_squares_range_warns_and_keeps_its_coefficients(power):
    # 1. one DegenerateWarning names the columns and says to rescale (at 1e-160 the
    # refinement's products underflowed and moved the coefficients 2.5e-5 without a word;
    # at 1e153 the standard errors were NaN without one), 2. the coefficients are the
    # unscaled fit's, 3. no numpy warning leaks from the statistics (inf times 0)
    X, y = _data()
    s = _two(power)
    base = tlr.ols(X, y)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = tlr.ols(X * s, y * s)
        _ = (res.bse, res.tvalues, res.pvalues, res.rsquared, res.fvalue, res.llf, res.conf_int())
    said = _range_warnings(rec)
    assert len(said) == 1 and "x1, x2, y1" in said[0] and "rescale" in said[0]
    others = [str(r.message) for r in rec if not issubclass(r.category, DegenerateWarning)]
    assert not others, others
    np.testing.assert_allclose(res.params[1:], base.params[1:], rtol=1e-14)
    np.testing.assert_allclose(res.params[0] / s, base.params[0], rtol=1e-14)


@pytest.mark.parametrize("solver", ["qr", "gram"])
def test_only_the_out_of_range_column_is_named(solver):
    X, y = _data()
    X[:, 1] *= _two(-160)  # its slope is 2e160: representable, its square sums are not
    with pytest.warns(DegenerateWarning, match=r"^x2 have centred values") as rec:
        m = tlr.LinearRegression(solver=solver).fit(X, y)
        _ = m.results_.bse
    assert len(_range_warnings(rec)) == 1
    base = tlr.LinearRegression().fit(*_data())
    np.testing.assert_allclose(m.coef_ * [1, _two(-160)], base.coef_, rtol=1e-13)


def test_a_streamed_gram_fit_beyond_the_range_says_so_once_and_not_that_it_is_nearly_exact():
    # the sums' estimate squared the data too: it read "fitted so nearly exactly ... off
    # entirely" at every partial_fit
    X, y = _data()
    s = _two(154)
    m = tlr.LinearRegression(solver="gram")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for lo in range(0, 30, 7):
            m.partial_fit(X[lo : lo + 7] * s, y[lo : lo + 7] * s)
    assert len(_range_warnings(rec)) == 1
    assert not [r for r in rec if issubclass(r.category, RankWarning)]
    base = tlr.LinearRegression().fit(X, y)
    np.testing.assert_allclose(m.coef_, base.coef_, rtol=1e-13)
    np.testing.assert_allclose(m.intercept_ / s, base.intercept_, rtol=1e-13)


@pytest.mark.parametrize("power", [-150, 150])
def test_a_single_fit_within_the_range_says_nothing_and_keeps_its_statistics(power):
    X, y = _data()
    s = _two(power)
    base = tlr.ols(X, y)
    res = tlr.ols(X * s, y * s)  # any warning fails (filterwarnings = error)
    np.testing.assert_allclose(res.tvalues, base.tvalues, rtol=1e-13)
    np.testing.assert_allclose(res.bse[1:], base.bse[1:], rtol=1e-13)
    np.testing.assert_allclose(res.rsquared, base.rsquared, rtol=1e-14)


@pytest.mark.parametrize("power", [-160, -162, 154])
def test_rolling_windows_beyond_the_range_warn(power):
    # 1e-160: parameters 3.8e-4 off, 1e-162: 44% off, both without a word
    X, y = _data(60)
    s = _two(power)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = tlr.rolling_ols(X * s, y * s, window=30)
        _ = (res.params, res.bse, res.rsquared)
    said = _range_warnings(rec)
    assert len(said) == 1 and said[0].startswith("x1, x2, y have values") and "windows'" in said[0]
    assert not [r for r in rec if not issubclass(r.category, UserWarning)]  # no numpy ones


@pytest.mark.parametrize("power", [-145, 145])
def test_rolling_windows_within_the_range_say_nothing(power):
    X, y = _data(60)
    s = _two(power)
    base = tlr.rolling_ols(X, y, window=30)
    res = tlr.rolling_ols(X * s, y * s, window=30)
    np.testing.assert_allclose(res.params[29:, 1:], base.params[29:, 1:], rtol=1e-12)
    np.testing.assert_allclose(res.rsquared[29:], base.rsquared[29:], rtol=1e-12)


@pytest.mark.parametrize("power", [-160, 154])
def test_streamed_groups_beyond_the_range_are_said_to_be_so(power):
    # train --by's moments: at 1e-160 the warning spoke of level shifts and outliers, at
    # 1e154 of a constant or collinear column; the other groups keep their fits
    X, y = _data(90)
    g = np.repeat([0, 1, 2], 30)
    X[g == 1] *= _two(power)
    y[g == 1] *= _two(power)
    acc = GroupedMoments(2)
    acc.absorb(X, y, None, g)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = acc.solve(True)
    assert [str(r.message)[:40] for r in rec] == ["1 groups have centred values beyond abou"]
    ref = GroupedMoments(2)
    ref.absorb(*_data(90), None, g)
    np.testing.assert_allclose(out["params"][[0, 2]], ref.solve(True)["params"][[0, 2]], rtol=1e-14)
