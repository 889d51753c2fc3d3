"""Row blocks with their values as written: text stays text (for formulas' categories).

:meth:`TableSource.read_columns` reads numbers only; a formula also reads text columns
(``C(region)``, a column of firm names) and decides itself what is a number. Here a CSV
column is read as text and becomes numbers only when ``kinds`` says so (a first pass
decides each column's kind over the whole file, so every block agrees); Parquet columns
keep their types. Blocks are pyarrow record batches; the caller converts them.

Example:
    >>> from torchlinreg.files.tables import open_table          # doctest: +SKIP
    >>> for batch, first_row, path in raw_blocks(open_table("g.csv"), ["firm"]):  # doctest: +SKIP
    ...     print(batch.column("firm")[0])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import DataError
from . import csvfile
from .formats import CsvFile, ParquetFile, merge_batches


def raw_blocks(
    source, columns: Sequence[str], block_rows: int | None = None
) -> Iterator[tuple[pa.RecordBatch, int, str]]:
    """``(batch, first row number, path)`` of ``columns``: CSV as text, Parquet as typed."""
    columns = source._resolve(list(columns))
    rows = block_rows or source.block_rows
    for f in source._files():
        if isinstance(f, CsvFile):
            yield from _csv_text(f, columns, rows)
        elif isinstance(f, ParquetFile):
            row = 1
            for batch in f._file.iter_batches(batch_size=rows, columns=list(columns)):
                yield batch, row, f.path
                row += batch.num_rows
        else:
            for batch, row in f.batches(columns, rows):
                yield batch, row, f.path


def _csv_text(f: CsvFile, columns: list[str], block_rows: int):
    parse_opts = pacsv.ParseOptions(delimiter=f.delimiter, ignore_empty_lines=True)
    conv_opts = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in columns},
        include_columns=list(columns),
        null_values=csvfile.NULL_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    batches = csvfile.read_growing(
        lambda: pa.input_stream(f.path, compression="gzip" if f.gz else None),
        {"column_names": f.column_names, "skip_rows": 1},
        parse_opts,
        conv_opts,
        f.block_bytes,
    )
    row, pending, n_pending = 2, [], 0  # NOTE [CSV row numbers] in csvfile.py
    rows_read = 0
    try:
        for batch in batches:
            rows_read += batch.num_rows
            pending.append(batch)
            n_pending += batch.num_rows
            while n_pending >= block_rows:
                merged = merge_batches(pending)
                yield merged.slice(0, block_rows), row, f.path
                row += block_rows
                rest = merged.slice(block_rows)
                pending, n_pending = [rest], rest.num_rows
    except (pa.ArrowException, OSError, ValueError) as exc:
        # pyarrow counts rows its own way (blank lines out, a block's rows from 1); the
        # numeric route names the file's line, so a row of the wrong width is found there the
        # same way. Only for parse errors: after a bad value in an earlier block, a wrong
        # width further on is not what stopped the read.
        if "CSV parse error" in str(exc):
            found = csvfile.locate_fields(f.path, f.column_names, f.delimiter, f.gz, rows_read)
            if found is not None:
                raise found from None
        raise DataError(f"cannot read rows from {row} on ({exc})", path=f.path) from None
    if n_pending:
        yield merge_batches(pending), row, f.path
