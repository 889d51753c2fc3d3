"""Long lines in CSV files: pyarrow blocks that grow to fit them, and bounds on the rest.

# NOTE [long lines]
# pyarrow parses a CSV file in blocks and refuses a line longer than a block ("straddling
# object"). Blocks are small (memory stays near one block of rows), so a reader that meets
# such a line reads the file again with blocks 8 times larger, dropping the rows it already
# gave, up to MAX_LINE_BYTES: a header of 10,000 columns or a 5 MB text cell in an unused
# column is read, and a line longer than that (a 2 GB line in a 2 MB .csv.gz) is refused in
# one line with memory bounded by a few blocks of that size. The csv module's re-reads
# (error locations) and the line counts (:func:`rows_at_most`) are bounded the same way.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import DataError

MAX_LINE_BYTES = 16 << 20
_SCAN_CHUNK = 1 << 20


def read_growing(
    open_source, read_options: dict, parse_opts, conv_opts, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    """pyarrow's streaming CSV reader whose blocks grow to fit long lines (NOTE [long lines]).

    ``open_source()`` opens the bytes afresh for each attempt; ``read_options`` are
    :class:`pyarrow.csv.ReadOptions` arguments but the block size. A line longer than
    MAX_LINE_BYTES raises :class:`LineTooLong` carrying the data rows read before it.
    """
    done, block = 0, block_bytes
    while True:
        skip, source = done, open_source()
        try:
            options = pacsv.ReadOptions(**read_options, block_size=block, use_threads=False)
            reader = pacsv.open_csv(
                source, read_options=options, parse_options=parse_opts, convert_options=conv_opts
            )
            for batch in reader:
                if skip >= batch.num_rows:  # given on an earlier attempt
                    skip -= batch.num_rows
                    continue
                batch, skip = batch.slice(skip), 0
                yield batch
                done += batch.num_rows
            return
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            if block >= MAX_LINE_BYTES:
                raise LineTooLong(done) from None
            block = min(block * 8, MAX_LINE_BYTES)
        finally:
            source.close()


class LineTooLong(Exception):
    """A CSV line longer than MAX_LINE_BYTES, after ``rows`` data rows."""

    def __init__(self, rows: int) -> None:
        super().__init__(rows)
        self.rows = rows


def line_too_long(path: str, rows: int) -> DataError:
    return DataError(
        f"a line after data row {rows:,} is longer than {MAX_LINE_BYTES >> 20} MiB, the "
        "longest line torchlinreg reads; check the file (a missing line break, a binary "
        "file?) or split the long values into rows",
        path=path,
    )


@contextlib.contextmanager
def long_fields():
    """The csv module's field limit (128 KiB) raised to MAX_LINE_BYTES, for this block."""
    old = csv.field_size_limit(MAX_LINE_BYTES)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def bounded_lines(f) -> Iterator[str]:
    """The file's lines, none longer than MAX_LINE_BYTES (NOTE [long lines]): a longer one
    is a csv.Error, never a line of gigabytes in memory."""
    while True:
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES:
            raise csv.Error(f"a line is longer than {MAX_LINE_BYTES >> 20} MiB")
        yield line


def rows_at_most(path: str, gz: bool, limit: int) -> int:
    """An upper bound on the data rows of a CSV file, or a number above ``limit``.

    Every row ends at a newline (the last one may not), so rows <= lines after the header.
    The lines are counted in chunks of bytes (gzip decompressed, nothing parsed) only up to
    ``limit + 1``: the cost is at most ``limit`` lines, whatever the file's size.
    """
    try:
        return _rows_at_most(path, gz, limit)
    except (OSError, EOFError):  # a damaged file: the real read says where
        return limit + 1


def _ends(chunk: bytes) -> int:
    """Line ends in ``chunk``: LF, CRLF, or a lone CR (old Mac files, which the reader
    takes too: counting LF alone bounded such a file at 0 rows, and refused it)."""
    return chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")


def _rows_at_most(path: str, gz: bool, limit: int) -> int:
    opener = gzip.open if gz else open
    with opener(path, "rb") as f:
        head = f.readline(MAX_LINE_BYTES)  # the header (all of a file of lone CRs)
        # lines after the header's first end that readline took in (lone CRs)
        inside = _ends(head) - 1 if _ends(head) else 0
        lines, last, since = inside, head[-1:] or b"\n", 0
        if inside and last not in (b"\n", b"\r"):
            lines += 1  # a last row without an end of line
            last = b"\n"
        while lines <= limit:
            chunk = f.read(_SCAN_CHUNK)
            if not chunk:
                break
            found = _ends(chunk)
            lines += found
            end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
            since = len(chunk) - 1 - end if found else since + len(chunk)
            if since > MAX_LINE_BYTES:  # no count here: the reader refuses the long line
                return limit + 1
            last = chunk[-1:]
        return lines + (last not in (b"\n", b"\r"))
