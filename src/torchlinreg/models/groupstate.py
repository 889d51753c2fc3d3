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
        # the means are kept about a shift per group (its first block's anchor), so merges
        # see no offset (NOTE [merges about offsets]); ``moments`` adds it back
        self.shift = z.new_zeros((0, q))
        self._moments = Moments(
            z, z.new_zeros((0, q)), z.new_zeros((0, q, q)), z, z.new_zeros((0, q))
        )
        self.amax = z.new_zeros((0, q))
        self.weighted = z.new_zeros(0)  # rows of nonzero weight per group
        # bounds on the means' absolute rounding and on the co-moments' rounding that the
        # merges about the means leave (NOTE [merges about offsets])
        self.mean_err = z.new_zeros((0, q))
        self.merge_err = z.new_zeros((0, q, q))

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
        anchor = _anchor(seg, Z)
        amax = seg.amax(Z.abs())
        weighted = seg.sum((wt.to(Z) != 0).to(Z.dtype)[:, None])[:, 0]
        union = seg.labels if self.labels.size == 0 else np.union1d(self.labels, seg.labels)
        old = torch.as_tensor(np.searchsorted(union, self.labels), dtype=torch.int64)
        new = torch.as_tensor(np.searchsorted(union, seg.labels), dtype=torch.int64)
        known = torch.zeros(len(union), dtype=torch.bool)
        known[old] = True
        shift = torch.zeros_like(anchor.new_zeros((len(union), Z.shape[1]))).index_copy_(
            0, old, self.shift
        )
        shift[new] = torch.where(known[new][:, None], shift[new], anchor)
        self.shift = shift
        block = _summarise(seg, Z, wt.to(Z.dtype), anchor, shift[new])
        a = _scatter(self._moments, old, len(union))
        b = _scatter(block, new, len(union))
        Ea = torch.zeros_like(a.mean).index_copy_(0, old, self.mean_err)
        Aa = torch.zeros_like(a.M).index_copy_(0, old, self.merge_err)
        Eb = torch.zeros_like(a.mean)
        # a block's mean, (anchor - shift) + s1 / w: its roundings and s1's (NOTE [merges
        # about offsets])
        eps = torch.finfo(torch.float64).eps
        bw = torch.where(b.w > 0, b.w, 1.0)[:, None]
        Eb[new] = eps * (2 * block.mean.abs() + (anchor - shift[new]).abs())
        Eb = Eb + eps * b.count.sqrt()[:, None] * (b.raw.clamp(min=0) / bw).sqrt()
        self._moments, self.mean_err, self.merge_err = _merge_tracked(a, b, Ea, Eb, Aa)
        self.amax = torch.zeros_like(a.mean).index_copy_(0, old, self.amax)
        self.amax[new] = torch.maximum(self.amax[new], amax)
        self.weighted = torch.zeros_like(a.w).index_copy_(0, old, self.weighted)
        self.weighted[new] += weighted
        self.labels = union

    @property
    def moments(self) -> Moments:
        """The per-group summaries, means about zero."""
        m = self._moments
        return Moments(m.w, m.mean + self.shift, m.M, m.count, m.raw)

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
        E = self.mean_err + eps * m.mean.abs()  # shift + mean: one more rounding
        extra, dmean = _merge_bounds(m, E, self.merge_err, fit_intercept)
        out = solve_moments(m, full, fit_intercept, what="groups", thin=thin,
                            extra=extra, dmean=dmean)  # fmt: skip
        bad = out["bad"]
        for key in ("params", "cov", "ssr"):
            out[key][bad] = np.nan
        return out


# NOTE [merges about offsets]
# Merges were about the raw means (offsets and all); now each group's means are kept about
# a shift, its first block's anchor, as windows.py's NOTE [rolling moments] takes the
# offset off first. Still bounded: merge adds (w_a f) delta delta' with delta = mean_b -
# mean_a, each mean off by E (absolute), so delta by e = E_a + E_b + eps |delta|, and the
# co-moment M_jk by (w_a f)(|delta_j| e_k + |delta_k| e_j), summed over the merges (A); the
# merged mean a + delta f by (1 - f) E_a + f E_b + f e + eps (|mean| + |delta f|). A block's
# mean anchor + s1 / w is off by 2 eps |mean| + sqrt(n) eps sqrt(raw / w) (s1's sum). With
# offsets 2e4 and two columns collinear up to 5e-4, the co-moments were 3e3 eps (relative
# to sqrt(M_jj M_kk)) off where the bounds took 30 eps: ssr 1.1e-4 off, stated 7.7e-6;
# about the shift A is 3-6 eps, ssr 7.6e-5 off (gyy - g'b's own cancellation), stated
# 1.7e-2 (the linear bound: there are no rows, NOTE [moments' error]).
# The solve adds max A_jk / sqrt(G_jj G_kk) to each entry's relative error (and, without
# an intercept, G = M + w mean mean' takes w (E |mean|' + |mean| E')), and the intercept
# mean(y) - mean(x)'b takes E_y + |b|'E_x.


def _merge_tracked(a: Moments, b: Moments, Ea: Tensor, Eb: Tensor, Aa: Tensor):
    """``merge(a, b)`` with the bounds of NOTE [merges about offsets] carried along
    (``b`` holds no merges of its own: its ``A`` is 0)."""
    eps = torch.finfo(torch.float64).eps
    out = merge(a, b)
    both = ((a.w > 0) & (b.w > 0)).to(a.w.dtype)
    w = torch.where(out.w > 0, out.w, 1.0)
    f = (b.w / w * both)[:, None]
    delta = (b.mean - a.mean).abs() * both[:, None]
    e = (Ea + Eb + eps * delta) * both[:, None]
    wf = (a.w * f[:, 0])[:, None, None]
    A = Aa + wf * (delta[:, :, None] * e[:, None, :] + e[:, :, None] * delta[:, None, :])
    E = torch.where(both[:, None] > 0, (1 - f) * Ea + f * Eb + f * e, Ea + Eb)
    E = E + both[:, None] * eps * (out.mean.abs() + delta * f)
    return out, E, A


def _merge_bounds(m: Moments, E: Tensor, A: Tensor, fit_intercept: bool):
    """Each summary's extra relative error of the co-moments' entries, and the means'
    absolute error (NOTE [merges about offsets])."""
    if not fit_intercept:
        am = m.mean.abs()
        A = A + m.w[:, None, None] * (
            E[:, :, None] * am[:, None, :] + am[:, :, None] * E[:, None, :]
        )
        G = torch.diagonal(m.M, dim1=1, dim2=2) + m.w[:, None] * m.mean**2
    else:
        G = torch.diagonal(m.M, dim1=1, dim2=2)
    s = G.clamp(min=0).sqrt()
    s = torch.where(s > 0, s, float("inf"))
    rel = A / (s[:, :, None] * s[:, None, :])
    return rel.flatten(1).amax(1) if rel.shape[1] else m.w.new_zeros(m.w.shape), E


def _anchor(seg: Segments, Z: Tensor) -> Tensor:
    """Each group's two-pass (unweighted) mean in the block."""
    count = seg.counts.to(Z.dtype)
    anchor = seg.sum(Z) / count[:, None]
    return anchor + seg.sum(Z - anchor[seg.codes]) / count[:, None]


def _summarise(seg: Segments, Z: Tensor, w: Tensor, anchor: Tensor, shift: Tensor) -> Moments:
    """One summary per group of the block, about ``anchor``, its mean about ``shift``."""
    count = seg.counts.to(Z.dtype)
    D = Z - anchor[seg.codes]
    wd = w[:, None] * D
    sw = seg.sum(w)
    s1 = seg.sum(wd)
    s2 = seg.gram(D * w.sqrt()[:, None])
    safe = torch.where(sw > 0, sw, 1.0)[:, None]
    mean = (anchor - shift) + s1 / safe
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
