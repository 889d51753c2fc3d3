"""Weighted moments of every rolling (or expanding) window, without subtracting rows.

NOTE [rolling moments]
A window's centred co-moments are merged from at most ``2 + log2(W / K)`` precomputed
summaries, never updated by adding the new row and removing the old one: a removal is a
subtraction, and over a long series the subtractions' rounding drifts (statsmodels'
``RollingOLS`` refactorises every ``reset`` rows for that). The group's mean is taken off
first, so merges see no offset. Rows are cut into blocks of ``K <= W`` rows (per group,
from the group's first row); within a block, prefix and suffix sums run about the block's
own mean (so data near 1e9 keeps the digits of its spread), and whole blocks are merged in
a binary table (block ``i`` with its next ``2^j - 1``). A window ``[s, t]`` is then
``suffix(s) + whole blocks + prefix(t)``, each merge the pairwise formula of Chan, Golub &
LeVeque. Rounding is bounded by the data of a block and a window, whatever the length of
the series (``raw``, the sums of squares about the anchors, measures it); everything is
batched over window ends (a Python loop over the ``log2`` levels only).

Example:
    >>> Z = torch.tensor([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0], [3.0, 8.0]], dtype=torch.float64)
    >>> m = window_moments(Z, torch.ones(4, dtype=torch.float64), torch.zeros(4, dtype=torch.int64),
    ...                    window=2, block=2)
    >>> m.w.tolist(), m.mean[:, 1].tolist()
    ([1.0, 2.0, 2.0, 2.0], [1.0, 2.0, 4.0, 6.5])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Moments:
    """A batch of summaries: weight sum, weighted mean, centred co-moments, row count."""

    w: Tensor  # (m,)
    mean: Tensor  # (m, q)
    M: Tensor  # (m, q, q)
    count: Tensor  # (m,)
    # sum of w (x - anchor)^2 about the blocks' anchors: the size of M's rounding
    raw: Tensor  # (m, q)

    def take(self, index: Tensor) -> Moments:
        return Moments(
            self.w[index], self.mean[index], self.M[index], self.count[index], self.raw[index]
        )


def merge(a: Moments, b: Moments) -> Moments:
    """Chan, Golub & LeVeque's pairwise merge; an empty side (w = 0) leaves the other."""
    w = a.w + b.w
    f = b.w / torch.where(w > 0, w, 1.0)
    f = torch.where((a.w == 0) & (b.count > 0), 1.0, f)  # zero weights: keep a centre
    delta = b.mean - a.mean
    mean = a.mean + delta * f[:, None]
    M = a.M + b.M + (a.w * f)[:, None, None] * delta[:, :, None] * delta[:, None, :]
    return Moments(w, mean, M, a.count + b.count, a.raw + b.raw)


def _where(cond: Tensor, a: Moments, b: Moments) -> Moments:
    return Moments(
        torch.where(cond, a.w, b.w),
        torch.where(cond[:, None], a.mean, b.mean),
        torch.where(cond[:, None, None], a.M, b.M),
        torch.where(cond, a.count, b.count),
        torch.where(cond[:, None], a.raw, b.raw),
    )


def _running(D: Tensor, w: Tensor, valid: Tensor, anchor: Tensor) -> Moments:
    """Moments of rows ``0..o`` of each block ``(B, K, q)``, for every ``o``."""
    q = D.shape[2]
    cw = torch.cumsum(w, 1)
    wd = w[..., None] * D
    c1 = torch.cumsum(wd, 1)
    c2 = torch.cumsum(wd[..., :, None] * D[..., None, :], 1)
    safe = torch.where(cw > 0, cw, 1.0)[..., None]
    mean = anchor[:, None, :] + c1 / safe
    M = c2 - c1[..., :, None] * (c1 / safe)[..., None, :]
    count = torch.cumsum(valid.to(D.dtype), 1)
    raw = torch.cumsum(wd * D, 1)
    return Moments(
        cw.reshape(-1), mean.reshape(-1, q), M.reshape(-1, q, q), count.reshape(-1),
        raw.reshape(-1, q),
    )  # fmt: skip


def _block_layout(codes: Tensor, block: int):
    """Per sorted row: group position, global block and offset; rows sorted by group."""
    device = codes.device
    order = torch.argsort(codes, stable=True)
    sc = codes[order]
    counts = torch.bincount(sc)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(sc.numel(), device=device) - starts[sc]
    nblocks = (counts + block - 1) // block
    first_block = torch.cumsum(nblocks, 0) - nblocks
    return order, sc, pos, first_block, int(nblocks.sum())


def window_moments(
    Z: Tensor, w: Tensor, codes: Tensor, *, window: int, block: int | None = None
) -> Moments:
    """Moments of the window ending at each row (its group's last ``window`` rows up to it).

    ``Z`` ``(n, q)``, weights ``w`` ``(n,)``, group codes ``(n,)`` (0 to G - 1); rows of a
    group in their order. Returns one summary per row, in the rows' order (NOTE [rolling
    moments]).
    """
    n, q = Z.shape
    K = max(1, min(window, block or 256))
    # about each group's mean first: merges subtract means, so they must not carry an offset
    G = int(codes.max()) + 1 if n else 0
    cnt = torch.bincount(codes, minlength=G).to(Z.dtype)[:, None]
    ref = Z.new_zeros((G, q)).index_add_(0, codes, Z) / cnt
    ref = ref + Z.new_zeros((G, q)).index_add_(0, codes, Z - ref[codes]) / cnt
    Z = Z - ref[codes]
    order, sc, pos, first_block, B = _block_layout(codes, K)
    gb = first_block[sc] + pos // K
    slot = gb * K + pos % K
    Zp = Z.new_zeros((B * K, q)).index_copy_(0, slot, Z[order]).reshape(B, K, q)
    wp = Z.new_zeros(B * K).index_copy_(0, slot, w[order]).reshape(B, K)
    valid = torch.zeros(B * K, dtype=torch.bool, device=Z.device)
    valid[slot] = True
    valid = valid.reshape(B, K)
    vf = valid.to(Z.dtype)
    cnt = vf.sum(1).clamp(min=1)[:, None]
    anchor = (Zp * vf[..., None]).sum(1) / cnt
    anchor = anchor + ((Zp - anchor[:, None]) * vf[..., None]).sum(1) / cnt
    D = (Zp - anchor[:, None]) * vf[..., None]
    prefix = _running(D, wp, valid, anchor)
    suffix = _running(D.flip(1), wp.flip(1), valid.flip(1), anchor)
    rev = torch.arange(B * K, device=Z.device).reshape(B, K).flip(1).reshape(-1)
    suffix = suffix.take(rev)  # suffix at offset o: rows o..K-1
    levels = [prefix.take(torch.arange(B, device=Z.device) * K + K - 1)]
    span = 1
    while span * 2 <= max(1, -(-window // K)):
        last = levels[-1]
        shifted = last.take(torch.clamp(torch.arange(B, device=Z.device) + span, max=B - 1))
        levels.append(merge(last, shifted))
        span *= 2
    # the window ending at each (sorted) row
    length = torch.clamp(pos + 1, max=window)
    spos = pos - length + 1
    sb = first_block[sc] + spos // K
    inner = sb < gb
    empty = _empty(n, q, Z)
    acc = _where(inner, suffix.take(sb * K + spos % K), empty)
    start = sb + 1
    m = torch.where(inner, gb - sb - 1, 0)
    for j, level in enumerate(levels):
        use = ((m >> j) & 1).bool()
        if not bool(use.any()):
            continue
        acc = merge(acc, _where(use, level.take(torch.clamp(start, max=B - 1)), empty))
        start = start + (use.to(start.dtype) << j)
    out = merge(acc, prefix.take(slot))
    back = torch.empty_like(order)
    back[order] = torch.arange(n, device=Z.device)
    out = out.take(back)
    out.mean = out.mean + ref[codes]
    return out


def _empty(n: int, q: int, like: Tensor) -> Moments:
    z = like.new_zeros(n)
    return Moments(z, like.new_zeros((n, q)), like.new_zeros((n, q, q)), z, like.new_zeros((n, q)))
