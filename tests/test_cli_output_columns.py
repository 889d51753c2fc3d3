"""Output tables whose columns would repeat a name, from an outputs hunt (2026-11-29).

`predict --keep y` (y a target) printed the header y,x,y,y2 over three values a row; a
feature named nobs or rsquared overwrote a rolling path's count or R2, one named intercept
the summary's intercept; an explicit --features naming the --order-by column lost it
(NOTE [output columns] in cli/checks.py). References: statsmodels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.regression.rolling import RollingOLS

from cli_helpers import cli, write


def _data(tmp_path, **extra):
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"x": rng.normal(size=n), "t": np.arange(n, dtype=float)})
    frame["y"] = 1 + 2 * frame["x"] + 0.01 * frame["t"] + 0.1 * rng.normal(size=n)
    frame["y2"] = frame["y"] * 2
    for name, values in extra.items():
        frame[name] = values
    return frame, write(frame, tmp_path / "d.csv")


def test_predict_refuses_a_kept_column_named_as_a_prediction(tmp_path, capsys):
    _, data = _data(tmp_path)
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "y", "-t", "y2", "--features", "x", "-o", model, "-q")
    assert r.code == 0, r.err
    cli(capsys, "predict", model, data, "--keep", "y,x").assert_one_error_line(
        2, "two columns named 'y'"
    )
    cli(capsys, "predict", model, data, "--keep", "x,x").assert_one_error_line(
        2, "two columns named 'x'"
    )
    r = cli(capsys, "predict", model, data, "--keep", "t")
    assert r.code == 0, r.err


def test_features_named_as_output_columns_are_refused(tmp_path, capsys):
    rng = np.random.default_rng(1)
    _, data = _data(tmp_path, nobs=rng.normal(size=60), intercept=rng.normal(size=60))
    for name, how in (
        ("nobs", ["--window", "10", "--order-by", "t"]),
        ("intercept", ["--by", "x"]),
        ("intercept", []),
    ):
        r = cli(capsys, "train", data, "-t", "y", "--features", f"x,{name}", *how,
                "-o", tmp_path / "m")  # fmt: skip
        r.assert_one_error_line(2, f"feature {name!r} has a name that")


def test_an_order_column_named_in_features_is_a_feature(tmp_path, capsys):
    frame, data = _data(tmp_path)
    out = tmp_path / "paths.csv"
    r = cli(capsys, "train", data, "-t", "y", "--features", "x,t", "--window", "20",
            "--order-by", "t", "-o", out)  # fmt: skip
    assert r.code == 0, r.err
    got = pd.read_csv(out)
    ref = RollingOLS(frame["y"], sm.add_constant(frame[["x", "t"]]), window=20).fit()
    np.testing.assert_allclose(got[["const", "x", "t"]].to_numpy(), ref.params.to_numpy(),
                               rtol=1e-8, equal_nan=True)  # fmt: skip


def test_a_kept_column_that_changes_type_is_said_for_parquet(tmp_path, capsys):
    # text in one file, numbers in the next (a folder): "unexpected ValueError ... a bug"
    frame, data = _data(tmp_path)
    model = tmp_path / "m.safetensors"
    assert cli(capsys, "train", data, "-t", "y", "--features", "x", "-o", model, "-q").code == 0
    folder = tmp_path / "new"
    folder.mkdir()
    frame.iloc[:30].assign(id=[f"a{i}" for i in range(30)]).to_csv(folder / "a.csv", index=False)
    frame.iloc[30:].assign(id=np.arange(30, 60)).to_parquet(folder / "b.parquet")
    out = tmp_path / "p.parquet"
    r = cli(capsys, "predict", model, folder, "--keep", "id", "-o", out)
    assert r.code == 0, r.err  # the numbers cast to the first block's text
    got = pd.read_parquet(out)
    assert got["id"].tolist() == [f"a{i}" for i in range(30)] + [str(i) for i in range(30, 60)]
    assert "not writable" not in r.err
    # numbers first, then text that no number holds: said, not a crash
    folder2 = tmp_path / "new2"
    folder2.mkdir()
    frame.iloc[:30].assign(id=np.arange(30)).to_parquet(folder2 / "a.parquet")
    frame.iloc[30:].assign(id=[f"b{i}" for i in range(30)]).to_csv(folder2 / "b.csv", index=False)
    r = cli(capsys, "predict", model, folder2, "--keep", "id", "-o", tmp_path / "q.parquet")
    r.assert_one_error_line(2, "column 'id' changes type between blocks")


@pytest.mark.parametrize(("grouped", "formula"), [(False, False), (False, True), (True, False)])
def test_kept_integer_ids_with_gaps_stay_exact_integers(tmp_path, capsys, grouped, formula):
    # pandas reads an int64 column with a null as float64: ids past 2^53 came back rounded
    # and Parquet got a float column (NOTE [kept integers with gaps])
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame, _ = _data(tmp_path)
    frame["g"] = np.where(np.arange(len(frame)) % 2, "a", "b")
    ids = [None if i % 7 == 0 else 2**60 + i for i in range(len(frame))]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.append_column("id", pa.array(ids, type=pa.int64()))
    data = tmp_path / "d.parquet"
    pq.write_table(table, data)
    model = tmp_path / "m.safetensors"
    how = ["--formula", "y ~ x"] if formula else ["-t", "y", "--features", "x"]
    how += ["--by", "g"] if grouped else []
    assert cli(capsys, "train", data, *how, "-o", model, "-q").code == 0
    for out in (tmp_path / "p.parquet", tmp_path / "p.csv"):
        r = cli(capsys, "predict", model, data, "--keep", "id", "-o", out, "--block-rows", "16")
        assert r.code == 0, r.err
        if out.suffix == ".parquet":
            column = pq.read_table(out).column("id")
            assert column.type == pa.int64()
            assert column.to_pylist() == ids
        else:
            text = out.read_text().splitlines()[1:]
            assert [line.split(",")[0] for line in text] == [
                "" if i is None else str(i) for i in ids
            ]
