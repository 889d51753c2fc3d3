"""Block products (NOTE [blocks in cache]) against exact rationals, and a large fit's
refinement taking only the bits it needs (NOTE [bits as needed], NOTE [bits in refinement]):
the same digits as 106-bit products, the bounds it reports covering the actual errors, and a
pass done again at 106 bits where the estimates it started from were wrong."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes

from torchlinreg.errors import DegenerateWarning
from torchlinreg.exact import products
from torchlinreg.exact.products import FULL_BITS, SplitBlock
from torchlinreg.exact.refine import Estimates, refine_solution, working_kappa
from torchlinreg.exact.rowpasses import RowPasses
from torchlinreg.exact.state import LeastSquaresState
from torchlinreg.stats.results import OLSResults

SUMS = ("rss", "ess", "centered_tss", "uncentered_tss")


def _exact_rows(A: np.ndarray, B: np.ndarray) -> list[list[Fraction]]:
    Af = [[Fraction(float(v)) for v in row] for row in A]
    Bf = [[Fraction(float(v)) for v in row] for row in B]
    return [
        [sum(a * b for a, b in zip(row, col, strict=True)) for col in zip(*Bf, strict=True)]
        for row in Af
    ]


def _errors(hi, lo, exact) -> np.ndarray:
    return np.array(
        [
            [
                float(abs(Fraction(float(hi[i, t])) + Fraction(float(lo[i, t])) - exact[i][t]))
                for t in range(len(exact[0]))
            ]
            for i in range(len(exact))
        ]
    )


def _hostile(seed: int, m: int, q: int, k: int):
    """Columns over 14 decades with offsets, an operand whose row 0 cancels to rounding."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, q)) * 10.0 ** rng.uniform(-7, 7, q) + rng.uniform(-1e6, 1e6, q)
    x = rng.normal(size=(q, k)) * 10.0 ** rng.uniform(-5, 5, (q, 1))
    x[-1, 0] = -(A[0, :-1] @ x[:-1, 0]) / A[0, -1]
    r = rng.normal(size=(m, k)) * 10.0 ** rng.uniform(-4, 4, k)
    return A, x, r, r * rng.normal(size=(m, k)) * 2.0**-60


@pytest.mark.parametrize("seed", range(4))
def test_block_products_sliced_in_cache_are_double_double_accurate(seed):
    # several slices (slice_values small), both products against exact rationals: 2^-104 of
    # |A| |x| with A's column maxima, as NOTE [error-free products] promises
    A, x, r, r_lo = _hostile(seed, m=120, q=9, k=2)
    block = SplitBlock(torch.from_numpy(A), torch.from_numpy(x), slice_values=9 * 17)
    err = _errors(*block.fitted, _exact_rows(A, x))
    scale = np.abs(A).max(0) @ np.abs(x)  # (k,)
    assert (err <= 2.0**-104 * scale).all()
    ghi, glo = block.matmul_t((torch.from_numpy(r), torch.from_numpy(r_lo)))
    exact_t = _exact_rows(A.T, r + r_lo)  # r + r_lo rounds: compare with the dd operand
    exact_t = [
        [
            sum(
                Fraction(float(A[i, j])) * (Fraction(float(r[i, t])) + Fraction(float(r_lo[i, t])))
                for i in range(A.shape[0])
            )
            for t in range(r.shape[1])
        ]
        for j in range(A.shape[1])
    ]
    err_t = _errors(ghi, glo, exact_t)
    scale_t = np.abs(A).max(0)[:, None] * np.abs(r).max(0)[None, :] * A.shape[0]
    assert (err_t <= 2.0**-104 * scale_t).all()


@pytest.mark.parametrize("seed", range(4))
def test_block_products_to_a_tolerance_stay_within_the_bounds_they_report(seed):
    # a tolerance per target cuts the bits; the bound each product reports (error per row,
    # error_t per entry) covers its actual error, and the products are as accurate as asked
    A, x, r, _ = _hostile(10 + seed, m=200, q=7, k=2)
    At, xt = torch.from_numpy(A), torch.from_numpy(x)
    scale = np.abs(A).max(0) @ np.abs(x)
    tol = torch.from_numpy(scale * np.array([2.0**-60, 2.0**-75]))
    block = SplitBlock(At, xt, tolerance=tol, slice_values=7 * 30)
    assert block.bits - 6 < FULL_BITS  # fewer bits were taken
    err = _errors(*block.fitted, _exact_rows(A, x))
    bound = block.error.numpy()
    assert (bound <= tol.numpy()).all() and (err <= bound).all()
    rt = torch.from_numpy(r)
    t_tol = torch.from_numpy(np.abs(A).max(0)[:, None] * np.abs(r).max(0) * 200 * 2.0**-70)
    ghi, glo = block.matmul_t((rt, torch.zeros_like(rt)), t_tol)
    err_t = _errors(ghi, glo, _exact_rows(A.T, r))
    assert (block.error_t.numpy() <= t_tol.numpy()).all()
    assert (err_t <= block.error_t.numpy()).all()
    # a gradient asking more than A @ x needed cuts more of A's pieces, and gets them
    pieces = len(block.pieces)
    fine = torch.from_numpy(np.abs(A).max(0)[:, None] * np.abs(r).max(0) * 200 * 2.0**-100)
    ghi, glo = block.matmul_t((rt, torch.zeros_like(rt)), fine)
    assert len(block.pieces) > pieces
    assert (_errors(ghi, glo, _exact_rows(A.T, r)) <= block.error_t.numpy()).all()


def _diabetes(rows: int, seed: int, *, weighted: bool):
    """Diabetes' ten columns resampled in raw-like units with offsets; targets: a signal, a
    pure-noise one about 1e3 and a nearly exact one (residuals 1e-9 of the fit)."""
    rng = np.random.default_rng(seed)
    X = load_diabetes().data
    X = X[rng.integers(0, len(X), rows)] * rng.uniform(50, 500, 10) + rng.uniform(-20, 20, 10)
    X = X + 0.1 * rng.normal(size=X.shape)  # no two rows alike
    b = rng.normal(size=10)
    Y = np.c_[
        X @ b + 30 * rng.normal(size=rows) + 150,
        rng.normal(size=rows) + 1e3,
        X @ b + 1e-9 * rng.normal(size=rows),
    ]
    w = rng.uniform(0.2, 3, rows) if weighted else None
    t = torch.from_numpy
    return t(X), t(Y), None if w is None else t(w)


def _passes(monkeypatch):
    """The tolerance each pass over the rows was given (None: 106 bits), and the real call."""
    passes, real = [], RowPasses.__call__

    def record(self, x, **kw):
        passes.append(kw.get("tolerance"))
        return real(self, x, **kw)

    monkeypatch.setattr(RowPasses, "__call__", record)
    return passes, real


def _bits_taken(monkeypatch) -> list[int]:
    taken, real = [], SplitBlock.__init__

    def record(self, A, x, **kw):
        real(self, A, x, **kw)
        taken.append(self.bits - 6)

    monkeypatch.setattr(products.SplitBlock, "__init__", record)
    return taken


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
def test_a_large_fit_takes_fewer_bits_and_keeps_the_digits_of_106(monkeypatch, weighted, intercept):
    X, Y, w = _diabetes(30_000, 1, weighted=weighted)
    state = LeastSquaresState(10, 3, fit_intercept=intercept).absorb(X, Y, sample_weight=w)
    sol = state.solve()
    taken = _bits_taken(monkeypatch)
    passes, real = _passes(monkeypatch)
    fast = OLSResults.from_fit(X, Y, w, intercept, state, sol, refine=True)
    monkeypatch.setattr(RowPasses, "__call__", real)
    # the premise: one pass, with a tolerance met (no second pass at 106 bits), and fewer
    # bits than 106 in some block
    assert len(passes) == 1 and passes[0] is not None
    assert min(taken) < FULL_BITS
    full = _full_bits(monkeypatch, X, Y, w, intercept, state, sol)
    # coefficients: the same float64 numbers but for an ulp where the budget's eps / 8 meets
    # the certified step's eps / 4; every sum of squares to 1e-15
    np.testing.assert_allclose(fast.params, full.params, rtol=4 * 2.0**-52, atol=0)
    np.testing.assert_allclose(fast.ssr, full.ssr, rtol=1e-15)
    np.testing.assert_allclose(fast.ess, full.ess, rtol=1e-15)
    np.testing.assert_allclose(fast.bse, full.bse, rtol=1e-15)


def _full_bits(monkeypatch, X, Y, w, intercept, state, sol):
    """The same statistics with every product at 106 bits (no tolerance passed)."""
    real = RowPasses.__call__

    def full(self, x, *, tolerance=None, **kw):
        return real(self, x, **kw)

    with monkeypatch.context() as m:
        m.setattr(RowPasses, "__call__", full)
        return OLSResults.from_fit(X, Y, w, intercept, state, sol, refine=True)


def test_a_wrong_estimate_is_caught_and_the_pass_done_again_at_106_bits(monkeypatch):
    # estimates 1e12 times too large promise residuals far larger than they are: the pass
    # takes too few bits, its own sums show the bounds miss the budget, and it is made
    # again at 106 bits, with the result of a refinement that never cut bits
    X, Y, w = _diabetes(20_000, 2, weighted=True)
    state = LeastSquaresState(10, 3).absorb(X, Y, sample_weight=w)
    sol = state.solve()
    kappa = working_kappa(state, 11)
    calls, real = [], RowPasses.__call__

    def count(self, x, **kw):
        calls.append(kw.get("tolerance") is not None)
        return real(self, x, **kw)

    monkeypatch.setattr(RowPasses, "__call__", count)
    args = (X, Y, w, True, state, sol.coef, sol.intercept)
    rss = torch.as_tensor(sol.rss, dtype=torch.float64).reshape(-1)
    wrong = Estimates(rss=rss * 1e12, ess=rss * 1e12, sw=float(w.sum()), rows=X.shape[0])
    fit = refine_solution(*args, factor_kappa=kappa, estimates=wrong)
    assert calls[:2] == [True, False]  # the cut pass, then the same pass at 106 bits
    calls.clear()
    ref = refine_solution(*args, factor_kappa=kappa)  # no estimates: 106 bits throughout
    assert calls and not any(calls)
    torch.testing.assert_close(fit.coef, ref.coef, rtol=0, atol=0)
    for key in SUMS:
        torch.testing.assert_close(getattr(fit, key), getattr(ref, key), rtol=1e-15, atol=0)


def test_a_nearly_exact_target_takes_all_the_bits_it_needs(monkeypatch):
    # residuals 1e-9 of the fit: its rss needs far more bits than an ordinary target's,
    # and gets the sums of a refinement at 106 bits
    X, Y, _ = _diabetes(20_000, 3, weighted=False)
    state = LeastSquaresState(10, 1).absorb(X, Y[:, 2:])
    sol = state.solve()
    taken = _bits_taken(monkeypatch)
    passes, real = _passes(monkeypatch)
    res = OLSResults.from_fit(X, Y[:, 2:], None, True, state, sol, refine=True)
    monkeypatch.setattr(RowPasses, "__call__", real)
    assert min(taken) > 85
    assert len(passes) == 1  # its bounds met the budget with the bits it took
    full = _full_bits(monkeypatch, X, Y[:, 2:], None, True, state, sol)
    np.testing.assert_allclose(res.ssr, full.ssr, rtol=1e-15)
    np.testing.assert_allclose(res.params, full.params, rtol=4 * 2.0**-52, atol=0)


def test_a_target_fitted_exactly_does_not_make_the_pass_again(monkeypatch):
    # y = X b exactly beside a noisy target: the exact one's rss is at rounding level,
    # which its 106-bit residuals cannot bound to eps/8 of itself; only the gradient's bits
    # were cut, and those do not move rss, so the pass stands (it was made twice: 1.7x)
    X, Y, _ = _diabetes(40_000, 4, weighted=False)
    Y = torch.stack([Y[:, 0], X @ torch.linspace(-1, 1, 10, dtype=torch.float64)], 1)
    state = LeastSquaresState(10, 2).absorb(X, Y)
    sol = state.solve()
    passes, real = _passes(monkeypatch)
    res = OLSResults.from_fit(X, Y, None, True, state, sol, refine=True)
    monkeypatch.setattr(RowPasses, "__call__", real)
    assert len(passes) == 1 and passes[0] is not None
    full = _full_bits(monkeypatch, X, Y, None, True, state, sol)
    np.testing.assert_allclose(res.params, full.params, rtol=4 * 2.0**-52, atol=0)
    np.testing.assert_allclose(res.ssr, full.ssr, rtol=1e-15, atol=1e-300)
    # the exact target's rss is rounding noise, and its statistics say so
    with pytest.warns(DegenerateWarning, match="y2 fitted exactly"):
        got = res.bse[:, 0]
    with pytest.warns(DegenerateWarning, match="y2 fitted exactly"):
        want = full.bse[:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-15)
