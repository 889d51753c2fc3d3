"""Per-group moments of ``[X | y]`` gathered block by block: grouped fits of any size.

A group's rows may be anywhere in the stream. Each block is summarised per group (weights
sum, mean, centred co-moments about a two-pass mean, row count, column magnitudes) in one
batched pass, and merged into the running summaries with the pairwise formula (NOTE
[rolling moments] in ``windows.py``); the solve is ``momentsolve.solve_moments``. This is
what ``torchlinreg train --by`` saves: a few numbers per group, mergeable.

Example:
    >>> import numpy as np
    >>> acc = GroupedMoments(1)
    >>> x = np.arange(6.0)[:, None]
    >>> for rows in (slice(0, 4), slice(4, 6)):
    ...     acc.absorb(x[rows], x[rows, 0] ** 2, None, np.array([1, 2, 1, 2, 1, 2])[rows])
    >>> acc.labels.tolist(), acc.solve(True)["params"].round(6).tolist()
    ([1, 2], [[-1.333333, 4.0], [-6.333333, 6.0]])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .momentsolve import solve_moments
from .segments import Segments
from .windows import Moments, merge

# a column counts as constant in a group when its spread is below this many units of
# rounding of its magnitude (the rounding of the moments' route)
_FLAT_ULPS = 2048.0


class GroupedMoments:
    """Running per-group summaries of ``d`` features and one target."""

    def __init__(self, d: int, device=None) -> None:
        self.d = d
        self.labels = np.empty(0)
        q = d + 1
        z = torch.zeros(0, dtype=torch.float64, device=device)
        self.moments = Moments(
            z, z.new_zeros((0, q)), z.new_zeros((0, q, q)), z, z.new_zeros((0, q))
        )
        self.amax = z.new_zeros((0, q))
        self.weighted = z.new_zeros(0)  # rows of nonzero weight per group

    def absorb(self, X: Tensor, y: Tensor, w: Tensor | None, labels) -> None:
        """Add a block of rows: ``X`` ``(n, d)``, ``y`` ``(n,)``, weights, group labels."""
        X = (
            torch.tensor(np.asarray(X), dtype=torch.float64)
            if not torch.is_tensor(X)
            else X.double()
        )
        y = (
            torch.tensor(np.asarray(y), dtype=torch.float64)
            if not torch.is_tensor(y)
            else y.double()
        )
        Z = torch.cat([X, y.reshape(-1, 1).to(X.device)], dim=1)
        wt = torch.ones(Z.shape[0], dtype=Z.dtype) if w is None else torch.as_tensor(w)
        seg = Segments.from_labels(np.asarray(labels), Z.shape[0], device=Z.device)
        block = _summarise(seg, Z, wt.to(Z.dtype))
        amax = seg.amax(Z.abs())
        weighted = seg.sum((wt.to(Z) != 0).to(Z.dtype)[:, None])[:, 0]
        union = seg.labels if self.labels.size == 0 else np.union1d(self.labels, seg.labels)
        old = torch.as_tensor(np.searchsorted(union, self.labels), dtype=torch.int64)
        new = torch.as_tensor(np.searchsorted(union, seg.labels), dtype=torch.int64)
        a = _scatter(self.moments, old, len(union))
        b = _scatter(block, new, len(union))
        self.moments = merge(a, b)
        self.amax = torch.zeros_like(a.mean).index_copy_(0, old, self.amax)
        self.amax[new] = torch.maximum(self.amax[new], amax)
        self.weighted = torch.zeros_like(a.w).index_copy_(0, old, self.weighted)
        self.weighted[new] += weighted
        self.labels = union

    def solve(self, fit_intercept: bool) -> dict:
        """Per-group parameters, unscaled covariances and sums of squares (NaN: no fit)."""
        m = self.moments
        eps = torch.finfo(torch.float64).eps
        # the flat test of solve_moments compares M_jj with eps * raw: make raw say "spread
        # below _FLAT_ULPS roundings of the column's magnitude"
        raw = m.w[:, None] * (self.amax * _FLAT_ULPS) ** 2 * eps / 1024.0
        m = Moments(m.w, m.mean, m.M, m.count, raw)
        full = m.count > self.d + fit_intercept
        thin = self.weighted < self.d + fit_intercept
        out = solve_moments(m, full, fit_intercept, what="groups", thin=thin)
        bad = out["bad"]
        for key in ("params", "cov", "ssr"):
            out[key][bad] = np.nan
        return out


def _summarise(seg: Segments, Z: Tensor, w: Tensor) -> Moments:
    """One summary per group of the block, about a two-pass (unweighted) anchor."""
    count = seg.counts.to(Z.dtype)
    anchor = seg.sum(Z) / count[:, None]
    anchor = anchor + seg.sum(Z - anchor[seg.codes]) / count[:, None]
    D = Z - anchor[seg.codes]
    wd = w[:, None] * D
    sw = seg.sum(w)
    s1 = seg.sum(wd)
    s2 = seg.gram(D * w.sqrt()[:, None])
    safe = torch.where(sw > 0, sw, 1.0)[:, None]
    mean = anchor + s1 / safe
    M = s2 - s1[:, :, None] * (s1 / safe)[:, None, :]
    return Moments(sw, mean, M, count, seg.sum(wd * D))


def _scatter(m: Moments, index: Tensor, size: int) -> Moments:
    """``m`` placed at rows ``index`` of ``size`` empty summaries."""
    q = m.mean.shape[1]
    z = m.w.new_zeros(size)
    out = Moments(
        z,
        m.w.new_zeros((size, q)),
        m.w.new_zeros((size, q, q)),
        z.clone(),
        m.w.new_zeros((size, q)),
    )
    out.w[index], out.mean[index], out.M[index] = m.w, m.mean, m.M
    out.count[index], out.raw[index] = m.count, m.raw
    return out
