"""Small dense kernels behind the exact engine: factor, norms, rank decision (solve.py solves).

Everything here works on the small ``(d + k) x (d + k)`` summary of a least-squares state,
never on the data. Tensors stay on their device; the only host syncs are the few scalar
decisions of :func:`aliased_columns`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

# NOTE [rank tolerance]
# A column is aliased when the part of it orthogonal to the earlier kept columns (and the
# intercept) is at most a tolerance times its norm: LINPACK dqrdc2 / R's lm with limited
# pivoting. Dividing by a norm makes the decision independent of units. Two errors blur the
# orthogonal part, and each is relative to its own norm:
# - The data's own rounding, relative to the raw, uncentred norm (a column 5 + 1e-3 * x is
#   stored to eps * 5, not to eps * 1e-3), so that a column that is an offset copy of another
#   is still caught. Householder QR adds a relative error of about d * eps of the same (or a
#   smaller, shifted) column, and TSQR over thousands of blocks was measured at ~20 eps:
#   below 100 * max(d, 10) * eps a column cannot be told from an exact dependence. That is
#   the QR default (2.2e-13 for float64 at d = 10), applied to the raw norm.
#   R's 1e-7 is far too coarse for QR: NIST Filip's last column keeps 5e-8 of its norm, yet its
#   certified solution is well defined in float64 (cond 3.8e9 after centring and scaling).
# - The Gram route squares the condition number: its factor carries a relative error of about
#   sqrt(eps_M), where the co-moments' own error eps_M grows with d (Cholesky) and, measured
#   here, with sqrt(n) (accumulation over rows). Hence sqrt(100 * max(d, 10, sqrt(n)) * eps)
#   for gram (4.7e-7 for Filip, 4.7e-6 at n = 1e6), which calls Filip rank-deficient: at that
#   precision it is. The co-moments are taken about the means (NOTE [centring] in state.py),
#   so this error is relative to the centred norm, not the raw one: applied to the raw norm it
#   called every column of X + 1e7 aliased (issue 9). Gram columns are aliased below
#   max(qr default * raw norm, gram tolerance * centred norm).
# Both errors grow with the size of the column's coefficients beta on the kept columns
# (column-scaled): a perturbation of the kept columns moves the projection by that much, and
# the Gram route's Schur complement carries eps * (1 + |beta|)^2. solve_centred therefore
# scans with the threshold tol * (1 + |beta_j|) (aliased_columns(amplified=True)): without
# it a column dependent on a kept block of condition ~60 (Gram) or ~500 (TSQR over blocks)
# was kept, and a wide fit had one rank too many (issue 9, found by the property test).
# NIST Filip's largest factor is 87: its QR threshold stays 2e-11, far below 5e-8.
# Norms are taken of columns equilibrated by powers of two (exact, see column_norms), so
# squares neither overflow (X * 1e160) nor underflow (X * 1e-200) into a false decision.


@dataclass(frozen=True)
class ExactSolution:
    """Coefficients and diagnostics of one solve of a :class:`LeastSquaresState`.

    ``rank`` counts the kept features (the intercept is not included: ``n_params`` is).
    ``rss`` is the weighted residual sum of squares per target. ``cond`` is the condition
    number of the centred (when ``fit_intercept``), column-scaled feature factor, unit-free
    (NOTE [condition estimate]). ``tol`` is the rank tolerance used. ``alpha``
    is the penalty, or a tuple of one per target when they differ.
    """

    coef: Tensor
    intercept: Tensor
    rank: int
    aliased: tuple[int, ...]
    rss: Tensor
    cond: float
    tol: float
    alpha: float | tuple[float, ...]
    fit_intercept: bool

    @property
    def n_params(self) -> int:
        """Estimated parameters per target: kept features plus the intercept."""
        return self.rank + int(self.fit_intercept)


class CentredSummary(NamedTuple):
    """What every solve needs: total weight, column means and the factor of centred data.

    ``r`` is upper-triangular ``(d + k, d + k)`` with ``r.T @ r`` equal to the weighted
    co-moment matrix of ``[X | Y]`` about ``means`` (about zero without an intercept, and then
    ``means`` is zero).
    """

    sum_weights: Tensor
    means: Tensor
    r: Tensor


def default_rcond(
    n_features: int, dtype: torch.dtype, method: str = "qr", n_samples: int = 0
) -> float:
    """The default relative rank tolerance, see NOTE [rank tolerance] in this module.

    Example:
        >>> default_rcond(10, torch.float64) < 1e-12
        True
    """
    eps = torch.finfo(dtype).eps
    if method == "gram":
        return math.sqrt(100.0 * max(n_features, 10, math.sqrt(n_samples)) * eps)
    return 100.0 * max(n_features, 10) * eps


def pow2_scales(a: Tensor, dim: int = 0) -> Tensor:
    """Powers of two ``s`` with ``max |a * s|`` in ``[0.5, 1)`` along ``dim``; 1 for zero lines.

    Multiplying by a power of two is exact (short of the subnormal range), so columns can be
    equilibrated and restored without a rounding error.
    """
    amax = a.abs().amax(dim=dim) if a.numel() else a.new_zeros(a.shape[1 - dim])
    _, expo = torch.frexp(amax)
    expo = torch.where((amax > 0) & torch.isfinite(amax), expo, torch.zeros_like(expo))
    # Two halves: 2 ** -expo alone overflows for subnormal columns (expo < -1022).
    half = torch.div(expo, 2, rounding_mode="floor")
    two = a.new_tensor(2.0)
    return torch.pow(two, -half) * torch.pow(two, half - expo)


_NORM_VALUES = 1 << 17  # column_norms scales copies of at most this many values
_SOLVE_VALUES = 1 << 22  # the rank scan's triangular solves take this many values at a time


def inverse_and_kappa(R: Tensor) -> tuple[Tensor, float]:
    """``R^-1`` of an upper-triangular factor, and a bound on the condition number of its
    column-scaled form, ``sqrt(q) ||D R^-1||_F`` with ``D`` R's column norms (within a factor
    ``q`` of the 2-norm one, from the inverse at no extra cost).

    Example:
        >>> R = torch.tensor([[1.0, 1.0], [0.0, 1e-6]], dtype=torch.float64)
        >>> rinv, kappa = inverse_and_kappa(R)
        >>> 1e6 < kappa < 1e7
        True
    """
    eye = torch.eye(R.shape[0], dtype=R.dtype, device=R.device)
    rinv = torch.linalg.solve_triangular(R, eye, upper=True)
    if not R.shape[0]:
        return rinv, 1.0
    scaled = column_norms(R)[:, None] * rinv
    return rinv, float(R.shape[0] ** 0.5 * torch.linalg.matrix_norm(scaled))


def column_norms(a: Tensor) -> Tensor:
    """Euclidean norms of the columns of ``a`` without overflow or underflow of the squares.

    Example:
        >>> column_norms(torch.tensor([[3e200], [4e200]], dtype=torch.float64))
        tensor([5.0000e+200], dtype=torch.float64)
    """
    if a.shape[1] == 0:
        return a.new_zeros(0)
    if a.numel() > _NORM_VALUES and a.shape[1] > 1:  # a scaled copy of a few columns at a time
        step = max(1, _NORM_VALUES // max(a.shape[0], 1))
        return torch.cat([column_norms(a[:, j : j + step]) for j in range(0, a.shape[1], step)])
    s = pow2_scales(a)
    return torch.linalg.vector_norm(a * s, dim=0) / s


def all_finite(t: Tensor) -> bool:
    """``isfinite(t).all()``, a few rows at a time: isfinite makes float temporaries of its
    input's size (with 1000 targets the factor is 10 MB, at 10,000 columns 800 MB).

    Example:
        >>> all_finite(torch.tensor([[1.0, 2.0], [float("nan"), 0.0]]))
        False
    """
    if t.ndim < 2 or t.numel() <= _NORM_VALUES:
        return bool(torch.isfinite(t).all())
    rows = max(1, _NORM_VALUES // max(t.shape[1], 1))
    return all(bool(torch.isfinite(t[i : i + rows]).all()) for i in range(0, t.shape[0], rows))


def squared_column_sums(block: Tensor) -> Tensor:
    """``(block * block).sum(0)``, a few columns at a time when the block is large: the
    targets' block of the factor is ``k x k`` (8 MB with 1000 targets). The QR state keeps
    it diagonal, so its sums do not depend on the chunks.

    Example:
        >>> squared_column_sums(torch.tensor([[3.0, 1.0], [4.0, 0.0]]))
        tensor([25.,  1.])
    """
    if block.numel() <= _NORM_VALUES or block.shape[1] < 2:
        return (block * block).sum(dim=0)
    step = max(1, _NORM_VALUES // max(block.shape[0], 1))
    parts = [block[:, j : j + step] for j in range(0, block.shape[1], step)]
    return torch.cat([(part * part).sum(dim=0) for part in parts])


def psd_upper_factor(M: Tensor) -> Tensor:
    """Upper-triangular ``R`` with ``R.T @ R == M`` for a symmetric positive semidefinite ``M``.

    Cholesky on the equilibrated matrix (unit diagonal, so the result does not depend on the
    columns' units); when that fails (semidefinite, or indefinite by rounding) it falls back to
    an eigendecomposition with the negative rounding noise clipped, re-triangularised by QR.
    """
    m = M.shape[0]
    if m == 0:
        return M.clone()
    if not all_finite(M):
        # NaN or inf in the data: a NaN factor, which the solver reports as a DataError
        # (eigh would raise a LinAlgError instead).
        return torch.full_like(M, math.nan)
    diag = M.diagonal().clamp_min(0).sqrt()
    zero = diag == 0
    if bool(zero.any()) and not bool(zero.all()):
        # a column with nothing in it (all zeros; constant, about its mean) factors as an
        # exact zero column: through the eigh fallback below it kept junk of about
        # sqrt(eps), which rank decisions read as a column of its own (a zero or constant
        # column before the last one escaped the Gram route's rank check, silently: a
        # rank-deficiency hunt). The others are factored alone, and R keeps its triangle.
        live = torch.nonzero(~zero).reshape(-1)
        R = torch.zeros_like(M)
        R[live[:, None], live[None, :]] = psd_upper_factor(M[live[:, None], live[None, :]])
        return R
    scale = torch.where(diag > 0, diag, torch.ones_like(diag))
    Ms = M / scale[:, None] / scale[None, :]
    Ms = (Ms + Ms.T) / 2
    R, info = torch.linalg.cholesky_ex(Ms, upper=True)
    if int(info) != 0:
        evals, evecs = torch.linalg.eigh(Ms)
        half = evals.clamp_min(0).sqrt()[:, None] * evecs.T
        R = torch.linalg.qr(half, mode="r").R
    return R * scale[None, :]


def aliased_columns(
    rxx: Tensor, norms: Tensor, tol: float, *, amplified: bool = False
) -> list[int]:
    """Indices of columns of the upper-triangular ``rxx`` that are collinear with earlier ones.

    Columns are scanned left to right: column j is aliased when its part orthogonal to the
    earlier kept columns is at most ``tol * norms[j]`` (a zero norm means a zero column); it
    is then dropped and the scan goes on with the remaining columns re-triangularised against
    the kept ones (limited pivoting, as LINPACK dqrdc2). Full rank costs one vector check.
    With ``amplified`` (a factor from a Gram matrix) the threshold is
    ``tol * norms[j] * (1 + |beta_j|)``, ``beta_j`` the column-scaled coefficients of column
    j on the kept ones: NOTE [rank tolerance].
    """
    t = rxx / torch.where(norms > 0, norms, torch.ones_like(norms))[None, :]
    aliased: list[int] = []
    idx = list(range(rxx.shape[1]))  # the columns of t, all kept before ``start``
    start = 0
    while start < len(idx):
        small = (t.diagonal().abs() <= _thresholds(t, tol, amplified))[start:].tolist()
        if not any(small):
            break
        p = start + small.index(True)
        # Rows p.. of the later columns are their parts orthogonal to the kept ones. A column
        # already negligible against the kept set stays so as the set grows: drop all such at
        # once (n < d leaves many, and one QR per column would cost O(d^4)).
        rest = t[p:, p + 1 :]
        limit = tol
        if amplified and p:
            beta = torch.linalg.solve_triangular(t[:p, :p], t[:p, p + 1 :], upper=True)
            limit = tol * (1 + torch.linalg.vector_norm(beta, dim=0))
        gone = (torch.linalg.vector_norm(rest, dim=0) <= limit).tolist()
        later = [p + 1 + i for i, g in enumerate(gone) if not g]
        aliased += [idx[p]] + [idx[p + 1 + i] for i, g in enumerate(gone) if g]
        tail = torch.linalg.qr(t[p:, later], mode="r").R
        t = torch.cat([t[:p, :p], t[:p, later]], 1) if p else t.new_zeros(0, len(later))
        t = torch.cat([t, torch.cat([tail.new_zeros(tail.shape[0], p), tail], 1)], 0)
        idx = idx[:p] + [idx[j] for j in later]
        start = p
    return sorted(aliased)


def _thresholds(t: Tensor, tol: float, amplified: bool) -> Tensor | float:
    """Per-column thresholds of the scan; ``beta`` of all columns in one triangular solve
    (valid up to the first negligible diagonal, which is all the scan reads)."""
    if not amplified:
        return tol
    # A zero diagonal would make 0/0 of every column's solve (back substitution starts at
    # the bottom); set to 1, it only changes the betas of later columns, which it precedes.
    # Set in place and restored after (a copy of t is 800 MB at 10,000 columns).
    diag = t.diagonal().clone()
    t.diagonal().copy_(torch.where(diag != 0, diag, 1.0))
    try:
        norms = _beta_norms(t)
    finally:
        t.diagonal().copy_(diag)
    return tol * (1 + norms)


def _beta_norms(t: Tensor) -> Tensor:
    """Norms of the columns of ``solve(t, triu(t, 1))``; above ``_SOLVE_VALUES`` a block of
    columns at a time, each against the leading rows it reaches (column j of the right-hand
    side is zero from row j on, and so is its solution): two copies of t were 1.6 GB at
    10,000 columns."""
    p = t.shape[1]
    if t.numel() <= _SOLVE_VALUES:
        beta = torch.linalg.solve_triangular(t, torch.triu(t, diagonal=1), upper=True)
        return torch.linalg.vector_norm(beta, dim=0)
    step = max(1, _SOLVE_VALUES // p)
    parts = []
    for lo in range(0, p, step):
        hi = min(lo + step, p)
        rhs = t[:hi, lo:hi].triu(diagonal=1 - lo)
        beta = torch.linalg.solve_triangular(t[:hi, :hi], rhs, upper=True)
        parts.append(torch.linalg.vector_norm(beta, dim=0))
    return torch.cat(parts)


def residual_sums(rc: Tensor, coef_t: Tensor) -> Tensor:
    """Per-target ``||Y - X B||^2`` from the factor ``rc`` of ``[X | Y]`` and ``B`` (d, k)."""
    d = coef_t.shape[0]
    resid = rc[:, d:] - rc[:, :d] @ coef_t
    return (resid * resid).sum(dim=0)


def decision_norms(
    summ: CentredSummary, d: int, fit_intercept: bool, tol: float, data_tol: float | None
) -> Tensor:
    """Per-column norms ``N`` such that a column is aliased when its orthogonal part <= tol * N.

    The raw (uncentred) weighted norm is ``hypot(||x_c||, sqrt(W) * |mean|)``; with
    ``data_tol`` the threshold is ``max(data_tol * raw, tol * centred)`` (NOTE [rank
    tolerance]).
    """
    centred = column_norms(summ.r[:, :d])
    raw = centred
    if fit_intercept:
        raw = torch.hypot(centred, summ.sum_weights.sqrt() * summ.means[:d].abs())
    if data_tol is None:
        return raw
    return torch.maximum(raw * (data_tol / tol), centred)


def unit_columns(a: Tensor) -> Tensor:
    norms = column_norms(a)
    return a / torch.where(norms > 0, norms, torch.ones_like(norms))[None, :]


# NOTE [condition estimate]
# The condition number steers the refinement policy and the accuracy warnings, and
# statsmodels reports it. Its singular values cost ~10 p^3 flops, which is nothing at 100
# columns and dominated a 2,000-column fit (three calls, 12 of 19 s); at 10,000 columns it
# is minutes. Above EXACT_CONDITION_MAX columns the extreme singular values of the triangular
# factor come from a few steps of block power iteration on R'R and on its inverse (two
# triangular solves per step): O(p^2) per step. Power iteration approaches the largest
# singular value from below and the smallest from above, so the estimate can only be low;
# with a block of 8 vectors and 12 steps it is within a few percent wherever the ratio is
# large enough to matter (tested against svdvals on graded and random factors).
EXACT_CONDITION_MAX = 512
_BLOCK, _STEPS = 8, 12


def condition_number(r: Tensor) -> float:
    """The 2-norm condition number of the upper triangular ``r`` (inf when singular):
    exact up to :data:`EXACT_CONDITION_MAX` columns, estimated above (NOTE [condition
    estimate]).

    Example:
        >>> condition_number(torch.tensor([[2.0, 0.0], [0.0, 0.5]]))
        4.0
    """
    top, low = extreme_singular_values(r)
    ratio = top / low if low > 0 else math.inf
    return ratio if math.isfinite(ratio) else math.inf


def extreme_singular_values(r: Tensor) -> tuple[float, float]:
    """The largest and smallest singular values of the upper triangular ``r`` (0 for the
    smallest when it is singular); see :func:`condition_number`."""
    p = r.shape[1]
    if p == 0:
        return 1.0, 1.0
    if p <= EXACT_CONDITION_MAX:
        sv = torch.linalg.svdvals(r)
        return float(sv[0]), float(sv[-1])
    if not all_finite(r) or not bool((r.diagonal() != 0).all()):
        return float(torch.linalg.matrix_norm(r)), 0.0
    g = torch.Generator().manual_seed(0)  # on the CPU, whatever r's device: reproducible
    start = torch.randn(p, _BLOCK, generator=g, dtype=torch.float64).to(r)
    v, w = start, start.clone()
    for _ in range(_STEPS):
        v = torch.linalg.qr(r.T @ (r @ v)).Q
        z = torch.linalg.solve_triangular(r.T, w, upper=False)
        w = torch.linalg.qr(torch.linalg.solve_triangular(r, z, upper=True)).Q
    # Rayleigh-Ritz on the last blocks: r's extreme singular values on their spans
    return float(torch.linalg.svdvals(r @ v)[0]), float(torch.linalg.svdvals(r @ w)[-1])
