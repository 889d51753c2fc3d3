"""Small dense kernels behind the exact engine: factor, rank decision, solvers.

Everything here works on the small ``(d + k) x (d + k)`` summary of a least-squares state,
never on the data. Tensors stay on their device; the only host syncs are the few scalar
decisions of :func:`aliased_columns`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ..errors import RankWarning

# NOTE [rank tolerance]
# A column is aliased when the part of it orthogonal to the earlier kept columns (and the
# intercept) is at most ``tol`` times its own raw, uncentred norm: LINPACK dqrdc2 / R's lm with
# limited pivoting. Dividing by the norm makes the decision independent of units. The raw norm,
# not the centred one, is the scale of the data's own rounding (a column 5 + 1e-3 * x is stored
# to eps * 5, not to eps * 1e-3), so a column that is an offset copy of another is still caught.
# Householder QR computes each orthogonal part with a relative error of about d * eps, and TSQR
# over thousands of blocks was measured at ~20 eps: below 100 * max(d, 10) * eps a column cannot
# be told from an exact dependence. That is the QR default (2.2e-13 for float64 at d = 10).
# R's 1e-7 is far too coarse for QR: NIST Filip's last column keeps 5e-8 of its norm, yet its
# certified solution is well defined in float64 (cond 3.8e9 after centring and scaling).
# The Gram route squares the condition number: its factor carries a relative error of about
# sqrt(eps_M), where the co-moments' own error eps_M grows with d (Cholesky) and, measured here,
# with sqrt(n) (accumulation over rows). Hence sqrt(100 * max(d, 10, sqrt(n)) * eps) for gram
# (4.7e-7 for Filip, 4.7e-6 at n = 1e6), which calls Filip rank-deficient: at that precision
# it is.


@dataclass(frozen=True)
class ExactSolution:
    """Coefficients and diagnostics of one solve of a :class:`LeastSquaresState`.

    ``rank`` counts the kept features (the intercept is not included: ``n_params`` is).
    ``rss`` is the weighted residual sum of squares per target. ``singular_values`` are those
    of the centred (when ``fit_intercept``), column-scaled feature factor, and ``cond`` is
    their ratio, a unit-free condition number. ``tol`` is the rank tolerance used.
    """

    coef: Tensor
    intercept: Tensor
    rank: int
    aliased: tuple[int, ...]
    rss: Tensor
    singular_values: Tensor
    cond: float
    tol: float
    alpha: float
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


def psd_upper_factor(M: Tensor) -> Tensor:
    """Upper-triangular ``R`` with ``R.T @ R == M`` for a symmetric positive semidefinite ``M``.

    Cholesky on the equilibrated matrix (unit diagonal, so the result does not depend on the
    columns' units); when that fails (semidefinite, or indefinite by rounding) it falls back to
    an eigendecomposition with the negative rounding noise clipped, re-triangularised by QR.
    """
    m = M.shape[0]
    if m == 0:
        return M.clone()
    diag = M.diagonal().clamp_min(0).sqrt()
    scale = torch.where(diag > 0, diag, torch.ones_like(diag))
    Ms = M / scale[:, None] / scale[None, :]
    Ms = (Ms + Ms.T) / 2
    R, info = torch.linalg.cholesky_ex(Ms, upper=True)
    if int(info) != 0:
        evals, evecs = torch.linalg.eigh(Ms)
        half = evals.clamp_min(0).sqrt()[:, None] * evecs.T
        R = torch.linalg.qr(half, mode="r").R
    return R * scale[None, :]


def aliased_columns(rxx: Tensor, norms: Tensor, tol: float) -> list[int]:
    """Indices of columns of the upper-triangular ``rxx`` that are collinear with earlier ones.

    Columns are scanned left to right: column j is aliased when its part orthogonal to the
    earlier kept columns is at most ``tol * norms[j]`` (a zero norm means a zero column); it
    is then dropped and the scan goes on with the remaining columns re-triangularised against
    the kept ones only (limited pivoting, as LINPACK dqrdc2). Full rank costs one vector check.
    """
    d = rxx.shape[1]
    t = rxx / torch.where(norms > 0, norms, torch.ones_like(norms))[None, :]
    aliased: list[int] = []
    idx = list(range(d))
    while idx:
        small = (t.diagonal().abs() <= tol).tolist()
        if not any(small):
            break
        p = small.index(True)
        aliased.append(idx[p])
        # Rows p.. of the remaining columns are their parts orthogonal to the kept ones.
        rest, rest_idx = t[p:, p + 1 :], idx[p + 1 :]
        # A column already negligible against the kept set stays so as the set grows: drop
        # all such at once (n < d leaves many, and one QR per column would cost O(d^4)).
        gone = (torch.linalg.vector_norm(rest, dim=0) <= tol).tolist()
        aliased.extend(j for j, g in zip(rest_idx, gone, strict=True) if g)
        keep = [i for i, g in enumerate(gone) if not g]
        idx = [rest_idx[i] for i in keep]
        if idx:
            t = torch.linalg.qr(rest[:, keep], mode="r").R
    return sorted(aliased)


def ridge_coefficients(rxx: Tensor, rxy: Tensor, alpha: float) -> Tensor:
    """``B`` (d, k) minimising ``||Y - X B||^2 + alpha ||B||^2`` from the factor of ``[X | Y]``.

    Appends ``sqrt(alpha) * I`` rows under the feature columns and re-factors, which never
    forms ``X'X + alpha I`` and so keeps the QR accuracy.
    """
    d, k = rxy.shape
    penalty = torch.zeros(d, d + k, dtype=rxx.dtype, device=rxx.device)
    penalty[:, :d] = math.sqrt(alpha) * torch.eye(d, dtype=rxx.dtype, device=rxx.device)
    stacked = torch.cat([torch.cat([rxx, rxy], dim=1), penalty], dim=0)
    r = torch.linalg.qr(stacked, mode="r").R
    return torch.linalg.solve_triangular(r[:d, :d], r[:d, d:], upper=True)


def min_norm_coefficients(rxx: Tensor, rxy: Tensor, rank: int) -> Tensor:
    """Minimum-norm ``B`` (d, k) from the SVD of ``rxx`` truncated to ``rank``.

    Equal to ``numpy.linalg.lstsq`` on the (centred) data with that rank.
    """
    U, S, Vh = torch.linalg.svd(rxx)
    r = max(0, min(rank, int(S.shape[0])))
    return Vh[:r].T @ ((U[:, :r].T @ rxy) / S[:r, None])


def residual_sums(rc: Tensor, coef_t: Tensor) -> Tensor:
    """Per-target ``||Y - X B||^2`` from the factor ``rc`` of ``[X | Y]`` and ``B`` (d, k)."""
    d = coef_t.shape[0]
    resid = rc[:, d:] - rc[:, :d] @ coef_t
    return (resid * resid).sum(dim=0)


def solve_centred(
    summ: CentredSummary,
    d: int,
    fit_intercept: bool,
    alpha: float,
    tol: float,
    feature_names: Sequence[str] | None = None,
) -> ExactSolution:
    """OLS or ridge from a centred summary: rank decision, coefficients, intercept, rss.

    Full-rank OLS is one triangular solve and its rss the squared Y-block of the factor;
    rank-deficient OLS warns and takes the truncated-SVD minimum-norm solution.
    """
    r = summ.r
    rxx, rxy = r[:d, :d], r[:d, d:]
    aliased = aliased_columns(rxx, _raw_norms(summ, d, fit_intercept), tol)
    rank = d - len(aliased)
    if alpha > 0:
        coef_t = ridge_coefficients(rxx, rxy, alpha)
        rss = residual_sums(r, coef_t)
    elif not aliased:
        coef_t = torch.linalg.solve_triangular(rxx, rxy, upper=True)
        rss = (r[d:, d:] * r[d:, d:]).sum(dim=0)
    else:
        warnings.warn(_rank_message(aliased, d, feature_names), RankWarning, stacklevel=3)
        coef_t = min_norm_coefficients(rxx, rxy, rank)
        rss = residual_sums(r, coef_t)
    if fit_intercept:
        intercept = summ.means[d:] - summ.means[:d] @ coef_t
    else:
        intercept = r.new_zeros(r.shape[1] - d)
    sv = torch.linalg.svdvals(_unit_columns(rxx))
    return ExactSolution(
        coef=coef_t.T.contiguous(),
        intercept=intercept,
        rank=rank,
        aliased=tuple(aliased),
        rss=rss,
        singular_values=sv,
        cond=float(sv[0] / sv[-1]) if d else 1.0,
        tol=tol,
        alpha=alpha,
        fit_intercept=fit_intercept,
    )


def _raw_norms(summ: CentredSummary, d: int, fit_intercept: bool) -> Tensor:
    """Uncentred weighted norms of the feature columns, ``sqrt(||x_c||^2 + W * mean^2)``."""
    norms = torch.linalg.vector_norm(summ.r[:, :d], dim=0)
    if not fit_intercept:
        return norms
    return torch.sqrt(norms * norms + summ.sum_weights * summ.means[:d] ** 2)


def _unit_columns(a: Tensor) -> Tensor:
    norms = torch.linalg.vector_norm(a, dim=0)
    return a / torch.where(norms > 0, norms, torch.ones_like(norms))[None, :]


def _rank_message(aliased: list[int], d: int, names: Sequence[str] | None) -> str:
    cols = [repr(names[j]) if names is not None else str(j) for j in aliased]
    return (
        f"rank-deficient design: {len(aliased)} of {d} features are collinear with earlier "
        f"columns or the intercept and are aliased: {', '.join(cols)}; their coefficients "
        "take the minimum-norm solution. Drop these columns or use ridge (alpha > 0)."
    )
