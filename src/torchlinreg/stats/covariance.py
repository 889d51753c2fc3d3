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

import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from ..errors import DegenerateWarning

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


def q_basis(A: Tensor, shift: Tensor | None = None) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """``Q`` of the whitened rows ``A`` ``(n, q)`` and what maps a meat in its basis to the
    parameters' covariance, ``R^-1 meat R^-T``.

    With ``shift`` (the offsets of the columns after the first, the intercept's, where
    they dominate the spread: NOTE [refinement about the shift] in exact/refine.py) ``A``
    holds the rows about it (the offsets subtracted before the weights: exact near them,
    Sterbenz) and the map is ``P meat P'`` with ``P = M R_s^-1`` formed without
    cancellation: from the raw rows a column near 1e9 with a spread of 0.01 gave HC
    standard errors 6.8e-8 off, and shifting the whitened rows left 1.6e-6 with weights.
    """
    Q, R = torch.linalg.qr(A, mode="reduced")
    if shift is None:
        return Q, lambda meat: _sandwich(R, meat)
    from ..exact.refine import ShiftedFactor

    P = ShiftedFactor(R, shift).raw_inverse()[0]

    def sandwich(meat: Tensor) -> Tensor:
        cov = P @ meat @ P.T
        return (cov + cov.transpose(-1, -2)) / 2

    return Q, sandwich


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


def _warn_leverage_one(rows: list[int], cov_type: str) -> None:
    shown = ", ".join(str(i + 1) for i in rows[:_NAMED_ROWS])
    more = f" and {len(rows) - _NAMED_ROWS} more" if len(rows) > _NAMED_ROWS else ""
    which = "rows" if len(rows) > 1 else "row"
    warnings.warn(
        f"{which} {shown}{more} (counting from 1) have leverage 1: {cov_type} divides their "
        f"zero residuals by 1 - h = 0, so its covariance is NaN; use cov_type='HC0' or "
        "'HC1', or drop those observations (or the columns that single them out)",
        DegenerateWarning,
        stacklevel=2,
    )


def hc_covariance(
    A: Tensor, e: Tensor, cov_type: str, nobs: int, df_resid: float, shift: Tensor | None = None
) -> Tensor:
    """Sandwich ``C (A' diag(u**2) A) C`` per target, ``(q, q, k)``, with ``C = (A'A)^-1``.

    ``A`` ``(n, q)`` are the whitened rows (``sqrt(w)`` times the design) and ``e``
    ``(n, k)`` the whitened residuals, as statsmodels' WLS uses them. HC0: ``u = e``; HC1:
    HC0 times ``nobs / df_resid``; HC2: ``u = e / sqrt(1 - h)``; HC3: ``u = e / (1 - h)``,
    with ``h`` the leverage. Rows of leverage 1 make HC2/HC3 NaN, with a
    DegenerateWarning naming them (NOTE [leverage one]).
    """
    Q, sandwich = q_basis(A, shift)  # shift: see q_basis
    u2 = e * e
    if cov_type in ("HC2", "HC3"):
        h = (Q * Q).sum(1)
        one_minus_h = (1 - h)[:, None]
        u2 = u2 / one_minus_h if cov_type == "HC2" else u2 / (one_minus_h * one_minus_h)
        ones = leverage_one_rows(h, A.shape[1])
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
                stacklevel=2,
            )
        cov = cov * (nobs / df_resid if df_resid > 0 else math.nan)
    return cov.permute(1, 2, 0)
