"""DistributedDataParallel training for the iterative engine (see :mod:`.collectives`).

NOTE [distributed training]
Every rank holds its own rows. :func:`~torchlinreg.iterative.fit.fit_iterative` then

- standardizes with the weighted means and scales of all rows (``Scaler.fit(reduce=...)``);
- normalises the row weights to mean 1 over all rows, and the ridge penalty by the total
  weight of all rows;
- starts every rank from rank 0's weights (DDP broadcasts them) and draws the seed on
  rank 0, while each rank shuffles its own rows with the generator seeded ``seed + rank``;
- takes the same number of steps per epoch on every rank (:class:`RankBatches`), each step
  the gradient of the global batch's mean loss;
- records the global loss (summed over ranks in rank order), so early stopping, the
  divergence guard and the L-BFGS line search decide the same on every rank.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .collectives import allgather, is_distributed, world

__all__ = ["RankBatches", "RankInfo", "ddp_wrap"]


@dataclass
class RankInfo:
    """Row counts and weight totals of every rank, for global normalisations.

    ``counts[r]`` rows on rank ``r``; ``total_weight`` is the sum of the weights over all
    ranks (the row count when unweighted).
    """

    rank: int
    world_size: int
    counts: list[int]
    total_weight: float

    @property
    def n_rows(self) -> int:
        return sum(self.counts)

    @classmethod
    def gather(cls, n_local: int, weight: Tensor | None) -> RankInfo:
        """Collect every rank's row count and weight sum (one small collective)."""
        wsum = float(n_local) if weight is None else float(weight.double().sum())
        rows = allgather(torch.tensor([float(n_local), wsum], dtype=torch.float64))
        rank, size = world()
        return cls(rank, size, [int(r[0]) for r in rows], sum(float(r[1]) for r in rows))


def ddp_wrap(module: nn.Module) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel on its own device (identity outside a group).

    DDP broadcasts rank 0's parameters at construction, so every rank starts from the same
    weights; buffers (the zero bias of a model without intercept) are not re-broadcast.
    """
    if not is_distributed():
        return module
    param = next(module.parameters())
    ids = [param.device.index] if param.device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # The buffer (a zero bias) is the same on every rank: no broadcast at every forward.
    # torch >= 2.13 renamed the option and warns about the old name.
    params = inspect.signature(ddp).parameters
    quiet = {
        "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers": False
    }
    return ddp(module, device_ids=ids, **quiet)


class RankBatches:
    """A batch source for DDP: every rank takes the same number of steps per epoch.

    ``batch_size`` is the global batch, as in a 1-process fit: an epoch has
    ``steps = ceil(all rows / batch_size)`` steps (1 for a full batch), so the same flags
    give the same number of updates per epoch whatever the number of processes (at most the
    largest shard's rows: a batch of 1 on 2 ranks takes one row of each per step). Each epoch
    the local rows are reshuffled (the generator is seeded ``seed + rank``) and split into
    ``steps`` nearly equal batches. DDP averages the ranks' gradients; each batch's row
    weights are scaled by ``world_size * local batch rows / global batch rows`` so that the
    average is the gradient of the global batch's mean loss, whatever the shard sizes.
    ``n_rows`` is the global row count, so :meth:`Trainer.full_loss` summed over ranks is
    the global loss. ``weight`` is normalised to mean 1 over all ranks' rows.
    """

    def __init__(
        self,
        X: Tensor,
        Y: Tensor,
        weight: Tensor | None,
        info: RankInfo,
        *,
        batch_size: int | None,
    ) -> None:
        self.X, self.Y, self.weight, self.info = X, Y, weight, info
        self.n_rows = info.n_rows
        self.full_batch = batch_size is None
        self.steps = 1 if batch_size is None else max(1, math.ceil(self.n_rows / batch_size))
        # A global batch smaller than the number of ranks would leave some steps without a
        # row on any rank (a 0 / 0 scale); each step gets a row of the largest shard instead.
        self.steps = min(self.steps, max(1, *info.counts))
        sizes = [_split_sizes(c, self.steps) for c in info.counts]
        global_sizes = [sum(s[j] for s in sizes) for j in range(self.steps)]
        mine = sizes[info.rank]
        self._sizes = mine
        self._scales = [info.world_size * mine[j] / global_sizes[j] for j in range(self.steps)]
        self._plain = weight is None and all(s == 1.0 for s in self._scales)

    def _weights(self, idx: Tensor | None, j: int, n: int) -> Tensor | None:
        if self._plain:
            return None
        base = self.weight if idx is None or self.weight is None else self.weight[idx]
        if base is None:
            return torch.full((n,), self._scales[j], dtype=self.X.dtype, device=self.X.device)
        return base * self._scales[j]

    def epoch(self, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
        if self.full_batch:
            yield self.X, self.Y, self._weights(None, 0, self.X.shape[0])
            return
        n = self.X.shape[0]
        perm = torch.randperm(n, generator=generator, device=self.X.device)
        for j, idx in enumerate(perm.split(self._sizes)):
            if idx.numel() == 0:
                # A rank with fewer rows than steps still joins the step, with zero weight.
                zero = torch.zeros(1, dtype=self.X.dtype, device=self.X.device)
                yield self.X[:1], self.Y[:1], zero
                continue
            yield self.X[idx], self.Y[idx], self._weights(idx, j, idx.numel())

    def eval_batches(self) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
        yield self.X, self.Y, self.weight


def _split_sizes(n: int, parts: int) -> list[int]:
    base, extra = divmod(n, parts)
    return [base + (1 if j < extra else 0) for j in range(parts)]
