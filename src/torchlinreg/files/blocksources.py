"""Sources of row blocks for streamed fits: tables on disk, re-readable and shuffleable.

:class:`TableBlocks` turns a table (one file, a folder, a glob) into a *block factory* (see
:mod:`torchlinreg.iterative.streaming`): called without arguments it reads every row in file order,
called with a generator it reads Parquet row groups and whole files in an order drawn from it.
:func:`prefetch` reads the next blocks in a background thread while the current one is used.

Example:
    >>> blocks = TableBlocks(open_table("data/*.parquet"), ["a", "b"], ["y"])  # doctest: +SKIP
    >>> LinearRegression(solver="sgd").fit_blocks(blocks)                      # doctest: +SKIP
    >>> LinearRegression().fit_blocks(prefetch(blocks()))                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from .csvfile import missing_value, non_finite
from .formats import to_float64
from .tables import Block, TableSource, open_table

__all__ = ["TableBlocks", "prefetch"]


class TableBlocks:
    """A table on disk as a re-readable block factory whose block order can be shuffled.

    ``blocks()`` reads the whole table in file order (every value checked, as
    :meth:`TableSource.read_columns`); ``blocks(generator)`` reads it in an order drawn from
    ``generator``: the Parquet row groups of all files, and whole CSV/.npy files, permuted.
    After a full pass in file order, ``n_rows`` holds the number of rows read.

    Example:
        >>> blocks = TableBlocks(open_table("big.parquet"), ["a", "b"], ["y"])  # doctest: +SKIP
        >>> LinearRegression(solver="sgd").fit_blocks(blocks)                   # doctest: +SKIP
    """

    can_shuffle = True

    def __init__(
        self,
        source: TableSource,
        features: Sequence[str],
        targets: Sequence[str],
        weight_col: str | None = None,
        *,
        block_rows: int | None = None,
    ) -> None:
        self.source = source
        self.features, self.targets = list(features), list(targets)
        self.weight_col = weight_col
        self.block_rows = block_rows or source.block_rows
        self.n_rows: int | None = None
        self._units: list[tuple[str, int | None, int]] | None = None

    def __call__(self, generator: torch.Generator | None = None) -> Iterator[Block]:
        if generator is None:
            return self._in_order()
        units = self.units()
        order = torch.randperm(len(units), generator=generator, device=generator.device)
        return (b for i in order.tolist() for b in self._read_unit(*units[i]))

    def _in_order(self) -> Iterator[Block]:
        n = 0
        for block in self.source.read_columns(
            self.features, self.targets, self.weight_col, self.block_rows
        ):
            n += block.n_rows
            yield block
        self.n_rows = n

    def count_rows(self) -> int:
        """Rows in the table: from the Parquet footers, else by one pass in file order."""
        if self.n_rows is None:
            units = self.units()
            if any(group is None for _, group, _ in units):
                for _ in self._in_order():
                    pass
            else:
                import pyarrow.parquet as pq

                self.n_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in self.source.paths)
        return self.n_rows

    def units(self) -> list[tuple[str, int | None, int]]:
        """``(path, row group or None for the whole file, first row)`` in file order."""
        if self._units is None:
            import pyarrow.parquet as pq

            units = []
            for path in self.source.paths:
                with open(path, "rb") as f:
                    parquet = f.read(4) == b"PAR1"
                if not parquet:
                    units.append((path, None, 0))
                    continue
                meta = pq.ParquetFile(path).metadata
                first = 1
                for g in range(meta.num_row_groups):
                    units.append((path, g, first))
                    first += meta.row_group(g).num_rows
            self._units = units
        return self._units

    def _columns(self) -> list[str]:
        extra = [self.weight_col] if self.weight_col else []
        return list(dict.fromkeys([*self.features, *self.targets, *extra]))

    def _read_unit(self, path: str, group: int | None, first_row: int) -> Iterator[Block]:
        if group is None:
            delimiter = getattr(self.source, "_delimiter", None)
            one = open_table(path, delimiter=delimiter, block_rows=self.block_rows)
            yield from one.read_columns(
                self.features, self.targets, self.weight_col, self.block_rows
            )
            return
        import pyarrow.parquet as pq

        f = pq.ParquetFile(path, pre_buffer=False)
        row = first_row
        for batch in f.iter_batches(
            batch_size=self.block_rows, row_groups=[group], columns=self._columns()
        ):
            X = _float_matrix(batch, self.features, path, row)
            Y = _float_matrix(batch, self.targets, path, row)
            w = None
            if self.weight_col:
                w = _float_matrix(batch, [self.weight_col], path, row)[:, 0]
            yield Block(X, Y, w, row, path)
            row += batch.num_rows


def _float_matrix(batch: pa.RecordBatch, names: list[str], path: str, first_row: int) -> Tensor:
    out = np.empty((batch.num_rows, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        col = batch.column(name)
        if col.null_count:
            i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise missing_value(path, first_row + i, name)
        out[:, j] = to_float64(col, name).to_numpy(zero_copy_only=False)
    if not np.isfinite(out).all():
        i, j = np.argwhere(~np.isfinite(out))[0]
        raise non_finite(path, first_row + int(i), names[j], float(out[i, j]))
    return torch.from_numpy(out)


_DONE = object()


def prefetch(blocks: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """Iterate ``blocks`` in a background thread, up to ``depth`` blocks ahead.

    Reading and decoding a file (pyarrow releases the GIL) then overlaps with the work on the
    previous block; memory grows by ``depth`` blocks. An exception in the reader is raised
    here, at the block where it happened; stopping early stops the reader.

    Example:
        >>> list(prefetch(iter(range(5))))
        [0, 1, 2, 3, 4]
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for block in blocks:
                if not put((block, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((_DONE, exc))

    thread = threading.Thread(target=reader, name="torchlinreg-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            block, exc = q.get()
            if exc is not None:
                raise exc
            if block is _DONE:
                return
            yield block
    finally:
        stop.set()
        thread.join()
