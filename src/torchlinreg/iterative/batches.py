"""Where the iterative engine's batches come from, kept apart from the loop that uses them.

A batch source yields ``(X, Y, w)`` triples: ``X (b, d)``, ``Y (b, k)`` and per-row weights
``w (b,)`` normalised to mean 1 over the whole data set, or ``None`` for unweighted data.
``epoch(generator)`` gives one epoch's training batches, in the order that generator
decides; ``eval_batches()`` gives every row once, in a fixed order, to measure the loss.
Today the data is in memory; a streaming source (a shuffle buffer over a file larger than
memory) only has to offer the same two methods.

Example:
    >>> src = ShuffledBatches(torch.randn(10, 2), torch.randn(10, 1), batch_size=4)
    >>> [xb.shape[0] for xb, yb, wb in src.epoch(torch.Generator().manual_seed(0))]
    [4, 4, 2]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import Tensor

from .scaling import Scaler

Batch = tuple[Tensor, Tensor, Tensor | None]


class BatchSource(Protocol):
    """What the training loop needs from its data."""

    n_rows: int
    full_batch: bool  # True: every epoch is one batch of all rows, in a fixed order

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]: ...

    def eval_batches(self) -> Iterator[Batch]: ...


class FullBatch:
    """All rows as one batch, every epoch (gd, lbfgs)."""

    full_batch = True

    def __init__(self, X: Tensor, Y: Tensor, weight: Tensor | None = None) -> None:
        self.X, self.Y, self.weight = X, Y, weight
        self.n_rows = X.shape[0]

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        yield self.X, self.Y, self.weight

    def eval_batches(self) -> Iterator[Batch]:
        yield self.X, self.Y, self.weight


class ShuffledBatches:
    """Mini-batches of an in-memory data set, reshuffled every epoch.

    Each epoch draws a fresh ``randperm`` from the generator (on the data's device) and
    slices it into index blocks; ``index_select`` gathers each batch. This is the fast way:
    a ``DataLoader`` over a ``TensorDataset`` collates row by row and costs about 12x more
    per epoch (PERFORMANCE.md, trap 6). The last batch of an epoch may be smaller.
    """

    full_batch = False

    # Rows standardized at a time for the full-data loss: bounded temporaries.
    eval_rows = 65536

    def __init__(
        self,
        X: Tensor,
        Y: Tensor,
        weight: Tensor | None = None,
        *,
        batch_size: int = 256,
        scaler: Scaler | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"Invalid batch_size: {batch_size}; it must be >= 1")
        self.X, self.Y, self.weight = X, Y, weight
        self.n_rows = X.shape[0]
        self.batch_size = min(batch_size, self.n_rows)
        self.scaler = scaler  # when given, X and Y are raw and each batch is standardized

    def _scaled(self, X: Tensor, Y: Tensor) -> tuple[Tensor, Tensor]:
        if self.scaler is None:
            return X, Y
        return self.scaler.transform_x(X), self.scaler.transform_y(Y)

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        perm = torch.randperm(self.n_rows, generator=generator, device=self.X.device)
        X, Y, w, bs = self.X, self.Y, self.weight, self.batch_size
        for idx in perm.split(bs):
            wb = None if w is None else w.index_select(0, idx)
            yield (*self._scaled(X.index_select(0, idx), Y.index_select(0, idx)), wb)

    def eval_batches(self) -> Iterator[Batch]:
        if self.scaler is None:
            yield self.X, self.Y, self.weight
            return
        w, step = self.weight, self.eval_rows
        for lo in range(0, self.n_rows, step):
            wb = None if w is None else w[lo : lo + step]
            yield (*self._scaled(self.X[lo : lo + step], self.Y[lo : lo + step]), wb)
