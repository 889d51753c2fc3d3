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

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data import Matrix, as_matrix, as_targets, as_weights, unpack_block
from ..errors import DataError
from ..exact.state import LeastSquaresState
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
from .optimality import Optimum, units_of
from .scaling import Scaler
from .solvers import resolve_solver
from .trainer import LinearModule, Trainer

__all__ = [
    "DEFAULT_BUFFER_ROWS",
    "ShuffleBufferBatches",
    "StreamResult",
    "fit_iterative_stream",
]

# 2^18 rows: 64 MB at 30 float64 columns, and 2-4 row groups of a typical Parquet file.
DEFAULT_BUFFER_ROWS = 262_144

BlockFactory = Callable[..., Iterable[Any]]


def _call(factory: BlockFactory, generator: torch.Generator | None) -> Iterator[Any]:
    if generator is not None and getattr(factory, "can_shuffle", False):
        return iter(factory(generator))
    blocks = factory()
    if not isinstance(blocks, Iterable):
        raise DataError(
            f"the block factory returned {type(blocks).__name__}, not an iterable of blocks; "
            "pass a callable that returns a new iterator of (X, y[, w]) blocks on every call"
        )
    return iter(blocks)


@dataclass
class _Layout:
    """What the first block says about the stream: columns, kinds, device and dtype."""

    X: Matrix
    Y: Matrix
    device: torch.device
    dtype: torch.dtype


def _all_zero(w: Any) -> bool:
    values = w if isinstance(w, Tensor) else np.asarray(w)
    return len(values) > 0 and bool((values == 0).all())


def _tensors(block: Any, layout: _Layout | None, device, dtype):
    """A block as validated tensors, or None for a block whose weights are all zero (it adds
    nothing, and ``as_weights`` refuses such a block on its own)."""
    X, y, w = unpack_block(block)
    if w is not None and _all_zero(w):
        return None
    Xm = as_matrix(X, name="X")
    n, d = Xm.values.shape
    Ym = as_targets(y, n, name="y")
    if layout is not None:
        if d != layout.X.values.shape[1] or Ym.values.shape[1] != layout.Y.values.shape[1]:
            raise DataError(
                f"a block has {d} features and {Ym.values.shape[1]} targets, but the first "
                f"had {layout.X.values.shape[1]} and {layout.Y.values.shape[1]}; every block "
                "must have the same columns"
            )
        device, dtype = layout.device, layout.dtype
    wt = as_weights(w, n)
    to = {"device": device, "dtype": dtype}
    return Xm, Ym, Xm.values.to(**to), Ym.values.to(**to), None if wt is None else wt.to(**to)


@dataclass
class Scan:
    """What the first pass over a stream learned: a float64 Gram state of the columns divided
    by ``x_units``/``y_units`` (powers of two near the first block's largest values, NOTE
    [optimality gap]), the layout, and each feature's smallest and largest value."""

    state: LeastSquaresState
    layout: _Layout
    x_units: Tensor
    y_units: Tensor
    x_min: Tensor
    x_max: Tensor
    fit_intercept: bool

    def row_norm_bound(self, scaler: Scaler | None) -> float:
        """An upper bound on ``max_i ||[x'_i, 1]||^2`` from the column extremes."""
        lo, hi = self.x_min, self.x_max
        if scaler is not None:
            mu, sigma = scaler.x_mean.to(lo), scaler.x_scale.to(lo)
            lo, hi = (lo - mu) / sigma, (hi - mu) / sigma
        return float(torch.maximum(lo.square(), hi.square()).sum()) + float(self.fit_intercept)


def scan_moments(
    factory: BlockFactory,
    *,
    fit_intercept: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Scan:
    """One pass over the blocks: see :class:`Scan`; data of 1e160 does not overflow."""
    state, layout, units, lo, hi = None, None, None, None, None
    for block in _call(factory, None):
        parts = _tensors(block, layout, None, None)
        if parts is None:
            continue
        Xm, Ym, X, Y, w = parts
        if layout is None:
            dev = torch.device(device) if device is not None else Xm.values.device
            dt = dtype or (X.dtype if X.dtype in (torch.float32, torch.float64) else torch.float64)
            layout = _Layout(Xm, Ym, dev, dt)
            # centred whatever the model: the gap's unit is the targets' centred variance
            state = LeastSquaresState(
                X.shape[1], Y.shape[1], fit_intercept=True, method="gram", device=dev
            )
            units = [_first_units(A).to(dev) for A in (X, Y)]
        X64, Y64 = X.to(dev, torch.float64), Y.to(dev, torch.float64)
        if X64.shape[0]:
            bmin, bmax = X64.amin(dim=0), X64.amax(dim=0)
            lo = bmin if lo is None else torch.minimum(lo, bmin)
            hi = bmax if hi is None else torch.maximum(hi, bmax)
        state.absorb(X64 / units[0], Y64 / units[1], w)
    if state is None or state.n_samples == 0:
        raise DataError("no blocks to fit; the data source yielded no rows")
    if not state.sum_weights > 0:
        raise DataError("sample_weight must be non-negative with a positive sum")
    return Scan(state, layout, units[0], units[1], lo, hi, fit_intercept)


def _first_units(A: Tensor) -> Tensor:
    top = A.abs().amax(dim=0).to(torch.float64) if A.shape[0] else A.new_zeros(A.shape[1])
    return units_of(top.to(torch.float64))


def in_original_units(
    state: LeastSquaresState, x_units: Tensor, y_units: Tensor, *, fit_intercept: bool
) -> LeastSquaresState:
    """The Gram state of the unscaled columns, of the model's kind (raw moments without an
    intercept), for the metrics of any coefficients."""
    units = torch.cat([x_units, y_units]).to(state.device, state.dtype)
    record = state.state_dict()
    mean = record.pop("mean") * units
    comoment = record.pop("comoment") * torch.outer(units, units)
    if fit_intercept:
        record.update(mean=mean, comoment=comoment)
    else:
        record.update(gram=comoment + state.sum_weights * torch.outer(mean, mean))
        record["fit_intercept"] = False
    return LeastSquaresState.from_state_dict(record)


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
    read once for the statistics and then twice per epoch (training, full-data loss).
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
