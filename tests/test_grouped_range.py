"""Grouped fits of data whose squares leave float64 say so (NOTE [squares out of range])."""

import warnings

import numpy as np
import pytest

import torchlinreg as tlr
from torchlinreg.errors import DegenerateWarning


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = X @ [1.0, 2.0] + 3.0 + rng.normal(size=300)
    return X, y, np.repeat([0, 1, 2], 100)


@pytest.mark.parametrize("scale", [1e160, 1e-160, 1e-163])
def test_groups_beyond_the_squares_range_warn_once_and_keep_their_parameters(scale):
    # 1. one warning naming the groups and the remedy (at 1e-163 the squares are 0, as a
    # constant column's: that group got a RankWarning "off by up to nan"), 2. the slopes
    # are those of the unscaled fit (exact power-of-ten scaling aside), 3. the standard
    # errors are not
    X, y, g = _data()
    base = tlr.ols(X, y, groups=g)
    X2, y2 = X.copy(), y.copy()
    X2[g == 1] *= scale
    y2[g == 1] *= scale
    with pytest.warns(DegenerateWarning, match=r"1 of 3 groups .* e\.g\. \[1\].*rescale") as rec:
        res = tlr.ols(X2, y2, groups=g)
    assert len(rec) == 1, [str(r.message) for r in rec]
    np.testing.assert_allclose(res.params[1, 1:], base.params[1, 1:], rtol=1e-12)
    np.testing.assert_allclose(res.params[[0, 2]], base.params[[0, 2]], rtol=1e-13)
    np.testing.assert_allclose(res.bse[[0, 2]], base.bse[[0, 2]], rtol=1e-12)


@pytest.mark.parametrize("scale", [1e150, 1e-150])
def test_groups_within_the_squares_range_fit_without_a_warning(scale):
    X, y, g = _data()
    base = tlr.ols(X, y, groups=g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = tlr.ols(X * scale, y * scale, groups=g)
    np.testing.assert_allclose(res.tvalues, base.tvalues, rtol=1e-10)
    np.testing.assert_allclose(res.rsquared, base.rsquared, rtol=1e-12)
