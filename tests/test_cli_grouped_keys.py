"""`--by` and `--order-by` columns as users have them: store names, and dates as text (CSV)
or as dates and timestamps (Parquet), against statsmodels (``files/keys.py``)."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.regression.rolling import RollingOLS

from cli_helpers import cli, read_csv_text, statsmodels_by_group, write

STORES = ["north", "south", "east", "west side"]


def _shops(n=800, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 4, size=n)  # a store's rows anywhere in the file
    x1, x2 = rng.normal(size=n), rng.normal(10, 3, size=n)
    y = (k + 1) * x1 - 0.5 * x2 + 3 * k + rng.normal(size=n)
    days = pd.Timestamp("2023-12-20") + pd.to_timedelta(rng.permutation(n), unit="D")
    return pd.DataFrame({"store": np.array(STORES)[k], "date": days, "x1": x1, "x2": x2, "y": y})


def _as_text_dates(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(date=df.date.dt.strftime("%Y-%m-%d"))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_train_by_a_text_column_fits_each_store_as_statsmodels_does(tmp_path, capsys, kind):
    # 1. labels as written (a space inside one), 2. blocks of 37 rows: a store's rows and the
    # key stream's batches cut at different places, 3. summary keyed by the names
    df = _shops()
    data = write(_as_text_dates(df), tmp_path / f"d.{kind}", kind)
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "y", "--by", "store", "--features", "x1,x2",
            "--block-rows", "37", "-o", model)  # fmt: skip
    assert r.code == 0, r.err
    s = cli(capsys, "summary", model, "--json").json
    assert list(s["coefficients"]) == sorted(STORES)  # shown by label, not as first met
    for label, coef in s["coefficients"].items():
        part = df[df.store == label]
        ref = sm.OLS(part.y, sm.add_constant(part[["x1", "x2"]])).fit()
        got = [coef["intercept"], coef["x1"], coef["x2"]]
        np.testing.assert_allclose(got, ref.params.to_numpy(), rtol=1e-10)
        assert coef["nobs"] == len(part)
    # 4. predict and evaluate route each row by its store's name
    new = _shops(60, seed=1)
    pred = read_csv_text(
        cli(capsys, "predict", model, write(new, tmp_path / "n.csv"), "--block-rows", "7").out
    )
    want = statsmodels_by_group(df, new)  # each row by its own store's fit
    np.testing.assert_allclose(pred["y"], want, rtol=1e-10)
    ev = cli(capsys, "evaluate", model, tmp_path / "n.csv", "--json").json
    np.testing.assert_allclose(ev["targets"]["y"]["mse"], np.mean((new.y - want) ** 2), rtol=1e-10)


def test_an_unknown_store_name_is_one_error_line_naming_its_row(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    cli(capsys, "train", write(_shops(), tmp_path / "d.csv"), "-t", "y", "--by", "store",
        "--features", "x1,x2", "-o", model)  # fmt: skip
    new = _shops(5, seed=2)
    new.loc[3, "store"] = "harbour"
    r = cli(capsys, "predict", model, write(new, tmp_path / "n.csv"))
    r.assert_one_error_line(2, "row 5", "group 'harbour' of column 'store' is not in the model")


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize("by", [False, True])
def test_window_orders_rows_by_a_date_column(tmp_path, capsys, kind, by):
    # CSV: ISO text; Parquet: a timestamp column. Rows are shuffled in the file; the paths
    # come out in date order (per store with --by) and equal RollingOLS on the sorted rows
    df = _shops(500)
    data = write(_as_text_dates(df) if kind == "csv" else df, tmp_path / f"d.{kind}", kind)
    out = tmp_path / "paths.parquet"
    extra = ["--by", "store"] if by else []
    r = cli(capsys, "train", data, "-t", "y", "--window", "40", "--order-by", "date",
            "--features", "x1,x2", *extra, "-o", out)  # fmt: skip
    assert r.code == 0, r.err
    paths = pd.read_parquet(out)
    groups = [df[df.store == s] for s in sorted(STORES)] if by else [df]
    start = 0
    for part in groups:
        ordered = part.sort_values("date")
        got = paths.iloc[start : start + len(ordered)]
        start += len(ordered)
        want_dates = ordered.date.dt.strftime("%Y-%m-%d").to_numpy()
        shown = pd.to_datetime(got.date).dt.strftime("%Y-%m-%d").to_numpy()
        np.testing.assert_array_equal(shown, want_dates)
        if by:
            assert set(got.store) == {part.store.iloc[0]}
        exog = sm.add_constant(ordered[["x1", "x2"]].to_numpy())
        ref = RollingOLS(ordered.y.to_numpy(), exog, window=40).fit()
        np.testing.assert_allclose(got[["const", "x1", "x2"]].to_numpy(), ref.params,
                                   rtol=1e-8, equal_nan=True)  # fmt: skip
    assert start == len(paths)


def test_an_order_column_of_text_that_is_not_a_date_is_refused_with_its_row(tmp_path, capsys):
    df = _as_text_dates(_shops(50))
    df.loc[6, "date"] = "10/2/2024"  # sorted as text it would come before 9/30/2024
    data = write(df, tmp_path / "d.csv")
    r = cli(capsys, "train", data, "-t", "y", "--window", "10", "--order-by", "date",
            "--features", "x1,x2", "-o", tmp_path / "p.csv")  # fmt: skip
    r.assert_one_error_line(2, "row 8", "'10/2/2024' is not a number or an ISO 8601 time")
    assert not (tmp_path / "p.csv").exists()


def test_a_missing_store_is_one_error_line_naming_its_row(tmp_path, capsys):
    df = _shops(40)
    text = write(df, tmp_path / "d.csv").read_text().splitlines()
    cells = text[9].split(",")
    cells[0] = ""
    text[9] = ",".join(cells)
    (tmp_path / "d.csv").write_text("\n".join(text) + "\n")
    r = cli(capsys, "train", tmp_path / "d.csv", "-t", "y", "--by", "store",
            "--features", "x1,x2", "-o", tmp_path / "m.safetensors")  # fmt: skip
    r.assert_one_error_line(2, "row 10", "column 'store'", "missing value")


@pytest.mark.parametrize("how", [("--by", "store"), ("--cluster", "store")])
def test_csv_ids_beyond_2_53_are_questioned(tmp_path, capsys, how):
    # two stores 1234567890123456789 and ...790 are one float64: --by fitted them as one
    # group, --cluster as one cluster, silently (NOTE [integers beyond 2^53] in formats.py)
    rng = np.random.default_rng(0)
    n = 60
    ids = np.where(np.arange(n) % 2 == 0, "1234567890123456789", "1234567890123456790")
    x = rng.normal(size=n)
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) * x + 0.1 * rng.normal(size=n)
    data = tmp_path / "ids.csv"
    lines = [f"{a},{float(b)!r},{float(c)!r}\n" for a, b, c in zip(ids, x, y, strict=True)]
    data.write_text("store,x,y\n" + "".join(lines))
    r = cli(capsys, "train", data, "-t", "y", "--features", "x", *how, "-o", tmp_path / "m", "-q")
    assert r.code == 0, r.err
    assert "2^53" in r.err and "'store'" in r.err
    # small ids say nothing
    pairs = enumerate(zip(x, y, strict=True))
    small = [f"{i % 2},{float(b)!r},{float(c)!r}\n" for i, (b, c) in pairs]
    data.write_text("store,x,y\n" + "".join(small))
    r = cli(capsys, "train", data, "-t", "y", "--features", "x", *how, "-o", tmp_path / "m", "-q")
    assert r.code == 0 and "2^53" not in r.err, r.err


@pytest.mark.parametrize(
    "how", [["--by", "store"], ["--window", "20", "--order-by", "date"], ["--by", "store",
            "--window", "20", "--order-by", "date"]],
)  # fmt: skip
@pytest.mark.parametrize("other", [["--missing", "drop"], ["--formula", "y ~ x1 + x2"]])
def test_grouped_and_rolling_fits_refuse_what_they_cannot_take(tmp_path, capsys, how, other):
    # --missing drop and --formula took the pooled route and saved one OLS for all stores,
    # which predict then applied to every store, silently (a CLI hunt)
    df = _as_text_dates(_shops(200))
    data = write(df, tmp_path / "d.csv")
    cols = [] if other[0] == "--formula" else ["-t", "y", "--features", "x1,x2"]
    r = cli(capsys, "train", data, *cols, *how, *other, "-o", tmp_path / "m")
    r.assert_one_error_line(2, f"{how[0]} takes no {other[0]}")


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_window_orders_dates_outside_the_nanosecond_range(tmp_path, capsys, kind):
    # Parquet dates of 1500-1511 were "unexpected ArrowInvalid ... this is a bug"; the same
    # dates as ISO text were "not an ISO 8601 time"
    df = _shops(60)
    df["date"] = [pd.Timestamp(1500 + i // 5, 1 + i % 5, 1).date() for i in range(60)][::-1]
    if kind == "csv":
        df["date"] = [d.isoformat() for d in df["date"]]
    data = tmp_path / f"old.{kind}"
    df.to_parquet(data, index=False) if kind == "parquet" else df.to_csv(data, index=False)
    out = tmp_path / "paths.csv"
    r = cli(capsys, "train", data, "-t", "y", "--features", "x1,x2", "--window", "20",
            "--order-by", "date", "-o", out)  # fmt: skip
    assert r.code == 0, r.err
    got = pd.read_csv(out)
    ordered = df.iloc[::-1]  # the dates ascend the other way
    exog = sm.add_constant(ordered[["x1", "x2"]].to_numpy())
    ref = RollingOLS(ordered.y.to_numpy(), exog, window=20).fit()
    np.testing.assert_allclose(got[["const", "x1", "x2"]].to_numpy(), ref.params, rtol=1e-8,
                               equal_nan=True)  # fmt: skip


def test_window_orders_iso_times_with_zone_offsets(tmp_path, capsys):
    df = _shops(80)
    utc = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(np.arange(80)[::-1], unit="h")
    zones = ["+05:30", "-08:00", "Z", "+00:00"]
    local = [
        (t + pd.Timedelta(hours=5.5 if z == "+05:30" else -8 if z == "-08:00" else 0)).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
        + z
        for t, z in zip(utc, np.resize(zones, 80), strict=True)
    ]
    data = write(df.assign(date=local), tmp_path / "tz.csv")
    out = tmp_path / "paths.csv"
    r = cli(capsys, "train", data, "-t", "y", "--features", "x1,x2", "--window", "20",
            "--order-by", "date", "-o", out)  # fmt: skip
    assert r.code == 0, r.err
    ordered = df.iloc[::-1]  # the same instants ascend the other way
    ref = RollingOLS(ordered.y.to_numpy(), sm.add_constant(ordered[["x1", "x2"]].to_numpy()),
                     window=20).fit()  # fmt: skip
    np.testing.assert_allclose(pd.read_csv(out)[["const", "x1", "x2"]].to_numpy(), ref.params,
                               rtol=1e-8, equal_nan=True)  # fmt: skip
    mixed = df.assign(date=[*local[:40], *[t.strftime("%Y-%m-%d") for t in utc[40:]]])
    r = cli(capsys, "train", write(mixed, tmp_path / "mixed.csv"), "-t", "y", "--features",
            "x1,x2", "--window", "20", "--order-by", "date", "-o", out)  # fmt: skip
    r.assert_one_error_line(2, "mixes times with and without a zone offset")


def test_by_keys_that_turn_to_text_late_say_what_to_do(tmp_path, capsys):
    # judged numeric on the first block, text far down: "numeric columns need numbers" sent
    # the user the wrong way, since --by takes text keys
    df = _shops(40_000).assign(store=lambda f: (f.index % 3).astype(str))
    df.loc[39_000, "store"] = "X"  # past the first block the reader judges types on
    data = write(df, tmp_path / "late.csv")
    r = cli(capsys, "train", data, "-t", "y", "--features", "x1,x2", "--by", "store",
            "-o", tmp_path / "m")  # fmt: skip
    r.assert_one_error_line(2, "row 39002", "holds numbers in its first rows and text here")


def test_numbers_matched_to_text_groups_that_are_one_number_are_refused(tmp_path, capsys):
    # groups "1" and "1.0" (text in training); new rows whose store column is float 1.0
    # went to group "1" by the number's text, silently (a CLI hunt)
    rng = np.random.default_rng(0)
    parts = [
        pd.DataFrame({"store": k, "x": (x := rng.normal(size=20)), "y": s * x})
        for k, s in (("1", 1.0), ("1.0", 10.0), ("A", 100.0))
    ]
    data = write(pd.concat(parts), tmp_path / "t.csv")
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "y", "--features", "x", "--by", "store", "-o", model, "-q")
    assert r.code == 0, r.err
    numbers = tmp_path / "n.parquet"
    pd.DataFrame({"store": [1.0, 1.0], "x": [1.0, 2.0]}).to_parquet(numbers)
    cli(capsys, "predict", model, numbers).assert_one_error_line(2, "'1' and '1.0' are the same")
    text = tmp_path / "t.parquet"
    pd.DataFrame({"store": ["1.0", "1.0"], "x": [1.0, 2.0]}).to_parquet(text)
    r = cli(capsys, "predict", model, text)
    assert r.code == 0, r.err
    np.testing.assert_allclose(read_csv_text(r.out)["y"], [10.0, 20.0], rtol=1e-9)
