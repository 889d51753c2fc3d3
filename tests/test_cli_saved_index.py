"""`train` leaves a saved pandas index out of the default features (NOTE [a saved index
is not a feature] in cli/checks.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import torchlinreg
from cli_helpers import cli


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_saved_pandas_index_is_not_a_feature(capsys, tmp_path, kind):
    # NOTE [a saved index is not a feature]: df.to_parquet / df.to_csv of a shuffled frame
    # keep its index as a column, which became a feature: a coefficient for the row
    # number, and predictions that moved with a new row's index (-29.9 for 1.0), silently
    from sklearn.linear_model import LinearRegression as SkLR

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150)})
    df["y"] = 1 + 2 * df.a - 3 * df.b + 0.01 * rng.normal(size=150)
    df = df.sample(frac=1.0, random_state=1)  # a shuffled index
    data, model = tmp_path / f"d.{kind}", tmp_path / "m.safetensors"
    df.to_parquet(data) if kind == "parquet" else df.to_csv(data)
    r = cli(capsys, "train", data, "-t", "y", "-o", model)
    assert r.code == 0, r.err
    assert "look like a saved row index" in r.err and "a saved index, left out" in r.out
    sk = SkLR().fit(df[["a", "b"]], df.y)
    fitted = torchlinreg.load(model)
    np.testing.assert_allclose(fitted.coef_.ravel(), sk.coef_, rtol=1e-10)
    new = pd.DataFrame({"a": [0.0, 1.0], "b": [0.0, 0.0]}, index=[100_000, 5])
    new.to_parquet(tmp_path / "new.parquet") if kind == "parquet" else new.to_csv(
        tmp_path / "new.csv"
    )
    out = tmp_path / "p.csv"
    r = cli(capsys, "predict", model, tmp_path / f"new.{kind}", "-o", out)
    assert r.code == 0, r.err
    np.testing.assert_allclose(pd.read_csv(out).iloc[:, -1], sk.predict(new), rtol=1e-10)


def test_parquet_integers_beyond_2_53_say_they_are_rounded(capsys, tmp_path):
    # NOTE [integers beyond 2^53]: two stores 1234567890123456789 and ...790 became one
    # group (fitted on both), silently
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    store = np.repeat(np.array([1234567890123456789, 1234567890123456790], dtype=np.int64), 30)
    y = np.where(store == store[0], 2.0, -5.0) * x + 0.1 * rng.normal(size=60)
    pd.DataFrame({"x": x, "y": y, "store": store}).to_parquet(tmp_path / "d.parquet")
    r = cli(capsys, "train", tmp_path / "d.parquet", "-t", "y", "--features", "x", "--by",
            "store", "-o", tmp_path / "m.safetensors")  # fmt: skip
    assert r.code == 0, r.err
    assert "column 'store' holds integers beyond 2^53, which float64 rounds" in r.err


def test_a_header_of_numbers_is_questioned(capsys, tmp_path):
    # a file without a header line: its first row was read as the names and not fitted,
    # silently
    data = tmp_path / "d.csv"
    data.write_text("1.0,2.0,3.0\n2,3,5\n3,1,4\n4,4,8\n5,2,7\n6,6,12\n")
    r = cli(capsys, "train", data, "-t", "3.0", "-o", tmp_path / "m.safetensors")
    assert r.code == 0, r.err
    assert "every column name is a number (1.0, 2.0, 3.0): is its first line data?" in r.err


def test_int64_extremes_are_checked_without_overflow():
    # abs(INT64_MIN) overflowed int64 in the check, and a Parquet column holding it was
    # refused as "corrupt"; -2^63 is exact in float64 and says nothing
    import pyarrow as pa

    from torchlinreg.files.formats import to_float64

    out = to_float64(pa.array([-(2**63), 1, None], pa.int64()), "x")  # no warning (error)
    assert out.to_pylist() == [-(2.0**63), 1.0, None]
    with pytest.warns(UserWarning, match="column 'y' holds integers beyond 2"):
        to_float64(pa.array([2**53 + 1, None], pa.int64()), "y")
