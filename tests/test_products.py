"""Error-free GEMM products (NOTE [error-free products]) against exact rational arithmetic,
and the refinement policy that uses them (NOTE [refinement policy])."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch

import torchlinreg as tlr
from torchlinreg.exact.ddouble import dd_from
from torchlinreg.exact.products import SplitBlock, dd_matmul, dd_matmul_t
from torchlinreg.exact.state import fit_exact
from torchlinreg.stats.results import OLSResults

BOUND = 2.0**-104  # relative to |A| |B|: double-double accuracy (2^-106) with room


def _exact(A, B) -> list[list[Fraction]]:
    return [
        [
            sum(Fraction(float(a)) * b for a, b in zip(A[i], col, strict=True))
            for col in zip(*B, strict=True)
        ]
        for i in range(len(A))
    ]


def _frac(M) -> list[list[Fraction]]:
    return [[Fraction(float(v)) for v in row] for row in np.asarray(M)]


@pytest.mark.parametrize("seed", range(6))
def test_products_are_accurate_to_double_double_whatever_the_scales(seed):
    # 1) columns over 16 decades, 2) a double-double right-hand side with a real low part,
    # 3) cancellation: sums far smaller than their terms
    rng = np.random.default_rng(seed)
    n, m, k = 5, int(rng.integers(1, 60)), 3
    A = rng.normal(size=(n, m)) * 10.0 ** rng.uniform(-8, 8, m)
    B = rng.normal(size=(m, k)) * 10.0 ** rng.uniform(-8, 8, (m, 1))
    if m > 1:  # row 0 times column 2 cancels to rounding
        B[:, 2] = B[:, 0]
        B[-1, 2] = -(A[0, :-1] @ B[:-1, 0]) / A[0, -1]
    B_lo = B * rng.normal(size=B.shape) * 2.0**-60
    At = torch.from_numpy(A)
    hi, lo = dd_matmul(At, (torch.from_numpy(B), torch.from_numpy(B_lo)))
    exact = _exact(
        _frac(A),
        [
            [Fraction(float(b)) + Fraction(float(c)) for b, c in zip(rb, rc, strict=True)]
            for rb, rc in zip(B, B_lo, strict=True)
        ],
    )
    scale = np.abs(A) @ np.abs(B)
    for i in range(n):
        for t in range(k):
            err = abs(Fraction(float(hi[i, t])) + Fraction(float(lo[i, t])) - exact[i][t])
            assert float(err) <= BOUND * scale[i, t], (i, t)
    R = rng.normal(size=(n, k)) * 10.0 ** rng.uniform(-5, 5, k)
    R_lo = R * 2.0**-60
    ghi, glo = dd_matmul_t(At, (torch.from_numpy(R), torch.from_numpy(R_lo)))
    exact_t = _exact(
        _frac(A.T),
        [
            [Fraction(float(b)) + Fraction(float(c)) for b, c in zip(rb, rc, strict=True)]
            for rb, rc in zip(R, R_lo, strict=True)
        ],
    )
    scale_t = np.abs(A.T) @ np.abs(R)
    for j in range(m):
        for t in range(k):
            err = abs(Fraction(float(ghi[j, t])) + Fraction(float(glo[j, t])) - exact_t[j][t])
            assert float(err) <= BOUND * scale_t[j, t], (j, t)


@pytest.mark.parametrize("seed", range(4))
def test_a_float64_operand_takes_no_low_pieces_and_gives_the_same_product(seed):
    # Refinement's parameters are float64: A @ x without pieces of a zero low part must be
    # the double-double product all the same (exact rationals), and the value the
    # zero-low-part call gives.
    rng = np.random.default_rng(100 + seed)
    n, m, k = 7, int(rng.integers(2, 40)), 2
    A = rng.normal(size=(n, m)) * 10.0 ** rng.uniform(-6, 6, m) + rng.uniform(-1e6, 1e6, m)
    B = rng.normal(size=(m, k)) * 10.0 ** rng.uniform(-6, 6, (m, 1))
    B[-1, 1] = -(A[0, :-1] @ B[:-1, 1]) / A[0, -1]  # row 0, column 1 cancels to rounding
    hi, lo = SplitBlock(torch.from_numpy(A), torch.from_numpy(B)).fitted
    zhi, zlo = SplitBlock(torch.from_numpy(A), dd_from(torch.from_numpy(B))).fitted
    assert torch.equal(hi + lo, zhi + zlo)
    exact = _exact(_frac(A), _frac(B))
    scale = np.abs(A) @ np.abs(B)
    for i in range(n):
        for t in range(k):
            err = abs(Fraction(float(hi[i, t])) + Fraction(float(lo[i, t])) - exact[i][t])
            assert float(err) <= BOUND * scale[i, t], (i, t)


def test_only_the_targets_at_risk_are_refined_and_they_equal_a_full_refinement():
    # a nearly collinear design (kappa ~ 1e3): the exact target (residuals at rounding
    # level: NOTE [sums at risk]) and the one with a small residual are safe, the one with
    # a large residual is at risk; refining all, or only that one, agree
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 30000)
    X = np.c_[x, x + 0.01 * x**2]
    fit = 1 + X.sum(1)
    Y = np.c_[fit, fit + np.cos(40 * x), fit + 1e-3 * rng.normal(size=x.size)]
    st, sol = fit_exact(torch.from_numpy(X), torch.from_numpy(Y))
    policy = OLSResults.from_fit(X, Y, None, True, st, sol)
    every = OLSResults.from_fit(X, Y, None, True, st, sol, refine=True)
    none = OLSResults.from_fit(X, Y, None, True, st, sol, refine=False)
    from torchlinreg.exact.refine import targets_at_risk

    risky = targets_at_risk(st, 3)
    assert risky == [False, True, False]
    for t in range(3):
        source = every if risky[t] else none
        np.testing.assert_array_equal(policy.params[:, t], source.params[:, t])
        np.testing.assert_array_equal(policy.ssr[t], source.ssr[t])


def test_many_targets_are_refined_by_gemms_with_the_same_digits(tmp_path):
    # 100 targets refined at once equal each target refined alone (the products do not
    # depend on the other columns), and against lstsq on the centred data
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 20)) * rng.uniform(0.5, 20, 20) + rng.uniform(-10, 10, 20)
    Y = X @ rng.normal(size=(20, 100)) + rng.normal(size=(3000, 100))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = tlr.ols(X, Y)
        st, sol = fit_exact(torch.from_numpy(X), torch.from_numpy(Y))
        forced = OLSResults.from_fit(X, Y, None, True, st, sol, refine=True)
    Xc = X - X.mean(0)
    ref = np.linalg.lstsq(Xc, Y - Y.mean(0), rcond=None)[0]
    np.testing.assert_allclose(forced.params[1:], ref, rtol=1e-11, atol=1e-12)
    for t in (0, 57, 99):
        st1, sol1 = fit_exact(torch.from_numpy(X), torch.from_numpy(Y[:, t : t + 1]))
        alone = OLSResults.from_fit(X, Y[:, t], None, True, st1, sol1, refine=True)
        # both converged to float64 rounding: a few ulp of the column-scaled parameters
        np.testing.assert_allclose(forced.params[:, t], alone.params, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(forced.ssr[t], alone.ssr, rtol=1e-14)
    np.testing.assert_allclose(res.params, forced.params, rtol=1e-12, atol=1e-12)


def test_pieces_in_a_reused_workspace_give_the_same_products():
    # NOTE [reused pieces]: chunk after chunk (the last one shorter) in one workspace, the
    # products are bitwise those of fresh pieces, and the buffers are the same memory
    from torchlinreg.exact.products import Workspace

    g = torch.Generator().manual_seed(4)
    A = torch.randn(5000, 7, generator=g, dtype=torch.float64) * 1e3 + 1e6
    x = torch.randn(7, 2, generator=g, dtype=torch.float64)
    r = torch.randn(5000, 2, generator=g, dtype=torch.float64)
    ws, storages = Workspace(), set()
    for lo in (0, 2048, 4096):  # 2048, 2048 and 904 rows
        chunk, rc = A[lo : lo + 2048], r[lo : lo + 2048]
        fresh, reused = SplitBlock(chunk, dd_from(x)), SplitBlock(chunk, dd_from(x), workspace=ws)
        storages.add(ws.flat.data_ptr())
        for a, b in zip(fresh.fitted, reused.fitted, strict=True):
            assert torch.equal(a, b)
        for a, b in zip(fresh.matmul_t(dd_from(rc)), reused.matmul_t(dd_from(rc)), strict=True):
            assert torch.equal(a, b)
    assert len(storages) == 1
