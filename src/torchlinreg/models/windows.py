"""Weighted moments of every rolling (or expanding) window, without subtracting rows.

NOTE [rolling moments]
A window's centred co-moments are merged from at most ``2 + log2(W / K)`` precomputed
summaries, never updated by adding the new row and removing the old one: a removal is a
subtraction, and over a long series the subtractions' rounding drifts (statsmodels'
``RollingOLS`` refactorises every ``reset`` rows for that). A typical row of the group is
taken off first, so merges see no offset. Rows are cut into blocks of ``K <= W`` rows (per
group, from the group's first row); within a block, prefix sums run about the block's first
row and suffix sums about its last (so data near 1e9 keeps the digits of its spread, NOTE
[anchors inside]), and whole blocks are merged in a binary table (block ``i`` with its next
``2^j - 1``). A window ``[s, t]`` is then
``suffix(s) + whole blocks + prefix(t)``, each merge the pairwise formula of Chan, Golub &
LeVeque. Rounding is bounded by the data of a block and a window, whatever the length of
the series (``raw``, the sums of squares about the anchors, measures it); everything is
batched over window ends (a Python loop over the ``log2`` levels only).

Window ends go in runs of about ``ROWS`` rows (whole blocks): a run computes its blocks'
prefix sums and the suffix sums of the blocks where its windows start, merges them, and
is solved and written out before the next, so the extra memory is a run's summaries and
the table (``B log2(W / K)`` summaries), never a ``q x q`` summary per row of the data.
Inside a run summaries are packed (``windowsums.py``: the upper triangle, the batch last),
and runs are independent (NOTE [rolling threads] in ``rolling.py`` runs them in threads).

Example:
    >>> Z = torch.tensor([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0], [3.0, 8.0]], dtype=torch.float64)
    >>> m = window_moments(Z, torch.ones(4, dtype=torch.float64), torch.zeros(4, dtype=torch.int64),
    ...                    window=2, block=2)
    >>> m.w.tolist(), m.mean[:, 1].tolist()
    ([1.0, 2.0, 2.0, 2.0], [1.0, 2.0, 4.0, 6.5])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .windowsums import (
    Packed,
    Triangle,
    at_rows,
    empty,
    merge_packed,
    pack,
    running_sums,
    take,
)

# window ends per run: a run's temporaries (a few (ROWS, q, q) tensors) stay in cache
ROWS = 8192

# NOTE [rows of weight zero]
# A row of weight zero adds nothing to a window and may hold anything (NOTE [shifts from
# rows that count] in exact/summaries.py). Taken as a block's anchor, in the five rows of
# a group's reference or in the bounds' sums of squares, rows of weight zero holding 1e50
# made one window NaN ("collinear") and 260 of 261 say "no correct digit" where every
# window was within 1e-12 of the exact fit. They now sit on their group's reference row
# (counted, weighing nothing), anchors are a block's first and last rows of positive
# weight, and the reference takes five such rows.


# NOTE [anchors inside]
# A sum of squares about an anchor keeps the digits of its rows' spread only if the anchor
# lies among them. The block's mean did not: one row at 1e12 put it near 2e11, and the
# windows beside that row in its block came out NaN ("numerically collinear"); a level
# shift of 1e6 inside a block left windows on either side 1.5e-5 off; the group's mean,
# taken off every row first, moved to 2.5e10 and every window of the series lost 1e-6.
# A prefix (slots 0..t) always holds its block's first row and a suffix (slots s..end)
# its last, so prefixes run about the first row and suffixes about the last (a second
# copy of the rows, about the last rows), and each group is taken about the median of five
# of its rows (evenly spaced), which one far row cannot move. Those windows are now within
# 1e-12 of the exact fits; a rolling sweep of 312 calls (offsets, collinearity, shifts,
# outliers, weights, groups) halved the calls whose windows are off past 1e-8, none
# silent. Rows weighted 1e10 beside rows of 1 lose a little more (1.4e-6 against 3.7e-7,
# said with a bound of 6e-5): a block mean sat on the heavy row, a first row does not.


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


class WindowLayout:
    """Where each window starts and ends in the padded block layout (NOTE [rolling moments]).

    Built from the group codes and the window alone, so several sets of columns (the data,
    the log weights) reuse it. Rows are sorted by group (stably), each group cut into
    blocks of ``K`` rows from its first row, blocks zero-padded to ``K`` slots.
    """

    def __init__(self, codes: Tensor, window: int, block: int | None = None) -> None:
        self.n = n = codes.numel()
        self.window = window
        self.K = K = max(1, min(window, block or 256))
        self.codes = codes
        order, sc, pos, first_block, self.B = _block_layout(codes, K)
        self.order = order
        self.rank = torch.empty_like(order)  # each row's place in the sorted order
        self.rank[order] = torch.arange(n, device=codes.device)
        self.gb = first_block[sc] + pos // K  # each sorted row's block (non-decreasing)
        self.slot = self.gb * K + pos % K
        length = torch.clamp(pos + 1, max=window)
        spos = pos - length + 1
        self.sb = first_block[sc] + spos // K  # the block where the window starts
        self.so = spos % K
        self.count = length
        valid = torch.zeros(self.B * K, dtype=torch.bool, device=codes.device)
        valid[self.slot] = True
        self.valid = valid.reshape(self.B, K)
        self.G = int(codes.max()) + 1 if n else 0

    def pad(self, Z: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Rows about their group's reference row in ``(B, K, q)`` blocks; weights; the
        references."""
        q = Z.shape[1]
        codes = self.codes
        # about a typical row of each group first: merges subtract means, so they must not
        # carry an offset (NOTE [anchors inside]: the median of five of its rows)
        cnt = torch.bincount(codes, minlength=self.G)
        first = torch.cumsum(cnt, 0) - cnt
        live = w[self.order] > 0
        dead = not bool(live.all())
        order, take = self.order, cnt
        if dead:  # five rows of positive weight where the group has any (NOTE [rows of
            # weight zero]); a sort of all rows, so only where some weigh zero
            key = codes[self.order] * 2 + (~live).to(codes.dtype)  # a group's live rows first
            order = self.order[torch.argsort(key, stable=True)]
            lives = torch.bincount(codes[self.order][live], minlength=self.G)
            take = torch.where(lives > 0, lives, cnt)
        at = first[:, None] + (take[:, None] * torch.arange(1, 10, 2, device=Z.device)) // 10
        ref = Z[order[at.clamp(max=self.n - 1)]].median(dim=1).values
        B, K = self.B, self.K
        Zs = Z[self.order] - torch.index_select(ref, 0, codes[self.order])
        if dead:
            Zs.mul_(live.to(Zs.dtype)[:, None])  # rows of weight zero sit on the reference
        Zp = Z.new_zeros((B * K, q)).index_copy_(0, self.slot, Zs)
        wp = Z.new_zeros(B * K).index_copy_(0, self.slot, w[self.order])
        return Zp.reshape(B, K, q), wp.reshape(B, K), ref

    def chunks(
        self, Z: Tensor, w: Tensor, rows: int | None = None
    ) -> Iterator[tuple[Tensor, Moments]]:
        """``(row indices, their windows' moments)`` for runs of about ``rows`` window ends.

        The extra memory is a few ``(rows, q, q)`` summaries and the table of whole blocks
        (``B log2(W / K)`` summaries), never one summary per row of the data.
        """
        for idx, p in self.packed_chunks(Z, w, rows):
            yield idx, Moments(*p.unpack(self.tri))

    def packed_chunks(
        self, Z: Tensor, w: Tensor, rows: int | None = None
    ) -> Iterator[tuple[Tensor, Packed]]:
        """``chunks`` as feature-major packed summaries (``windowsums.Packed``)."""
        if self.n == 0:
            return
        prep = self.prepare(Z, w, rows)
        for k in range(prep.runs):
            if (got := self.run(prep, k)) is not None:
                yield got

    def prepare(self, Z: Tensor, w: Tensor, rows: int | None = None) -> Prepared:
        """What every run reads: the centred rows in blocks, their anchors, the table."""
        Zp, wp, ref = self.pad(Z, w)
        vf = self.valid.to(Z.dtype)
        # NOTE [anchors inside]: prefixes about the block's first row of positive weight,
        # suffixes about its last (a block's rows fill its first slots; sums before the
        # first such row, or after the last, weigh nothing: NOTE [rows of weight zero])
        live = (wp > 0) & self.valid
        slots = torch.arange(self.K, device=Z.device)
        head = torch.where(live, slots, self.K).amin(1)
        tail = torch.where(live, slots, -1).amax(1)
        head = torch.where(head < self.K, head, 0)
        tail = torch.where(tail >= 0, tail, (vf.sum(1).clamp(min=1) - 1).long())
        anchor = torch.gather(Zp, 1, head[:, None, None].expand(-1, 1, Zp.shape[2]))[:, 0]
        last = torch.gather(Zp, 1, tail[:, None, None].expand(-1, 1, Zp.shape[2]))[:, 0]
        D = (Zp - anchor[:, None]) * vf[..., None]
        self.tri = tri = Triangle(Z.shape[1], device=Z.device)
        levels = [pack(*_fields(m), tri) for m in self._levels(D, wp, anchor)]
        D = D.transpose(1, 2).contiguous()  # (B, q, K): running sums along the last axis
        Ds = (Zp - last[:, None]) * vf[..., None]
        del Zp  # two copies of the rows, each about the row its sums always hold
        Ds = Ds.transpose(1, 2).contiguous()
        step = max(1, (rows or ROWS) // self.K)
        bounds = torch.searchsorted(
            self.gb, torch.arange(0, self.B + step, step, device=Z.device).clamp(max=self.B)
        ).tolist()
        # feature-major anchors and group means
        return Prepared(D, wp, vf, anchor.T.contiguous(), ref.T.contiguous(), levels, step,
                        bounds, Ds, last.T.contiguous())  # fmt: skip

    def run(self, prep: Prepared, k: int) -> tuple[Tensor, Packed] | None:
        """Run ``k``: ``(row indices, packed summaries)`` (None: no window ends in it).

        Runs read ``prep`` only, so they may go in any order, or at once in threads.
        """
        i0, i1 = prep.bounds[k], prep.bounds[k + 1]
        if i1 <= i0:
            return None
        b0 = k * prep.step
        out = self._chunk(prep, self.tri, b0, i0, i1)
        rows_i = self.order[i0:i1]
        out.mean = out.mean + torch.index_select(prep.ref, 1, self.codes[rows_i])
        return rows_i, out

    def _levels(self, D: Tensor, w: Tensor, anchor: Tensor) -> list[Moments]:
        """Level ``j``: blocks ``i .. i + 2^j - 1`` merged, for every block ``i``."""
        span_max = max(1, -(-self.window // self.K))
        if span_max < 2:  # a window never holds a whole block beside its prefix
            return []
        totals = []
        for b0 in range(0, self.B, max(1, 65536 // self.K)):
            b1 = min(self.B, b0 + max(1, 65536 // self.K))
            totals.append(_totals(D[b0:b1], w[b0:b1], self.valid[b0:b1], anchor[b0:b1]))
        levels = [_cat(totals)]
        idx = torch.arange(self.B, device=D.device)
        span = 1
        while span * 2 <= span_max:
            last = levels[-1]
            levels.append(merge(last, last.take(torch.clamp(idx + span, max=self.B - 1))))
            span *= 2
        return levels

    def _chunk(self, prep: Prepared, tri, b0, i0, i1) -> Packed:
        """The windows ending at sorted rows ``i0 .. i1 - 1`` (blocks from ``b0``)."""
        D, w, vf, anchor, levels = prep.D, prep.w, prep.vf, prep.anchor, prep.levels
        K = self.K
        gb, sb, so = self.gb[i0:i1], self.sb[i0:i1], self.so[i0:i1]
        b1 = int(gb[-1]) + 1
        prefix = running_sums(D[b0:b1], w[b0:b1], vf[b0:b1], tri)
        slots = self.slot[i0:i1] - b0 * K
        every = i1 - i0 == (b1 - b0) * K  # no padding in these blocks: every slot, in order
        out = at_rows(prefix, None if every else slots, _cols(anchor, gb, b0, b1, every, K), tri)
        # a window starting inside a block takes that block's suffix from its start
        inner = (so > 0) & (sb < gb)
        if bool(inner.any()):
            lo, hi = int(sb[0]), int(sb[-1]) + 1  # sb never decreases along sorted rows
            if hi - lo <= 2 * (b1 - b0) + 2:  # a run of blocks: slices, no gathers
                Du, wu, vu, blocks = prep.Ds[lo:hi], w[lo:hi], vf[lo:hi], None
                u = sb - lo
            else:  # e.g. expanding windows from a group's first block, far back
                blocks = torch.unique(sb[inner])
                Du, wu, vu = prep.Ds[blocks], w[blocks], vf[blocks]
                u = torch.searchsorted(blocks, sb).clamp(max=blocks.numel() - 1)
            # suffix sums: running sums of the reversed blocks, turned back
            suffix = running_sums(Du.flip(2), wu.flip(1), vu.flip(1), tri).flip(2)
            at = u * K + so  # rows so .. K - 1 of the block
            first, last = int(at[0]), int(at[-1])
            run = last - first == at.numel() - 1 and bool((at[1:] - at[:-1] == 1).all())
            if run and blocks is None:
                A = _cols(prep.last, sb, lo, hi, True, K)[:, first : last + 1]
                acc = at_rows(suffix, (first, last + 1), A, tri)
            else:
                A = torch.index_select(prep.last, 1, sb)
                acc = at_rows(suffix, at, A, tri)
            acc = acc.masked(inner)
        else:
            acc = empty(i1 - i0, D.shape[1], tri, D)
        # whole blocks between the start and the end block, in binary from the table
        start = torch.where(so > 0, sb + 1, sb)
        m = gb - start
        for j, level in enumerate(levels):
            use = ((m >> j) & 1).bool()
            if not bool(use.any()):
                continue
            whole = take(level, torch.clamp(start, max=self.B - 1)).masked(use)
            acc = merge_packed(acc, whole, tri)
            start = start + (use.to(start.dtype) << j)
        return merge_packed(acc, out, tri)


@dataclass
class Prepared:
    """``WindowLayout.prepare``'s result: read-only inputs of every run."""

    D: Tensor  # (B, q, K) rows about their block's first row, zero in padding slots
    w: Tensor  # (B, K)
    vf: Tensor  # (B, K) 1.0 for a row, 0.0 for padding
    anchor: Tensor  # (q, B) each block's first row
    ref: Tensor  # (q, G) the group means taken off first
    levels: list  # packed tables of whole blocks
    step: int  # blocks a run
    bounds: list  # sorted row where each run starts
    Ds: Tensor  # (B, q, K) rows about their block's last row, for the suffixes
    last: Tensor  # (q, B) each block's last row

    @property
    def runs(self) -> int:
        return len(self.bounds) - 1


def _cols(anchor: Tensor, gb: Tensor, b0: int, b1: int, every: bool, K: int) -> Tensor:
    """Each row's block anchor ``(q, rows)``: blocks b0 .. b1 - 1 repeated K times when
    every slot is a row, else gathered."""
    if every:
        a = anchor[:, b0:b1]
        return a[:, :, None].expand(a.shape[0], a.shape[1], K).reshape(a.shape[0], -1)
    return torch.index_select(anchor, 1, gb)


def _totals(D: Tensor, w: Tensor, valid: Tensor, anchor: Tensor) -> Moments:
    """Each block's summary ``(B,)`` about its anchor, in one batched product."""
    sw = w.sum(1)
    wd = w[..., None] * D
    s1 = wd.sum(1)
    s2 = wd.transpose(1, 2) @ D
    safe = torch.where(sw > 0, sw, 1.0)[:, None]
    M = s2 - s1[:, :, None] * (s1 / safe)[:, None, :]
    return Moments(sw, anchor + s1 / safe, M, valid.sum(1).to(D.dtype), (wd * D).sum(1))


def _cat(parts: list[Moments]) -> Moments:
    return Moments(*(torch.cat([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = ("w", "mean", "M", "count", "raw")


def _fields(m: Moments) -> tuple[Tensor, ...]:
    return tuple(getattr(m, f) for f in _FIELDS)


def window_moments(
    Z: Tensor, w: Tensor, codes: Tensor, *, window: int, block: int | None = None
) -> Moments:
    """Moments of the window ending at each row (its group's last ``window`` rows up to it).

    ``Z`` ``(n, q)``, weights ``w`` ``(n,)``, group codes ``(n,)`` (0 to G - 1); rows of a
    group in their order. Returns one summary per row, in the rows' order (NOTE [rolling
    moments]); ``WindowLayout.chunks`` gives the same a run of rows at a time.
    """
    n, q = Z.shape
    out = _empty(n, q, Z)
    for rows, m in WindowLayout(codes, window, block).chunks(Z, w):
        for f in _FIELDS:
            getattr(out, f)[rows] = getattr(m, f)
    return out


def _empty(n: int, q: int, like: Tensor) -> Moments:
    z = like.new_zeros(n)
    return Moments(
        z, like.new_zeros((n, q)), like.new_zeros((n, q, q)), z.clone(), like.new_zeros((n, q))
    )
