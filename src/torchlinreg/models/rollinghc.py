"""HC0-HC3 covariances of rolling fits, from each window's own rows.

A robust covariance needs each row's residual under each window's parameters, so it
cannot come from the windows' moments without cancelling (``sum e^2 x x'`` expanded in
the parameters subtracts fourth moments as large as ``y``'s spread). Each window's rows
are gathered instead (runs of window ends, a bounded gather), about the window's mean:
``x~ = [1, x - mean]`` has the bread ``diag(1 / sum w, M_xx^-1)``, and the sandwich is
mapped back to the raw parameters by ``A' V A``, ``A = [[1, 0], [-mean, I]]``. As
statsmodels (``RollingOLS(..).fit(cov_type="HC0")``, and ``OLS``/``WLS`` for HC1-HC3):
the meat is ``sum w^2 e^2 x x'`` (HC0), times ``nobs / df_resid`` (HC1), each row divided
by ``1 - h`` (HC2) or ``(1 - h)^2`` (HC3), ``h = w x' (X'WX)^-1 x`` the row's leverage in
its window. The cost is ``window x p^2`` per window (statsmodels' is the same).

Example:
    >>> import numpy as np
    >>> from torchlinreg.models.rolling import rolling_ols
    >>> x = np.arange(8.0); y = x + np.array([0.5, -0.5] * 4) * x
    >>> rolling_ols(x, y, window=4, cov_type="HC0").bse[-1].round(4).tolist()  # as RollingOLS
    [3.5545, 0.6969]
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from ..errors import DegenerateWarning
from ..stats.covariance import LEVERAGE_ONE_FACTOR
from .momentsolve import solve_batch
from .windows import WindowLayout

_GATHER = 1 << 22  # elements of one gather of window rows
KINDS = ("HC0", "HC1", "HC2", "HC3")


def window_rows(layout: WindowLayout, ends: Tensor, count: Tensor) -> tuple[Tensor, Tensor]:
    """Row indices ``(m, width)`` of the windows ending at rows ``ends`` (latest first),
    and which are inside the window (``count`` rows each)."""
    order = layout.order
    rank = layout.rank
    width = int(count.max()) if count.numel() else 0
    offsets = torch.arange(width, device=ends.device)
    inside = offsets[None, :] < count[:, None]
    idx = order[(rank[ends][:, None] - offsets[None, :]).clamp(min=0)]
    return idx, inside


def hc_cov(
    layout: WindowLayout,
    Z: Tensor,
    w: Tensor,
    need: int,
    fit_intercept: bool,
    kind: str,
    diag: bool,
) -> Tensor:
    """HC covariances of every window ``(n, p, p)`` (``(n, p)`` diagonals with ``diag``)."""
    n, q = Z.shape
    p = q - 1 + fit_intercept
    out = Z.new_full((n, p) if diag else (n, p, p), float("nan"))
    ones = 0  # windows with a row of leverage 1 (HC2, HC3)
    for rows, mom in layout.chunks(Z, w):
        fit = solve_batch(mom, mom.count >= need, fit_intercept, cov="full")
        step = max(1, _GATHER // max(1, int(mom.count.max()) * q))
        for lo in range(0, rows.numel(), step):
            sl = slice(lo, lo + step)
            ok = ~fit["bad"][sl]
            if not bool(ok.any()):
                continue
            cov, one = _sandwich(layout, Z, w, rows[sl][ok], mom.count[sl][ok],
                                 mom.mean[sl][ok], fit["b"][sl][ok], fit["cov"][sl][ok],
                                 fit_intercept, kind)  # fmt: skip
            at = rows[sl][ok]
            out[at] = torch.diagonal(cov, dim1=1, dim2=2) if diag else cov
            ones += int(one.sum())
    if ones:
        warnings.warn(
            f"{ones} windows have rows of nonzero weight at leverage 1 (in particular those "
            f"with no more such rows than parameters): {kind} divides their zero residuals "
            "by 1 - h = 0, so its covariance is NaN there; use HC0 or HC1, or widen the "
            "window",
            DegenerateWarning,
            stacklevel=5,
        )
    return out


def _sandwich(layout, Z, w, ends, count, mean, b, V, fit_intercept: bool, kind: str) -> Tensor:
    d = Z.shape[1] - 1
    idx, inside = window_rows(layout, ends, count)
    ww = w[idx] * inside
    D = Z[idx] - (mean if fit_intercept else torch.zeros_like(mean))[:, None, :]
    e = D[..., d] - (D[..., :d] * b[:, None, :]).sum(-1)
    if fit_intercept:  # about the window's mean: the bread is block diagonal
        X = torch.cat([torch.ones_like(D[..., :1]), D[..., :d]], dim=2)
        bread = torch.zeros_like(V)
        bread[:, 0, 0] = 1 / ww.sum(1)
        bread[:, 1:, 1:] = V[:, 1:, 1:]
    else:
        X, bread = D[..., :d], V
    s = ww * ww * e * e
    ones = torch.zeros_like(count, dtype=torch.bool)
    if kind in ("HC2", "HC3"):
        h = ww * ((X @ bread) * X).sum(-1)
        ones = leverage_one(h, ww, count, X.shape[2])
        s = s / (1 - h) if kind == "HC2" else s / (1 - h) ** 2
        s = torch.where(inside, s, 0.0)
    meat = (X * s[..., None]).transpose(1, 2) @ X
    cov = bread @ meat @ bread
    if kind == "HC1":
        cov = cov * (count / (count - X.shape[2]))[:, None, None]
    if fit_intercept:  # back to the raw parameters: A' cov A
        A = torch.eye(d + 1, dtype=cov.dtype, device=cov.device).repeat(len(cov), 1, 1)
        A[:, 1:, 0] = -mean[:, :d]
        cov = A.transpose(1, 2) @ cov @ A
    return torch.where(ones[:, None, None], float("nan"), cov), ones


def leverage_one(h: Tensor, ww: Tensor, count: Tensor, p: int) -> Tensor:
    """Windows with a row of nonzero weight at leverage 1 (NOTE [leverage one] in
    ``stats/covariance.py``): HC2/HC3 divide its zero residual by ``1 - h = 0``.

    NOTE [rolling leverage one]
    A window with exactly ``p`` rows of nonzero weight puts every one of them at leverage
    1, but ``h`` here comes through the moments' inverse, whose rounding grows with the
    window's condition number: such windows gave ``1 - h`` of 1e-13..1e-3 and finite HC3
    standard errors made of noise. So the count decides first (as for the parameters,
    ``momentsolve.no_fit_where``), then the single fit's tolerance on ``1 - h``.
    """
    eps = torch.finfo(h.dtype).eps
    tol = LEVERAGE_ONE_FACTOR * (count.to(h.dtype) * p).sqrt() * eps
    live = ww != 0
    k = live.sum(1)  # fewer than p: no fit at all, counted in that warning instead
    return (k >= p) & ((k == p) | (live & (1 - h <= tol[:, None])).any(1))
