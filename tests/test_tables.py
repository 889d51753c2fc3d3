"""Table files in row blocks (torchlinreg.files.tables): values, row numbers and error messages."""

from __future__ import annotations

import gzip
import os
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from torchlinreg.data import open_table
from torchlinreg.errors import DataError

RNG = np.random.default_rng(1)
VALUES = RNG.normal(size=(50, 3)) * [1.0, 1e-8, 1e8]
NAMES = ["temp", "rain", "yield"]


def _csv_text(values=VALUES, names=NAMES, sep=",", eol="\n") -> str:
    lines = [sep.join(names)] + [sep.join(repr(float(v)) for v in row) for row in values]
    return eol.join(lines) + eol


def _write(tmp_path, name: str, content) -> str:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_csv_values_are_exact_for_every_delimiter(tmp_path, sep, eol):
    path = _write(tmp_path, "d.csv", _csv_text(sep=sep, eol=eol))
    src = open_table(path)
    assert src.column_names == NAMES
    block = src.read_all(["temp", "rain"], ["yield"])
    np.testing.assert_array_equal(block.X.numpy(), VALUES[:, :2])
    np.testing.assert_array_equal(block.Y.numpy(), VALUES[:, 2:])
    assert block.X.dtype == torch.float64 and block.first_row == 2


def test_bom_gzip_quotes_and_padded_header_names(tmp_path):
    text = '\ufeff"temp" , rain,yield\n' + _csv_text().split("\n", 1)[1]
    path = str(tmp_path / "d.csv.gz")
    with gzip.open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    src = open_table(path)
    assert src.column_names == NAMES
    np.testing.assert_array_equal(src.read_all(NAMES).X.numpy(), VALUES)


def test_blocks_cover_all_rows_with_consecutive_row_numbers(tmp_path):
    values = RNG.normal(size=(1000, 2))
    path = _write(tmp_path, "d.csv", _csv_text(values, ["a", "b"]))
    blocks = list(open_table(path, block_rows=64).read_columns(["a"], ["b"]))
    # 1) every block but the last has block_rows rows; 2) row numbers follow on;
    # 3) together they are the file
    assert [b.n_rows for b in blocks] == [64] * 15 + [40]
    assert [b.first_row for b in blocks] == list(
        2 + np.cumsum([0] + [b.n_rows for b in blocks[:-1]])
    )
    np.testing.assert_array_equal(torch.cat([b.X for b in blocks]).numpy(), values[:, :1])


def test_error_rows_are_right_far_into_a_large_file(tmp_path):
    # several pyarrow blocks (64 KiB each) precede the bad line, so its number must be counted
    values = RNG.normal(size=(20000, 2))
    lines = _csv_text(values, ["a", "b"]).splitlines()
    lines[15000] = "1.5"  # line 15001 in the file
    path = _write(tmp_path, "d.csv", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"d\.csv, row 15001: expected 2 fields, found 1") as info:
        list(open_table(path, block_rows=1000).read_columns(["a"], ["b"]))
    assert info.value.row == 15001
    lines[15000] = "1.5,abc"
    path = _write(tmp_path, "e.csv", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 15001, column 'b': non-numeric value 'abc'"):
        list(open_table(path, block_rows=1000).read_columns(["a"], ["b"]))


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("", "the file is empty"),
        ("a,b\n", "header but no data rows"),
        ("a,b\n1,2\n3\n", r"row 3: expected 2 fields, found 1"),
        ("a,b\n1,2\n3,4,5\n", r"row 3: expected 2 fields, found 3"),
        ("a,b\n1,2\n3,x\n", r"row 3, column 'b': non-numeric value 'x'"),
        ("a,b\n1,\n3,4\n", r"row 2, column 'b': missing value; drop or fill"),
        ("a,b\n1,2\nNA,4\n", r"row 3, column 'a': missing value"),
        ("a,b\n1,2\n\n\n3,x\n", r"row 5, column 'b': non-numeric value 'x'"),
        ("a,b\n1,2\n\n,4\n", r"row 4, column 'a': missing value"),
        ("a,b\n\n1,2\n\n3,inf\n", r"row 5, column 'b': value is infinity"),
        ("a,b\n1,inf\n", r"row 2, column 'b': value is infinity"),
        ("a,b\n1,-Infinity\n", r"row 2, column 'b': value is infinity"),
        ("a,b\n1,NaN\n", r"row 2, column 'b': missing value"),
        ("a,b,a\n1,2,3\n", r"row 1: duplicate column name 'a' in the header \(columns 1 and 3\)"),
        ("a,b\n1,1_000\n", r"row 2, column 'b': non-numeric value '1_000'"),
        (b"a,b\n1,\xe9\n", r"row 2, column 'b': the value is not UTF-8 text"),
        (b"caf\xe9,b\n1,2\n", r"not UTF-8 text \(byte 0xe9"),
        (b"\x00\x01\x02binary", "binary file, not CSV"),
    ],
)
def test_malformed_csv_names_the_file_row_and_column(tmp_path, content, pattern):
    path = _write(tmp_path, "bad.csv", content)
    with pytest.raises(DataError, match=pattern) as info:
        src = open_table(path)
        list(src.read_columns(["a"], ["b"]))
    message = str(info.value)
    assert message.startswith(path) and "\n" not in message


def test_unrequested_text_columns_do_not_break_reading(tmp_path):
    path = _write(tmp_path, "d.csv", "name,a,b\nAnne,1,2\nBob,3,4\n")
    block = open_table(path).read_all(["a"], ["b"])
    np.testing.assert_array_equal(block.X.numpy(), [[1.0], [3.0]])
    with pytest.raises(DataError, match=r"row 2, column 'name': non-numeric value 'Anne'"):
        open_table(path).read_all(["name"])


def test_unknown_columns_list_the_available_ones_and_suggest_close_matches(tmp_path):
    path = _write(tmp_path, "d.csv", _csv_text())
    with pytest.raises(
        DataError,
        match=r"unknown column 'rainfall'; did you mean 'rain'\? "
        r"available columns: temp, rain, yield",
    ):
        open_table(path).read_all(["temp", "rainfall"])
    with pytest.raises(DataError, match=r"unknown column 'zzz'; available columns"):
        open_table(path, columns=["zzz"])


def test_missing_file_suggests_close_names(tmp_path):
    _write(tmp_path, "crops.csv", _csv_text())
    with pytest.raises(
        DataError, match=r"crop\.csv: file not found \(did you mean 'crops\.csv'\?\)"
    ):
        open_table(str(tmp_path / "crop.csv"))


def test_files_that_are_not_tables_are_refused(tmp_path):
    xlsx = str(tmp_path / "book.xlsx")
    with zipfile.ZipFile(xlsx, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(DataError, match=r"zip archive \(an Excel \.xlsx file\?\)"):
        open_table(xlsx)
    fake = _write(tmp_path, "x.parquet", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"ends in \.parquet but is not a Parquet file"):
        open_table(fake)
    junk = _write(tmp_path, "junk.csv", bytes(RNG.integers(0, 256, 5000, dtype=np.uint8)))
    with pytest.raises(DataError):
        open_table(junk).read_all(open_table(junk).column_names)


def test_parquet_values_blocks_nulls_and_types(tmp_path):
    path = str(tmp_path / "d.parquet")
    table = pa.table({"temp": VALUES[:, 0], "n": np.arange(50), "ok": [True] * 50, "s": ["x"] * 50})
    pq.write_table(table, path, row_group_size=16)
    src = open_table(path, block_rows=10)
    blocks = list(src.read_columns(["temp", "n"], ["ok"]))
    assert [b.first_row for b in blocks] == [1, 11, 21, 31, 41]
    X = torch.cat([b.X for b in blocks]).numpy()
    np.testing.assert_array_equal(X, np.column_stack([VALUES[:, 0], np.arange(50)]))
    with pytest.raises(DataError, match=r"column 's': non-numeric column of type string"):
        src.read_all(["s"])
    nulls = str(tmp_path / "n.parquet")
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "b": [1.0, 2.0, float("inf")]}), nulls)
    with pytest.raises(DataError, match=r"n\.parquet, row 2, column 'a': missing value"):
        open_table(nulls).read_all(["a"])
    with pytest.raises(DataError, match=r"row 3, column 'b': value is infinity"):
        open_table(nulls).read_all(["b"])


def test_truncated_parquet_is_refused(tmp_path):
    path = str(tmp_path / "d.parquet")
    pq.write_table(pa.table({"a": VALUES[:, 0]}), path)
    data = (tmp_path / "d.parquet").read_bytes()
    _write(tmp_path, "t.parquet", data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t\.parquet: not a readable Parquet file"):
        open_table(str(tmp_path / "t.parquet"))


def test_folder_and_glob_read_files_in_sorted_order(tmp_path):
    parts = np.array_split(VALUES, 3)
    for i, part in enumerate(parts):
        _write(tmp_path, f"part{i}.csv", _csv_text(part))
    _write(tmp_path, "notes.md", "not data")
    for spec in [str(tmp_path), str(tmp_path / "part*.csv")]:
        src = open_table(spec)
        assert [os.path.basename(p) for p in src.paths] == ["part0.csv", "part1.csv", "part2.csv"]
        blocks = list(src.read_columns(NAMES))
        assert [b.first_row for b in blocks] == [2, 2, 2]
        assert blocks[1].path.endswith("part1.csv")
        np.testing.assert_array_equal(torch.cat([b.X for b in blocks]).numpy(), VALUES)


def test_folder_problems_are_reported(tmp_path):
    with pytest.raises(DataError, match="holds no data files"):
        open_table(str(tmp_path))
    with pytest.raises(DataError, match="no files match"):
        open_table(str(tmp_path / "*.csv"))
    _write(tmp_path, "a.csv", "x,y\n1,2\n")
    _write(tmp_path, "b.csv", "x,z\n1,2\n")
    with pytest.raises(DataError, match=r"b\.csv: columns \['x', 'z'\] differ"):
        open_table(str(tmp_path))


def test_npy_matrix_is_read_in_blocks(tmp_path):
    path = str(tmp_path / "X.npy")
    np.save(path, VALUES)
    src = open_table(path, block_rows=20)
    assert src.column_names == ["x0", "x1", "x2"]
    blocks = list(src.read_columns(["x0", "x2"], ["x1"]))
    assert [b.first_row for b in blocks] == [1, 21, 41]
    np.testing.assert_array_equal(torch.cat([b.X for b in blocks]).numpy(), VALUES[:, [0, 2]])
    np.save(path, np.array([["a"]]))
    with pytest.raises(DataError, match="numeric array"):
        open_table(path)


def test_weight_column_is_read_and_checked(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b,w\n1,2,0.5\n3,4,2\n")
    block = open_table(path).read_all(["a"], ["b"], weight_col="w")
    np.testing.assert_array_equal(block.w.numpy(), [0.5, 2.0])
    path = _write(tmp_path, "e.csv", "a,b,w\n1,2,0.5\n3,4,-2\n")
    with pytest.raises(DataError, match=r"row 3, column 'w': negative weight -2.0"):
        open_table(path).read_all(["a"], ["b"], weight_col="w")


def test_blank_lines_are_not_data(tmp_path):
    # as in pandas and the csv module: blank lines, trailing ones included, are skipped
    path = _write(tmp_path, "d.csv", "a,b\n1,2\n\n3,4\n\n\n")
    np.testing.assert_array_equal(open_table(path).read_all(["a"], ["b"]).X.numpy(), [[1.0], [3.0]])
    path = _write(tmp_path, "e.csv", "a,b,w\n\n1,2,1\n\n3,4,-1\n")
    with pytest.raises(DataError, match=r"row 5, column 'w': negative weight"):
        open_table(path).read_all(["a"], ["b"], weight_col="w")


def test_an_explicit_delimiter_is_used_and_checked(tmp_path):
    path = _write(tmp_path, "d.txt", "a;b,c\n1;2,5\n")
    assert open_table(path, delimiter=";").column_names == ["a", "b,c"]
    with pytest.raises(DataError, match="delimiter must be one character"):
        open_table(path, delimiter=";;")


def test_truncated_gzip_is_refused(tmp_path):
    body = _csv_text(RNG.normal(size=(20000, 3))).encode()
    packed = gzip.compress(body)
    path = _write(tmp_path, "d.csv.gz", packed[: len(packed) // 2])
    with pytest.raises(
        DataError, match=r"d\.csv\.gz: cannot read the file .*check that it is complete"
    ):
        list(open_table(path).read_columns(NAMES))
