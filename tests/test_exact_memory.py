"""What in-memory exact fits keep and copy (issue 11, memory items): float32 rows are
converted block by block, never whole; wide refinement reads the rows in short chunks; the
results are the same numbers as from float64 rows. Memory itself is measured by
``benchmarks/run.py --only regimes``, not asserted here.

Real data: scikit-learn's diabetes set (442 x 10), stored as float32.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes

import torchlinreg as tlr
from torchlinreg.exact import products
from torchlinreg.exact.state import fit_exact
from torchlinreg.stats.fitstats import results_from_fit
from torchlinreg.stats.results import OLSResults

# statistics that read only the R factor and the sums (no second pass over the rows)
NONROBUST = ("params", "bse", "tvalues", "ssr", "ess", "rsquared", "fvalue", "llf", "aic")
# and those that need the rows again
ROWS = ("resid", "fittedvalues")


class WholeConversionSpy(torch.Tensor):
    """A float32 X that records every float64 tensor made from all of its rows at once."""

    rows: ClassVar[int] = 0
    seen: ClassVar[list[tuple[str, tuple[int, ...]]]] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        with torch._C.DisableTorchFunctionSubclass():  # looking at shapes calls us again
            given = [*args, *(kwargs or {}).values()]
            given += [a for seq in given if isinstance(seq, list | tuple) for a in seq]  # cat
            spied = [a for a in given if type(a) is cls]
            whole_in = any(a.ndim == 2 and a.shape[0] == cls.rows for a in spied)
            made = isinstance(out, torch.Tensor) and out.dtype == torch.float64
            if whole_in and made and out.ndim == 2 and out.shape[0] == cls.rows:
                cls.seen.append((getattr(func, "__name__", str(func)), tuple(out.shape)))
        return out


def _diabetes32():
    X, y = load_diabetes(return_X_y=True)
    return X.astype(np.float32), (y / 100).astype(np.float32)


def _same(a: OLSResults, b: OLSResults, names=NONROBUST + ROWS) -> None:
    for name in names:
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)))
    assert a.condition_number == b.condition_number


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_ols_of_float32_rows_equals_ols_of_the_same_rows_in_float64(fit_intercept, weighted):
    X32, y32 = _diabetes32()
    w = np.linspace(0.5, 2.0, len(y32)) if weighted else None
    ours = tlr.ols(X32, y32, fit_intercept=fit_intercept, sample_weight=w)
    ref = tlr.ols(X32.astype(np.float64), y32.astype(np.float64), fit_intercept=fit_intercept,
                  sample_weight=w)  # fmt: skip
    # 1) every statistic, bit for bit: the float64 values of the stored float32 numbers
    _same(ours, ref)
    # 2) HC covariances and leverage (the rows again) too
    for cov in ("HC1", "HC3"):
        np.testing.assert_array_equal(
            ours.get_robustcov_results(cov).bse, ref.get_robustcov_results(cov).bse
        )
    np.testing.assert_array_equal(
        ours.get_influence().hat_matrix_diag, ref.get_influence().hat_matrix_diag
    )


@pytest.mark.parametrize("solver", ["qr", "gram"])
def test_estimator_on_float32_rows_gives_the_float64_fit(solver):
    X32, y32 = _diabetes32()
    Y32 = np.c_[y32, y32 * y32]  # two targets
    ours = tlr.LinearRegression(solver=solver).fit(X32, Y32)
    ref = tlr.LinearRegression(solver=solver).fit(X32.astype(np.float64), Y32.astype(np.float64))
    # 1) scikit-learn's convention: coef_ in X's dtype, computed in float64
    assert ours.coef_.dtype == np.float32
    np.testing.assert_array_equal(ours.coef_, ref.coef_.astype(np.float32))
    # 2) the statistics are those of the float64 rows
    _same(ours.results_, ref.results_)


def test_an_aliased_float32_column_gives_the_float64_minimum_norm_fit():
    X32, y32 = _diabetes32()
    X32 = np.c_[X32, X32[:, 0] * np.float32(2)]  # exactly dependent, in float32 too
    with pytest.warns(tlr.RankWarning):
        ours = tlr.ols(X32, y32)
    with pytest.warns(tlr.RankWarning):
        ref = tlr.ols(X32.astype(np.float64), y32.astype(np.float64))
    np.testing.assert_array_equal(ours.params, ref.params)
    assert np.isnan(ours.params[-1])
    _same(ours, ref, names=("bse", "ssr", "rsquared", "resid"))


@pytest.mark.parametrize("method", ["qr", "gram"])
def test_statistics_of_float32_rows_never_convert_all_rows_at_once(method):
    rows, d = 40_000, 4  # refined (forced), in more than one block of block_rows(4, 1)
    g = torch.Generator().manual_seed(3)
    X = torch.randn(rows, d, generator=g) * 3 + 100
    y = X @ torch.arange(1.0, d + 1) + torch.randn(rows, generator=g)
    WholeConversionSpy.rows, WholeConversionSpy.seen = rows, []
    spy = X.as_subclass(WholeConversionSpy)
    state, sol = fit_exact(spy, y, method=method)
    res = OLSResults.from_fit(spy, y, None, True, state, sol, refine=True)
    for name in NONROBUST:
        getattr(res, name)
    # 1) the fit, the refinement and the non-robust statistics read X in blocks: the Gram
    # route too, whose factor is trusted here (NOTE [the Gram factor in refinement])
    assert WholeConversionSpy.seen == []
    # 2) and give what the float64 rows give
    ref_state, ref_sol = fit_exact(X.double(), y.double(), method=method)
    ref = OLSResults.from_fit(X.double(), y.double(), None, True, ref_state, ref_sol, refine=True)
    _same(res, ref)


def test_refinement_of_a_wide_fit_reads_short_chunks(monkeypatch):
    rows, d = 2000, 600  # today a 4096-row chunk would hold 2000 x 601 values
    g = torch.Generator().manual_seed(5)
    X = torch.randn(rows, d, generator=g, dtype=torch.float64)
    y = X[:, :5].sum(1) + torch.randn(rows, generator=g, dtype=torch.float64)
    shapes = []
    split = products.SplitBlock.__init__

    def record(self, A, x, **kw):
        shapes.append(tuple(A.shape))
        split(self, A, x, **kw)

    monkeypatch.setattr(products.SplitBlock, "__init__", record)
    state, sol = fit_exact(X, y)
    kw = results_from_fit(X, y, None, True, state, sol, refine=True)
    # 1) every chunk the refinement split holds at most 2**20 values (products.BLOCK_VALUES)
    assert shapes and max(m * q for m, q in shapes) <= 1 << 20
    # 2) the refined parameters still solve the normal equations to rounding
    A = torch.cat([torch.ones(rows, 1, dtype=torch.float64), X], 1)
    params = torch.as_tensor(kw["params"][:, 0])
    ref = torch.linalg.lstsq(A, y[:, None]).solution[:, 0]
    np.testing.assert_allclose(params.numpy(), ref.numpy(), rtol=0, atol=1e-12)


def _many_targets(rows=3000, d=10, k=600, seed=7):
    """Diabetes' ten columns, resampled to ``rows``, with ``k`` targets of different offsets."""
    X = load_diabetes().data
    rng = np.random.default_rng(seed)
    X = X[rng.integers(0, len(X), rows)] * 100 + rng.uniform(-5, 5, d)
    Y = X @ rng.standard_normal((d, k)) + rng.standard_normal((rows, k)) + rng.uniform(-1e3, 1e3, k)
    return X, Y


def test_many_targets_each_equal_a_separate_least_squares_fit():
    X, Y = _many_targets()
    res = tlr.ols(X, Y)
    A = np.c_[np.ones(len(X)), X]
    coef, *_ = np.linalg.lstsq(A, Y, rcond=None)
    resid = Y - A @ coef
    # 1) parameters and every sum of squares, target by target (numpy's LAPACK reference)
    np.testing.assert_allclose(res.params, coef, rtol=1e-9, atol=1e-9 * np.abs(coef).max())
    np.testing.assert_allclose(res.ssr, (resid**2).sum(0), rtol=1e-10)
    tss = ((Y - Y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(res.centered_tss, tss, rtol=1e-10)
    np.testing.assert_allclose(res.ess, tss - (resid**2).sum(0), rtol=1e-9)
    np.testing.assert_allclose(res.uncentered_tss, (Y**2).sum(0), rtol=1e-10)


def test_statistics_of_many_targets_copy_the_factor_a_few_columns_at_a_time(monkeypatch):
    from torchlinreg.exact.state import LeastSquaresState

    X, Y = _many_targets()
    asked = []
    r_factor = LeastSquaresState.r_factor

    def record(self, columns=None):
        out = r_factor(self, columns)
        asked.append(out.numel())
        return out

    monkeypatch.setattr(LeastSquaresState, "r_factor", record)
    state, sol = fit_exact(torch.from_numpy(X), torch.from_numpy(Y))
    results_from_fit(torch.from_numpy(X), torch.from_numpy(Y), None, True, state, sol)
    m = X.shape[1] + Y.shape[1] + 1
    # 1) never the whole (d + k + 1)^2 factor, only column slices of it
    assert asked and max(asked) < m * m // 2
    # 2) a slice equals those columns of the whole factor, bit for bit
    whole = r_factor(state)
    np.testing.assert_array_equal(state.r_factor(slice(5, 300)).numpy(), whole[:, 5:300].numpy())


def test_a_nan_among_many_targets_is_refused_by_the_solve():
    X, Y = _many_targets(rows=200, k=500)
    Y[17, 321] = np.nan
    # 1) the factor is checked in row chunks (isfinite of all of it made 10 MB temporaries)
    with pytest.raises(tlr.DataError, match="non-finite"):
        fit_exact(torch.from_numpy(X), torch.from_numpy(Y))


def test_the_rank_scan_in_column_blocks_finds_what_one_solve_finds(monkeypatch):
    from torchlinreg.exact import linalg

    g = torch.Generator().manual_seed(11)
    A = torch.randn(700, 600, generator=g, dtype=torch.float64)
    A[:, 450] = A[:, :40] @ torch.randn(40, generator=g, dtype=torch.float64)  # dependent
    A[:, 451] = A[:, 450] * 3 + 1e-9 * A[:, 451]  # nearly dependent
    r = torch.linalg.qr(A, mode="r").R
    norms = torch.linalg.vector_norm(A, dim=0)
    t = r / norms
    whole = linalg._beta_norms(t)
    found = linalg.aliased_columns(r, norms, 1e-10, amplified=True)
    monkeypatch.setattr(linalg, "_SOLVE_VALUES", 1 << 15)  # 54 columns per block
    # 1) the column norms of beta, block by block, are those of one solve (to rounding)
    np.testing.assert_allclose(linalg._beta_norms(t).numpy(), whole.numpy(), rtol=1e-10)
    # 2) the scan drops the same columns, and t is left as it was
    before = t.clone()
    assert linalg.aliased_columns(r, norms, 1e-10, amplified=True) == found == [450, 451]
    linalg._thresholds(t, 1e-10, True)
    assert torch.equal(t, before)
