"""HC0-HC3 covariances of grouped fits, batched over groups.

In each group's centred coordinates the bread is ``diag(1/sum(w), (Xc'WXc)^-1)`` and the
meat ``sum_i (w_i e_i)^2 f_i a_i a_i'`` with ``a_i = [1, xc_i]`` (statsmodels' WLS
sandwich on whitened rows), ``f_i`` 1, ``1 / (1 - h_i)`` or ``1 / (1 - h_i)^2``; the
leverage is ``h_i = w_i (1/sum(w) + xc_i' V xc_i)``. The result maps back to
``[const, slopes]`` with ``const = mean(y) - mean(x) b``.

Example:
    >>> import numpy as np
    >>> from torchlinreg.models.grouped import grouped_ols
    >>> x = np.arange(8.0); res = grouped_ols(x, x ** 2, groups=[0] * 4 + [1] * 4)
    >>> res.HC3_se.shape
    (2, 2)
"""

from __future__ import annotations

import numpy as np
import torch

from .groupfit import GroupedFit


def _bread(fit: GroupedFit) -> torch.Tensor:
    """The unscaled covariance in centred coordinates, ``(G, p, p)``."""
    cov = fit.cov_unscaled
    if not fit.fit_intercept:
        return cov
    out = torch.zeros_like(cov)
    out[:, 1:, 1:] = cov[:, 1:, 1:]
    wt = torch.ones_like(fit.resid) if fit.weights is None else fit.weights
    out[:, 0, 0] = 1 / fit.seg.sum(wt)
    return out


def hc_covariance(fit: GroupedFit, kind: str, df_resid: np.ndarray) -> np.ndarray:
    """HC covariance ``(G, p, p)`` of every group (NaN for the groups left out)."""
    seg, xc = fit.seg, fit.xc
    wt = torch.ones_like(fit.resid) if fit.weights is None else fit.weights
    ones = torch.ones_like(fit.resid)[:, None]
    a = torch.cat([ones, xc], dim=1) if fit.fit_intercept else xc
    bread = torch.nan_to_num(_bread(fit))
    u = wt * fit.resid
    if kind in ("HC2", "HC3"):
        h = _leverage(seg, a, bread, wt)
        u = u / (1 - h).sqrt() if kind == "HC2" else u / (1 - h)
    meat = seg.gram(a * u[:, None])
    cov = bread @ meat @ bread
    if kind == "HC1":
        cov = (
            cov
            * torch.as_tensor(
                seg.counts.cpu().numpy() / df_resid, dtype=cov.dtype, device=cov.device
            )[:, None, None]
        )
    if fit.fit_intercept:  # back to [const, slopes]: const = a_c - mean(x) b
        J = torch.eye(cov.shape[1], dtype=cov.dtype, device=cov.device).repeat(cov.shape[0], 1, 1)
        J[:, 0, 1:] = -fit.x_mean
        cov = J @ cov @ J.mT
    cov = torch.where(fit.bad[:, None, None], float("nan"), cov)
    return cov.detach().to("cpu", torch.float64).numpy()


def _leverage(seg, a: torch.Tensor, bread: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    """``h_i = w_i a_i' B_g a_i`` for every row, batched over padded slabs."""
    h = torch.zeros_like(wt)
    for groups, rows, index in seg.slabs(a):
        q = ((rows @ bread[groups]) * rows).sum(2)
        keep = index >= 0
        h[index[keep]] = q[keep]
    return wt * h
