"""Table files (CSV, Parquet, .npy; one file, a folder, or a glob) read in row blocks.

Nothing here holds more than one block of rows: CSV goes through pyarrow's streaming reader,
Parquet through ``iter_batches``, ``.npy`` through a memory map. Every malformed input becomes
a :class:`~torchlinreg.errors.DataError` naming the file, row and column.

Example:
    >>> src = open_table("crops.csv")                                  # doctest: +SKIP
    >>> for block in src.read_columns(["temp", "rain"], ["apples"]):   # doctest: +SKIP
    ...     state.absorb(block.X, block.Y)
"""

from __future__ import annotations

import difflib
import glob
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from ..errors import DataError
from . import csvfile
from .formats import open_file

# Files a folder is read from (a README.txt next to the data is not data).
DATA_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".pq", ".npy")
_GLOB_CHARS = "*?["


@dataclass
class Block:
    """One block of rows as float64 tensors.

    ``first_row`` is the row number of the block's first row as a text editor shows it for
    CSV (header = line 1, so the first data row is 2) and the 1-based record number for
    Parquet and .npy; ``path`` is the file the block came from.
    """

    X: Tensor
    Y: Tensor | None
    w: Tensor | None
    first_row: int
    path: str = ""

    @property
    def n_rows(self) -> int:
        return self.X.shape[0]


def _expand(path: str) -> list[str]:
    if any(ch in path for ch in _GLOB_CHARS) and not os.path.exists(path):
        paths = sorted(p for p in glob.glob(path) if os.path.isfile(p))
        if not paths:
            raise DataError("no files match this pattern; check the path", path=path)
        return paths
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(DATA_SUFFIXES))
        paths = [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
        if not paths:
            raise DataError(
                "the folder holds no data files (.csv, .csv.gz, .tsv, .parquet, .npy)", path=path
            )
        return paths
    if not os.path.exists(path):
        raise DataError(f"file not found{_nearby_hint(path)}; check the path", path=path)
    return [path]


def name_list(names: Sequence[str], limit: int = 20, *, as_list: bool = False) -> str:
    """Column names for a message: the first ``limit``, then how many more (a header of
    10,000 names must not make a 100 KB error line). ``as_list`` quotes them as a list.

    Example:
        >>> name_list(["a", "b", "c"], limit=2)
        'a, b ... and 1 more'
        >>> name_list(["a", "b"], as_list=True)
        "['a', 'b']"
    """
    first = [str(n)[:80] for n in names[:limit]]
    shown = repr(first) if as_list else ", ".join(first)
    return shown + (f" ... and {len(names) - limit:,} more" if len(names) > limit else "")


def _nearby_hint(path: str) -> str:
    folder = os.path.dirname(path) or "."
    try:
        entries = os.listdir(folder)
    except OSError:
        return ""
    close = difflib.get_close_matches(os.path.basename(path), entries, n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


class TableSource:
    """A table on disk (one file or several with the same columns), read in row blocks."""

    def __init__(self, path, *, columns=None, delimiter=None, block_rows=65536) -> None:
        if block_rows < 1:
            raise ValueError(f"block_rows must be >= 1, got {block_rows}")
        if delimiter is not None and (len(delimiter) != 1 or delimiter in '\r\n"'):
            raise DataError(
                f"delimiter must be one character other than a quote or newline, got {delimiter!r}"
            )
        self.path = os.fspath(path)
        self.paths = _expand(self.path)
        self.block_rows = block_rows
        self._delimiter = delimiter
        first = open_file(self.paths[0], delimiter, block_rows)
        self.column_names: list[str] = list(first.column_names)
        self._first = first
        self._check_same_columns()
        self.columns = None if columns is None else self._resolve(columns)

    def _check_same_columns(self) -> None:
        for p in self.paths[1:]:
            names = open_file(p, self._delimiter, self.block_rows).column_names
            if list(names) != self.column_names:
                raise DataError(
                    f"columns {name_list(names, as_list=True)} differ from "
                    f"{name_list(self.column_names, as_list=True)}"
                    f" in {self.paths[0]}; all files must have the same columns in the same order",
                    path=p,
                )

    def _resolve(self, columns: Sequence[str]) -> list[str]:
        if isinstance(columns, str):
            columns = [columns]
        for c in columns:
            if c not in self.column_names:
                close = difflib.get_close_matches(str(c), self.column_names, n=3)
                hint = f"did you mean {', '.join(repr(m) for m in close)}? " if close else ""
                if len(self.column_names) == 1 and any(
                    d in self.column_names[0] for d in csvfile.DELIMITERS
                ):
                    hint += "the header is one column: is --delimiter right? "
                raise DataError(
                    f"unknown column {c!r}; {hint}available columns: "
                    f"{name_list(self.column_names)}",
                    path=self.path,
                )
        return list(columns)

    def rows_at_most(self, limit: int) -> int:
        """An upper bound on the rows of every file, found without parsing a row.

        Parquet footers and .npy shapes give the count; a CSV file's lines are counted (a
        row is at least a line; gzip is decompressed, never parsed), stopping once more than
        ``limit`` are found, so the cost is at most ``limit`` lines. A fit that needs
        ``limit`` rows can be refused on it before any row is read.
        """
        total = 0
        for f in self._files():
            total += f.rows_at_most(limit - total)
            if total > limit:
                break
        return total

    def numeric_columns(self) -> list[str]:
        """The columns that hold numbers (judged on the first file's first block)."""
        return self._first.numeric_columns()

    def mixed_columns(self) -> dict[str, tuple[int, str]]:
        """Text columns of mostly numbers (CSV, first block): ``{name: (row, text)}``.

        Such a column most likely has a typo; one that is chosen by type should not be
        dropped silently. Parquet and .npy columns have real types, so none are mixed.
        """
        mixed = getattr(self._first, "mixed_columns", None)
        return mixed() if mixed is not None else {}

    def _files(self):
        yield self._first
        for p in self.paths[1:]:
            yield open_file(p, self._delimiter, self.block_rows)

    def _file_batches(self, columns, block_rows):
        cols = self.columns if columns is None else self._resolve(columns)
        if cols is None:
            cols = self.column_names
        rows = block_rows or self.block_rows
        for f in self._files():
            for batch, first_row in f.batches(cols, rows):
                yield batch, first_row, f

    def blocks(
        self, columns: Sequence[str] | None = None, block_rows: int | None = None
    ) -> Iterator[tuple[pa.RecordBatch, int, str]]:
        """Yield ``(record batch of float64 columns, first row number, file path)``."""
        for batch, first_row, f in self._file_batches(columns, block_rows):
            yield batch, first_row, f.path

    def read_columns(
        self,
        feature_cols: Sequence[str],
        target_cols: Sequence[str] | None = None,
        weight_col: str | None = None,
        block_rows: int | None = None,
    ) -> Iterator[Block]:
        """Yield validated :class:`Block` s of features, targets and weights (float64, CPU)."""
        features = self._resolve(feature_cols)
        targets = self._resolve(target_cols) if target_cols else []
        weights = self._resolve([weight_col]) if weight_col is not None else []
        used = list(dict.fromkeys([*features, *targets, *weights]))
        for batch, first_row, f in self._file_batches(used, block_rows):
            where = _Where(f.path, first_row, f.exact_row)
            X = _matrix(batch, features, where)
            Y = _matrix(batch, targets, where) if targets else None
            w = None
            if weights:
                w = _matrix(batch, weights, where)[:, 0]
                _check_weights(w, weight_col, where)
            yield Block(X, Y, w, first_row, f.path)

    def read_all(self, feature_cols, target_cols=None, weight_col=None) -> Block:
        """All rows at once as one :class:`Block` (for data that fits in memory)."""
        parts = list(self.read_columns(feature_cols, target_cols, weight_col))
        first = parts[0]
        cat = lambda xs: None if xs[0] is None else torch.cat(xs)  # noqa: E731
        return Block(
            cat([b.X for b in parts]),
            cat([b.Y for b in parts]),
            cat([b.w for b in parts]),
            first.first_row,
            first.path,
        )


@dataclass
class _Where:
    """Where a block's rows are, to name the exact row of a bad value."""

    path: str
    first_row: int
    exact_row: Callable[[int], int]

    def row(self, i: int) -> int:
        return self.exact_row(self.first_row + i)


def _matrix(batch: pa.RecordBatch, names: list[str], where: _Where) -> Tensor:
    out = np.empty((batch.num_rows, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        col = batch.column(name)
        if col.null_count:
            i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise csvfile.missing_value(where.path, where.row(i), name)
        out[:, j] = col.to_numpy(zero_copy_only=False)
    if not np.isfinite(out).all():
        i, j = np.argwhere(~np.isfinite(out))[0]
        raise csvfile.non_finite(where.path, where.row(int(i)), names[j], float(out[i, j]))
    return torch.from_numpy(out)


def _check_weights(w: Tensor, name: str, where: _Where) -> None:
    neg = torch.nonzero(w < 0)
    if len(neg):
        i = int(neg[0, 0])
        raise DataError(
            f"negative weight {w[i].item()!r}; sample weights must be >= 0",
            path=where.path,
            row=where.row(i),
            column=name,
        )


def open_table(
    path,
    *,
    columns: Sequence[str] | None = None,
    delimiter: str | None = None,
    block_rows: int = 65536,
) -> TableSource:
    """Open a CSV, CSV.gz, Parquet or .npy file, a folder of them, or a glob, for block reads.

    The header is read and checked now (missing file, empty file, duplicate or unknown
    columns raise :class:`DataError`); rows are read lazily by :meth:`TableSource.read_columns`.

    Example:
        >>> src = open_table("data/*.parquet")                            # doctest: +SKIP
        >>> block = src.read_all(["temp", "rain"], ["apples"])            # doctest: +SKIP
    """
    return TableSource(path, columns=columns, delimiter=delimiter, block_rows=block_rows)


__all__ = ["DATA_SUFFIXES", "Block", "TableSource", "name_list", "open_table"]
