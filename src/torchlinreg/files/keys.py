"""Key columns of grouped and rolling fits, as written: group labels and the rows' order.

``train --by store`` names groups by what the column holds: numbers (a store id) or text (a
store name); ``--order-by date`` orders rows by numbers or by time: Parquet dates and
timestamps, or CSV text in ISO 8601 form (``2024-03-01``, ``2024-03-01T09:30``). Numeric
keys keep the numeric path of :meth:`TableSource.read_columns`; other keys are read here,
one column at a time (:func:`~torchlinreg.files.rawblocks.raw_blocks`), and handed out
``n`` rows at a time by :class:`KeyStream` to line up with the numeric blocks row for row.
Text that is not a time is refused as an order, never sorted as text: "10/2/2024" would
come before "9/30/2024". Messages about a key's row (or any row of a raw block) name its
file line (:func:`file_row`), as every message of the tool does.

Example:
    >>> import pyarrow as pa
    >>> where = lambda i: ("d.csv", 2 + i)
    >>> order_keys(pa.array(["2024-03-02", "2024-03-01"]), "date", where).tolist()
    [1709337600000000000, 1709251200000000000]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from .rawblocks import raw_blocks

_EXACT = 2.0**53  # float64 holds every integer below it, and no longer every one above


def check_numeric_keys(source, column: str, values: np.ndarray, seen: set) -> None:
    """Warn once per column (``seen`` remembers) where a CSV key column read as numbers
    holds values of 2^53 or more: the text's integers were rounded to float64 there, and
    distinct ids may have become one (NOTE [integers beyond 2^53] in formats.py; a Parquet
    integer column is checked where it is cast)."""
    import warnings

    if column in seen or not any(p.endswith(_TEXT_SUFFIXES) for p in source.paths):
        return
    finite = np.abs(values[np.isfinite(values)])
    if finite.size and float(finite.max()) >= _EXACT:
        seen.add(column)
        warnings.warn(
            f"column {column!r} holds numbers of 2^53 or more, which float64 rounds as the "
            "CSV text is read: distinct ids there may have become one group or cluster; map "
            "such ids to small codes, or give them as text (e.g. with a letter prefix)",
            UserWarning,
            stacklevel=2,
        )


_TEXT_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")


def is_numeric(source, column: str) -> bool:
    """Whether ``column`` holds numbers (judged as the numeric reader judges it)."""
    return column in source.numeric_columns()


def file_row(source, path: str, row: int) -> int:
    """The file line of nominal row ``row`` of ``path``, exact past blank lines and values
    over several lines (NOTE [CSV row numbers] in ``csvfile.py``); Parquet's rows as they
    are. For messages only: a CSV file is read again up to that row."""
    for f in source._files():
        if f.path == path:
            return f.exact_row(row)
    return row


def block_lines(source, path: str, first_row: int) -> Callable[[int], int]:
    """Row ``i`` of the block of ``path`` that starts at nominal row ``first_row`` -> its
    file line: what readers of raw blocks (``cli/tableformula.py``) name in a message, so
    that no caller converts their rows again."""
    return lambda i: file_row(source, path, first_row + i)


class KeyStream:
    """One column's values in file order, ``take(n)`` at a time (arrow arrays, no nulls).

    ``where()`` is the file and row number of the next value, to check that a numeric block
    and its keys start on the same row; ``place(i)`` the file and line of value ``i`` of
    :meth:`all`, for a message about it.
    """

    def __init__(self, source, column: str, block_rows: int | None = None) -> None:
        self.column = column
        self._source = source
        self._batches = self._read(source, block_rows)
        self._pending: list[tuple[pa.Array, int, str]] = []
        self._spans: list[tuple[int, int, str]] = []  # of all(): (first index, row, path)

    def _read(self, source, block_rows) -> Iterator[tuple[pa.Array, int, str]]:
        for batch, first_row, path in raw_blocks(source, [self.column], block_rows):
            values = batch.column(0)
            if values.null_count:
                i = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
                raise DataError(
                    "missing value; every row needs a key: drop or fill those rows first",
                    path=path,
                    row=file_row(source, path, first_row + i),
                    column=self.column,
                )
            yield values, first_row, path

    def where(self) -> tuple[str, int] | None:
        if not self._pending:
            nxt = next(self._batches, None)
            if nxt is None:
                return None
            self._pending.append(nxt)
        _, row, path = self._pending[0]
        return path, row

    def take(self, n: int) -> pa.Array:
        """The next ``n`` values (fewer only at the end of the data)."""
        parts, have = [], 0
        while have < n:
            if not self._pending:
                nxt = next(self._batches, None)
                if nxt is None:
                    break
                self._pending.append(nxt)
            values, row, path = self._pending.pop(0)
            need = n - have
            if len(values) > need:
                self._pending.insert(0, (values.slice(need), row + need, path))
                values = values.slice(0, need)
            parts.append(values)
            have += len(values)
        if not parts:
            return pa.array([], type=pa.string())
        return pa.concat_arrays(parts) if len(parts) > 1 else parts[0]

    def all(self) -> pa.Array:
        """Every remaining value."""
        parts = [*self._pending, *self._batches]
        self._pending, self._spans, start = [], [], 0
        for values, row, path in parts:
            self._spans.append((start, row, path))
            start += len(values)
        if not parts:
            return pa.array([], type=pa.string())
        return pa.concat_arrays([p.cast(parts[0][0].type) for p, _, _ in parts])

    def place(self, i: int) -> tuple[str, int]:
        """The file and line of value ``i`` of what :meth:`all` returned (reads the file)."""
        starts = [start for start, _, _ in self._spans]
        start, row, path = self._spans[int(np.searchsorted(starts, i, side="right")) - 1]
        return path, file_row(self._source, path, row + i - start)


def text_labels(values: pa.Array) -> np.ndarray:
    """Group labels as Python strings (numbers and dates as their text)."""
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.string())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def order_keys(
    values: pa.Array, column: str, where: Callable[[int], tuple[str, int]]
) -> np.ndarray:
    """Sort keys (int64 nanoseconds, or float64 numbers) for ``--order-by``.

    Text must read as ISO 8601 times; the first value that does not is named by
    ``where(i)``: the file and row of value ``i`` (values may span several files).
    """
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return values.to_numpy(zero_copy_only=False).astype(np.float64)
    if pa.types.is_date(kind):
        values = _as_times(pc.cast(values, pa.timestamp("s")), [None])
    elif pa.types.is_timestamp(kind):
        values = _as_times(values, [kind.tz])
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:  # naive times, or every one with a zone offset (taken in UTC)
            values = _as_times(values, [None, "UTC"])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            i, text = _first_non_time(values)
            path, row = where(i)
            offsets = [_ZONED.search(t) is not None for t in values.to_pylist() if t]
            if any(offsets) and not all(offsets):
                message = (
                    f"{text!r}: the column mixes times with and without a zone offset, "
                    "which do not order together; give every time an offset, or none"
                )
            else:
                message = (
                    f"{text!r} is not a number or an ISO 8601 time (like 2024-03-01); "
                    "--order-by needs numbers or times: write dates as YYYY-MM-DD or order "
                    "by a number"
                )
            raise DataError(message, path=path, row=row, column=column) from None
    else:
        raise DataError(
            f"a column of type {kind} cannot order rows; --order-by needs numbers or times",
            path=where(0)[0] if len(values) else None,
            column=column,
        )
    return values.cast(pa.int64()).to_numpy(zero_copy_only=False)


# an ISO 8601 zone designator at the end of a time: Z, +hh:mm, -hhmm
_ZONED = re.compile(r"T[^ ]*(?:Z|[+-]\d\d:?\d\d)$")


def _as_times(values: pa.Array, zones: list) -> pa.Array:
    """``values`` as one timestamp type: nanoseconds where every value fits them (about
    1677 to 2262), else microseconds (dates from 1500 or 3000 were an 'unexpected
    ArrowInvalid ... bug'); each zone in turn (text with offsets reads only as UTC)."""
    last: Exception | None = None
    for unit in ("ns", "us"):
        for tz in zones:
            try:
                return pc.cast(values, pa.timestamp(unit, tz=tz))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                last = exc
    assert last is not None
    raise last


def _first_non_time(values: pa.Array) -> tuple[int, str]:
    texts = values.to_pylist()
    zoned = [t is not None and _ZONED.search(t) is not None for t in texts]
    for i, text in enumerate(texts):
        try:  # the kind of time most values are
            _as_times(pa.array([text]), ["UTC"] if sum(zoned) * 2 > len(texts) else [None])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return i, text
    return 0, str(values[0])
