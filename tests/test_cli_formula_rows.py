"""The rows that formula models (`train --formula`, `predict`, `evaluate`) and a plain
model's `evaluate --missing drop` name: the line a text editor shows (header = line 1) past
blank lines and quoted values over several lines (NOTE [CSV row numbers] in
files/csvfile.py), whatever block the row falls in; Parquet's data rows from 1.

These messages come from cli/tableformula.py (a value of the wrong kind, a weight that is
not a number or is negative, a missing value, a level unseen in training). Each expected
row is found in the file's own text: the line holding the row marked BAD."""

import numpy as np
import pandas as pd
import pytest

from cli_helpers import cli, write, write_lines
from torchlinreg.cli.app import run

HEADER = "g,x1,flag,y,w,note"
FORMULA = "y ~ x1 + C(g) + flag"
LEVELS = ("a", "b", "c")

# '' is a blank line, 'BAD' the offending row, 'multi' a row whose note spans lines (the
# second with a blank line inside it); good rows follow so that a fit has enough of them.
LAYOUTS = {
    "blank line before": ["row", "row", "", "BAD"],
    "blank lines right after the header": ["", "", "row", "BAD"],
    "several blank lines": ["row", "", "", "", "row", "", "", "BAD"],
    "multi-line values": ["multi", "row", "", "multi", "BAD"],
    "multi-line values, CRLF": ["multi", "", "multi", "row", "BAD"],
}
MULTI = ['"two\nlines"', '"three\n\nlines"']
TAIL = 12  # good rows after BAD


def _cells(i: int) -> dict[str, str]:
    x1 = 0.1 * i - 0.4
    flag = "true" if i % 2 else "false"
    y = 1.0 + 2.0 * x1 + LEVELS.index(LEVELS[i % 3]) + (i % 2) + 0.01 * (i % 5)
    return {"g": LEVELS[i % 3], "x1": f"{x1!r}", "flag": flag, "y": f"{y!r}", "w": "1"}


def _line(cells: dict[str, str], note: str) -> str:
    return ",".join([*(cells[c] for c in HEADER.split(",")[:-1]), note])


def _write(path, layout: str, bad: dict[str, str]):
    """The file of ``layout`` with a row whose cells ``bad`` replaces; the line it is on,
    counted in the file's text."""
    lines, multi = [HEADER], iter(MULTI * 3)
    for i, what in enumerate([*LAYOUTS[layout], *["row"] * TAIL]):
        if what == "BAD":
            lines.append(_line({**_cells(i), **bad}, "BAD"))
        elif what:
            lines.append(_line(_cells(i), next(multi) if what == "multi" else "ok"))
        else:
            lines.append("")
    return write_lines(path, lines, layout)


def _train_frame(n: int = 60) -> pd.DataFrame:
    rows = [_cells(i) for i in range(n)]
    df = pd.DataFrame(rows).astype({"x1": float, "y": float, "w": float})
    return df.assign(note="ok")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A formula model and a plain model of named columns, trained once."""
    folder = tmp_path_factory.mktemp("models")
    data = write(_train_frame(), folder / "train.csv")
    formula, plain = folder / "f.safetensors", folder / "p.safetensors"
    assert run(["train", str(data), "--formula", FORMULA, "-o", str(formula), "-q"]) == 0
    assert run(["train", str(data), "-t", "y", "--features", "x1", "-o", str(plain), "-q"]) == 0
    return {"formula": formula, "plain": plain}


# `train -t y --missing drop` goes through a formula of its columns
COLUMNS_DROP = ["-t", "y", "--features", "x1", "--missing", "drop"]

# name: (the command, given the model files, the data and an output path; the BAD row's
# cells; the texts after "row N, " in the message)
CASES = {
    "train: a weight not a number": (
        lambda m, d, o: ["train", d, "--formula", FORMULA, "--weights", "w", "-o", o],
        {"w": "heavy"},
        ["column 'w': 'heavy' is not a number"],
    ),
    "train: a negative weight": (
        lambda m, d, o: ["train", d, "--formula", FORMULA, "--weights", "w", "-o", o],
        {"w": "-2"},
        ["column 'w': negative weight -2.0"],
    ),
    "train: a missing value": (
        lambda m, d, o: ["train", d, "--formula", FORMULA, "-o", o],
        {"x1": ""},
        ["column 'x1': ", "missing value"],
    ),
    "train --missing drop: a weight not a number": (
        lambda m, d, o: ["train", d, *COLUMNS_DROP, "--weights", "w", "-o", o],
        {"w": "heavy"},
        ["column 'w': 'heavy' is not a number"],
    ),
    "predict: an unseen level": (
        lambda m, d, o: ["predict", m["formula"], d, "-o", o],
        {"g": "zzz"},
        ["column 'g': ", "'zzz'", "unseen in training"],
    ),
    "predict: a missing value": (
        lambda m, d, o: ["predict", m["formula"], d, "-o", o],
        {"x1": ""},
        ["column 'x1': ", "missing value"],
    ),
    "predict: not a number": (
        lambda m, d, o: ["predict", m["formula"], d, "-o", o],
        {"x1": "abc"},
        ["column 'x1': 'abc' is not a number value"],
    ),
    "predict: not a bool": (
        lambda m, d, o: ["predict", m["formula"], d, "-o", o],
        {"flag": "maybe"},
        ["column 'flag': 'maybe' is not a bool value"],
    ),
    "predict --missing keep: not a number": (
        lambda m, d, o: ["predict", m["formula"], d, "--missing", "keep", "-o", o],
        {"x1": "abc"},
        ["column 'x1': 'abc' is not a number value"],
    ),
    "evaluate: a missing target": (
        lambda m, d, o: ["evaluate", m["formula"], d],
        {"y": ""},
        ["column 'y': ", "missing value"],
    ),
    "evaluate: an unseen level": (
        lambda m, d, o: ["evaluate", m["formula"], d],
        {"g": "zzz"},
        ["column 'g': ", "unseen in training"],
    ),
    "evaluate: a weight not a number": (
        lambda m, d, o: ["evaluate", m["formula"], d, "--weights", "w"],
        {"w": "heavy"},
        ["column 'w': 'heavy' is not a number"],
    ),
    "evaluate --missing drop: not a number": (
        lambda m, d, o: ["evaluate", m["formula"], d, "--missing", "drop"],
        {"x1": "abc"},
        ["column 'x1': 'abc' is not a number value"],
    ),
    "evaluate --missing drop: a negative weight": (
        lambda m, d, o: ["evaluate", m["formula"], d, "--missing", "drop", "--weights", "w"],
        {"w": "-2"},
        ["column 'w': negative weight -2.0"],
    ),
    "plain evaluate --missing drop: not a number": (
        lambda m, d, o: ["evaluate", m["plain"], d, "--missing", "drop"],
        {"x1": "abc"},
        ["column 'x1': 'abc' is not a number value"],
    ),
    "plain evaluate --missing drop: a weight not a number": (
        lambda m, d, o: ["evaluate", m["plain"], d, "--missing", "drop", "--weights", "w"],
        {"w": "heavy"},
        ["column 'w': 'heavy' is not a number"],
    ),
    "plain evaluate --missing drop: a negative weight": (
        lambda m, d, o: ["evaluate", m["plain"], d, "--missing", "drop", "--weights", "w"],
        {"w": "-2"},
        ["column 'w': negative weight -2.0"],
    ),
}

# one block, or blocks of 2 rows: the BAD row then sits inside a later block, and its place
# in the block is where the message starts from
BLOCKS = {"one block": [], "blocks of 2 rows": ["--block-rows", "2"]}


@pytest.mark.parametrize("blocks", BLOCKS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES)
def test_the_row_named_is_the_file_line(tmp_path, capsys, models, case, layout, blocks):
    # the old code counted data rows from 2: with two blank lines right after the header
    # the BAD row on line 5 was named row 3
    command, bad, needles = CASES[case]
    data, line = _write(tmp_path / "n.csv", layout, bad)
    args = command(models, data, tmp_path / "out.csv")
    if args[0] == "train":
        args[-1] = tmp_path / "out.safetensors"
    r = cli(capsys, *args, *BLOCKS[blocks])
    first, *rest = needles
    r.assert_one_error_line(2, f"{data}, row {line}, {first}", *rest)


def test_a_row_in_a_later_file_of_a_folder_is_its_own_line(tmp_path, capsys, models):
    folder = tmp_path / "parts"
    folder.mkdir()
    _write(folder / "a.csv", "several blank lines", {})  # its BAD row is a good one
    data, line = _write(folder / "b.csv", "multi-line values", {"g": "zzz"})
    for blocks in BLOCKS.values():
        r = cli(capsys, "predict", models["formula"], folder, "-o", tmp_path / "p.csv", *blocks)
        r.assert_one_error_line(2, f"{data}, row {line}, column 'g': ", "unseen in training")


def _parquet(path, bad: dict, at: int):
    df = _train_frame(20)
    df["flag"] = df["flag"] == "true"
    for column, value in bad.items():
        if value == "abc":
            df[column] = df[column].astype(str)  # a column of text, as Parquet may hold one
        df.loc[at, column] = np.nan if value == "" else value
    return write(df, path, "parquet")


PARQUET = {
    "train: a negative weight": (
        lambda m, d, o: ["train", d, "--formula", FORMULA, "--weights", "w", "-o", o],
        {"w": -2.0},
        ["column 'w': negative weight -2.0"],
    ),
    "train: a missing value": (
        lambda m, d, o: ["train", d, "--formula", FORMULA, "-o", o],
        {"x1": ""},
        ["column 'x1': ", "missing value"],
    ),
    "predict: an unseen level": CASES["predict: an unseen level"],
    "predict: a missing value": CASES["predict: a missing value"],
    "predict --missing keep: not a number": CASES["predict --missing keep: not a number"],
    "evaluate --missing drop: not a number": CASES["evaluate --missing drop: not a number"],
    "plain evaluate --missing drop: not a number": CASES[
        "plain evaluate --missing drop: not a number"
    ],
    "plain evaluate --missing drop: a negative weight": (
        lambda m, d, o: ["evaluate", m["plain"], d, "--missing", "drop", "--weights", "w"],
        {"w": -2.0},
        ["column 'w': negative weight -2.0"],
    ),
}


@pytest.mark.parametrize("blocks", BLOCKS)
@pytest.mark.parametrize("case", PARQUET)
def test_parquet_rows_are_data_rows_from_1(tmp_path, capsys, models, case, blocks):
    # Parquet rows were right before; converting them a second time must not move them
    command, bad, needles = PARQUET[case]
    at = 7  # 0-based: the message names row at + 1
    data = _parquet(tmp_path / "n.parquet", bad, at)
    args = command(models, data, tmp_path / "out.csv")
    if args[0] == "train":
        args[-1] = tmp_path / "out.safetensors"
    r = cli(capsys, *args, *BLOCKS[blocks])
    first, *rest = needles
    r.assert_one_error_line(2, f"{data}, row {at + 1}, {first}", *rest)


def test_the_bad_rows_are_the_only_fault(tmp_path, capsys, models):
    # the files above fail only at their BAD row: the same files without it are read whole
    for layout in LAYOUTS:
        data, _ = _write(tmp_path / "n.csv", layout, {})
        for case in ("evaluate: a missing target", "plain evaluate --missing drop: not a number"):
            args = CASES[case][0](models, data, None)
            r = cli(capsys, *args, "--weights", "w", *BLOCKS["blocks of 2 rows"])
            assert r.code == 0, r.err
        r = cli(capsys, "train", data, "--formula", FORMULA, "--weights", "w",
                "-o", tmp_path / "m.safetensors", "--block-rows", "2")  # fmt: skip
        assert r.code == 0, r.err
