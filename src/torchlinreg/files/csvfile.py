"""CSV files in row blocks: sniffing, header checks, a streaming pyarrow reader, and
error messages that point at the exact line and column.

# NOTE [CSV row numbers]
# Rows are counted as a text editor counts lines: the header is line 1. Blank lines are not
# data (pyarrow and the csv module both skip them), so a block's ``first_row`` is
# ``data rows before it + 2``: the editor's line number when the file has no blank lines or
# multi-line quoted values. Error messages are always exact: the row of a bad value is found
# by re-reading the file with the csv module up to that data row (:func:`line_of`), which
# costs one pass over the file, and only when there is an error.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import DataError
from .csvlines import (
    MAX_LINE_BYTES,
    LineTooLong,
    bounded_lines,
    line_too_long,
    long_fields,
    read_growing,
)

DELIMITERS = (",", ";", "\t", "|")
# Cells read as missing. Kept short and explicit: the localiser and the tests use the same list.
# pandas' own (read_csv's defaults): "#N/A" from a spreadsheet or "<NA>" from pandas read as
# text made a numeric column categorical under --missing drop, silently (a formula hunt)
NULL_VALUES = [
    "", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "-NaN", "NULL", "null", "None",
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN", "<NA>",
]  # fmt: skip
_SNIFF_BYTES = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(head: bytes) -> bool:
    return head[:2] == _GZIP_MAGIC


def _read_head(path: str, gz: bool) -> tuple[bytes, bytes]:
    """(the first line, at most MAX_LINE_BYTES; then up to 64 KiB that follow)."""
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            return f.readline(MAX_LINE_BYTES + 1), f.read(_SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise DataError(
            f"cannot read the file ({exc}); check that it is a complete CSV file", path=path
        ) from None


def _decode_header(path: str, line: bytes) -> str:
    # Only the header is decoded here: data cells are checked by pyarrow (used columns only),
    # so text in columns nobody asked for never stops a read.
    try:
        return line.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"the file is not UTF-8 text (byte 0x{line[exc.start]:02x} at offset "
            f"{exc.start}); re-save it as UTF-8 CSV",
            path=path,
        ) from None


def sniff_header(path: str, delimiter: str | None) -> tuple[list[str], str, bool, int, int]:
    """(column names, delimiter, gzip?, average bytes per line, longest line seen)."""
    with open(path, "rb") as f:
        magic = f.read(4)
    gz = is_gzip(magic)
    first, rest = _read_head(path, gz)
    if len(first) > MAX_LINE_BYTES:
        raise DataError(
            f"line 1 (the header) is longer than {MAX_LINE_BYTES >> 20} MiB; is this a CSV "
            "file with line breaks?",
            path=path,
            row=1,
        )
    head = first + rest
    if b"\x00" in head:
        raise DataError(
            "this is a binary file, not CSV text; pass a CSV or Parquet file", path=path
        )
    lines = head.splitlines()
    if not head.strip():
        raise DataError(
            "the file is empty; a CSV file needs a header line and data rows", path=path
        )
    header_line = _decode_header(path, lines[0])
    if not header_line.strip():
        raise DataError(
            "line 1 is blank; put the header (column names) on line 1", path=path, row=1
        )
    if delimiter is None:
        counts = [header_line.count(d) for d in DELIMITERS]
        delimiter = DELIMITERS[counts.index(max(counts))] if max(counts) > 0 else ","
    with long_fields():
        names = [c.strip() for c in next(csv.reader([header_line], delimiter=delimiter))]
    _check_header(path, names)
    if len(rest) < _SNIFF_BYTES and not any(line.strip() for line in lines[1:]):
        raise DataError("the file has a header but no data rows; add data rows", path=path, row=2)
    data = lines[1:] or lines
    avg = max(1, sum(len(line) + 1 for line in data) // len(data))
    return names, delimiter, gz, avg, max(len(line) + 2 for line in lines)


def _check_header(path: str, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for j, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(
                f"duplicate column name {name!r} in the header (columns {seen[name]} and {j}); "
                "rename one of them",
                path=path,
                row=1,
            )
        seen[name] = j


def stream_batches(
    path: str,
    names: list[str],
    delimiter: str,
    gz: bool,
    columns: Sequence[str],
    block_bytes: int,
) -> Iterator[pa.RecordBatch]:
    """pyarrow's streaming reader over ``columns`` (as float64), header skipped.

    Errors are re-raised as DataError with the line and column found by :func:`locate_error`.
    """
    parse_opts = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=True)
    conv_opts = pacsv.ConvertOptions(
        column_types={c: pa.float64() for c in columns},
        include_columns=list(columns),
        null_values=NULL_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    rows_done = 0
    batches = read_growing(
        lambda: pa.input_stream(path, compression="gzip" if gz else None),
        {"column_names": names, "skip_rows": 1},
        parse_opts,
        conv_opts,
        block_bytes,
    )
    try:
        for batch in batches:
            yield batch
            rows_done += batch.num_rows
    except LineTooLong as exc:
        raise line_too_long(path, exc.rows) from None
    except OSError as exc:  # truncated gzip, I/O error
        raise DataError(
            f"cannot read the file ({exc}); check that it is complete", path=path
        ) from None
    except (pa.ArrowException, ValueError) as exc:  # parse/conversion/encoding errors
        raise locate_error(path, names, delimiter, gz, columns, rows_done, exc) from None


def infer_numeric(
    path: str, names: list[str], delimiter: str, gz: bool, block_bytes: int
) -> list[str]:
    """Columns that pyarrow infers as numbers in the first block; all-empty ones count too."""
    return inspect_columns(path, names, delimiter, gz, block_bytes)[0]


def inspect_columns(
    path: str, names: list[str], delimiter: str, gz: bool, block_bytes: int
) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """``(numeric columns, mixed columns)`` judged on the first block.

    A column is *mixed* when most of its values are numbers but some are not (a typo, a
    unit, a stray note): it maps to the line and text of its first non-number, so a caller
    choosing columns by type can say so instead of silently dropping the column.
    """
    parse_opts = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=True)
    conv_opts = pacsv.ConvertOptions(null_values=NULL_VALUES, strings_can_be_null=True)
    batches = read_growing(
        lambda: pa.input_stream(path, compression="gzip" if gz else None),
        {"column_names": names, "skip_rows": 1},
        parse_opts,
        conv_opts,
        block_bytes,
    )
    try:
        first = next(batches, None)
    except (
        pa.ArrowInvalid,
        pa.ArrowNotImplementedError,
        UnicodeDecodeError,
        OSError,
        LineTooLong,
    ):
        # Unreadable first block: let the real read report the exact row and column.
        return list(names), {}
    finally:
        batches.close()
    if first is None:
        return list(names), {}
    schema = first.schema
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_null)
    columns = [f.name for f in schema if any(check(f.type) for check in numeric)]
    mixed = {}
    for j, f in enumerate(schema):  # by position: a header may repeat a name
        if first is not None and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)):
            found = _first_non_number(first.column(j).to_pylist())
            if found is not None:
                line = line_of(path, delimiter, gz, found[0])  # NOTE [CSV row numbers]
                mixed[f.name] = (found[0] + 2 if line is None else line, found[1])
    return columns, mixed


def _first_non_number(values: list[str | None]) -> tuple[int, str] | None:
    """(index, text) of the first non-number when most values are numbers, else None."""
    numbers, first_bad = 0, None
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            parse_float(v)
            numbers += 1
        except ValueError:
            if first_bad is None:
                first_bad = (i, v)
    non_null = sum(v is not None for v in values)
    return first_bad if first_bad is not None and 2 * numbers > non_null else None


def _open_text(path: str, gz: bool):
    raw = gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115
    # surrogateescape: a bad byte is reported at its own row and column, not at read time
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def parse_float(text: str) -> float | None:
    """The value pyarrow reads from a cell, or None when the cell is missing.

    Raises ValueError for text pyarrow refuses (Python's float() is more lenient: it takes
    underscores and non-ASCII digits, pyarrow does not).
    """
    if text in NULL_VALUES:
        return None
    s = text.strip(" \t")
    if not s or not s.isascii() or "_" in s:
        raise ValueError(text)
    return float(s)


def _data_records(path: str, delimiter: str, gz: bool) -> Iterator[tuple[int, int, list[str]]]:
    """Yield (0-based data row index, file line where it ends, fields), blank lines skipped."""
    with _open_text(path, gz) as f, long_fields():
        reader = csv.reader(bounded_lines(f), delimiter=delimiter)
        next(reader, None)  # the header
        index = 0
        for row in reader:
            if row:
                yield index, reader.line_num, row
                index += 1


def line_of(path: str, delimiter: str, gz: bool, data_index: int) -> int | None:
    """The file line of data row ``data_index`` (0-based), counting blank lines as pyarrow does."""
    try:
        for index, line, _ in _data_records(path, delimiter, gz):
            if index == data_index:
                return line
    except (csv.Error, OSError, EOFError, UnicodeDecodeError):
        return None
    return None


def locate_error(
    path: str,
    names: list[str],
    delimiter: str,
    gz: bool,
    columns: Sequence[str],
    rows_done: int,
    exc: BaseException,
) -> DataError:
    """Find the first bad line after ``rows_done`` data rows by re-reading with csv."""
    wanted = [names.index(c) for c in columns]
    try:
        for index, line, row in _data_records(path, delimiter, gz):
            if index < rows_done:
                continue
            err = _check_row(path, names, wanted, line, row)
            if err is not None:
                return err
    except (csv.Error, OSError, EOFError, UnicodeDecodeError) as cexc:
        return DataError(f"malformed CSV ({cexc}); fix the file", path=path)
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(
        f"malformed CSV after data row {rows_done} ({detail}); fix the file", path=path
    )


def locate_fields(
    path: str, names: list[str], delimiter: str, gz: bool, rows_done: int
) -> DataError | None:
    """The first row after ``rows_done`` data rows whose field count is not the header's.

    Unlike :func:`locate_error` no value is checked: a caller reading text columns (a
    formula's categories) must not have them flagged as non-numbers. None when every row has
    the header's count or the csv module cannot re-read the file; the caller then keeps its
    own message.
    """
    try:
        for index, line, row in _data_records(path, delimiter, gz):
            if index >= rows_done and len(row) != len(names):
                return wrong_fields(path, line, len(names), len(row))
    except (csv.Error, OSError, EOFError, UnicodeDecodeError):
        return None
    return None


def wrong_fields(path: str, row: int, expected: int, found: int) -> DataError:
    return DataError(
        f"expected {expected} fields, found {found}; every row needs one value per header column",
        path=path,
        row=row,
    )


def _check_row(
    path: str, names: list[str], wanted: list[int], lineno: int, row: list[str]
) -> DataError | None:
    if len(row) != len(names):
        return wrong_fields(path, lineno, len(names), len(row))
    for j in wanted:
        if any("\udc80" <= ch <= "\udcff" for ch in row[j]):
            return DataError(
                "the value is not UTF-8 text; re-save the file as UTF-8",
                path=path,
                row=lineno,
                column=names[j],
            )
        try:
            value = parse_float(row[j])
        except ValueError:
            return DataError(
                f"non-numeric value {row[j]!r}{value_hint(row[j])}; numeric columns need "
                "numbers, fix or drop the row",
                path=path,
                row=lineno,
                column=names[j],
            )
        if value is None:
            return missing_value(path, lineno, names[j])
        if not math.isfinite(value):
            return non_finite(path, lineno, names[j], value)
    return None


def value_hint(text: str) -> str:
    """A hint for a common reason a number did not parse ('' when none applies)."""
    value = text.strip()
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+", value):  # 1,234 reads either way: say both
        return (
            " (a thousands separator, or a decimal comma? numbers need neither: 1234 for "
            "1,234, 1.5 for 1,5)"
        )
    if re.fullmatch(r"[+-]?\d+,\d+", value):
        return " (a decimal comma? numbers need a decimal point: 1.5, not 1,5)"
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+\.\d*", value):
        return " (a thousands separator? numbers need none: 1234.5, not 1,234.5)"
    return ""


def missing_value(path: str, row: int, column: str) -> DataError:
    return DataError(
        "missing value; drop or fill missing values first", path=path, row=row, column=column
    )


def non_finite(path: str, row: int, column: str, value: float) -> DataError:
    what = "NaN" if math.isnan(value) else "infinity"
    return DataError(
        f"value is {what}; only finite numbers are allowed", path=path, row=row, column=column
    )
