"""Safe files: atomic writes, model files (safetensors + JSON metadata), prediction tables.

Atomic writes live in :mod:`.atomic` (NOTE [atomic writes]), model and checkpoint files in
:mod:`.tensorfile` (NOTE [reading untrusted files]); both are re-exported here. Tables are
written here, block by block (:func:`write_table_blocks`): an output never holds more than one
block in memory, and a file is written to a temp name and renamed, like every output.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterable
from typing import TextIO

import numpy as np

from ..errors import DataError
from .atomic import atomic_write, atomic_write_bytes, locked, remove_stale_temp_files
from .tensorfile import FORMAT, FORMAT_VERSION, load_tensors, save_tensors


def _as_table(columns: dict[str, np.ndarray]):
    import pyarrow as pa

    # an Arrow array (a kept integer column with gaps) goes in as it is
    arrays = {str(k): v if isinstance(v, pa.Array) else np.asarray(v) for k, v in columns.items()}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise DataError(
            f"columns have different lengths {sorted(lengths)}; pass equal-length columns"
        )
    for k, a in arrays.items():
        if getattr(a, "ndim", 1) != 1:
            raise DataError(f"column {k!r} must be 1-D, got shape {a.shape}")
    return pa.table({k: pa.array(a) for k, a in arrays.items()})


def _csv_header(stream, names: list[str], delimiter: str) -> None:
    import csv

    # The header goes through the csv module (quotes only where needed); the rows through
    # Arrow, which writes each float64 as its shortest round-trip text, like repr, so values
    # read back bit for bit (the tests check it against float()).
    csv.writer(stream, delimiter=delimiter, lineterminator="\n").writerow(names)


def _csv_rows(stream, table, delimiter: str, chunk_rows: int = 65536) -> None:
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, delimiter=delimiter)
    for batch in table.to_batches(max_chunksize=chunk_rows):
        buf = io.BytesIO()
        pacsv.write_csv(batch, buf, write_options=options)
        stream.write(buf.getvalue().decode("utf-8"))


def _write_csv_blocks(stream, names: list[str], blocks, delimiter: str = ",") -> int:
    # The header goes out with the first block: an error in reading it leaves stdout empty.
    rows, started = 0, False
    for block in blocks:
        table = _as_table(block)
        if not started:
            _csv_header(stream, names, delimiter)
            started = True
        _csv_rows(stream, table, delimiter)
        rows += table.num_rows
    if not started:
        _csv_header(stream, names, delimiter)
    return rows


def write_csv(stream: TextIO, columns: dict[str, np.ndarray]) -> None:
    """Write columns as CSV text to an open text stream (e.g. ``sys.stdout``), in chunks.

    Example:
        >>> write_csv(sys.stdout, {"y": np.array([1.5, 0.1])})
        y
        1.5
        0.1
    """
    _write_csv_blocks(stream, [str(k) for k in columns], [columns])


def write_table(path, columns: dict[str, np.ndarray]) -> None:
    """Write columns to ``path`` atomically: Parquet for ``.parquet``/``.pq``, else CSV.

    CSV is tab-separated for ``.tsv``, and gzip'd when the name ends in ``.gz``
    (``pred.csv.gz``). ``path="-"`` writes CSV to standard output. CSV floats read back bit for bit.

    Example:
        >>> write_table("pred.csv", {"apples": np.array([56.1, 81.2])})  # doctest: +SKIP
    """
    _as_table(columns)  # ragged columns are refused before anything is written
    write_table_blocks(path, [str(k) for k in columns], [columns])


def write_table_blocks(path, names: list[str], blocks: Iterable[dict[str, np.ndarray]]) -> int:
    """Write ``blocks`` (dicts of equal-length columns ``names``) to ``path``, one at a time.

    The same formats as :func:`write_table`; only one block is in memory at a time, and the
    file is written to a temp name and renamed when the last block is in, so a failure (a
    bad row half-way, Ctrl-C, a full disk) leaves an existing file as it was (NOTE [atomic
    writes]). ``path="-"`` streams CSV to standard output. Returns the rows written.

    Example:
        >>> blocks = ({"y": np.arange(2.0) + i / 2} for i in range(2))
        >>> write_table_blocks("-", ["y"], blocks)
        y
        0
        1
        0.5
        1.5
        4
    """
    names = [str(n) for n in names]
    if path == "-":
        return _write_csv_blocks(sys.stdout, names, blocks)
    path = os.fspath(path)
    rows = [0]
    if path.lower().endswith((".parquet", ".pq")):

        def write_parquet(tmp: str) -> None:
            rows[0] = _write_parquet_blocks(tmp, names, blocks)

        atomic_write(path, write_parquet)
        return rows[0]
    name = path.lower().removesuffix(".gz")
    delimiter = "\t" if name.endswith((".tsv", ".tab")) else ","
    opener = gzip.open if path.lower().endswith(".gz") else open

    def write(tmp: str) -> None:
        with opener(tmp, "wt", encoding="utf-8", newline="") as f:
            rows[0] = _write_csv_blocks(f, names, blocks, delimiter)

    atomic_write(path, write)
    return rows[0]


def _write_parquet_blocks(tmp: str, names: list[str], blocks) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer, rows = None, 0
    try:
        for block in blocks:
            table = _as_table(block)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            elif table.schema != writer.schema:
                # a column whose type changes between blocks (a kept id: text in one file,
                # integers in another; all missing at first): "unexpected ValueError ... a
                # bug" before (an outputs hunt)
                try:
                    table = table.cast(writer.schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
                    diff = next(
                        (f for f, g in zip(writer.schema, table.schema, strict=False) if f != g),
                        writer.schema[0],
                    )
                    raise DataError(
                        f"column {diff.name!r} changes type between blocks ("
                        f"{diff.type}, then {table.schema.field(diff.name).type}); a Parquet "
                        "file keeps one type a column: write CSV (-o out.csv), or give the "
                        "column one type in every file"
                    ) from None
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:  # no rows: the columns, empty
            schema = pa.schema([(n, pa.float64()) for n in names])
            writer = pq.ParquetWriter(tmp, schema)
    finally:
        if writer is not None:
            writer.close()
    return rows


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "atomic_write",
    "atomic_write_bytes",
    "load_tensors",
    "locked",
    "remove_stale_temp_files",
    "save_tensors",
    "write_csv",
    "write_table",
    "write_table_blocks",
]
