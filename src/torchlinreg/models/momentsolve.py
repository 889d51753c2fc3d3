"""Least squares from centred moments, batched: one solve per summary (window or group).

The parameters come from a Cholesky factor of each summary's correlation matrix (columns
scaled to unit length, so only the correlation's condition number counts), the intercept
as ``mean(y) - mean(x) b``. Summaries whose columns are collinear (a column constant
within them, a combination of others) are NaN, and one warning counts them; summaries near
that, where the moments' route may have lost digits, are counted in a warning too.

Example:
    >>> from torchlinreg.models.windows import Moments
    >>> t = lambda v: torch.tensor(v, dtype=torch.float64)
    >>> M = t([[[2.0, 4.0], [4.0, 8.5]]])
    >>> m = Moments(t([3.0]), t([[1.0, 2.0]]), M, t([3.0]), t([[2.0, 8.5]]))
    >>> solve_moments(m, torch.tensor([True]), True)["params"].round(12).tolist()
    [[-0.0, 2.0]]
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from ..errors import DegenerateWarning, RankWarning
from .windows import Moments

# 1 - R^2 of a column on the others (the factor's squared diagonal, columns scaled):
# below _ALIASED the window is NaN; below _AT_RISK its parameters may have lost digits
_ALIASED = 1e-13
_AT_RISK = 1e-6
_FLAT = 1024.0
_SSR_RISK = 1e-11


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def solve_moments(m: Moments, full: Tensor, fit_intercept: bool, what: str = "windows") -> dict:
    """Parameters, unscaled covariances and sums of squares of every summary, batched.

    ``full``: the summaries that hold enough rows; ``what`` names them in warnings.
    """
    q = m.mean.shape[1]
    d = q - 1
    eps = torch.finfo(torch.float64).eps
    G = m.M if fit_intercept else m.M + m.w[:, None, None] * m.mean[:, :, None] * m.mean[:, None, :]
    Gxx, gxy, gyy = G[:, :d, :d], G[:, :d, d], G[:, d, d]
    sd = torch.sqrt(torch.diagonal(Gxx, dim1=1, dim2=2).clamp(min=0))
    # a column's centred sum of squares within its rounding (NOTE [rolling moments]'s raw
    # sums): constant in the window, or too nearly so for the moments to resolve
    flat = (sd**2 <= _FLAT * eps * m.raw[:, :d]) | (sd == 0) if fit_intercept else sd == 0
    safe = torch.where(flat, 1.0, sd)
    C = Gxx / (safe[:, :, None] * safe[:, None, :])
    eye = torch.eye(d, dtype=C.dtype, device=C.device)
    C = torch.where(flat.any(1)[:, None, None], eye, C)
    L, info = torch.linalg.cholesky_ex(C)
    pivots = torch.diagonal(L, dim1=1, dim2=2) ** 2
    low = pivots.min(1).values if d else torch.ones_like(m.w)
    bad = ~full | flat.any(1) | (info != 0) | ~(low > _ALIASED)
    L = torch.where(bad[:, None, None], eye, L)
    b = torch.cholesky_solve((gxy / safe)[:, :, None], L)[:, :, 0] / safe
    V = torch.cholesky_inverse(L) / (safe[:, :, None] * safe[:, None, :])
    ssr = (gyy - (gxy * b).sum(1)).clamp(min=0)
    # ssr = gyy - gxy'b cancels when the fit is close to exact: the moments' rounding
    # (eps * raw) against ssr says where the rows must give it instead (_exact_ssr)
    risk = ~bad & (eps * m.raw[:, d] > _SSR_RISK * ssr)
    ctss = m.M[:, d, d]
    utss = ctss + m.w * m.mean[:, d] ** 2
    if fit_intercept:
        mx = m.mean[:, :d]
        vm = (V @ mx[:, :, None])[:, :, 0]
        params = torch.cat([(m.mean[:, d] - (mx * b).sum(1))[:, None], b], dim=1)
        cov = V.new_zeros((V.shape[0], q, q))
        cov[:, 0, 0] = 1 / m.w + (mx * vm).sum(1)
        cov[:, 0, 1:] = -vm
        cov[:, 1:, 0] = -vm
        cov[:, 1:, 1:] = V
    else:
        params, cov = b, V
    _warn(bad & full, full & ~bad & (low < _AT_RISK), low, what)
    return {
        "params": _np(params), "cov": _np(cov), "ssr": _np(ssr), "ctss": _np(ctss),
        "utss": _np(utss), "bad": _np(bad).astype(bool), "b": b, "risk": risk,
    }  # fmt: skip


def _warn(aliased: Tensor, at_risk: Tensor, low: Tensor, what: str) -> None:
    if bool(aliased.any()):
        warnings.warn(
            f"{int(aliased.sum())} {what} get NaN statistics: a column is constant or "
            "collinear with others within them; drop the column or widen the window",
            DegenerateWarning,
            stacklevel=3,
        )
    if bool(at_risk.any()):
        worst = float(low[at_risk].min())
        warnings.warn(
            f"{int(at_risk.sum())} {what} have nearly collinear columns (1 - R^2 of a "
            f"column on the others down to {worst:.1e}); their parameters may have lost "
            f"up to {int(np.log10(1 / worst))} digits; drop or combine columns",
            RankWarning,
            stacklevel=3,
        )
