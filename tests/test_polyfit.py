"""polyfit: monomial coefficients from a centred, scaled basis, with OLS statistics."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
import torch

from nist import load, lre
from torchlinreg.errors import DataError, RankWarning
from torchlinreg.stats.polyfit import polyfit


def _data(n=50, seed=0, k=None):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(100.0, 110.0, n))  # offset >> spread, as real abscissas often are
    shape = (n,) if k is None else (n, k)
    clean = 2.0 - 0.5 * (x - 105) + 0.3 * (x - 105) ** 3
    y = (clean if k is None else clean[:, None]) + rng.standard_normal(shape)
    return x, y, rng.uniform(0.5, 2.0, n)


def _vander(x, degree):
    return np.stack([x**j for j in range(degree + 1)], 1)


def test_matches_numpy_polynomial_fit_in_monomials():
    x, y, _ = _data()
    ref = np.polynomial.Polynomial.fit(x, y, 3).convert().coef
    assert np.allclose(polyfit(x, y, 3).params, ref, rtol=1e-9, atol=0)


def test_weighted_fit_and_statistics_match_statsmodels_wls():
    x, y, w = _data(seed=1)
    res = polyfit(x, y, 2, sample_weight=w)
    # statsmodels on the centred design is accurate; map its covariance to monomials
    ref = sm.WLS(y, _vander(x - 105.0, 2), weights=w).fit()
    assert np.allclose(res.rsquared, ref.rsquared, rtol=1e-10)
    assert np.allclose(res.llf, ref.llf, rtol=1e-10)
    assert np.allclose(res.fvalue, ref.fvalue, rtol=1e-9)
    # monomials: B = T b with T the binomial map for the shift 105
    T = np.array([[1.0, -105.0, 105.0**2], [0.0, 1.0, -210.0], [0.0, 0.0, 1.0]])
    assert np.allclose(res.params, T @ ref.params, rtol=1e-9)
    assert np.allclose(res.bse, np.sqrt(np.diag(T @ ref.cov_params() @ T.T)), rtol=1e-8)


def test_prediction_intervals_match_statsmodels():
    x, y, _ = _data(seed=2)
    x_new = np.array([100.5, 104.0, 109.9])
    ours = polyfit(x, y, 3).get_prediction(x_new).summary_frame()
    ref = sm.OLS(y, _vander(x - 105.0, 3)).fit()
    theirs = ref.get_prediction(_vander(x_new - 105.0, 3)).summary_frame()
    assert np.allclose(ours.to_numpy(), theirs[list(ours.columns)].to_numpy(), rtol=1e-9)


def test_several_targets_equal_separate_fits():
    x, Y, _ = _data(seed=3, k=3)
    res = polyfit(x, Y, 4)
    assert res.params.shape == (5, 3)
    for t in range(3):
        one = polyfit(x, Y[:, t], 4)
        assert np.allclose(res.params[:, t], one.params, rtol=1e-13, atol=0)
        assert np.allclose(res.bse[:, t], one.bse, rtol=1e-12, atol=0)


def test_filip_from_raw_x_beats_the_prebuilt_powers_ceiling():
    s = load("Filip")
    res = polyfit(torch.tensor(s.x[:, 0]), torch.tensor(s.y), 10)
    assert res.rank == 11 and lre(res.params, s.params).min() >= 13.5
    assert lre(res.bse, s.sds).min() >= 12


def test_too_few_distinct_points_is_rank_deficient_and_reported():
    x = np.repeat([1.0, 2.0, 3.0], 4)
    y = x**2 + np.tile([0.1, -0.1, 0.05, -0.05], 3)
    with pytest.warns(RankWarning, match="x\\*\\*3"):
        res = polyfit(x, y, 3)
    assert res.rank == 3 and np.isnan(res.params[3]) and np.isnan(res.bse[3])
    assert np.allclose(res.params[:3], np.polynomial.Polynomial.fit(x, y, 2).convert().coef)


def test_non_finite_input_is_a_data_error():
    with pytest.raises(DataError, match="finite"):
        polyfit([0.0, 1.0, np.nan], [1.0, 2.0, 3.0], 1)


def test_robust_covariance_maps_to_monomials():
    x, y, _ = _data(seed=6)
    res = polyfit(x, y, 2, cov_type="HC3")
    ref = sm.OLS(y, _vander(x - 105.0, 2)).fit(cov_type="HC3")
    T = np.array([[1.0, -105.0, 105.0**2], [0.0, 1.0, -210.0], [0.0, 0.0, 1.0]])
    assert np.allclose(res.bse, np.sqrt(np.diag(T @ ref.cov_params() @ T.T)), rtol=1e-8)
    assert np.allclose(res.fvalue, ref.fvalue, rtol=1e-8)


@pytest.mark.parametrize("far, degree", [(1e6, 3), (1e3, 4), (1e4, 3), (1e5, 2)])
def test_polyfit_of_clustered_x_and_one_far_point_is_exact(far, degree):
    # refinement's gradient took float64 powers of t: 5.6e-5 off at (1e6, 3), 3.3e-7 at
    # (1e3, 4), reported converged (NOTE [the gradient of exact powers] in polyfit.py)
    from fractions import Fraction

    rng = np.random.default_rng(0)
    rng.normal(size=50)
    x = np.r_[np.linspace(0, 1, 20), far]
    y = rng.normal(size=21)
    X = [[Fraction(float(v)) ** j for j in range(degree + 1)] for v in x]
    Y = [Fraction(float(v)) for v in y]
    p = degree + 1
    rows = list(zip(X, Y, strict=True))
    G = [[sum(r[a] * r[b] for r in X) for b in range(p)] + [sum(r[a] * t for r, t in rows)]
         for a in range(p)]  # fmt: skip
    for c in range(p):  # Gauss-Jordan in rationals
        G[c] = [v / G[c][c] for v in G[c]]
        for r in range(p):
            if r != c:
                G[r] = [a - G[r][c] * b for a, b in zip(G[r], G[c], strict=True)]
    ref = np.array([float(G[a][p]) for a in range(p)])
    np.testing.assert_allclose(np.asarray(polyfit(x, y, degree).params), ref, rtol=1e-13)
