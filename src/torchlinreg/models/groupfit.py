"""The batched fit behind ``ols(groups=)``: one R factor per group, and what it yields.

NOTE [grouped fit]
Rows are centred by their group's (weighted) mean, twice (the second pass removes what
rounding left of the mean, so data near 1e9 keeps the digits of its spread), scaled per
group and column by a power of two, and reduced to one R factor per group by batched
Householder QR over padded slabs (``segments.py``). From R: the slopes by a triangular
solve, ``(X'WX)^-1`` as ``R^-1 R^-T`` (the condition number is not squared), the
intercept as ``mean(y) - mean(x) b``. Residuals, sums of squares and leverages come from
the rows again (one more pass), so the statistics do not lose the digits a fit close to
exact would lose from R alone. A group with no more rows than parameters, or whose
columns are collinear (a column constant within the group, two columns proportional),
gets NaN everywhere; one DegenerateWarning counts them, and no group stops the others.

Example:
    >>> import numpy as np
    >>> seg = Segments.from_labels(np.array([0, 0, 0, 1, 1, 1]))
    >>> x = torch.arange(6.0, dtype=torch.float64)[:, None]
    >>> fit_groups(seg, x, x[:, 0] ** 2, None, True).params.round(decimals=9).tolist()
    [[-0.333333333, 2.0], [-15.333333333, 8.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .segments import Segments


@dataclass
class GroupedFit:
    """What the batched fit leaves for the statistics (tensors with a group axis)."""

    seg: Segments
    params: Tensor  # (G, p)
    cov_unscaled: Tensor  # (G, p, p)
    ssr: Tensor
    centered_tss: Tensor
    uncentered_tss: Tensor
    sum_log_w: Tensor
    bad: Tensor  # (G,) bool: NaN statistics
    # rows kept for HC covariances: centred X, residuals, weights, means of X
    xc: Tensor
    resid: Tensor
    weights: Tensor | None
    x_mean: Tensor
    fit_intercept: bool


def _centre(seg: Segments, Z: Tensor, w: Tensor | None) -> tuple[Tensor, Tensor]:
    """(per-group weighted means, rows minus their group's mean), in two passes."""
    if w is None:
        sw = seg.counts.to(Z.dtype)[:, None]
        mean = seg.sum(Z) / sw
        D = Z - mean[seg.codes]
        mean = mean + seg.sum(D) / sw  # what rounding left of the mean
    else:
        sw = seg.sum(w)[:, None]
        mean = seg.sum(w[:, None] * Z) / sw
        D = Z - mean[seg.codes]
        mean = mean + seg.sum(w[:, None] * D) / sw
    return mean, Z - mean[seg.codes]


def fit_groups(
    seg: Segments, X: Tensor, y: Tensor, w: Tensor | None, fit_intercept: bool
) -> GroupedFit:
    """The batched fit of NOTE [grouped fit]."""
    d = X.shape[1]
    eps = torch.finfo(torch.float64).eps
    wt = torch.ones_like(y) if w is None else w
    Z = torch.cat([X, y[:, None]], dim=1)
    if fit_intercept:
        mean, D = _centre(seg, Z, w)
    else:
        mean, D = Z.new_zeros((seg.n_groups, d + 1)), Z
    root_w = None if w is None else w.sqrt()[:, None]
    A = D if w is None else D * root_w
    # powers of two: exact, and keep data near 1e200 or 1e-200 inside the range
    amax = seg.amax(A.abs())
    scale = torch.where(amax > 0, torch.exp2(torch.round(torch.log2(amax))), 1.0)
    R = seg.qr_r(A / scale[seg.codes])
    Rxx, rxy = R[:, :d, :d], R[:, :d, d]
    # rank: a column (nearly) in the span of those before it, or constant within its group
    diag = torch.diagonal(Rxx, dim1=1, dim2=2).abs()
    norms = torch.linalg.vector_norm(Rxx, dim=1)
    nobs = seg.counts.to(torch.float64)
    positive = nobs if w is None else seg.sum((w > 0).to(torch.float64))
    tol = torch.clamp(nobs, min=d + 1)[:, None] * eps * 8
    raw = seg.amax(X.abs() if w is None else (X * root_w).abs())
    flat = amax[:, :d] <= 16 * eps * raw if fit_intercept else raw == 0
    bad = (positive <= d + fit_intercept) | (diag <= tol * norms).any(1) | flat.any(1)
    eye = torch.eye(d, dtype=X.dtype, device=X.device).expand_as(Rxx)
    Rsafe = torch.where(bad[:, None, None], eye, Rxx)
    b = torch.linalg.solve_triangular(Rsafe, rxy[..., None], upper=True)[..., 0]
    b = b * scale[:, d : d + 1] / scale[:, :d]
    rinv = torch.linalg.solve_triangular(Rsafe, eye, upper=True)
    V = (rinv @ rinv.mT) / (scale[:, :d, None] * scale[:, None, :d])
    resid = D[:, d] - (D[:, :d] * b[seg.codes]).sum(1)
    ssr = seg.sum(resid * resid if w is None else w * resid * resid)
    yc = D[:, d] if fit_intercept else y
    ctss = seg.sum(yc * yc if w is None else w * yc * yc)
    with np.errstate(divide="ignore"):
        logw = torch.log(wt) if w is not None else torch.zeros_like(wt)
    if fit_intercept:
        sw = seg.sum(wt)
        mx = mean[:, :d]
        vm = (V @ mx[..., None])[..., 0]
        params = torch.cat([(mean[:, d] - (mx * b).sum(1))[:, None], b], dim=1)
        cov = X.new_zeros((seg.n_groups, d + 1, d + 1))
        cov[:, 0, 0] = 1 / sw + (mx * vm).sum(1)
        cov[:, 0, 1:] = -vm
        cov[:, 1:, 0] = -vm
        cov[:, 1:, 1:] = V
    else:
        params, cov, mx = b, V, mean[:, :d]
    nan = torch.tensor(float("nan"), dtype=X.dtype, device=X.device)
    params = torch.where(bad[:, None], nan, params)
    cov = torch.where(bad[:, None, None], nan, cov)
    ssr = torch.where(bad, nan, ssr)
    return GroupedFit(
        seg=seg,
        params=params,
        cov_unscaled=cov,
        ssr=ssr,
        centered_tss=ctss,
        uncentered_tss=seg.sum(wt * y * y),
        sum_log_w=seg.sum(logw),
        bad=bad,
        xc=D[:, :d],
        resid=resid,
        weights=w,
        x_mean=mx,
        fit_intercept=fit_intercept,
    )
