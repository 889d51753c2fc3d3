"""The rows that `predict --missing keep`, `evaluate --missing drop` and the key columns of
grouped and rolling fits (`--by`, `--order-by`) name: the line a text editor shows (header =
line 1) past blank lines and quoted values over several lines, as every other message of the
tool names them (NOTE [CSV row numbers] in files/csvfile.py); Parquet's data rows from 1.

Each expected row is found in the file's own text: the line holding the row marked BAD."""

import numpy as np
import pandas as pd
import pytest

from cli_helpers import cli, write, write_lines

HEADER = "store,x1,x2,y,w,note"
LABELS = {1: "north", 2: "south", 3: "east"}


def _stores(n=300, seed=0, text=False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    store = rng.integers(1, 4, size=n)
    x1, x2 = rng.normal(size=n), rng.normal(10, 3, size=n)
    y = store * x1 - 0.5 * x2 + 3 * store + rng.normal(size=n)
    df = pd.DataFrame({"store": store, "x1": x1, "x2": x2, "y": y, "w": 1.0, "note": "ok"})
    return df.assign(store=df.store.map(LABELS)) if text else df


@pytest.fixture(params=[False, True], ids=["numbers", "text"])
def text(request):
    return request.param


@pytest.fixture
def model(tmp_path, capsys, text):
    path = tmp_path / "m.safetensors"
    r = cli(capsys, "train", write(_stores(text=text), tmp_path / "train.csv"), "-t", "y",
            "--by", "store", "--features", "x1,x2", "-o", path)  # fmt: skip
    assert r.code == 0, r.err
    return path


def _good(i: int, text: bool, note: str = "ok") -> str:
    store = LABELS[1 + i % 3] if text else str(1 + i % 3)
    return f"{store},{0.1 * i},{10 + i},{2.0 * i},1,{note}"


# Where the blank lines and the lines of multi-line values go: '' is a blank line, 'BAD' the
# offending row, 'multi' a row whose note spans lines (one with a blank line inside it).
LAYOUTS = {
    "blank line before": ["row", "row", "", "BAD", "row"],
    "blank lines at the start": ["", "", "row", "BAD", "row"],
    "several blank lines": ["row", "", "", "", "row", "", "", "BAD", "row"],
    "multi-line values": ["multi", "row", "", "multi", "BAD", "row"],
    "multi-line values, CRLF": ["multi", "", "multi", "row", "BAD"],
}
MULTI = ['"two\nlines"', '"three\n\nlines"']  # quoted: the csv reader keeps them one value

# the offending cells (store, x1, x2) of the row marked BAD
BAD = {
    "unknown group": lambda text: ("harbour" if text else "77", "0.5", "11"),
    "missing value": lambda text: ("north" if text else "1", "0.5", ""),
    "missing group label": lambda text: ("", "0.5", "11"),
    "not a number": lambda text: ("north" if text else "1", "abc", "11"),
}


def _write(path, layout: str, bad: str, text: bool, weight: str = "1"):
    """The file of ``layout`` with the ``bad`` row; the line it is on, counted in its text."""
    lines, multi = [HEADER], iter(MULTI * 3)
    for i, what in enumerate(LAYOUTS[layout]):
        if what == "BAD":
            store, x1, x2 = BAD[bad](text)
            lines.append(f"{store},{x1},{x2},1.5,{weight},BAD")
        elif what:
            lines.append(_good(i, text, next(multi) if what == "multi" else "ok"))
        else:
            lines.append("")
    return write_lines(path, lines, layout)


def _message(r, command: str) -> str:
    """The one line that names the rows: predict's warning, evaluate's report line."""
    if command == "predict":
        lines = r.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("torchlinreg: warning: "), r.err
        return lines[0]
    (line,) = [line for line in r.out.splitlines() if "rows dropped" in line]
    return line


COMMANDS = {"predict": ["--missing", "keep"], "evaluate": ["--missing", "drop"]}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("bad", ["unknown group", "missing value", "missing group label"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_rows_left_out_are_named_at_their_line(tmp_path, capsys, model, text, command, bad,
                                               layout):  # fmt: skip
    # exact already before files/keys.py's rows were (LeftOut asks the file): kept so that
    # the summary lines stay in step with the errors below
    data, line = _write(tmp_path / "n.csv", layout, bad, text)
    r = cli(capsys, command, model, data, *COMMANDS[command])
    assert r.code == 0, r.err
    message = _message(r, command)
    if bad == "unknown group":
        shown = "'harbour'" if text else "77"
        assert f"of groups not in the model (first: group {shown}, {data}, row {line})" in message
    else:
        assert f"with missing or non-finite values (first: {data}, row {line})" in message


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_value_that_is_not_a_number_is_named_at_its_line(tmp_path, capsys, model, text,
                                                          command, layout):  # fmt: skip
    # the old code counted data rows from 2: row 3 where the file has it on line 5
    data, line = _write(tmp_path / "n.csv", layout, "not a number", text)
    r = cli(capsys, command, model, data, *COMMANDS[command])
    r.assert_one_error_line(2, f"{data}, row {line}, column 'x1': 'abc' is not a number")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_weight_that_is_not_a_number_is_named_at_its_line(tmp_path, capsys, model, text,
                                                           layout):  # fmt: skip
    data, line = _write(tmp_path / "n.csv", layout, "missing value", text, weight="heavy")
    r = cli(capsys, "evaluate", model, data, "--missing", "drop", "--weights", "w")
    r.assert_one_error_line(2, f"{data}, row {line}, column 'w': 'heavy' is not a number")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_missing_text_label_is_named_at_its_line(tmp_path, capsys, command, layout):
    # without --missing the text labels come from files/keys.py's KeyStream, which named
    # the row as counted in data rows from 2
    path = tmp_path / "m.safetensors"
    r = cli(capsys, "train", write(_stores(text=True), tmp_path / "train.csv"), "-t", "y",
            "--by", "store", "--features", "x1,x2", "-o", path)  # fmt: skip
    assert r.code == 0, r.err
    data, line = _write(tmp_path / "n.csv", layout, "missing group label", True)
    r = cli(capsys, command, path, data)
    r.assert_one_error_line(2, f"{data}, row {line}, column 'store': missing value")
    r = cli(capsys, "train", data, "-t", "y", "--by", "store", "--features", "x1,x2",
            "-o", tmp_path / "again.safetensors")  # fmt: skip
    r.assert_one_error_line(2, f"{data}, row {line}, column 'store': missing value")


def _dated(path, layout: str, start: int = 0, bad: bool = True) -> tuple:
    """A file of ``date,x1,y`` rows in ``layout``; the BAD row's date is not a date."""
    lines = ["date,x1,y,note"]
    for i, what in enumerate(LAYOUTS[layout]):
        day = f"2024-01-{start + i + 1:02d}"
        if what == "BAD" and bad:
            lines.append(f"1/{i + 1}/2024,{i},{2 * i},BAD")
        elif what:
            note = MULTI[i % 2] if what == "multi" else "ok"
            lines.append(f"{day},{i},{2 * i + i % 3},{note}")
        else:
            lines.append("")
    content = "\n".join(lines) + "\n"
    path.write_text(content)
    found = [n for n, line in enumerate(content.splitlines(), 1) if line.endswith(",BAD")]
    return path, found[0] if found else None


@pytest.mark.parametrize("layout", [k for k in LAYOUTS if "CRLF" not in k])
def test_an_order_value_that_is_not_a_time_is_named_at_its_line(tmp_path, capsys, layout):
    data, line = _dated(tmp_path / "d.csv", layout)
    r = cli(capsys, "train", data, "-t", "y", "--features", "x1", "--window", "2",
            "--order-by", "date", "-o", tmp_path / "p.csv")  # fmt: skip
    r.assert_one_error_line(2, f"{data}, row {line}, column 'date'", "ISO 8601")


def test_an_order_value_that_is_not_a_time_is_named_in_its_own_file(tmp_path, capsys):
    # the old code named the first file, and the row counted over every file's rows
    folder = tmp_path / "parts"
    folder.mkdir()
    _dated(folder / "a.csv", "blank line before", bad=False)
    data, line = _dated(folder / "b.csv", "several blank lines", start=10)
    r = cli(capsys, "train", folder, "-t", "y", "--features", "x1", "--window", "2",
            "--order-by", "date", "-o", tmp_path / "p.csv")  # fmt: skip
    r.assert_one_error_line(2, f"{data}, row {line}, column 'date'", "ISO 8601")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("bad", ["unknown group", "missing value", "not a number"])
def test_parquet_rows_are_data_rows_from_1(tmp_path, capsys, model, text, command, bad):
    new = _stores(12, seed=1, text=text)
    at = 7  # 0-based: the message names row at + 1
    store, x1, x2 = BAD[bad](text)
    new = new.astype({"store": object if text else "Int64", "x2": float})
    if bad == "not a number":  # a column of text, as a Parquet file may hold one
        new = new.astype({"x1": str})
    new.loc[at, "store"] = store if text else int(store)
    new.loc[at, "x1"] = x1 if bad == "not a number" else float(x1)
    new.loc[at, "x2"] = float(x2) if x2 else np.nan
    data = write(new, tmp_path / "n.parquet", "parquet")
    r = cli(capsys, command, model, data, *COMMANDS[command])
    if bad == "not a number":
        r.assert_one_error_line(2, f"{data}, row {at + 1}, column 'x1'")
        return
    assert r.code == 0, r.err
    assert f"{data}, row {at + 1})" in _message(r, command)


def test_a_plain_model_names_a_missing_value_at_its_line(tmp_path, capsys):
    # predicting.py's own message (a model of named columns, predict with --keep)
    model = tmp_path / "plain.safetensors"
    r = cli(capsys, "train", write(_stores(), tmp_path / "train.csv"), "-t", "y",
            "--features", "x1,x2", "-o", model)  # fmt: skip
    assert r.code == 0, r.err
    for bad, needle in (("missing value", "column 'x2': a missing value"),
                        ("not a number", "column 'x1': 'abc' is not a number")):  # fmt: skip
        data, line = _write(tmp_path / "n.csv", "several blank lines", bad, False)
        r = cli(capsys, "predict", model, data, "--keep", "note")
        r.assert_one_error_line(2, f"{data}, row {line}, {needle}")
