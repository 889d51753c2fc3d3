"""Rows split by group, as batched padded blocks: the layout behind the grouped fits.

Rows are ordered by group size then group (a stable sort, so a group's rows keep their
order); groups of similar size share a bucket (sizes within a factor of two), and each
bucket is a zero-padded ``(groups, rows, columns)`` batch read in row slabs. Every
per-group reduction (a QR, a Gram, a sum) is then one batched call per slab and bucket:
a Python loop over about ``log2(n)`` buckets, never over groups.

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

from ..errors import DataError

# elements of one padded slab (64 MiB of float64): bounds the extra memory of a reduction
SLAB_ELEMENTS = 8 * 1024 * 1024


def encode_groups(groups, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique labels, code per row) of a 1-D sequence of group labels."""
    if isinstance(groups, Tensor):
        groups = groups.detach().cpu().numpy()
    values = np.asarray(getattr(groups, "to_numpy", lambda: groups)())
    if values.ndim != 1 or values.shape[0] != n:
        raise DataError(
            f"groups must be 1-D with one label per row ({n} rows), got shape {values.shape}; "
            "pass a column of group labels"
        )
    try:
        labels, codes = np.unique(values, return_inverse=True)
    except TypeError as exc:  # mixed label types that do not order
        raise DataError(
            f"groups' labels cannot be ordered ({exc}); use labels of one type"
        ) from exc
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        row = int(np.flatnonzero(np.isnan(values))[0]) + 1
        raise DataError(f"groups has a missing (NaN) label at row {row}; drop or label the row")
    if labels.dtype == object and any(v is None for v in labels):
        row = next(i for i, v in enumerate(values) if v is None) + 1
        raise DataError(f"groups has a missing (None) label at row {row}; drop or label the row")
    return labels, codes.reshape(-1)


@dataclass
class Bucket:
    """Groups ``first:first + size`` (in size order) padded to ``width`` rows."""

    groups: Tensor  # (g,) group codes
    index: Tensor  # (g, width) row index, -1 for padding
    width: int


class Segments:
    """The grouping of ``n`` rows into ``G`` groups, with padded buckets for batched work."""

    def __init__(self, labels: np.ndarray, codes: Tensor) -> None:
        self.labels = labels
        self.codes = codes
        self.n_groups = len(labels)
        self.counts = torch.bincount(codes, minlength=self.n_groups)

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

    def qr_r(self, values: Tensor) -> Tensor:
        """Per-group R factor ``(G, c, c)`` of the rows of ``values`` ``(n, c)`` (TSQR)."""
        c = values.shape[1]
        out = values.new_zeros((self.n_groups, c, c))
        acc: dict[int, Tensor] = {}
        for groups, rows, _ in self.slabs(values):
            key = int(groups[0]) if groups.numel() else -1
            if key in acc:
                rows = torch.cat([acc[key], rows], dim=1)
            if rows.shape[1] < c:  # fewer rows than columns: pad to a square factor
                pad = rows.new_zeros((rows.shape[0], c - rows.shape[1], c))
                rows = torch.cat([rows, pad], dim=1)
            acc[key] = torch.linalg.qr(rows, mode="r").R
            out[groups] = acc[key]
        return out

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
