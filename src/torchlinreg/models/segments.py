"""Rows split by group, as batched blocks: the layouts behind the grouped fits.

Groups are coded by ``encode_groups`` (integer labels of a small range by counting, others
by ``np.unique``). The fit (``chunks``) orders groups by size and rows by group with a
radix sort, and gathers whole groups a chunk at a time into a ``(groups, rows, columns)``
batch: a reshape where the sizes are equal, zero-weight padding where they differ (sizes
within a factor of two). ``Segments`` keeps each row's group code for per-group sums,
maxima and Grams over rows in any order, and padded buckets read in row slabs for the
HC leverages. Every loop is over chunks or about ``log2(n)`` size classes, never over
groups.

Example:
    >>> seg = Segments.from_labels(np.array(["b", "a", "b", "b"]))
    >>> seg.labels.tolist(), seg.counts.tolist()
    (['a', 'b'], [1, 3])
    >>> seg.sum(torch.ones(4, 1, dtype=torch.float64))[:, 0].tolist()
    [1.0, 3.0]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from ..data import missing_labels
from ..errors import DataError

# elements of one padded slab (64 MiB of float64): bounds the extra memory of a reduction
SLAB_ELEMENTS = 8 * 1024 * 1024


def encode_groups(groups, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique labels, code per row) of a 1-D sequence of group labels."""
    labels, codes, _ = _encode(groups, n)
    return labels, codes


def _encode(groups, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`encode_groups` and the rows per group where counting found them."""
    if isinstance(groups, Tensor):
        groups = groups.detach().cpu().numpy()
    values = np.asarray(getattr(groups, "to_numpy", lambda: groups)())
    if values.ndim != 1 or values.shape[0] != n:
        raise DataError(
            f"groups must be 1-D with one label per row ({n} rows), got shape {values.shape}; "
            "pass a column of group labels"
        )
    small = _small_integer_codes(values)
    if small is not None:
        return small
    missing = missing_labels(values)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        shown = "NaN" if values.dtype.kind in "fc" else values[i]
        raise DataError(
            f"groups has a missing ({shown}) label at row {i + 1}; drop or label the row"
        )
    try:
        labels, codes = np.unique(values, return_inverse=True)
    except TypeError as exc:  # mixed label types that do not order
        raise DataError(
            f"groups' labels cannot be ordered ({exc}); use labels of one type"
        ) from exc
    return labels, codes.reshape(-1), None


def encode_groups_on(groups, n: int, device) -> tuple[np.ndarray, Tensor, Tensor]:
    """(sorted unique labels, code per row, rows per group), the codes and counts on
    ``device``.

    Numeric labels already on an accelerator are coded there (NOTE [grouping on the
    device]); any other labels are coded by :func:`encode_groups` and the codes moved.
    """
    if isinstance(groups, Tensor) and groups.device.type != "cpu" and groups.ndim == 1:
        return encode_tensor_groups(groups, n, device)
    labels, codes, counts = _encode(groups, n)
    if counts is None:
        counts = np.bincount(codes, minlength=len(labels))
    counts = torch.as_tensor(counts, device=device)
    return labels, torch.as_tensor(codes, dtype=torch.int64, device=device), counts


def encode_tensor_groups(groups: Tensor, n: int, device) -> tuple[np.ndarray, Tensor, Tensor]:
    """:func:`encode_groups_on` with torch where the labels lie (NOTE [grouping on the
    device])."""
    if groups.shape[0] != n:
        raise DataError(
            f"groups must be 1-D with one label per row ({n} rows), got shape "
            f"{tuple(groups.shape)}; pass a column of group labels"
        )
    if groups.is_floating_point() and bool(torch.isnan(groups).any()):
        row = int(torch.isnan(groups).nonzero()[0, 0]) + 1
        raise DataError(f"groups has a missing (NaN) label at row {row}; drop or label the row")
    labels, codes = torch.unique(groups, sorted=True, return_inverse=True)
    codes = codes.to(device=device, dtype=torch.int64)
    counts = torch.bincount(codes, minlength=labels.shape[0])
    return labels.cpu().numpy(), codes, counts


# NOTE [grouping on the device]
# Coding the labels and ordering the rows by group take a sort of n keys. On a CPU the
# counting code and numpy's radix sort are the fastest way; labels on a GPU went to the
# CPU for them and back, and a grouped fit on an H200 then took 0.57 s at 100 groups x
# 100,000 rows, about the CPU's time. Numeric labels on the device are coded with
# torch.unique and the rows ordered with a stable torch.sort there (0.192 s for that fit);
# strings and other host labels keep the CPU route.


def _small_integer_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``np.unique``'s answer for integer labels of a small range, by counting (no sort),
    and the rows per label.

    A sort of ``n`` labels costs ``n log n``; labels within a range of a few ``n`` are
    coded in two linear passes (a count per value, then a lookup). None otherwise.
    """
    if values.dtype.kind not in "iub" or values.size == 0:
        return None
    ints = values.view(np.uint8) if values.dtype.kind == "b" else values
    lo, hi = int(ints.min()), int(ints.max())
    if hi - lo > max(4 * values.size, 1 << 16):
        return None
    # the offsets from lo: the subtraction may wrap (int8 labels -128 and 127), but the
    # true offset lies in [0, 2^bits), so the wrapped bits read as unsigned are exact
    diff = ints - ints.dtype.type(lo)
    shifted = diff.view(diff.dtype.str.replace("i", "u")).astype(np.int64, copy=False)
    counts = np.bincount(shifted, minlength=hi - lo + 1)
    present = counts > 0
    if present.all():  # every value in the range is a label: the offsets are the codes
        # offsets in the labels' own type: np.arange(lo, hi + 1) of uint64 labels past 2^63
        # was float64, and 2^63 + 1 and 2^63 + 2 both came back 2^63 (a grouped hunt)
        labels = np.arange(hi - lo + 1).astype(ints.dtype) + ints.dtype.type(lo)
        return labels.astype(values.dtype), shifted, counts
    lookup = np.cumsum(present) - 1
    # offsets cast first (integer arithmetic wraps, so int8 and uint64 come out exact)
    labels = np.flatnonzero(present).astype(ints.dtype) + ints.dtype.type(lo)
    labels = labels.astype(values.dtype)
    return labels, lookup[shifted], counts[present]


def stable_order(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for integer keys in ``[0, n_keys)``, in linear time.

    numpy sorts 8- and 16-bit keys by radix, one pass a byte (10 million 8-bit keys: 84 ms,
    16-bit: 103 ms); wider keys take two 16-bit passes (low half, then high half: a
    least-significant-digit radix sort), where a comparison sort would take ``n log n``.
    """
    if n_keys <= 1 << 8:
        return np.argsort(keys.astype(np.uint8), kind="stable")
    if n_keys <= 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    if n_keys > 1 << 32:
        return np.argsort(keys, kind="stable")
    low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    high = (keys[low] >> 16).astype(np.uint16)
    return low[np.argsort(high, kind="stable")]


@dataclass
class Bucket:
    """Groups ``first:first + size`` (in size order) padded to ``width`` rows."""

    groups: Tensor  # (g,) group codes
    index: Tensor  # (g, width) row index, -1 for padding
    width: int


class Segments:
    """The grouping of ``n`` rows into ``G`` groups, with padded buckets for batched work."""

    def __init__(self, labels: np.ndarray, codes: Tensor, counts: Tensor | None = None) -> None:
        self.labels = labels
        self.codes = codes
        self.n_groups = len(labels)
        if counts is None:
            counts = torch.bincount(codes, minlength=self.n_groups)
        self.counts = counts

    @cached_property
    def buckets(self) -> list[Bucket]:
        """The padded buckets (built on first use: sums and maxima do not need them)."""
        return _buckets(self.codes, self.counts)

    @classmethod
    def from_labels(cls, groups, n: int | None = None, device=None) -> Segments:
        n = len(groups) if n is None else n
        labels, codes = encode_groups(groups, n)
        return cls(labels, torch.as_tensor(codes, dtype=torch.int64, device=device))

    def sum(self, values: Tensor) -> Tensor:
        """Per-group sums of ``values`` ``(n, ...)`` -> ``(G, ...)``."""
        out = values.new_zeros((self.n_groups, *values.shape[1:]))
        return out.index_add_(0, self.codes, values)

    def amax(self, values: Tensor) -> Tensor:
        """Per-group maxima of ``values`` ``(n, c)`` -> ``(G, c)``."""
        out = values.new_zeros((self.n_groups, values.shape[1]))
        index = self.codes[:, None].expand_as(values)
        return out.scatter_reduce_(0, index, values, "amax", include_self=True)

    def slabs(self, values: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """(group codes, padded rows ``(g, s, c)``, row index ``(g, s)``) slab by slab.

        Padding rows are zero, so sums, Grams and QR factors over a slab are the group's.
        """
        c = values.shape[1] if values.ndim > 1 else 1
        flat = values.reshape(values.shape[0], c)
        for bucket in self.buckets:
            g = bucket.groups.shape[0]
            step = max(1, SLAB_ELEMENTS // max(1, g * c))
            for start in range(0, bucket.width, step):
                index = bucket.index[:, start : start + step]
                rows = flat[index.clamp(min=0)] * (index >= 0)[..., None].to(flat.dtype)
                yield bucket.groups, rows, index

    def gram(self, values: Tensor) -> Tensor:
        """Per-group ``V'V`` ``(G, c, c)`` of the rows of ``values`` ``(n, c)``."""
        c = values.shape[1]
        out = values.new_zeros((self.n_groups, c, c))
        for groups, rows, _ in self.slabs(values):
            out.index_add_(0, groups, rows.mT @ rows)
        return out


def _buckets(codes: Tensor, counts: Tensor) -> list[Bucket]:
    """Groups sorted by size, cut where the size doubles, each padded to its largest group."""
    device = codes.device
    by_size = torch.argsort(counts, stable=True)
    rank = torch.empty_like(by_size)
    rank[by_size] = torch.arange(by_size.numel(), device=device)
    order = torch.argsort(rank[codes], stable=True)  # rows grouped, groups by size
    sizes = counts[by_size]
    starts = torch.cumsum(sizes, 0) - sizes  # first row (in `order`) of each group
    size_class = torch.ceil(torch.log2(sizes.clamp(min=1).to(torch.float64))).to(torch.int64)
    cuts = torch.nonzero(torch.diff(size_class)).reshape(-1) + 1
    bounds = [0, *cuts.tolist(), by_size.numel()]
    out = []
    pos = torch.arange(codes.numel(), device=device)
    for lo, hi in itertools.pairwise(bounds):
        width = int(sizes[hi - 1]) if hi > lo else 0
        if width == 0:
            continue
        offsets = torch.arange(width, device=device)
        slot = starts[lo:hi, None] + offsets[None, :]
        inside = offsets[None, :] < sizes[lo:hi, None]
        index = torch.where(inside, order[slot.clamp(max=pos.numel() - 1)], -1)
        out.append(Bucket(by_size[lo:hi], index, width))
    return out


@dataclass
class Chunk:
    """Whole groups fitted together: ``rows`` index the data, ``(g, width)`` when padded."""

    groups: Tensor  # (g,) group codes
    rows: Tensor  # (g * width,) row indices, or (g, width) with -1 for padding
    width: int

    @property
    def padded(self) -> bool:
        return self.rows.ndim == 2


def chunks(codes, counts: np.ndarray, values: int, columns: int, device=None):
    """The groups in chunks of about ``values`` values (rows x ``columns``), by group size.

    Groups are sorted by size (stable), so groups of equal size are neighbours; a run of
    equal sizes is a dense chunk (its rows, sorted by group, reshape to ``(g, m)``: no
    padding), and groups of sizes within a factor of two share a padded chunk. Returns
    ``(order of the groups or None for label order, chunks)``; the loop is over about
    ``n / values`` chunks and ``log2(n)`` size classes, never over groups. ``codes`` is a
    numpy array (radix-sorted) or a tensor (sorted by torch where it lies, NOTE [grouping
    on the device]); ``counts`` is numpy.
    """
    G = len(counts)
    by_size = np.argsort(counts, kind="stable")
    sizes = counts[by_size]
    equal = sizes[0] == sizes[-1]
    rank = np.empty(G, dtype=np.int64)
    rank[by_size] = np.arange(G)
    if isinstance(codes, Tensor):  # NOTE [grouping on the device]
        keys = codes if equal else torch.as_tensor(rank, device=codes.device)[codes]
        order_t = torch.sort(keys, stable=True).indices.to(device)
        order = None
    else:  # equal sizes: the size order is the label order
        order = stable_order(codes if equal else rank[codes], G)  # rows by group, by size
        order_t = torch.as_tensor(order, device=device)
    starts = np.cumsum(sizes) - sizes
    size_class = np.ceil(np.log2(np.maximum(sizes, 1)))
    cuts = np.flatnonzero(np.diff(size_class) != 0)
    bounds = [0, *(cuts + 1).tolist(), G]
    by_size_t = torch.as_tensor(by_size, device=device)
    out = []
    for lo, hi in itertools.pairwise(bounds):
        width = int(sizes[hi - 1])
        if hi == lo or width == 0:
            continue
        step = max(1, values // (width * columns))
        dense = sizes[lo] == width
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            if dense:
                rows = order_t[int(starts[a]) : int(starts[a]) + (b - a) * width]
            else:
                slot = starts[a:b, None] + np.arange(width)[None, :]
                inside = np.arange(width)[None, :] < sizes[a:b, None]
                slot = np.minimum(slot, len(codes) - 1)
                if order is not None:
                    rows = torch.as_tensor(np.where(inside, order[slot], -1), device=device)
                else:
                    slot_t, inside_t = (torch.as_tensor(v, device=device) for v in (slot, inside))
                    rows = torch.where(inside_t, order_t[slot_t], -1)
            out.append(Chunk(by_size_t[a:b], rows, width))
    return None if equal else by_size_t, out
