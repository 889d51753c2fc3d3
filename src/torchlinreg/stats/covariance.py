"""Heteroscedasticity-robust (HC0-HC3) covariances and the Wald F test, for OLSResults.

The sandwich ``C (A' diag(u) A) C`` with ``C = (A'A)^-1`` is computed without ``C``: with
``A = Q R`` (a Householder QR of the whitened rows, so ``Q`` is orthonormal to rounding
whatever the fit's own factor was) it is ``R^-1 (Q' diag(u) Q) R^-T``, ``R^-1`` applied by
triangular solves, and the leverage is ``h_i = ||Q_i||^2``. An explicit ``C`` squares the
condition number: on Longley (cond ~5e9) it left 7.8-8.0 correct digits, this keeps 11-12.

Example:
    >>> import torch
    >>> A = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    >>> e = torch.tensor([[0.1], [-0.2], [0.1]], dtype=torch.float64)
    >>> hc_covariance(A, e, "HC0", 3, 1).shape
    torch.Size([2, 2, 1])
"""

from __future__ import annotations

import functools
import math
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import DegenerateWarning, RankWarning
from ..exact.ddouble import two_prod, two_sum
from ..exact.linalg import inverse_and_kappa
from ..exact.solve import ACCURACY_WARNING

# NOTE [leverage one]
# A row whose leverage is 1 (the only row a column or a combination of columns sees, e.g.
# a dummy for one observation) has residual 0, and HC2/HC3 divide it by 1 - h = 0: their
# definition gives 0/0, so they are NaN, as statsmodels' formula implies (it returns
# whatever the rounding left). Computed h carries the rounding of Q's row norms, which
# accumulates over the n-long inner products of the QR: measured up to 2.6 sqrt(n) eps
# for true leverage-1 rows (n up to 1e6, 2 to 50 columns), usually a few eps. So h counts
# as 1 when 1 - h <= 32 sqrt(n q) eps (8e-14 for Longley's 16 x 7, 4e-11 for 1e6 x 2):
# below that 1 - h has no correct digit, while a real leverage of 1 - 1e-10 on a
# 1e6-row fit still has 2-3.
LEVERAGE_ONE_FACTOR = 32.0
_NAMED_ROWS = 5  # rows named in the warning

# NOTE [warnings name the caller]
# The covariances are computed lazily, several calls below what the user wrote (``bse`` is
# a cached property: functools' __get__, then _cov, _robust_cov_basis, _robust, ...), and
# how deep depends on the path taken. A fixed stacklevel named covariance.py, results.py
# or functools.py instead of the user's line; the level is counted instead, to the first
# frame outside this package and functools (Python 3.11 has no skip_file_prefixes).
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_FUNCTOOLS = os.path.abspath(functools.__file__)


def user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` in the function that calls this one that
    names the first frame outside torchlinreg and functools (NOTE [warnings name the
    caller])."""
    level, frame = 1, sys._getframe(1)
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not (name.startswith(_PACKAGE) or name == _FUNCTOOLS):
            return level
        frame, level = frame.f_back, level + 1
    return level - 1


def q_basis(
    A: Tensor, shift: Tensor | Reference | None = None
) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """``Q`` of the whitened rows ``A`` ``(n, q)`` and what maps a meat in its basis to the
    parameters' covariance, ``R^-1 meat R^-T``.

    With ``shift`` (the offsets of the columns after the first, the intercept's, where
    they dominate the spread: NOTE [refinement about the shift] in exact/refine.py) ``A``
    holds the rows about it (the offsets subtracted before the weights: exact near them,
    Sterbenz) and the map is ``P meat P'`` with ``P = M R_s^-1`` formed without
    cancellation: from the raw rows a column near 1e9 with a spread of 0.01 gave HC
    standard errors 6.8e-8 off, and shifting the whitened rows left 1.6e-6 with weights.
    With a :class:`Reference` (no intercept) ``A`` holds the rows about a reference
    column (:func:`about_reference`) and ``P`` is :func:`reference_inverse`'s.
    """
    Q, R = torch.linalg.qr(A, mode="reduced")
    if shift is None:
        return Q, lambda meat: _sandwich(R, meat)
    if isinstance(shift, Reference):
        P = reference_inverse(R, shift)[0]
    else:
        from ..exact.refine import ShiftedFactor

        P = ShiftedFactor(R, shift).raw_inverse()[0]

    def sandwich(meat: Tensor) -> Tensor:
        cov = P @ meat @ P.T
        return (cov + cov.transpose(-1, -2)) / 2

    return Q, sandwich


# NOTE [columns about a reference column]
# Without an intercept no ones column takes the offsets: columns near 1e8 with a spread
# of 1 are nearly collinear as given (kappa ~1e8 to 1e10 near 1e10 with a spread of
# 0.01), and the Householder Q of the raw rows holds their spread only to eps times the
# offsets. HC standard errors were 1e-8 to 3e-5 off (within the covariance warning's
# 4 eps kappa, but only just once the residuals were projected: NOTE [the residuals HC
# squares]), the nonrobust ones 2e-10 to 9e-8 near 1e8 and up to 1.2e-5 near 1e10 (all
# with the warning). The offsets are an exact change of basis away:
# with r the column whose offset is largest next to its spread, and c_j = mean_j / mean_r
# for the other columns whose offset dominates (over _OFFSET_RATIO times the spread),
# A = Y T with Y_j = A_j - c_j A_r (rounded once: TwoProd and TwoSum, before the weights)
# and T = I + e_r c'. Y keeps the spread to eps of itself and is conditioned like the
# data's spread, so Q of Y is the accurate basis of the same column space, and
# P = T^-1 R_Y^-1 (row r of R_Y^-1 less c' R_Y^-1) the raw parameters' map, each raw
# parameter a difference only where the data make it one. Taken only where the raw
# factor's covariance would be off past ACCURACY_WARNING / 64 (a pass over the rows
# and a QR of them, at most once per fit).
_OFFSET_RATIO = 64.0  # as exact/refine.py's: offsets below it cost the raw factor little


@dataclass(frozen=True)
class Reference:
    """Columns taken about a reference column (NOTE [columns about a reference column]):
    ``Y_j = A_j - coef_j A_column``, ``coef`` ``(q,)`` zero at ``column`` and where a
    column's offset does not dominate its spread."""

    column: int
    coef: Tensor


def reference_columns(A: Tensor) -> Reference | None:
    """The :class:`Reference` of the raw design ``A`` ``(n, q)`` where two or more columns'
    offsets (means) exceed ``_OFFSET_RATIO`` times their spread (rms about the mean);
    None otherwise."""
    if A.shape[0] < 2 or A.shape[1] < 2:
        return None
    mean = A.mean(0)
    spread = torch.linalg.vector_norm(A - mean, dim=0) / math.sqrt(A.shape[0])
    dominated = mean.abs() > _OFFSET_RATIO * spread
    if int(dominated.sum()) < 2:
        return None
    ratio = torch.where(dominated, mean.abs() / spread, -1.0)  # a constant column: inf
    r = int(torch.argmax(ratio))
    coef = torch.where(dominated, mean / mean[r], 0.0)
    coef[r] = 0.0
    return Reference(r, coef)


def about_reference(A: Tensor, ref: Reference) -> Tensor:
    """The raw rows ``A`` ``(n, q)`` about the reference column, each ``A_j - c_j A_r``
    rounded once (NOTE [columns about a reference column]); a new tensor."""
    Y = A.clone()
    x = A[:, ref.column]
    for j in torch.nonzero(ref.coef).reshape(-1).tolist():
        p, p_err = two_prod(x, ref.coef[j].expand_as(x))
        d, d_err = two_sum(A[:, j], -p)
        Y[:, j] = d + (d_err - p_err)
    return Y


def reference_inverse(R: Tensor, ref: Reference) -> tuple[Tensor, float]:
    """``P = T^-1 R^-1`` of the raw design from the factor ``R`` of the rows about the
    reference column, and the condition bound of ``R`` (:func:`inverse_and_kappa`),
    which sets its accuracy (NOTE [columns about a reference column])."""
    inv, kappa = inverse_and_kappa(R)
    inv[ref.column] = inv[ref.column] - ref.coef @ inv
    return inv, kappa


def _sandwich(R: Tensor, meat: Tensor) -> Tensor:
    """``R^-1 meat R^-T`` for a stack of meats ``(k, q, q)``, symmetric to the last bit."""
    left = torch.linalg.solve_triangular(R, meat, upper=True)
    cov = torch.linalg.solve_triangular(R, left.transpose(-1, -2), upper=True)
    return (cov + cov.transpose(-1, -2)) / 2


def leverage(A: Tensor) -> Tensor:
    """Diagonal of the hat matrix ``A (A'A)^-1 A'``, ``(n,)``, from a QR of ``A``."""
    Q = torch.linalg.qr(A, mode="reduced").Q
    return (Q * Q).sum(1)


def leverage_one_rows(h: Tensor, n_params: int) -> list[int]:
    """Indices of the rows whose leverage is 1 to rounding (NOTE [leverage one])."""
    eps = torch.finfo(h.dtype).eps
    tol = LEVERAGE_ONE_FACTOR * math.sqrt(h.shape[0] * max(n_params, 1)) * eps
    return torch.nonzero(1 - h <= tol).reshape(-1).tolist()


# NOTE [one minus leverage]
# 1 - h taken as 1 - ||q_i||^2 keeps about eps sqrt(n) / (1 - h) of itself: a row of
# leverage 1 - 1.4e-11 (grunfeld with one row's columns x 1e4) had HC3 standard errors
# 4.6e-5 off, Cook's distance 2.6e-5 and studentized residuals 6.6e-6, silently, above
# the leverage-one cut (NOTE [leverage one]) and far below 8 digits. For such a row
# 1 - h_i = 1 / (1 + g_i) with g_i = ||a_i R_(i)^-1||^2 and R_(i) the factor of the other
# rows (h = g / (1 + g)), which has all its digits: rows with 1 - h below _RECOMPUTE are
# taken so, each from a QR of the rows without it, the smallest 1 - h first, while the
# QRs stay within _BUDGET n q^2 (about 0.3 s; rare categories of a large fit can put many rows
# there: 64 QRs of 1e6 x 100 would take half a minute). The rest keep 1 - h, with a
# warning where its quoted error passes ACCURACY_WARNING.
_RECOMPUTE = 1e-4
_BUDGET = 1e8


def one_minus_leverage(A: Tensor, h: Tensor, ones: list[int], what: str = "HC2/HC3") -> Tensor:
    """``1 - h`` ``(n,)`` for the rows ``A`` ``(n, q)`` and their leverage ``h``, from the
    other rows' factor where it is small (NOTE [one minus leverage]); rows ``ones``
    (leverage 1 to rounding) keep theirs; ``what`` names the statistics in a warning."""
    omh = 1 - h
    skip = set(ones)
    low = torch.nonzero(omh < _RECOMPUTE).reshape(-1)  # a few rows: no sort of all n
    low = low[torch.argsort(omh[low])].tolist()
    near = [i for i in low if i not in skip]
    n, q = A.shape
    most = int(_BUDGET // max(n * q * q, 1))
    left = near[most:]
    if left:
        err = LEVERAGE_ONE_FACTOR * math.sqrt(n * max(q, 1)) * torch.finfo(h.dtype).eps
        worst = 2 * err / float(omh[left[0]])
        if worst > ACCURACY_WARNING:
            warnings.warn(
                f"{len(left)} rows have leverage within {_RECOMPUTE:g} of 1, too many to take "
                f"1 - h again from the other rows: {what} built on it may be off by up to "
                f"{worst:.1e} (relative); drop or merge the columns that single them out",
                RankWarning,
                stacklevel=user_stacklevel(),
            )
    for i in near[:most]:
        rest = torch.cat([A[:i], A[i + 1 :]])
        R = torch.linalg.qr(rest, mode="r").R
        if R.shape[0] < A.shape[1]:
            continue
        z = torch.linalg.solve_triangular(R, A[i : i + 1], upper=True, left=False)
        g = float((z * z).sum())
        if math.isfinite(g):
            omh[i] = 1 / (1 + g)
    return omh


def _warn_leverage_one(rows: list[int], cov_type: str) -> None:
    shown = ", ".join(str(i + 1) for i in rows[:_NAMED_ROWS])
    more = f" and {len(rows) - _NAMED_ROWS} more" if len(rows) > _NAMED_ROWS else ""
    which = "rows" if len(rows) > 1 else "row"
    warnings.warn(
        f"{which} {shown}{more} (counting from 1) have leverage 1: {cov_type} divides their "
        f"zero residuals by 1 - h = 0, so its covariance is NaN; use cov_type='HC0' or "
        "'HC1', or drop those observations (or the columns that single them out)",
        DegenerateWarning,
        stacklevel=user_stacklevel(),
    )


def hc_covariance(
    A: Tensor,
    e: Tensor,
    cov_type: str,
    nobs: int,
    df_resid: float,
    shift: Tensor | Reference | None = None,
    project: bool = False,
) -> Tensor:
    """Sandwich ``C (A' diag(u**2) A) C`` per target, ``(q, q, k)``, with ``C = (A'A)^-1``.

    ``A`` ``(n, q)`` are the whitened rows (``sqrt(w)`` times the design) and ``e``
    ``(n, k)`` the whitened residuals, as statsmodels' WLS uses them. HC0: ``u = e``; HC1:
    HC0 times ``nobs / df_resid``; HC2: ``u = e / sqrt(1 - h)``; HC3: ``u = e / (1 - h)``,
    with ``h`` the leverage. Rows of leverage 1 make HC2/HC3 NaN, with a
    DegenerateWarning naming them (NOTE [leverage one]). ``project`` takes ``e`` to the
    exact least-squares solution's residuals first (NOTE [the residuals HC squares]).
    """
    Q, sandwich = q_basis(A, shift)  # shift: see q_basis
    if project:
        e = project_out(Q, e)
    u2 = e * e
    if cov_type in ("HC2", "HC3"):
        h = (Q * Q).sum(1)
        ones = leverage_one_rows(h, A.shape[1])
        one_minus_h = one_minus_leverage(A, h, ones)[:, None]
        u2 = u2 / one_minus_h if cov_type == "HC2" else u2 / (one_minus_h * one_minus_h)
        if ones:
            u2[ones] = math.nan
            _warn_leverage_one(ones, cov_type)
    # the meat Q' diag(u2) Q per target, then R^-1 (meat) R^-T by two triangular solves
    meat = torch.stack([(Q * u2[:, t : t + 1]).T @ Q for t in range(u2.shape[1])])
    cov = sandwich(meat)
    if cov_type == "HC1":
        if df_resid <= 0:
            warnings.warn(
                f"no residual degrees of freedom (nobs={nobs}): HC1 scales by nobs / "
                "df_resid, so it is NaN; use cov_type='HC0' or add observations",
                DegenerateWarning,
                stacklevel=user_stacklevel(),
            )
        cov = cov * (nobs / df_resid if df_resid > 0 else math.nan)
    return cov.permute(1, 2, 0)


# NOTE [the residuals HC squares]
# A sandwich squares the residuals, so it moves to first order with the coefficients
# they are taken at: by about their error times |fitted| / |resid| (the nonrobust
# covariance only to second order, the residuals being orthogonal to the columns). The
# coefficients returned are the least-squares solution rounded to float64 (or as far as
# refinement, or the refinement policy where it did not run, left them), and columns near
# 1e8 without an intercept with residuals of 1e-3 gave HC standard errors 4e-6 to 3e-5
# from the exact solution's (1e-3 near 1e10) where the covariance warning quoted 2e-7 to
# 8e-7: its bound (4 eps kappa) is the factor's, not this. The exact solution's residuals
# are (I - H) e for the residuals e of any coefficients, H = Q Q' the projection on the
# columns: e - Q (Q' e) removes the part the coefficients' error put there. Q' e is small
# and its float64 rounding is eps |e| at most, so the residuals come out to about eps kappa
# of themselves (kappa of the rows Q is of: the covariance warning's own, near 1 about a
# reference column) whatever the coefficients' error; a bound on that error was 300x above the
# actual move on Fair's data near 1e8 (5e-11) and warned where nothing was wrong. In
# memory every fit takes it since 2026-11-29 (with an intercept too): the returned
# coefficients' residuals put HC3 20x (HC0 4.8e-5) from the exact solution's with weights
# over 16 decades and offsets of 1e9 (longley), 2.3e-7..4.2e-7 at offsets of 1e9 without
# weights, 7.7e-8 beside a row of leverage 1 - 1.4e-11. The second pass over blocks
# (robust_from_blocks, train --cov-type) has no Q to project with: it sums A'e beside its
# meat and reads the blocks again at e - A delta where the move could pass 1e-8 (NOTE
# [blocks at the least-squares residuals] in robust_blocks.py).


def project_out(Q: Tensor, e: Tensor) -> Tensor:
    """``e - Q (Q' e)``: residuals ``e`` ``(n, k)`` without their part in the span of the
    orthonormal ``Q`` ``(n, q)``, i.e. the exact least-squares residuals of the rows that
    ``Q`` spans (NOTE [the residuals HC squares])."""
    return e - Q @ (Q.T @ e)
