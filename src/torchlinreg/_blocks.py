"""Row-block kernels of the exact engine: fold blocks of ``[1 | X | Y]`` into a summary.

Each kernel walks the rows in blocks of ``rows``, converting each block to the summary's
dtype and device on the fly, so extra memory is one block, never a copy of X. See
NOTE [centring] in ``exact.py`` for why the QR rows are shifted and the Gram is centred.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class Totals:
    """Running total weight and count of positive-weight rows, kept on the device (no syncs)."""

    def __init__(self, sum_w: Tensor, n_nonzero: Tensor) -> None:
        self.sum_w = sum_w
        self.n_nonzero = n_nonzero

    def block(self, w: Any, lo: int, hi: int, like: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Add rows ``lo:hi``; return their weights and square roots (None when unweighted)."""
        if w is None:
            self.sum_w += hi - lo
            self.n_nonzero += hi - lo
            return None, None
        wb = w[lo:hi].to(device=like.device, dtype=like.dtype)
        self.sum_w += wb.sum()
        self.n_nonzero += (wb > 0).sum()
        return wb, wb.sqrt()


def absorb_qr(
    r: Tensor, shift: Tensor | None, X: Tensor, Y: Tensor, w: Any, totals: Totals, rows: int
) -> Tensor:
    """TSQR: ``r = qr([r; block]).R`` per block; ``shift`` given means an intercept column."""
    m, n, d = r.shape[1], X.shape[0], X.shape[1]
    c = int(shift is not None)
    rows = min(rows, n)
    # Column-major work buffer, the layout LAPACK's geqrf wants (saves a transpose copy).
    work = torch.empty(m, m + rows, dtype=r.dtype, device=r.device)
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        _, sb = totals.block(w, lo, hi, r)
        buf = work[:, : m + hi - lo].T
        buf[:m] = r
        block = buf[m:]
        block[:, c : c + d].copy_(X[lo:hi])
        block[:, c + d :].copy_(Y[lo:hi])
        data = block[:, c:]
        if shift is not None:
            data.sub_(shift)
            block[:, 0] = 1.0 if sb is None else sb
        if sb is not None:
            data.mul_(sb[:, None])
        r = torch.linalg.qr(buf, mode="r").R
    return r


def absorb_gram(gram: Tensor, X: Tensor, Y: Tensor, w: Any, totals: Totals, rows: int) -> None:
    """Raw weighted Gram of ``[X | Y]`` (no intercept), accumulated in place with ``addmm_``."""
    n, d = X.shape
    rows = min(rows, n)
    work = torch.empty(rows, gram.shape[0], dtype=gram.dtype, device=gram.device)
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        _, sb = totals.block(w, lo, hi, gram)
        # One joint product of [X | Y]: X.T @ Y alone is slow in torch (PERFORMANCE.md, trap 3).
        z = _fill(work[: hi - lo], X[lo:hi], Y[lo:hi], d)
        if sb is not None:
            z.mul_(sb[:, None])
        gram.addmm_(z.T, z)


def absorb_centred(
    mean: Tensor, comoment: Tensor, X: Tensor, Y: Tensor, w: Any, totals: Totals, rows: int
) -> None:
    """Weighted means and centred co-moments of ``[X | Y]``, updated in place block by block."""
    n, d = X.shape
    rows = min(rows, n)
    work = torch.empty(rows, comoment.shape[0], dtype=comoment.dtype, device=comoment.device)
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        prior = totals.sum_w.clone()
        wb, sb = totals.block(w, lo, hi, comoment)
        z = _fill(work[: hi - lo], X[lo:hi], Y[lo:hi], d)
        if wb is None:
            block_w = torch.full((), float(hi - lo), dtype=z.dtype, device=z.device)
            block_mean = z.mean(dim=0)
        else:
            block_w = wb.sum()
            block_mean = (wb @ z) / torch.where(block_w > 0, block_w, 1.0)
        z.sub_(block_mean)
        if sb is not None:
            z.mul_(sb[:, None])
        comoment.addmm_(z.T, z)
        chan_update(mean, comoment, prior, block_w, block_mean)


def chan_update(
    mean: Tensor, comoment: Tensor, prior_w: Tensor, block_w: Tensor, block_mean: Tensor
) -> None:
    """Fold a part's weight and mean into ``mean``; its own co-moment is already added.

    Chan, Golub & LeVeque: ``M = Ma + Mb + d d' * Wa Wb / (Wa + Wb)``, ``d = mean_b - mean_a``.
    """
    total = prior_w + block_w
    frac = block_w / torch.where(total > 0, total, 1.0)
    delta = block_mean - mean
    mean.add_(delta * frac)
    comoment.add_(torch.outer(delta, delta) * (prior_w * frac))


def _fill(z: Tensor, xb: Tensor, yb: Tensor, d: int) -> Tensor:
    z[:, :d].copy_(xb)
    z[:, d:].copy_(yb)
    return z
