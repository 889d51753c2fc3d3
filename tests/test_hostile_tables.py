"""Hostile and unusual tables (issue 12): CSV and gzip bombs are refused in one line with
bounded memory; wide headers, long cells, huge Parquet integers and names full of escape
sequences or markup are read and shown right; predictions are streamed.
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import torchlinreg
from cli_helpers import cli, read_csv_text
from hostile_helpers import CHILD_PEAK_MB, digest, one_error_line, run_child


def _lstsq(X, y):
    A = np.column_stack([np.ones(len(X)), X])
    sol = np.linalg.lstsq(A, y, rcond=None)[0]
    return sol[1:], sol[0]


def _wide(n_rows: int, n_cols: int, seed: int = 0, name_len: int = 14):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_cols)).round(6)
    y = X[:, :3] @ [1.0, -2.0, 0.5] + 3 + rng.normal(scale=0.1, size=n_rows)
    names = [f"f{j:0{name_len - 1}d}" for j in range(n_cols)]
    return pd.DataFrame(X, columns=names).assign(y=y)


# ---------------------------------------------------------------- bombs


@pytest.mark.slow
def test_a_gzip_with_one_two_gigabyte_line_is_refused_with_bounded_memory(tmp_path):
    # 2 MB on disk, one 2 GB line after the first data row: it used to peak at 4.5 GB
    member = gzip.compress(b"1" * (16 << 20), 9)
    path = tmp_path / "bomb.csv.gz"
    with open(path, "wb") as f:
        f.write(gzip.compress(b"a,b,y\n1,2,3\n4,"))
        for _ in range(128):
            f.write(member)
        f.write(gzip.compress(b",6\n7,8,9\n"))
    assert path.stat().st_size < 3 << 20
    r = run_child(["train", path, "-t", "y", "-o", tmp_path / "m.safetensors"])
    assert "longer than 16 MiB" in one_error_line(r)
    assert r.peak_mb < CHILD_PEAK_MB, r.peak_mb
    assert not (tmp_path / "m.safetensors").exists()


def test_a_header_without_a_line_break_is_refused(tmp_path, capsys):
    path = tmp_path / "h.csv.gz"
    path.write_bytes(gzip.compress(b"a," * (9 << 20)))  # 18 MiB of header, no newline
    r = cli(capsys, "train", path, "-t", "a", "-o", tmp_path / "m")
    assert "line 1 (the header) is longer than 16 MiB" in one_error_line(r)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_an_exact_fit_with_fewer_rows_than_ten_thousand_columns_is_refused_first(tmp_path, suffix):
    # it used to allocate the (d + k)^2 state (800 MB here) and read every row first
    path = tmp_path / f"wide{suffix}"
    text = _wide(40, 10_000).to_csv(index=False).encode()
    path.write_bytes(gzip.compress(text) if suffix.endswith("gz") else text)
    r = run_child(["train", path, "-t", "y", "-o", tmp_path / "m.safetensors"])
    line = one_error_line(r)
    assert "at most 40 data row(s) for 10,001 coefficients" in line, line
    assert r.peak_mb < 600, r.peak_mb


@pytest.mark.slow
def test_predict_streams_its_output_whatever_the_row_count(tmp_path):
    # predictions used to be kept whole (16 bytes per row per target, three copies):
    # 800,000 rows of 8 targets would add about 150 MB; streamed, the peak does not move
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    Y = X @ rng.normal(size=(3, 8)) + rng.normal(size=(200, 8))
    est = torchlinreg.LinearRegression().fit(
        pd.DataFrame(X, columns=list("abc")), pd.DataFrame(Y, columns=[f"t{j}" for j in range(8)])
    )
    model = tmp_path / "m.safetensors"
    torchlinreg.save(est, model)
    peaks = []
    for n in (50_000, 800_000):
        data = tmp_path / f"x{n}.parquet"
        table = pa.table({c: rng.normal(size=n) for c in "abc"})
        pq.write_table(table, data, row_group_size=65536)
        out = tmp_path / f"p{n}.parquet"
        r = run_child(["predict", model, data, "-o", out])
        assert r.code == 0, r.err
        peaks.append(r.peak_mb)
        got = pq.read_table(out)
        assert got.num_rows == n
        expected = est.predict(np.column_stack([table.column(c).to_numpy() for c in "abc"])[-5:])
        np.testing.assert_allclose(got.slice(n - 5).to_pandas().to_numpy(), expected, rtol=1e-12)
    assert peaks[1] - peaks[0] < 60, peaks


# ---------------------------------------------------------------- inputs that must work


def test_a_header_over_64_kib_with_ten_thousand_columns_is_read(tmp_path, capsys):
    # the first 64 KiB used to be taken as the header: false "unknown column" errors
    df = _wide(30, 10_000)
    path = tmp_path / "wide.csv"
    df.to_csv(path, index=False)
    assert len(path.read_text().splitlines()[0]) > 64 << 10
    last = df.columns[-2]
    r = cli(capsys, "train", path, "-t", "y", "--features", f"f{0:013d},{last}", "-o",
            tmp_path / "m.safetensors", "-q")  # fmt: skip
    assert r.code == 0, r.err
    coef, icpt = _lstsq(df[[f"f{0:013d}", last]].to_numpy(), df["y"].to_numpy())
    model = torchlinreg.load(tmp_path / "m.safetensors")
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-10)
    np.testing.assert_allclose(model.intercept_, icpt, rtol=1e-10)
    # an unknown name is one short line, not the 10,000 names
    r = cli(capsys, "train", path, "-t", "y", "--features", "nope", "-o", tmp_path / "n")
    line = one_error_line(r)
    assert "... and 9,981 more" in line and len(line) < 1000


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_long_cell_in_an_unused_column_is_not_a_malformed_row(tmp_path, capsys, suffix):
    # a row over the 1 MiB block used to be "malformed"
    rng = np.random.default_rng(2)
    df = pd.DataFrame(rng.normal(size=(50, 2)), columns=["a", "b"])
    df["y"] = 1 + 2 * df["a"] - df["b"] + rng.normal(scale=0.1, size=50)
    df["note"] = "short"
    df.loc[20, "note"] = "x" * (3 << 20)
    text = df.to_csv(index=False).encode()
    path = tmp_path / f"long{suffix}"
    path.write_bytes(gzip.compress(text) if suffix.endswith("gz") else text)
    r = cli(capsys, "train", path, "-t", "y", "--features", "a,b", "-o", tmp_path / "m", "-q")
    assert r.code == 0, r.err
    coef, _ = _lstsq(df[["a", "b"]].to_numpy(), df["y"].to_numpy())
    np.testing.assert_allclose(torchlinreg.load(tmp_path / "m").coef_, coef, rtol=1e-10)
    # a bad value after the long row is still found at its own line
    df["b"] = df["b"].astype(object)
    df.loc[40, "b"] = "oops"
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    r = cli(capsys, "train", bad, "-t", "y", "--features", "a,b", "-o", tmp_path / "n")
    assert "row 42, column 'b': non-numeric value 'oops'" in one_error_line(r)


def test_parquet_integers_beyond_two_to_the_53_are_read_as_float64(tmp_path, capsys):
    # they used to fail as "the file may be corrupt"
    rng = np.random.default_rng(3)
    big = rng.integers(2**53, 2**62, 40, dtype=np.int64)  # as ids, counts or timestamps are
    a = rng.normal(size=40)
    y = a * 2 + big.astype(np.float64) * 1e-18 + rng.normal(scale=0.01, size=40)
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"a": a, "id": big, "y": y}), path)
    r = cli(capsys, "train", path, "-t", "y", "-o", tmp_path / "m", "-q")
    assert r.code == 0, r.err
    X = np.column_stack([a, big.astype(np.float64)])  # numpy's nearest float64, as documented
    scale = np.abs(X).max(0)  # lstsq's rcond would drop the small column otherwise
    coef, _ = _lstsq(X / scale, y)
    np.testing.assert_allclose(torchlinreg.load(tmp_path / "m").coef_, coef / scale, rtol=1e-8)


# ---------------------------------------------------------------- terminal and markup

HOSTILE_NAMES = ["a[/]", "[link=http://evil.example]click[/link]", "t\x1b]0;owned\x07",
                 "[bold red]x", "z\u202ereversed"]  # fmt: skip


def test_names_with_escape_sequences_and_markup_are_shown_as_text(tmp_path, capsys):
    # ESC/OSC sequences reached the terminal raw, [link=...] was rendered, and 'a[/]' made
    # train exit 1 with MarkupError after saving the model
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, len(HOSTILE_NAMES)))
    df = pd.DataFrame(X, columns=HOSTILE_NAMES).assign(**{"y\x1b[2J": X.sum(1)})
    data = tmp_path / "names.csv"
    df.to_csv(data, index=False)
    model = tmp_path / "m.safetensors"
    outputs = []
    for args in (
        ["train", data, "-t", "y\x1b[2J", "-o", model],
        ["summary", model],
        ["evaluate", model, data],
        ["train", data, "-t", "y\x1b[2J", "--features", "nope\x1b[31m", "-o", model],
    ):
        r = cli(capsys, *args)
        outputs.append(r)
        for stream in (r.out, r.err):
            assert not any(c in stream for c in "\x1b\x07\u202e"), args
    assert [r.code for r in outputs] == [0, 0, 0, 2]
    assert "a[/]" in outputs[1].out and "[link=http://evil.example]click[/link]" in outputs[1].out
    assert "t\\x1b]0;owned\\x07" in outputs[1].out and "z\\u202ereversed" in outputs[1].out
    assert "nope\\x1b[31m" in one_error_line(outputs[3])
    assert digest(data) is not None and torchlinreg.load(model).n_features_in_ == 5
    # JSON needs no escaping of its own: json.dumps escapes control characters
    r = cli(capsys, "summary", model, "--json")
    assert "\x1b" not in r.out and r.json["features"][2] == "t\x1b]0;owned\x07"


def test_predict_to_a_terminal_escapes_the_header_only_there(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20, 2))
    est = torchlinreg.LinearRegression().fit(
        pd.DataFrame(X, columns=["a", "b"]), pd.Series(X.sum(1), name="y\x1b]0;x\x07")
    )
    model = tmp_path / "m.safetensors"
    torchlinreg.save(est, model)
    data = tmp_path / "d.csv"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(data, index=False)
    r = cli(capsys, "predict", model, data)  # a pipe: the name as it is
    assert read_csv_text(r.out).columns[0] == "y\x1b]0;x\x07"
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    r = cli(capsys, "predict", model, data)
    assert r.out.splitlines()[0] == "y\\x1b]0;x\\x07"
