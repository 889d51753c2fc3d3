"""A row with too many or too few fields, read through files/rawblocks.py (`train --formula`,
`train --missing drop`, `predict` and `evaluate` of formula models, a plain model's
`evaluate --missing drop`): the message is the numeric route's (files/csvfile.py), naming
the file's line (NOTE [CSV row numbers]) and both field counts, not pyarrow's own row count.

Each expected line is found in the file's own text: the line ending in ",BAD"."""

import pandas as pd
import pytest

from cli_helpers import cli, write
from torchlinreg.errors import DataError
from torchlinreg.files.rawblocks import raw_blocks
from torchlinreg.files.tables import open_table

HEADER = "g,x1,y,note"
FORMULA = "y ~ x1 + C(g)"
LEVELS = ("a", "b", "c")
MULTI = ['"two\nlines"', '"three\n\nlines"']

# '' a blank line, 'multi' a row whose note spans lines, 'BAD' the row of the wrong width
LAYOUTS = {
    "blank lines right after the header": ["", "", "BAD"],
    "blank lines before": ["row", "row", "", "", "BAD"],
    "multi-line values before": ["multi", "row", "", "multi", "BAD"],
    "multi-line values, CRLF": ["multi", "", "multi", "row", "BAD"],
    # past pyarrow's first 64 KiB block when rows are read 2 at a time
    "a later block": ["row", "", "multi", *["row"] * 4000, "", "BAD"],
}
# the BAD row's fields: one too many, one too few (x1 left out)
WIDTHS = {
    "too many fields": lambda c: [c["g"], c["x1"], c["y"], "extra", "BAD"],
    "too few fields": lambda c: [c["g"], c["y"], "BAD"],
}
TAIL = 10  # good rows after BAD


def _cells(i: int) -> dict[str, str]:
    x1 = 0.1 * (i % 40) - 0.4
    y = 1.0 + 2.0 * x1 + LEVELS.index(LEVELS[i % 3]) + 0.01 * (i % 7)
    return {"g": LEVELS[i % 3], "x1": f"{x1!r}", "y": f"{y!r}"}


def _write(path, layout: str, width: str):
    """The file of ``layout`` with its BAD row of ``width``; the line it is on and its
    field count, both counted in the file's text."""
    lines, multi = [HEADER], iter(MULTI * 3)
    for i, what in enumerate([*LAYOUTS[layout], *["row"] * TAIL]):
        if what == "BAD":
            lines.append(",".join(WIDTHS[width](_cells(i))))
        elif what:
            note = next(multi) if what == "multi" else "ok"
            lines.append(",".join([*_cells(i).values(), note]))
        else:
            lines.append("")
    newline = "\r\n" if "CRLF" in layout else "\n"
    content = newline.join(lines) + newline
    path.write_bytes(content.encode())
    # as an editor counts lines: a value's own "\n" starts a line in a CRLF file too
    found = [(n, line) for n, line in enumerate(content.splitlines(), 1) if line.endswith(",BAD")]
    assert len(found) == 1
    line, text = found[0]
    return path, line, text.count(",") + 1


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A formula model and a plain model of x1, trained once on good rows."""
    folder = tmp_path_factory.mktemp("models")
    df = pd.DataFrame([_cells(i) for i in range(60)]).astype({"x1": float, "y": float})
    data = write(df.assign(note="ok"), folder / "train.csv")
    formula, plain = folder / "f.safetensors", folder / "p.safetensors"
    assert cli_ok(["train", data, "--formula", FORMULA, "-o", formula, "-q"])
    assert cli_ok(["train", data, "-t", "y", "--features", "x1", "-o", plain, "-q"])
    return {"formula": formula, "plain": plain}


def cli_ok(args) -> bool:
    from torchlinreg.cli.app import run

    return run([str(a) for a in args]) == 0


# name: the command, given the model files, the data and an output folder
COMMANDS = {
    "train --formula": lambda m, d, o: ["train", d, "--formula", FORMULA, "-o", o / "m.st"],
    "train --missing drop": lambda m, d, o: [
        *["train", d, "-t", "y", "--features", "x1", "--missing", "drop", "-o", o / "m.st"]
    ],
    "predict": lambda m, d, o: ["predict", m["formula"], d, "-o", o / "p.csv"],
    "evaluate": lambda m, d, o: ["evaluate", m["formula"], d],
    "evaluate --missing drop": lambda m, d, o: ["evaluate", m["formula"], d, "--missing", "drop"],
    "plain evaluate --missing drop": lambda m, d, o: [
        *["evaluate", m["plain"], d, "--missing", "drop"]
    ],
}
BLOCKS = {"one block": [], "blocks of 2 rows": ["--block-rows", "2"]}


@pytest.mark.parametrize("blocks", BLOCKS)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("command", COMMANDS)
def test_the_message_is_the_numeric_routes(
    tmp_path, capsys, models, command, layout, width, blocks
):
    # the old code said "cannot read rows from 2 on (CSV parse error: Row #3: Expected 4
    # columns, got 5: ...)": pyarrow's count past blank lines, no advice
    data, line, found = _write(tmp_path / "d.csv", layout, width)
    numeric = cli(capsys, "train", data, "-t", "y", "--features", "x1", "-o", tmp_path / "n.st")
    want = numeric.assert_one_error_line(
        2, f"{data}, row {line}: expected 4 fields, found {found}; every row needs one value"
    )
    r = cli(capsys, *COMMANDS[command](models, data, tmp_path), *BLOCKS[blocks])
    assert r.assert_one_error_line(2) == want


def test_a_bad_row_in_a_later_pyarrow_block(tmp_path):
    # blocks came back before the error: the rows pyarrow gave are counted, not re-counted
    data, line, found = _write(tmp_path / "d.csv", "a later block", "too many fields")
    blocks = 0
    with pytest.raises(DataError) as info:
        for _ in raw_blocks(open_table(data, block_rows=2), ["g", "x1", "y"], 2):
            blocks += 1
    assert blocks > 0
    assert (info.value.row, info.value.path) == (line, str(data))
    assert f"expected 4 fields, found {found}" in str(info.value)


def test_a_bad_value_in_an_earlier_block_is_not_blamed_on_a_later_width(tmp_path):
    # only a parse error is located by width: here pyarrow stopped at the bad UTF-8 of an
    # earlier block, and the wrong-width row further on must not be named instead
    data, line, _ = _write(tmp_path / "d.csv", "a later block", "too many fields")
    raw = data.read_bytes().split(b"\n")
    raw[3] = b"\xff" + raw[3][1:]  # the g of a row in the first block
    data.write_bytes(b"\n".join(raw))
    with pytest.raises(DataError) as info:
        for _ in raw_blocks(open_table(data, block_rows=2), ["g", "x1", "y"], 2):
            pass
    assert info.value.row != line
    assert "UTF8" in str(info.value)
