"""One table file's reader per format: CSV, Parquet and .npy, in row blocks.

:mod:`torchlinreg.files.tables` picks the reader by the file's first bytes (:func:`open_file`)
and reads one file, a folder or a glob through them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from . import csvfile, csvlines


class CsvFile:
    def __init__(self, path: str, delimiter: str | None, block_rows: int) -> None:
        self.path = path
        names, self.delimiter, self.gz, avg, longest = csvfile.sniff_header(path, delimiter)
        self.column_names = names
        # pyarrow blocks are sized in bytes and its reader reads a few ahead: small text
        # blocks, merged below into blocks of block_rows rows, keep memory near one block;
        # a few of the longest lines seen must fit (NOTE [long lines] in csvlines.py).
        small = min(max(block_rows * avg, 1 << 16), 1 << 20)
        self.block_bytes = int(max(small, min(4 * longest, csvlines.MAX_LINE_BYTES)))

    def batches(
        self, columns: Sequence[str], block_rows: int
    ) -> Iterator[tuple[pa.RecordBatch, int]]:
        row = 2  # NOTE [CSV row numbers] in csvfile.py
        pending: list[pa.RecordBatch] = []
        n_pending = 0
        for batch in csvfile.stream_batches(
            self.path, self.column_names, self.delimiter, self.gz, columns, self.block_bytes
        ):
            pending.append(batch)
            n_pending += batch.num_rows
            while n_pending >= block_rows:
                merged = merge_batches(pending)
                yield merged.slice(0, block_rows), row
                row += block_rows
                rest = merged.slice(block_rows)
                pending, n_pending = [rest], rest.num_rows
        if n_pending:
            yield merge_batches(pending), row
        elif row == 2:
            raise DataError("the file has a header but no data rows; add data rows", path=self.path)

    def numeric_columns(self) -> list[str]:
        """Columns whose values in the first block parse as numbers (pyarrow's inference)."""
        return self._inspect()[0]

    def mixed_columns(self) -> dict[str, tuple[int, str]]:
        """Text columns whose values are mostly numbers: {name: (row, first non-number)}."""
        return self._inspect()[1]

    def _inspect(self):
        if not hasattr(self, "_inspected"):
            self._inspected = csvfile.inspect_columns(
                self.path, self.column_names, self.delimiter, self.gz, self.block_bytes
            )
        return self._inspected

    def exact_row(self, row: int) -> int:
        """The file line of nominal row ``row`` (see NOTE [CSV row numbers])."""
        return csvfile.line_of(self.path, self.delimiter, self.gz, row - 2) or row

    def rows_at_most(self, limit: int) -> int:
        """An upper bound on the data rows, found without parsing any (see
        :meth:`TableSource.rows_at_most`)."""
        return csvlines.rows_at_most(self.path, self.gz, limit)


def merge_batches(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    batches = [b for b in batches if b.num_rows] or batches[:1]
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


class ParquetFile:
    @staticmethod
    def exact_row(row: int) -> int:
        return row

    def __init__(self, path: str) -> None:
        import pyarrow.parquet as pq

        self.path = path
        try:
            # pre_buffer=False: with it, iter_batches keeps every column chunk it has read until
            # the reader is done, so memory grows with the file (pyarrow 26).
            self._file = pq.ParquetFile(path, pre_buffer=False)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                f"not a readable Parquet file ({_first_line(exc)}); check that it is complete",
                path=path,
            ) from None
        schema = self._file.schema_arrow
        self.column_names = list(schema.names)
        self._types = {f.name: f.type for f in schema}
        _check_unique(path, self.column_names)
        self.saved_index = _pandas_index_columns(schema)

    def numeric_columns(self) -> list[str]:
        return [c for c in self.column_names if _is_numeric(self._types[c])]

    def rows_at_most(self, limit: int) -> int:
        return self._file.metadata.num_rows

    def batches(
        self,
        columns: Sequence[str],
        block_rows: int,
        *,
        row_groups: Sequence[int] | None = None,
        first_row: int = 1,
    ) -> Iterator[tuple[pa.RecordBatch, int]]:
        """Float64 batches of ``columns`` (of ``row_groups`` only, when given: a rank's share
        starting at record ``first_row``)."""
        for c in columns:
            _check_numeric_type(self.path, c, self._types[c])
        if self._file.metadata.num_rows == 0:
            raise DataError("the file has no data rows", path=self.path)
        row = first_row
        try:
            for batch in self._file.iter_batches(
                batch_size=block_rows, row_groups=row_groups, columns=list(columns)
            ):
                cast = [to_float64(batch.column(c), c) for c in columns]
                yield pa.RecordBatch.from_arrays(cast, names=list(columns)), row
                row += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                f"cannot read rows from {row} on ({_first_line(exc)}); the file may be corrupt",
                path=self.path,
            ) from None


class NpyFile:
    @staticmethod
    def exact_row(row: int) -> int:
        return row

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(
                f"not a readable .npy file ({_first_line(exc)}); save it with numpy.save",
                path=path,
            ) from None
        a = self._array
        if a.ndim not in (1, 2) or a.dtype.kind not in "biuf":
            raise DataError(
                f"a .npy file must hold a 1-D or 2-D numeric array, got shape {a.shape} and "
                f"dtype {a.dtype}; save a numeric matrix",
                path=path,
            )
        self._array = a.reshape(-1, 1) if a.ndim == 1 else a
        self.column_names = [f"x{j}" for j in range(self._array.shape[1])]

    def numeric_columns(self) -> list[str]:
        return list(self.column_names)

    def rows_at_most(self, limit: int) -> int:
        return self._array.shape[0]

    def batches(
        self, columns: Sequence[str], block_rows: int
    ) -> Iterator[tuple[pa.RecordBatch, int]]:
        idx = [self.column_names.index(c) for c in columns]
        n = self._array.shape[0]
        if n == 0:
            raise DataError("the array has no rows", path=self.path)
        for start in range(0, n, block_rows):
            part = np.asarray(self._array[start : start + block_rows], dtype=np.float64)
            arrays = [pa.array(part[:, j]) for j in idx]
            yield pa.RecordBatch.from_arrays(arrays, names=list(columns)), start + 1


def to_float64(column: pa.Array, name: str | None = None) -> pa.Array:
    """A numeric column as float64. Integers beyond 2**53 (and wide decimals) become the
    nearest float64, as any number read from text does: Arrow's safe cast would refuse them.
    Where that changes an integer (``name`` given), a warning says so (NOTE [integers
    beyond 2^53])."""
    out = pc.cast(column, pa.float64(), safe=False)
    if name is not None and pa.types.is_integer(column.type) and len(column):
        bounds = pc.min_max(column)  # Python ints: abs(INT64_MIN) does not overflow here
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        if lo is not None and max(-lo, hi) > 2**53:
            back = pc.cast(out, column.type, safe=False)
            if not pc.all(pc.equal(back, column)).as_py():
                warnings.warn(
                    f"column {name!r} holds integers beyond 2^53, which float64 rounds: "
                    "distinct values may become equal (ids given to --by or --cluster merge); "
                    "map such ids to small codes, or give them as text",
                    UserWarning,
                    stacklevel=2,
                )
    return out


# NOTE [integers beyond 2^53]
# Every number is computed in float64, so an int64 beyond 2^53 is rounded to the nearest
# float64. For a feature that is as exact as float64 gets; for a group id it merges
# distinct groups: two stores 1234567890123456789 and ...790 became one group, fitted on
# both, and cluster ids collapsing in pairs halved the clusters (standard errors off),
# silently (an input hunt). A Parquet integer column the cast changes now says so, once
# per column and call site. CSV text is parsed straight to float64; where it serves as
# --by or --cluster keys, values of 2^53 or more get the same warning (keys.check_numeric_keys).


def _is_numeric(typ: pa.DataType) -> bool:
    return pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_unique(path: str, names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise DataError(f"duplicate column name {name!r}; rename one of them", path=path)
        seen.add(name)


def _check_numeric_type(path: str, column: str, typ: pa.DataType) -> None:
    t = pa.types
    if t.is_integer(typ) or t.is_floating(typ) or t.is_boolean(typ) or t.is_decimal(typ):
        return
    raise DataError(
        f"non-numeric column of type {typ}; use numeric columns only or convert it first",
        path=path,
        column=column,
    )


def open_file(path: str, delimiter: str | None, block_rows: int):
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
    except IsADirectoryError:
        raise DataError("is a folder, not a file", path=path) from None
    except OSError as exc:
        raise DataError(
            f"cannot open the file ({exc.strerror}); check its permissions", path=path
        ) from None
    if not magic:
        raise DataError(
            "the file is empty; a CSV file needs a header line and data rows", path=path
        )
    if magic[:4] == b"PAR1":
        return ParquetFile(path)
    if magic[:6] == b"\x93NUMPY":
        return NpyFile(path)
    if magic[:4] == b"PK\x03\x04":
        raise DataError(
            "this is a zip archive (an Excel .xlsx file?), not CSV or Parquet; export it as CSV",
            path=path,
        )
    if path.lower().endswith((".parquet", ".pq")):
        raise DataError("the file ends in .parquet but is not a Parquet file; check it", path=path)
    return CsvFile(path, delimiter, block_rows)


def _pandas_index_columns(schema) -> list[str]:
    """The columns pandas' ``to_parquet`` stored its index in (named in its metadata)."""
    import json

    raw = (schema.metadata or {}).get(b"pandas")
    try:
        names = json.loads(raw)["index_columns"] if raw else []
    except (ValueError, KeyError, TypeError):
        return []
    return [n for n in names if isinstance(n, str)]
