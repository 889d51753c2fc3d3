"""Rank shares of files (distributed.shards): disjoint, complete, in order, exact row numbers.

No process group is needed: ``shard_for_rank(source, rank, world_size)`` plans any rank's
share, and the shares of all ranks, read one after the other, must give the rows of a
plain read (read with pandas as the reference), whatever the number of ranks.
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from torchlinreg import DataError, open_table
from torchlinreg.distributed.shards import shard_for_rank

COLS = ["a", "b", "c"]


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 3)) * [1, 100, 0.01], columns=COLS)


def _all_shares(path, world: int) -> list[np.ndarray]:
    out = []
    for rank in range(world):
        src = shard_for_rank(open_table(path, block_rows=64), rank, world)
        blocks = list(src.read_columns(["a", "b"], ["c"]))
        X = torch.cat([b.X for b in blocks]) if blocks else torch.zeros(0, 2)
        Y = torch.cat([b.Y for b in blocks]) if blocks else torch.zeros(0, 1)
        out.append(torch.cat([X, Y], dim=1).numpy())
    return out


def _check_cover(path, expected: np.ndarray, world: int) -> list[np.ndarray]:
    parts = _all_shares(path, world)
    # 1) in rank order the shares are the file's rows, each exactly once
    np.testing.assert_array_equal(np.concatenate(parts), expected)
    return parts


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_csv_byte_ranges_cover_every_row_once(tmp_path, world):
    df = _frame(500)
    df.to_csv(tmp_path / "d.csv", index=False)
    parts = _check_cover(tmp_path / "d.csv", df.to_numpy(), world)
    # 2) and are balanced to within a few lines
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 3


def test_csv_with_crlf_blank_lines_and_no_final_newline(tmp_path):
    df = _frame(200, seed=1)
    lines = [",".join(COLS)] + [",".join(repr(float(v)) for v in row) for row in df.to_numpy()]
    lines.insert(50, "")
    lines.insert(120, "")
    (tmp_path / "d.csv").write_bytes("\r\n".join(lines).encode())
    for world in (2, 3, 5):
        _check_cover(tmp_path / "d.csv", df.to_numpy(), world)


@pytest.mark.parametrize("world", [2, 3, 4])
def test_parquet_row_groups_go_whole_to_one_rank(tmp_path, world):
    df = _frame(1000, seed=2)
    pq.write_table(pa.Table.from_pandas(df), tmp_path / "d.parquet", row_group_size=100)
    parts = _check_cover(tmp_path / "d.parquet", df.to_numpy(), world)
    assert all(len(p) % 100 == 0 for p in parts)


def test_npy_rows_and_a_folder_of_mixed_files(tmp_path):
    df = _frame(900, seed=3)
    folder = tmp_path / "f"
    folder.mkdir()
    df.iloc[:300].to_csv(folder / "a.csv", index=False)
    pq.write_table(pa.Table.from_pandas(df.iloc[300:600]), folder / "b.parquet")
    with gzip.open(folder / "c.csv.gz", "wt") as f:
        df.iloc[600:750].to_csv(f, index=False)
    np.save(folder / "d.npy", df.iloc[750:].to_numpy())
    # the .npy file's columns are x0, x1, x2: read it alone
    np.save(tmp_path / "e.npy", df.to_numpy())
    for world in (2, 3, 6):
        parts = []
        for rank in range(world):
            src = shard_for_rank(open_table(tmp_path / "e.npy"), rank, world)
            blocks = list(src.read_columns(["x0", "x1"], ["x2"]))
            parts += [torch.cat([b.X, b.Y], dim=1).numpy() for b in blocks]
        np.testing.assert_array_equal(np.concatenate(parts), df.to_numpy())
    (folder / "d.npy").unlink()
    for world in (2, 4):
        _check_cover(folder, df.iloc[:750].to_numpy(), world)


def test_bad_value_in_a_later_share_names_the_file_line(tmp_path):
    df = _frame(400, seed=4)
    lines = [",".join(COLS)] + [",".join(repr(float(v)) for v in row) for row in df.to_numpy()]
    lines.insert(30, "")  # a blank line before the bad row shifts the file line by one
    bad = 351  # 1-based file line
    cells = lines[bad - 1].split(",")
    cells[2] = "x?"
    lines[bad - 1] = ",".join(cells)
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    src = shard_for_rank(open_table(tmp_path / "d.csv"), 1, 2)
    with pytest.raises(DataError, match=rf"row {bad}, column 'c': non-numeric value 'x\?'"):
        list(src.read_columns(["a", "b"], ["c"]))
    cells[2] = "NA"
    lines[bad - 1] = ",".join(cells)
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    src = shard_for_rank(open_table(tmp_path / "d.csv"), 1, 2)
    with pytest.raises(DataError, match=rf"row {bad}, column 'c': missing value"):
        src.read_all(["a", "b"], ["c"])


def test_parquet_share_counts_rows_from_the_file_start(tmp_path):
    df = _frame(1000, seed=5)
    df.loc[870, "b"] = np.nan
    pq.write_table(pa.Table.from_pandas(df), tmp_path / "d.parquet", row_group_size=100)
    src = shard_for_rank(open_table(tmp_path / "d.parquet"), 1, 2)
    with pytest.raises(DataError, match="row 871, column 'b'"):
        list(src.read_columns(["a", "b"], ["c"]))


def test_one_process_gets_the_source_itself(tmp_path):
    _frame(10).to_csv(tmp_path / "d.csv", index=False)
    src = open_table(tmp_path / "d.csv")
    assert shard_for_rank(src) is src
