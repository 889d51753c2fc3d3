"""Iterative fits over data larger than memory: a shuffle buffer of row blocks.

Exact solvers need nothing from this module: :meth:`LinearRegression.fit_blocks` absorbs
each block into the mergeable state and drops it (one pass, memory of one block plus the
``(d + k)^2`` summary). Gradient methods see the data many times, in a fresh order each
epoch, so they need a source they can read again. Here:

- a *block factory* is a callable that returns a new iterator of row blocks each time it is
  called (``(X, y)``, ``(X, y, w)`` or :class:`~torchlinreg.files.tables.Block`). A factory with
  ``can_shuffle = True`` (such as :class:`~torchlinreg.files.blocksources.TableBlocks`) is called
  with the epoch's generator and reads its blocks in an order drawn from it (Parquet row
  groups, files of a folder);
- :class:`ShuffleBufferBatches` is a batch source for :class:`~.trainer.Trainer`:
  it fills a buffer of ``buffer_rows`` rows from the blocks, shuffles the rows in it with the
  epoch's generator and cuts mini-batches; ``eval_batches`` streams every row once for the
  full-data loss;
- :func:`fit_iterative_stream` runs one streaming pass for the standardization statistics
  (weighted means and variances, from a Gram state), then the training loop.

Sources, for exact and iterative solvers alike (an iterable is read once, a factory as often
as the solver needs)::

    # a file, a folder or a glob of CSV/Parquet files (TableBlocks re-opens them per epoch)
    blocks = TableBlocks(open_table("data/*.parquet"), ["temp", "rain"], ["apples"])
    LinearRegression(solver="sgd").fit_blocks(blocks)

    # your own loader: any generator of (X, y[, w]) blocks (numpy, torch, pandas, ...)
    LinearRegression().fit_blocks((X, y) for X, y in my_loader())

    # a database cursor, fetchmany by fetchmany
    def from_cursor(cursor, size=65536):
        while rows := cursor.fetchmany(size):
            a = np.asarray(rows, dtype=np.float64)
            yield a[:, :-1], a[:, -1]
    LinearRegression().fit_blocks(from_cursor(db.execute("select a, b, y from t")))
    LinearRegression(solver="adam").fit_blocks(
        lambda: from_cursor(db.execute("select a, b, y from t")))   # re-run per epoch

NOTE [streamed shuffling]
A shuffle buffer mixes rows only within ``buffer_rows`` consecutive rows of the read order,
so data sorted by a column trains worse than shuffled data. Permuting the block order
(row groups, files) each epoch spreads that: with ``G`` row groups and a buffer of ``B``
groups, each batch mixes ``B`` groups drawn from the whole file. Everything is drawn from the
trainer's generator, so a seed gives the same run, and a resumed run the same batches.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> parts = [(rng.normal(size=(500, 2)), rng.normal(size=500)) for _ in range(4)]
    >>> res = fit_iterative_stream(lambda: iter(parts), solver="sgd", max_iter=3, tol=None,
    ...                            random_state=0)
    >>> res.n_rows, len(res.loss_history)
    (2000, 4)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..data import Matrix
from ..errors import DataError
from ..exact.state import LeastSquaresState
from ..exact.threads import with_fit_threads
from .batches import Batch
from .callbacks import Callback
from .convergence import (
    GapMeter,
    IterativeResult,
    builtin_callbacks,
    finish,
    resolve_max_iter,
    resolve_tol,
)
from .fit import _initial, _seed
from .optimality import Optimum
from .scaling import Scaler
from .solvers import resolve_solver
from .streamscan import BlockFactory, _call, _tensors, in_original_units, scan_moments
from .trainer import LinearModule, Trainer

__all__ = [
    "DEFAULT_BUFFER_ROWS",
    "ShuffleBufferBatches",
    "StreamResult",
    "fit_iterative_stream",
]

# 2^18 rows: 64 MB at 30 float64 columns, and 2-4 row groups of a typical Parquet file.
DEFAULT_BUFFER_ROWS = 262_144


class ShuffleBufferBatches:
    """Mini-batches streamed from a block factory through a shuffle buffer.

    Each epoch reads the blocks (in an order drawn from the epoch's generator when the
    factory can shuffle, see NOTE [streamed shuffling]), gathers ``buffer_rows`` rows,
    permutes them with the generator and yields batches of ``batch_size`` rows; rows that do
    not fill a last batch are carried into the next buffer, so only an epoch's final batch may
    be smaller. ``prepare`` maps a raw block to the training tensors ``(X, Y, w)`` (on the
    device, standardized), or to None to skip it. Memory: about twice the buffer (its blocks
    and their concatenation while it is shuffled).

    Example:
        >>> parts = [(torch.randn(100, 2), torch.randn(100, 1), None) for _ in range(3)]
        >>> src = ShuffleBufferBatches(lambda: iter(parts), lambda b: b, n_rows=300,
        ...                            batch_size=64, buffer_rows=128)
        >>> [len(b[0]) for b in src.epoch(torch.Generator().manual_seed(0))]
        [64, 64, 64, 64, 44]
    """

    full_batch = False

    def __init__(
        self,
        factory: BlockFactory,
        prepare: Callable[[Any], Batch | None],
        *,
        n_rows: int,
        batch_size: int,
        buffer_rows: int = DEFAULT_BUFFER_ROWS,
    ) -> None:
        if batch_size < 1 or buffer_rows < 1:
            raise ValueError(
                f"batch_size and buffer_rows must be >= 1, got {batch_size} and {buffer_rows}"
            )
        self.factory, self.prepare = factory, prepare
        self.n_rows = n_rows
        self.batch_size = min(batch_size, n_rows)
        self.buffer_rows = max(buffer_rows, self.batch_size)

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        pending: list[Batch] = []
        rows = 0
        for block in _call(self.factory, generator):
            part = self.prepare(block)
            if part is None or part[0].shape[0] == 0:
                continue
            pending.append(part)
            rows += part[0].shape[0]
            if rows >= self.buffer_rows:
                rest = yield from self._drain(pending, generator, keep_rest=True)
                pending, rows = ([rest], rest[0].shape[0]) if rest is not None else ([], 0)
        if rows:
            yield from self._drain(pending, generator, keep_rest=False)

    def _drain(self, pending: list[Batch], generator: torch.Generator, *, keep_rest: bool):
        X, Y, w = _cat(pending)
        n, bs = X.shape[0], self.batch_size
        perm = torch.randperm(n, generator=generator, device=X.device)
        full = n - n % bs if keep_rest else n
        for idx in perm[:full].split(bs):
            yield _take(X, Y, w, idx)
        if full < n:
            return _take(X, Y, w, perm[full:])
        return None

    def eval_batches(self) -> Iterator[Batch]:
        for block in _call(self.factory, None):
            part = self.prepare(block)
            if part is not None:
                yield part


def _cat(parts: list[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    w = None if parts[0][2] is None else torch.cat([p[2] for p in parts])
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), w


def _take(X: Tensor, Y: Tensor, w: Tensor | None, idx: Tensor) -> Batch:
    wb = None if w is None else w.index_select(0, idx)
    return X.index_select(0, idx), Y.index_select(0, idx), wb


@dataclass
class StreamResult(IterativeResult):
    """An :class:`IterativeResult` plus what the first pass learned about the stream.

    ``moments`` is a Gram :class:`LeastSquaresState` of every row:
    :func:`torchlinreg.stats.metrics.metrics_from_state` scores any coefficients on all
    rows from it, without another pass.
    """

    moments: LeastSquaresState | None = None
    n_rows: int = 0
    first_X: Matrix | None = None
    first_Y: Matrix | None = None


@with_fit_threads
def fit_iterative_stream(
    factory: BlockFactory,
    *,
    solver: str = "sgd",
    fit_intercept: bool = True,
    alpha: float = 0.0,
    standardize: bool = True,
    lr: float | None = None,
    max_iter: int | None = None,
    batch_size: int | None = None,
    tol: float | str | None = "auto",
    n_iter_no_change: int = 5,
    random_state: int | None = None,
    init: str = "zeros",
    callbacks: Sequence[Callback] = (),
    resume_from: dict | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    buffer_rows: int = DEFAULT_BUFFER_ROWS,
) -> StreamResult:
    """:func:`~.fit.fit_iterative` over a block factory, never all rows at once.

    Arguments are those of ``fit_iterative``; ``factory`` returns a new iterator of
    ``(X, y[, w])`` blocks on every call (see the module docstring), ``buffer_rows`` sizes
    the shuffle buffer. Only mini-batch solvers (``"sgd"``, ``"adam"``) stream; the data is
    read once for the statistics (and the Gram, which gives the loss and the optimality gap
    exactly: NOTE [optimality gap]) and then once per epoch.
    """
    if not alpha >= 0:
        raise ValueError(f"Invalid alpha: {alpha}; it must be >= 0")
    scan = scan_moments(factory, fit_intercept=fit_intercept, device=device, dtype=dtype)
    gram, layout = scan.state, scan.layout
    n, d, k = gram.n_samples, gram.n_features, gram.n_targets
    # raises where the squares overflow
    optimum = Optimum(gram, scan.x_units, scan.y_units, alpha=alpha, fit_intercept=fit_intercept)
    max_iter = resolve_max_iter(max_iter, solver)
    dev, dt = layout.device, layout.dtype
    tol = resolve_tol(tol, solver, dt)
    resolve_solver(solver, n_targets=k, n_rows=n, lr=lr, batch_size=batch_size)  # checks
    if resume_from is not None and "scaler" in resume_from:
        scaler = Scaler.from_state_dict(resume_from["scaler"])
    else:
        scaler = (  # NOTE [ridge standardization] in scaling.py
            optimum.scaler(dt, center=fit_intercept).with_ridge(alpha / gram.sum_weights)
            if standardize
            else None
        )
    spec = resolve_solver(
        solver,
        n_targets=k,
        n_rows=n,
        lr=lr,
        batch_size=batch_size,
        curvature=optimum.curvature(scaler),
        row_norm=scan.row_norm_bound(scaler),
    )
    if spec.batch_size is None:
        raise DataError(
            f"solver {solver!r} takes all rows as one batch; a streamed fit needs a "
            "mini-batch solver ('sgd' or 'adam'), or an exact solver ('qr', 'gram'), which "
            "streams in one pass"
        )
    weight_scale = n / gram.sum_weights

    def prepare(block: Any) -> Batch | None:
        parts = _tensors(block, layout, dev, dt)
        if parts is None:
            return None
        _, _, X, Y, w = parts
        if scaler is not None:
            X, Y = scaler.transform_x(X), scaler.transform_y(Y)
        return X, Y, None if w is None else w * weight_scale

    source = ShuffleBufferBatches(
        factory, prepare, n_rows=n, batch_size=spec.batch_size, buffer_rows=buffer_rows
    )
    seed = _seed(random_state)
    W0, b0 = _initial(init, k, d, seed, dt)
    learn_bias = fit_intercept and scaler is None  # NOTE [centred intercept] in fit.py
    module = LinearModule(W0.to(dev), b0.to(dev), fit_intercept=learn_bias)
    penalty = None
    if alpha > 0:
        scale = scaler.penalty_scale() if scaler is not None else torch.ones(d, dtype=dt)
        penalty = (alpha / (gram.sum_weights * k), scale.to(dev))
    # The Gram is formed in the first pass whatever d: the stream's standardization comes
    # from it (it always did), so the gap is exact here (NOTE [optimality gap]).
    meter = GapMeter(optimum, scaler)
    builtins = builtin_callbacks(
        spec, tol, n_iter_no_change, meter, lambda: trainer, standardized=scaler is not None
    )
    trainer = Trainer(
        module,
        source,
        spec,
        max_iter=max_iter,
        penalty=penalty,
        callbacks=[*builtins, *callbacks],
        generator=torch.Generator(device=dev).manual_seed(seed),
        scaler=scaler,
        objective=meter.loss,
    )
    if resume_from is not None:
        trainer.load_state_dict(resume_from)
    trainer.fit()
    res = finish(trainer, scaler, meter, tol, max_iter)
    moments = in_original_units(gram, scan.x_units, scan.y_units, fit_intercept=fit_intercept)
    return StreamResult(**vars(res), moments=moments, n_rows=n, first_X=layout.X, first_Y=layout.Y)
