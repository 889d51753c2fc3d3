"""Each rank's share of a table on disk: CSV byte ranges, Parquet row groups, .npy rows.

NOTE [sharding]
The files of a source (one file, a folder or a glob, in their sorted order) are laid end to
end as one range of ``C`` bytes, and rank ``r`` of ``N`` owns the positions
``[ceil(r C / N), ceil((r + 1) C / N))``. A unit of data belongs to the rank that owns its
position:

- a CSV line starts at its first byte, so a plain CSV file is cut at line ends: a rank
  reads the lines that start inside its range (the header is parsed from the file's
  start by every rank); a gzip CSV cannot be cut and is one unit at its first byte;
- a Parquet row group ``i`` sits at ``file offset + size * rows before it / rows``: row
  groups (and whole files) are split across ranks, never cut;
- a ``.npy`` row sits at the same proportional position; rows are cut anywhere.

The shares are disjoint, cover every row, and in rank order they are the file order, so a
merge in rank order sees the rows in the order a 1-process read does. Nothing is read to
plan the shares but file sizes, headers and Parquet metadata.

Limitation: a CSV value that holds a newline inside quotes may be cut in two at a range
boundary (the piece after the cut then fails to parse, or worse, parses). Use Parquet, or
one process, for such files.

Row numbers in errors stay exact: Parquet and .npy shares know their first record, and a
CSV share counts the data lines before its first byte only when it has an error to report.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import DataError
from ..files import csvfile, csvlines, formats
from ..files.tables import Block, TableSource
from .collectives import agree_on_errors, world

__all__ = ["ShardedTable", "plan_shares", "shard_for_rank"]

_SCAN = 1 << 16


def shard_for_rank(
    source: TableSource, rank: int | None = None, world_size: int | None = None
) -> TableSource:
    """``source`` restricted to this rank's share (NOTE [sharding]); itself for one process.

    Example:
        >>> src = shard_for_rank(open_table("big.csv"))        # doctest: +SKIP
    """
    if rank is None or world_size is None:
        rank, world_size = world()
    if world_size <= 1:
        return source
    return ShardedTable(source, rank, world_size)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class _Piece:
    """One file's part of a share: what :meth:`TableSource._file_batches` iterates over."""

    def __init__(self, opened: Any, **spec: Any) -> None:
        self.opened, self.path, self.spec = opened, opened.path, spec
        self._csv_rows = _CsvRows(self) if spec["kind"] == "csv" else None

    def exact_row(self, row: int) -> int:
        if self._csv_rows is not None:
            return self._csv_rows.exact_row(row)
        return self.opened.exact_row(row)

    def batches(self, columns: Sequence[str], block_rows: int):
        kind = self.spec["kind"]
        if kind == "whole":
            yield from self.opened.batches(columns, block_rows)
        elif kind == "parquet":
            yield from _parquet_batches(self, columns, block_rows)
        elif kind == "npy":
            yield from _npy_batches(self, columns, block_rows)
        else:
            yield from _csv_range_batches(self, columns, block_rows)


def plan_shares(source: TableSource, rank: int, world_size: int) -> list[_Piece]:
    """The pieces of ``source``'s files that rank ``rank`` of ``world_size`` reads."""
    files = [source._first] + [
        formats.open_file(p, source._delimiter, source.block_rows) for p in source.paths[1:]
    ]
    sizes = [os.path.getsize(f.path) for f in files]
    total = sum(sizes)
    lo = _ceil_div(rank * total, world_size)
    hi = _ceil_div((rank + 1) * total, world_size)
    pieces: list[_Piece] = []
    offset = 0
    for f, size in zip(files, sizes, strict=True):
        piece = _piece(f, offset, size, lo, hi)
        if piece is not None:
            pieces.append(piece)
        offset += size
    return pieces


def _piece(f: Any, offset: int, size: int, lo: int, hi: int) -> _Piece | None:
    if isinstance(f, formats.ParquetFile):
        meta = f._file.metadata
        rows = meta.num_rows
        before, groups, first = 0, [], None
        for i in range(meta.num_row_groups):
            pos = offset + (size * before // rows if rows else 0)
            if lo <= pos < hi:
                groups.append(i)
                first = before + 1 if first is None else first
            before += meta.row_group(i).num_rows
        return _Piece(f, kind="parquet", groups=groups, first=first) if groups else None
    if isinstance(f, formats.NpyFile):
        n = f._array.shape[0]
        start = min(n, max(0, _ceil_div((lo - offset) * n, size))) if size else 0
        stop = min(n, max(0, _ceil_div((hi - offset) * n, size))) if size else 0
        return _Piece(f, kind="npy", start=start, stop=stop) if start < stop else None
    if f.gz:
        return _Piece(f, kind="whole") if lo <= offset < hi else None
    head = _header_end(f.path)
    a, b = max(lo - offset, head), min(hi - offset, size)
    if a >= b:
        return None
    start, stop = _line_start(f.path, a, head, size), _line_start(f.path, b, head, size)
    return _Piece(f, kind="csv", start=start, stop=stop, head=head) if start < stop else None


def _header_end(path: str) -> int:
    """The byte after the header line's newline (the file size if it has none)."""
    return _line_start(path, 1, 0, os.path.getsize(path))


def _line_start(path: str, x: int, head: int, size: int) -> int:
    """The first line start at or after byte ``x``: ``x`` itself if byte ``x - 1`` is a newline."""
    if x <= head:
        return head
    if x >= size:
        return size
    with open(path, "rb") as f:
        f.seek(x - 1)
        pos = x - 1
        while True:
            chunk = f.read(_SCAN)
            if not chunk:
                return size
            i = chunk.find(b"\n")
            if i >= 0:
                return pos + i + 1
            pos += len(chunk)


# ---------------------------------------------------------------- reading the pieces


def _parquet_batches(piece: _Piece, columns: Sequence[str], block_rows: int):
    f = piece.opened
    yield from f.batches(
        columns, block_rows, row_groups=piece.spec["groups"], first_row=piece.spec["first"]
    )


def _npy_batches(piece: _Piece, columns: Sequence[str], block_rows: int):
    import numpy as np

    f = piece.opened
    idx = [f.column_names.index(c) for c in columns]
    for start in range(piece.spec["start"], piece.spec["stop"], block_rows):
        stop = min(start + block_rows, piece.spec["stop"])
        part = np.asarray(f._array[start:stop], dtype=np.float64)
        arrays = [pa.array(part[:, j]) for j in idx]
        yield pa.RecordBatch.from_arrays(arrays, names=list(columns)), start + 1


class _ByteRange(io.RawIOBase):
    """Bytes ``[start, stop)`` of a file, as a readable stream for pyarrow."""

    def __init__(self, path: str, start: int, stop: int) -> None:
        self._f = open(path, "rb")  # noqa: SIM115
        self._f.seek(start)
        self._left = stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        got = self._f.readinto(memoryview(buffer)[:n]) or 0
        self._left -= got
        return got

    def close(self) -> None:
        self._f.close()
        super().close()


class _CsvRows:
    """Row numbers of a CSV piece: found (one scan of the bytes before it) only when needed."""

    def __init__(self, piece: _Piece) -> None:
        self.piece = piece
        self._before: int | None = None

    def data_rows_before(self) -> int:
        if self._before is None:
            count, pos, start = 0, self.piece.spec["head"], self.piece.spec["start"]
            with open(self.piece.path, "rb") as f:
                f.seek(pos)
                for line in f:
                    if pos >= start:
                        break
                    pos += len(line)
                    count += bool(line.rstrip(b"\r\n"))
            self._before = count
        return self._before

    def exact_row(self, row: int) -> int:
        f = self.piece.opened
        index = self.data_rows_before() + row - 2
        return csvfile.line_of(f.path, f.delimiter, False, index) or index + 2


def _csv_range_batches(piece: _Piece, columns: Sequence[str], block_rows: int):
    rows = piece._csv_rows
    row, pending, n_pending = 2, [], 0  # NOTE [CSV row numbers], counted within the piece
    for batch in _stream_range(piece, rows, columns):
        pending.append(batch)
        n_pending += batch.num_rows
        while n_pending >= block_rows:
            merged = formats.merge_batches(pending)
            yield merged.slice(0, block_rows), row
            row += block_rows
            rest = merged.slice(block_rows)
            pending, n_pending = [rest], rest.num_rows
    if n_pending:
        yield formats.merge_batches(pending), row


def _stream_range(piece: _Piece, rows: _CsvRows, columns: Sequence[str]):
    f = piece.opened
    parse_opts = pacsv.ParseOptions(delimiter=f.delimiter, ignore_empty_lines=True)
    conv_opts = pacsv.ConvertOptions(
        column_types={c: pa.float64() for c in columns},
        include_columns=list(columns),
        null_values=csvfile.NULL_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    done = 0
    start, stop = piece.spec["start"], piece.spec["stop"]
    batches = csvlines.read_growing(  # blocks grow to fit long lines (NOTE [long lines])
        lambda: pa.PythonFile(_ByteRange(f.path, start, stop), mode="r"),
        {"column_names": f.column_names, "skip_rows": 0},
        parse_opts,
        conv_opts,
        f.block_bytes,
    )
    try:
        for batch in batches:
            yield batch
            done += batch.num_rows
    except csvlines.LineTooLong as exc:
        raise csvlines.line_too_long(f.path, rows.data_rows_before() + exc.rows) from None
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc}); check it", path=f.path) from None
    except (pa.ArrowException, ValueError) as exc:
        before = rows.data_rows_before() + done
        raise csvfile.locate_error(
            f.path, f.column_names, f.delimiter, False, columns, before, exc
        ) from None


# ---------------------------------------------------------------- the source


class ShardedTable(TableSource):
    """A :class:`TableSource` that reads only one rank's share (NOTE [sharding]).

    ``Block.first_row`` of a CSV share counts from the share's start; the row numbers in
    error messages are the file's own.
    """

    def __init__(self, source: TableSource, rank: int, world_size: int) -> None:
        self.__dict__.update(source.__dict__)
        self.rank, self.world_size = rank, world_size
        self._pieces = plan_shares(source, rank, world_size)

    def _files(self) -> Iterator[Any]:
        yield from self._pieces

    def read_all(self, feature_cols, target_cols=None, weight_col=None) -> Block:
        """This rank's rows at once; an error on any rank fails every rank (no hang).

        When a rank's share holds no rows (one Parquet row group, one .csv.gz, a tiny file)
        the rows are spread again so that every rank holds some (:func:`_rebalance`): an
        iterative fit needs rows on every rank.
        """
        with agree_on_errors():
            parts = list(self.read_columns(feature_cols, target_cols, weight_col))
        if parts:
            block = _concat(parts)
        else:
            import torch

            d, k = len(feature_cols), len(target_cols or [])
            empty = torch.zeros(0, d, dtype=torch.float64)
            Y = torch.zeros(0, k, dtype=torch.float64) if target_cols else None
            w = torch.zeros(0, dtype=torch.float64) if weight_col else None
            block = Block(empty, Y, w, 0, self.path)
        return _rebalance(block, self.rank, self.world_size, self.path)


def _rebalance(block: Block, rank: int, world_size: int, path: str) -> Block:
    """Every rank's rows, spread again in equal contiguous ranges when a rank has none.

    The rows keep their global order (rank order, then file order); only rows that change
    rank travel, point to point, in one order every rank follows (no deadlock). Ranks that
    all hold rows keep them as they are.
    """
    import torch
    import torch.distributed as dist

    from .collectives import allgather, comm_device

    counts = [int(c[0]) for c in allgather(torch.tensor([block.n_rows], dtype=torch.int64))]
    if min(counts) > 0:
        return block
    total = sum(counts)
    if total < world_size:
        raise DataError(
            f"{total} data row(s) for {world_size} processes; every process needs a row: "
            "run with fewer processes",
            path=path,
        )
    parts = [block.X] + ([block.Y] if block.Y is not None else [])
    parts += [block.w.reshape(-1, 1)] if block.w is not None else []
    local = torch.cat(parts, dim=1)
    starts = [sum(counts[:r]) for r in range(world_size)]
    targets = [(r * total // world_size, (r + 1) * total // world_size) for r in range(world_size)]
    dev = comm_device(local.device)
    pieces = []
    for src in range(world_size):
        for dst in range(world_size):
            lo = max(starts[src], targets[dst][0])
            hi = min(starts[src] + counts[src], targets[dst][1])
            if hi <= lo or rank not in (src, dst):
                continue
            if src == dst:
                pieces.append(local[lo - starts[src] : hi - starts[src]])
            elif rank == src:
                dist.send(local[lo - starts[src] : hi - starts[src]].contiguous().to(dev), dst)
            else:
                got = torch.empty(hi - lo, local.shape[1], dtype=local.dtype, device=dev)
                dist.recv(got, src)
                pieces.append(got.to(local.device))
    mine = torch.cat(pieces) if pieces else local[:0]
    d, k = block.X.shape[1], 0 if block.Y is None else block.Y.shape[1]
    Y = mine[:, d : d + k].contiguous() if block.Y is not None else None
    w = mine[:, d + k].contiguous() if block.w is not None else None
    return Block(mine[:, :d].contiguous(), Y, w, block.first_row, block.path)


def _concat(parts: list[Block]) -> Block:
    import torch

    cat = lambda xs: None if xs[0] is None else torch.cat(xs)  # noqa: E731
    first = parts[0]
    return Block(
        cat([b.X for b in parts]),
        cat([b.Y for b in parts]),
        cat([b.w for b in parts]),
        first.first_row,
        first.path,
    )
