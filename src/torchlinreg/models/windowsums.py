"""Packed window summaries: the upper triangle of the co-moments, running sums in one pass.

The inner loop of NOTE [rolling moments] (``windows.py``) over a run of window ends. A
summary keeps the ``q (q + 1) / 2`` entries of its symmetric co-moment matrix (21 instead
of 36 for five features and a target), and a block's running sums (weight, first
moments, the triangle of second moments, row count, squares) are one ``(blocks, F, K)``
tensor summed along its last, contiguous axis: one cumulative sum per block instead of
five, read back only at the rows a window needs, and centred there.

Example:
    >>> tri = Triangle(2)
    >>> D = torch.tensor([[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0]]], dtype=torch.float64)
    >>> one = torch.ones(1, 3, dtype=torch.float64)
    >>> P = running_sums(D, one, one, tri)
    >>> s = at_rows(P, torch.tensor([2]), torch.zeros(2, 1), tri)
    >>> s.unpack(tri)[2][0].tolist()
    [[2.0, 4.0], [4.0, 8.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


class Triangle:
    """Index maps between a ``q x q`` symmetric matrix and its upper triangle."""

    def __init__(self, q: int, device=None) -> None:
        iu, ju = torch.triu_indices(q, q, device=device)
        self.q, self.iu, self.ju = q, iu, ju
        full = torch.empty((q, q), dtype=torch.int64, device=device)
        full[iu, ju] = torch.arange(iu.numel(), device=device)
        full[ju, iu] = torch.arange(iu.numel(), device=device)
        self.full = full.reshape(-1)
        self.nt = iu.numel()

    def square(self, T: Tensor) -> Tensor:
        """The full ``(q, q, m)`` matrices of triangles ``T`` ``(nt, m)``."""
        return _rows(T, self.full).reshape(self.q, self.q, -1)


def _rows(a: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` of ``a``: whole rows copied (``a[index]`` gathers element-wise)."""
    return torch.index_select(a, 0, index)


@dataclass
class Packed:
    """Summaries feature-major (the batch last): weight ``(m,)``, mean ``(q, m)``, the
    co-moments' upper triangle ``T`` ``(q (q + 1) / 2, m)``, row count ``(m,)``, ``raw``
    ``(q, m)``. Every operation is then a few long contiguous vector operations."""

    w: Tensor
    mean: Tensor
    T: Tensor
    count: Tensor
    raw: Tensor

    def unpack(self, tri: Triangle) -> tuple[Tensor, ...]:
        """``(w, mean, M, count, raw)`` row-major, with the full ``(m, q, q)`` co-moments."""
        M = tri.square(self.T).permute(2, 0, 1)
        return self.w, self.mean.T, M, self.count, self.raw.T

    def masked(self, keep: Tensor) -> Packed:
        """Empty summaries (all zero) where ``keep`` is False."""
        k = keep.to(self.w.dtype)
        return Packed(self.w * k, self.mean * k, self.T * k, self.count * k, self.raw * k)

    def put(self, mask: Tensor, part: Packed) -> None:
        """Summaries ``part`` in the places ``mask`` (in place)."""
        self.w[mask], self.count[mask] = part.w, part.count
        self.mean[:, mask], self.T[:, mask], self.raw[:, mask] = part.mean, part.T, part.raw


def pack(w: Tensor, mean: Tensor, M: Tensor, count: Tensor, raw: Tensor, tri: Triangle) -> Packed:
    """Row-major summaries (``M`` ``(m, q, q)``), packed."""
    return Packed(
        w, mean.T.contiguous(), M[:, tri.iu, tri.ju].T.contiguous(), count, raw.T.contiguous()
    )


def take(p: Packed, index: Tensor) -> Packed:
    return Packed(p.w[index], p.mean[:, index], p.T[:, index], p.count[index], p.raw[:, index])


def merge_packed(a: Packed, b: Packed, tri: Triangle) -> Packed:
    """``windows.merge`` on packed summaries (Chan, Golub & LeVeque)."""
    w = a.w + b.w
    f = b.w / torch.where(w > 0, w, 1.0)
    f = torch.where((a.w == 0) & (b.count > 0), 1.0, f)  # zero weights: keep a centre
    delta = b.mean - a.mean
    mean = a.mean + delta * f
    T = torch.addcmul(a.T + b.T, _rows(delta * (a.w * f), tri.iu), _rows(delta, tri.ju))
    return Packed(w, mean, T, a.count + b.count, a.raw + b.raw)


def running_sums(D: Tensor, w: Tensor, valid: Tensor, tri: Triangle) -> Tensor:
    """Running sums along each block: ``D`` ``(blocks, q, K)`` about the block's anchor.

    ``w`` and ``valid`` (1.0 for a row, 0.0 for a padding slot) are ``(blocks, K)``.
    Returns ``(blocks, F, K)``: weight, ``w D``, the triangle of ``w D D'``, row count and
    ``w D^2``.
    """
    wd = w[:, None, :] * D
    outer = torch.index_select(wd, 1, tri.iu) * torch.index_select(D, 1, tri.ju)
    parts = [w[:, None, :], wd, outer, valid[:, None, :], wd * D]
    P = torch.cat(parts, dim=1)
    return torch.cumsum(P, dim=2, out=P)


def at_rows(P: Tensor, slots, anchor: Tensor, tri: Triangle) -> Packed:
    """Centred summaries of the running sums at ``slots`` (``block * K + offset``: a
    tensor, a ``(start, stop)`` range, or None for every slot); ``anchor`` ``(q, m)``."""
    q, nt = tri.q, tri.nt
    R = P.transpose(0, 1).reshape(P.shape[1], -1)  # (F, slots), each row contiguous
    if slots is not None:
        R = R[:, slots] if isinstance(slots, Tensor) else R[:, slots[0] : slots[1]]
    cw, c1 = R[0], R[1 : 1 + q]
    m1 = c1 / torch.where(cw > 0, cw, 1.0)
    T = R[1 + q : 1 + q + nt] - _rows(c1, tri.iu) * _rows(m1, tri.ju)
    return Packed(cw, anchor + m1, T, R[1 + q + nt], R[2 + q + nt :])


def empty(m: int, q: int, tri: Triangle, like: Tensor) -> Packed:
    z = like.new_zeros(m)
    return Packed(z, like.new_zeros((q, m)), like.new_zeros((tri.nt, m)), z.clone(),
                  like.new_zeros((q, m)))  # fmt: skip
