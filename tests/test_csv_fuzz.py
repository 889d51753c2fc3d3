"""Fuzzing the CSV reader: it returns exactly the values or raises DataError, nothing else.

The oracle is Python's csv module plus float(): for a file our reader accepts, every row must
have one field per header column and every cell must be a finite number that float() reads
to the same float64, bit for bit.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from torchlinreg.errors import DataError
from torchlinreg.files.tables import open_table

SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _oracle(data: bytes, delimiter: str) -> tuple[list[str], np.ndarray]:
    """Parse with the csv module; raise ValueError where the file is not a clean numeric table."""
    text = data.decode("utf-8").removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if r]  # blank lines are not data
    values = []
    for r in body:
        if len(r) != len(header):
            raise ValueError("ragged")
        values.append([float(c) for c in r])
    out = np.array(values, dtype=np.float64).reshape(len(body), len(header))
    if not np.isfinite(out).all():
        raise ValueError("non-finite")
    return header, out


def _read(data: bytes, suffix: str = ".csv", delimiter: str | None = ","):
    """Our reader on the bytes: (names, values) or the DataError it raised."""
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            src = open_table(path, delimiter=delimiter, block_rows=3)
            block = src.read_all(src.column_names)
        except DataError as exc:
            assert "\n" not in str(exc)
            return exc
        return src.column_names, block.X.numpy()
    finally:
        os.unlink(path)


def _agrees_or_refuses(data: bytes, delimiter: str = ",") -> None:
    got = _read(data, delimiter=delimiter)
    if isinstance(got, DataError):
        return
    names, values = got
    header, expected = _oracle(data, delimiter)  # must not raise: we accepted the file
    assert names == header
    assert values.shape == expected.shape
    # bit-exact: compare the float64 bit patterns, so -0.0 and 0.0 differ
    assert (values.view(np.int64) == expected.view(np.int64)).all()


@SETTINGS
@given(st.binary(max_size=200))
@example(b"a,b\n1,2\n")
@example(b"\xef\xbb\xbfa\n1\n")
@example(b"a\n\x00\n")
@example(b'a,b\n"1\n2",3\n')
def test_random_bytes_are_read_exactly_or_refused(data):
    _agrees_or_refuses(data)


FLOAT = st.floats(allow_nan=False, allow_infinity=False)
# Numbers in every spelling a reader may meet: shortest repr, long decimal expansions (they
# test correct rounding), integers beyond 2**53, exponents, signs, padding and quotes.
NUMBER = st.one_of(
    FLOAT.map(repr),
    FLOAT.map(lambda v: f"{v:.25g}"),
    FLOAT.map(lambda v: f"{v:.3e}"),
    st.integers(-(10**22), 10**22).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=30).map(str),
    st.sampled_from(["-0", "+1", ".5", "5.", "1E5", "1e-400", "4.9e-324", "00012", '"3"', " 2 "]),
)
JUNK = st.sampled_from(
    [
        "",
        " ",
        "NA",
        "nan",
        "inf",
        "-inf",
        "1e999",
        "x",
        "1,5",
        '"',
        "1_0",
        "0x1f",
        "1e",
        ".",
        "-",
        "1.5.2",
        "١",
        "--1",
        "None",
        "TRUE",
        '"1\n2"',
        "1 2",
    ]
) | st.text(alphabet='0123456789.eE+-, "xn\t', max_size=6)


@st.composite
def tables(draw):
    n_cols = draw(st.integers(1, 4))
    n_rows = draw(st.integers(0, 8))
    names = [f"c{j}" for j in range(n_cols)]
    rows = [[draw(NUMBER) for _ in range(n_cols)] for _ in range(n_rows)]
    if rows and draw(st.booleans()):  # one junk cell
        rows[draw(st.integers(0, n_rows - 1))][draw(st.integers(0, n_cols - 1))] = draw(JUNK)
    if rows and draw(st.integers(0, 3)) == 0:  # a ragged row
        i = draw(st.integers(0, n_rows - 1))
        rows[i] = rows[i][: draw(st.integers(0, n_cols))] + draw(st.lists(NUMBER, max_size=2))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [delimiter.join(names)] + [delimiter.join(r) for r in rows]
    for _ in range(draw(st.integers(0, 2))):  # blank lines, sometimes even before the header
        lines.insert(draw(st.integers(0, len(lines))), "")
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    return text.encode(), delimiter


@SETTINGS
@given(tables())
def test_tables_with_junk_cells_are_read_exactly_or_refused(table):
    data, delimiter = table
    _agrees_or_refuses(data, delimiter)


@SETTINGS
@given(
    st.lists(
        st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=3, max_size=3),
        min_size=1,
        max_size=30,
    )
)
def test_well_formed_numeric_tables_round_trip_exactly(rows):
    text = "x,y,z\n" + "".join(",".join(repr(v) for v in r) + "\n" for r in rows)
    names, values = _read(text.encode(), delimiter=None)
    assert names == ["x", "y", "z"]
    expected = np.array(rows, dtype=np.float64)
    assert (values.view(np.int64) == expected.view(np.int64)).all()


def test_oracle_is_strict():
    # the oracle itself must refuse what it should, or the fuzz tests prove nothing
    for bad in [b"a\nx\n", b"a,b\n1\n", b"a\ninf\n"]:
        try:
            _oracle(bad, ",")
        except ValueError:
            continue
        raise AssertionError(bad)
    assert math.isfinite(_oracle(b"a\n1\n", ",")[1][0, 0])
