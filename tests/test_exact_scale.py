"""Column offsets and scales do not change the exact engine's rank decisions (issue 9, item 10).

A fit on ``X + c`` has the same slopes as on ``X`` (the intercept absorbs ``c``), and a fit
on ``X * s`` has coefficients ``coef / s``: the references are ``numpy.linalg.lstsq`` on the
centred data, scikit-learn, and the unscaled fit. Scales are powers of ten, so the scaled
data is rounded: the slopes agree to the data's own rounding, well below the tolerances.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression as SkLinearRegression

from torchlinreg import LinearRegression
from torchlinreg.errors import DataError, DegenerateWarning, RankWarning
from torchlinreg.exact.state import LeastSquaresState, fit_exact

SOLVERS = ("qr", "gram")


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, 2.0, 3.0]) + rng.normal(size=n)
    return X, y


def _centred_lstsq(X, y):
    """Slopes from lstsq on the centred data (float64 numpy)."""
    return np.linalg.lstsq(X - X.mean(0), y - y.mean(0), rcond=None)[0]


@pytest.mark.parametrize("offset", [1e7, 1e8, 1e10, 1e12])
@pytest.mark.parametrize("solver", SOLVERS)
def test_offsets_move_only_the_intercept(solver, offset):
    X, y = _data()
    Xo = X + offset
    m = LinearRegression(solver=solver).fit(Xo, y)  # RankWarning would fail (warnings=error)
    # 1. the slopes of the data as stored (offset rounding included), as lstsq and sklearn
    ref = _centred_lstsq(Xo, y)
    np.testing.assert_allclose(m.coef_, ref, rtol=1e-9 * max(1.0, offset / 1e7))
    sk = SkLinearRegression().fit(Xo, y)
    np.testing.assert_allclose(m.coef_, sk.coef_, rtol=1e-6)
    # 2. the slopes of the unshifted data, up to the offset's rounding of the columns
    np.testing.assert_allclose(m.coef_, _centred_lstsq(X, y), rtol=1e-4 * offset / 1e10 + 1e-8)
    # 3. R2 as on the unshifted data (was 0 for gram: every column aliased)
    assert abs(m.score(Xo, y) - SkLinearRegression().fit(X, y).score(X, y)) < 1e-3
    assert m.rank_ == 3


@pytest.mark.parametrize("offset", [1e3, 1e5, 1e7])
@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_input_with_offsets_is_fitted_as_stored(solver, offset):
    X, y = _data(seed=1)
    X32 = (X + offset).astype(np.float32)
    m = LinearRegression(solver=solver).fit(X32, y)
    X64 = X32.astype(np.float64)  # what the float32 columns hold, exactly
    ref = _centred_lstsq(X64, y)
    # computed in float64 (the model's weights); coef_ is handed back in X's float32
    np.testing.assert_allclose(m.model_.weight[0].numpy(), ref, rtol=1e-9)
    np.testing.assert_allclose(m.model_.bias.numpy(), y.mean() - X64.mean(0) @ ref, rtol=1e-9)
    assert m.coef_.dtype == np.float32
    np.testing.assert_allclose(m.coef_, ref.astype(np.float32), rtol=0, atol=0)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("scale", [1e-200, 1e-100, 1e100, 1e160])
@pytest.mark.parametrize("solver", SOLVERS)
def test_scaled_columns_scale_the_coefficients(solver, scale, fit_intercept):
    X, y = _data(seed=2)
    base = LinearRegression(solver=solver, fit_intercept=fit_intercept).fit(X, y)
    # squares past float64 (NOTE [squares out of range] in stats/fitstats.py): the
    # standard errors are inf at 1e-200 and were 1.6% off, silently, at 1e160
    wild = pytest.warns(DegenerateWarning, match="x1, x2, x3 have centred values beyond")
    with wild if scale in (1e-200, 1e160) else contextlib.nullcontext():
        m = LinearRegression(solver=solver, fit_intercept=fit_intercept).fit(X * scale, y)
    assert m.rank_ == 3  # was 0 for qr at 1e-200 and 1e160
    np.testing.assert_allclose(m.coef_ * scale, base.coef_, rtol=1e-12)
    np.testing.assert_allclose(m.intercept_, base.intercept_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.predict(X * scale), base.predict(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scale", [1e-200, 1e160])
@pytest.mark.parametrize("solver", SOLVERS)
def test_columns_of_very_different_scales_keep_their_rank(solver, scale):
    X, y = _data(seed=3)
    scales = np.array([1.0, scale, 1.0 / scale if scale > 1 else 1e100])
    _, sol = fit_exact(X * scales, y, method=solver)
    _, ref = fit_exact(X, y, method=solver)
    assert sol.rank == 3 and sol.aliased == ()
    np.testing.assert_allclose(sol.coef.numpy() * scales, ref.coef.numpy(), rtol=1e-12)
    assert sol.cond == pytest.approx(ref.cond, rel=1e-9)  # a unit-free condition number


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("solver", SOLVERS)
def test_non_finite_rows_in_a_state_raise_a_data_error(solver, bad, fit_intercept):
    X, y = _data(n=20, seed=4)
    X[3, 1] = bad
    with pytest.raises(DataError, match="non-finite"):  # gram raised a LinAlgError
        fit_exact(X, y, method=solver, fit_intercept=fit_intercept)


@pytest.mark.parametrize("solver", SOLVERS)
def test_blocks_of_very_different_magnitudes_merge_exactly(solver):
    # The Gram summary picks each column's power-of-two scale from the first nonzero block
    # and rescales its totals when a larger block arrives, in absorb and in merge alike.
    X, y = _data(n=60, seed=5)
    X[:20, 0] = 0.0  # column 0 is zero in the first block, column 1 grows later
    X[40:, 1] *= 1e6
    scales = np.array([1e-200, 1e160, 1.0])
    Xs = X * scales
    ref = fit_exact(X, y, method=solver)[1]
    whole = LeastSquaresState(3, 1, method=solver, block_rows=20).absorb(Xs, y).solve()
    parts = [
        LeastSquaresState(3, 1, method=solver).absorb(Xs[i : i + 20], y[i : i + 20])
        for i in (0, 20, 40)
    ]
    merged = LeastSquaresState.merge_all(parts).solve()
    for sol in (whole, merged):
        assert sol.rank == 3
        np.testing.assert_allclose(sol.coef[0].numpy() * scales, ref.coef[0].numpy(), rtol=1e-12)
        np.testing.assert_allclose(sol.intercept.numpy(), ref.intercept.numpy(), rtol=1e-12)


@pytest.mark.parametrize("offset", [1e4, 1e7])
@pytest.mark.parametrize("solver", SOLVERS)
def test_offset_data_in_many_blocks_loses_no_digits(solver, offset):
    # The Gram state takes its means about a fixed shift, as the QR state does: block means
    # of X + 1e7 and their differences (squared by the pairwise merge) then carry the
    # centred data's rounding, not the offset's (before: 8e-11 at 1e7, 3e-8 at 1e10).
    X, y = _data(n=2000, seed=6)
    Xo = X + offset
    ref = _centred_lstsq(Xo, y)
    one = LeastSquaresState(3, 1, method=solver, block_rows=100).absorb(Xo, y).solve()
    parts = [LeastSquaresState(3, 1, method=solver).absorb(Xo[i::4], y[i::4]) for i in range(4)]
    merged = LeastSquaresState.merge_all(parts).solve()
    for sol in (one, merged):
        np.testing.assert_allclose(sol.coef[0].numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_state_record_without_its_shift_flag_keeps_its_shift(solver):
    # States gathered across ranks arrive without 'has_shift'; absorbing more rows must not
    # take a new shift against the stored totals.
    X, y = _data(n=100, seed=7)
    Xo = X + 1e3
    record = LeastSquaresState(3, 1, method=solver).absorb(Xo[:60], y[:60]).state_dict()
    record["has_shift"] = False
    state = LeastSquaresState.from_state_dict(record).absorb(Xo[60:], y[60:])
    whole = LeastSquaresState(3, 1, method=solver).absorb(Xo, y)
    np.testing.assert_allclose(state.solve().coef, whole.solve().coef, rtol=1e-12)
    np.testing.assert_allclose(state.solve().intercept, whole.solve().intercept, rtol=1e-12)


# ---------------------------------------------------------------- rank decisions


def test_gram_rank_decision_allows_for_an_ill_conditioned_kept_block():
    # The error of a Gram factor's orthogonal part grows with the column's coefficients on
    # the kept columns (sqrt(eps) * (1 + |beta|)): a column dependent on a block of
    # condition ~60 came out at 1.3e-6 of its norm, above the plain tolerance 4.7e-7, and
    # was kept: the fit of 3 rows then had rank 4 and missed lstsq by 0.18.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, 2)) * rng.choice([0.5, 1.0, 4.0], 2) + rng.choice([0.0, 3.0], 2)
    X = np.c_[X, rng.normal(size=(3, 4))]
    y = X[:, :1] @ rng.normal(size=(1, 1)) + rng.normal(size=(3, 1))
    ref = np.linalg.lstsq(X, y, rcond=None)[0].T
    with pytest.warns(RankWarning):
        _, sol = fit_exact(X, y, fit_intercept=False, method="gram")
    assert sol.rank == 3
    np.testing.assert_allclose(sol.coef.numpy(), ref, atol=1e-12)


def test_qr_rank_decision_allows_for_an_ill_conditioned_kept_block():
    # TSQR over blocks of 3 and 1 rows left 3e-13 of a dependent column (coefficients ~500
    # on the kept block), just above 100 * 10 * eps: kept, rank 4 of 3 rows, off by 0.8.
    X, y = _wide_case()
    state = LeastSquaresState(8, 1, method="qr")
    state.absorb(X[:3], y[:3]).absorb(X[3:], y[3:])
    with pytest.warns(RankWarning):
        sol = state.solve()
    assert sol.rank == 3
    np.testing.assert_allclose(sol.coef[0].numpy(), _centred_lstsq(X, y), atol=1e-10)


def _wide_case():
    """The property test's draw (seed 42425025, n 4, d 3, wide): 4 rows, 8 columns."""
    rng = np.random.default_rng(42425025)
    X = rng.normal(size=(4, 3)) * rng.choice([0.5, 1.0, 4.0], 3) + rng.choice([0.0, 3.0], 3)
    X = np.c_[X, rng.normal(size=(4, 5))]
    y = X[:, :1] @ rng.normal(size=(1, 1)) + rng.normal(size=(4, 1))
    return X, y[:, 0]


@pytest.mark.parametrize("offset", [0.0, 1e7, 1e10])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_gram_fast_path_equals_block_by_block_centring(offset, weighted):
    # NOTE [gram fast path]: after the first block, one fused pass and one GEMM per block;
    # the same state as centring every block on its own mean (one block per call), to the
    # digits the offsets leave
    rng = np.random.default_rng(11)
    X = rng.normal(size=(5000, 4)) * [1.0, 3.0, 0.1, 10.0] + offset
    Y = X @ [1.0, -2.0, 0.5, 0.1] + rng.normal(size=5000)
    w = rng.uniform(0.2, 3.0, 5000) if weighted else None
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)[:, None]
    wt = None if w is None else torch.from_numpy(w)
    fast = LeastSquaresState(4, 1, method="gram", block_rows=512)
    fast.absorb(Xt, Yt, wt)
    careful = LeastSquaresState(4, 1, method="gram", block_rows=512)
    for lo in range(0, 5000, 512):  # one block per call: the careful path every time
        careful._summary._absorb_blocks(
            Xt[lo : lo + 512], Yt[lo : lo + 512], None if wt is None else wt[lo : lo + 512], 512
        )
    careful.n_samples = fast.n_samples
    a, b = fast.solve(), careful.solve()
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-9)
    # and the QR state, whose shifted TSQR keeps the digits of data near its offset (float64
    # numpy centring does not: np.average of 1e10 + 0.1 noise loses them)
    qr = LeastSquaresState(4, 1, method="qr").absorb(Xt, Yt, wt).solve()
    np.testing.assert_allclose(a.coef, qr.coef, rtol=1e-8)


def test_a_block_beyond_the_scales_falls_back_to_the_careful_path():
    # the first block sets power-of-two scales near 1; a later block near 1e200 would
    # overflow the fast path's squares: that call is redone block by block
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 2))
    Y = X @ [2.0, -1.0] + 0.01 * rng.normal(size=3000)
    X[2000:] *= 1e200
    Y[2000:] *= 1e200
    state = LeastSquaresState(2, 1, method="gram", block_rows=1000)
    state.absorb(torch.from_numpy(X), torch.from_numpy(Y)[:, None])
    sol = state.solve()
    assert torch.isfinite(sol.coef).all()
    np.testing.assert_allclose(sol.coef[0].numpy(), [2.0, -1.0], rtol=1e-3)


def test_qr_overflow_at_1e160_says_what_to_do_and_gram_fits_it():
    # the QR factor of data near 1e160 overflows; the error names the cause and the remedy,
    # and the Gram route (power-of-two column scales) fits the same data as unscaled
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = X @ [1.0, 2.0] + rng.normal(size=200)
    with pytest.raises(DataError, match=r"overflowed the QR factor.*solver='gram'"):
        LinearRegression(solver="qr").fit(X * 1e160, y * 1e160)
    with pytest.warns(DegenerateWarning, match="standard errors.*may be inf, NaN or off"):
        got = LinearRegression(solver="gram").fit(X * 1e160, y * 1e160).coef_
    np.testing.assert_allclose(got, LinearRegression().fit(X, y).coef_, rtol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_compute_says_its_aliasing_is_float32s(solver):
    # Longley (cond 5e9) is full rank in float64 and rank-deficient at float32's 1e-7: the
    # minimum-norm coefficients were 7x off the OLS ones under a warning that did not say
    # the precision asked for was the cause
    import statsmodels.api as sm
    import torch

    d = sm.datasets.longley.load_pandas()
    X, y = d.exog.to_numpy(float), d.endog.to_numpy(float)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        LinearRegression(solver=solver, dtype=torch.float32).fit(X, y)
    said = [str(r.message) for r in rec if issubclass(r.category, RankWarning)]
    assert any(m.startswith("rank-deficient design at float32 precision") for m in said), said
    LinearRegression(solver=solver).fit(X, y)  # float64: no warning (filterwarnings=error)
