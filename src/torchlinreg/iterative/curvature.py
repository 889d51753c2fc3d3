"""Curvature and gap bounds from passes over the rows, where no Gram is formed.

Above ``GRAM_MAX_COLUMNS`` (``optimality.py``) the training objective's largest curvature,
which sets gd's and sgd's default steps, comes from power iteration on the rows, and with a
ridge penalty the gap is bounded by strong convexity. Both cost passes over the data; below
the threshold the Gram gives both exactly and these are not used.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .scaling import Scaler

__all__ = ["POWER_ITERATIONS", "gradient_bound", "largest_row_norm", "power_curvature"]

# Power iteration converges to the top eigenvalue from below; after 20 products the
# Rayleigh quotient is above half of it for any spectrum (the components below half are
# damped by 2^-40), so the step 1 / estimate stays below 2 / L: gd cannot diverge.
POWER_ITERATIONS = 20
_CHUNK = 65536


def power_curvature(
    X: Tensor,
    weight: Tensor | None,
    scaler: Scaler | None,
    *,
    alpha: float,
    total: float,
    fit_intercept: bool,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> float:
    """``lambda_max`` of ``([x', 1]^T W [x', 1] + diag(alpha / x_scale^2, 0)) / sum(w)``, the
    quantity ``Optimum.curvature`` gives from the Gram, by power iteration over row chunks."""
    d = X.shape[1]
    dt = torch.float64
    g = torch.Generator().manual_seed(0)  # the same start on every rank
    v = torch.randn(d + int(fit_intercept), generator=g, dtype=dt).to(X.device)
    pen = torch.full((d,), float(alpha), dtype=dt, device=X.device)
    if scaler is not None:
        pen = pen / scaler.x_scale.to(pen).square()
    estimate = 1.0
    for _ in range(POWER_ITERATIONS):
        v = v / torch.linalg.vector_norm(v)
        u = torch.zeros_like(v)
        for lo in range(0, X.shape[0], _CHUNK):
            xb = X[lo : lo + _CHUNK].to(dt)
            if scaler is not None:
                xb = (xb - scaler.x_mean.to(dt)) / scaler.x_scale.to(dt)
            pred = xb @ v[:d] + (v[d] if fit_intercept else 0.0)
            if weight is not None:
                pred = pred * weight[lo : lo + _CHUNK].to(dt)
            u[:d] += xb.T @ pred
            if fit_intercept:
                u[d] += pred.sum()
        if reduce is not None:
            u = reduce(u)
        u = u / total
        u[:d] += pen * v[:d]
        estimate = float(v @ u)
        v = u
    return max(estimate, 1e-300)


def largest_row_norm(
    X: Tensor,
    weight: Tensor | None,
    scaler: Scaler | None,
    *,
    fit_intercept: bool,
    reduce_max: Callable[[Tensor], Tensor] | None = None,
) -> float:
    """``max_i ||[x'_i, 1]||^2`` over the rows as trained (standardized or raw) with a
    positive weight: the noise scale of a one-row gradient, which bounds sgd's step
    (``solvers.py``)."""
    top = torch.zeros((), dtype=torch.float64, device=X.device)
    for lo in range(0, X.shape[0], _CHUNK):
        xb = X[lo : lo + _CHUNK].to(torch.float64)
        if scaler is not None:
            xb = (xb - scaler.x_mean.to(xb)) / scaler.x_scale.to(xb)
        norms = xb.square().sum(dim=1)
        if weight is not None:
            norms = norms * (weight[lo : lo + _CHUNK] > 0)
        if norms.shape[0]:
            top = torch.maximum(top, norms.amax())
    if reduce_max is not None:
        top = reduce_max(top.reshape(1))[0]
    return float(top) + float(fit_intercept)


def gradient_bound(
    source, penalty: tuple[float, Tensor], *, k: int, fit_intercept: bool, all_sum=None
) -> Callable[[Tensor, Tensor], Tensor]:
    """Per-target upper bounds on the gap from the full gradient, where ``alpha > 0``.

    Target ``j``'s objective divided by its total sum of squares is, in standardized
    coordinates, ``mu``-strongly convex with ``mu = min(2 alpha min(1 / x_scale^2) / sum(w),
    2)`` (the penalty; the intercept's direction has curvature 2 on centred features), so its
    gap is at most ``||grad_j||^2 / (2 mu)``; ``grad_j`` is ``k`` times target ``j``'s part
    of the training loss's gradient. One pass over the rows per call.
    """
    coef, scale = penalty
    mu = min(2.0 * coef * k * float(scale.min()), 2.0)

    def bound(weight: Tensor, bias: Tensor) -> Tensor:
        gw = torch.zeros_like(weight, dtype=torch.float64)
        gb = torch.zeros_like(bias, dtype=torch.float64)
        for X, Y, w in source.eval_batches():
            diff = (torch.addmm(bias, X, weight.t()) - Y).to(torch.float64)
            if w is not None:
                diff = diff * w[:, None].to(diff)
            gw += diff.T @ X.to(torch.float64)
            gb += diff.sum(dim=0)
        if all_sum is not None:
            gw, gb = all_sum(gw), all_sum(gb)
        n = source.n_rows
        gw = 2.0 * gw / (n * k) + 2.0 * coef * weight.to(gw) * scale.to(gw)
        gb = 2.0 * gb / (n * k) if fit_intercept else torch.zeros_like(gb)
        grad_sq = (gw.square().sum(dim=1) + gb.square()) * k * k
        return grad_sq / (2.0 * mu)

    return bound
