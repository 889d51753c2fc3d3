"""Grouped model files (`train --by`) with rows they cannot predict: `predict --missing keep`
(empty predictions, rows in order, one warning counting them by why), `evaluate --missing
drop` (such rows left out and counted), exact rows in the errors, and ties in `--order-by`."""

import numpy as np
import pandas as pd
import pytest

from cli_helpers import cli, read_csv_text, statsmodels_by_group, write

NAMES = {1: "north", 2: "south", 3: "east", 4: "west side"}


def _stores(n=600, seed=0, text=False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    store = rng.integers(1, 5, size=n)  # rows of a store anywhere in the file
    x1, x2 = rng.normal(size=n), rng.normal(10, 3, size=n)
    y = store * x1 - 0.5 * x2 + 3 * store + rng.normal(size=n)
    df = pd.DataFrame({"store": store, "day": np.arange(n), "x1": x1, "x2": x2, "y": y})
    return df.assign(store=df.store.map(NAMES)) if text else df


def _train(tmp_path, capsys, df, *more):
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", write(df, tmp_path / "d.csv"), "-t", "y", "--by", "store",
            "--features", "x1,x2", *more, "-o", model)  # fmt: skip
    assert r.code == 0, r.err
    return model


def _holes(new: pd.DataFrame, unknown) -> pd.DataFrame:
    """Row 1 of an unknown store, rows 4 and 5 of the same; row 6 without x2, row 8 without
    a store: the rows that cannot be predicted (data rows counted from 0)."""
    new = new.copy().astype({"store": object, "x2": object})
    new.loc[[1, 4, 5], "store"] = unknown
    new.loc[6, "x2"] = None
    new.loc[8, "store"] = None
    return new


@pytest.mark.parametrize("text", [False, True])
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_predict_missing_keep_predicts_rows_it_cannot_route_as_empty(tmp_path, capsys, kind, text):
    # at the old code: "format is 'torchlinreg-grouped-model', expected 'torchlinreg-model'"
    df = _stores(text=text)
    model = _train(tmp_path, capsys, df)
    new = _stores(30, seed=1, text=text)
    unknown = "harbour" if text else 77
    holed = _holes(new, unknown)
    if kind == "parquet":
        holed = holed.astype({"x2": float, "store": object if text else "Int64"})
    data = write(holed, tmp_path / f"n.{kind}", kind)
    r = cli(capsys, "predict", model, data, "--missing", "keep", "--keep", "day,store",
            "--block-rows", "4")  # fmt: skip
    assert r.code == 0, r.err
    out = read_csv_text(r.out)
    assert list(out.columns) == ["day", "store", "y"]
    np.testing.assert_array_equal(out.day, new.day)  # every row, in order
    empty = np.zeros(len(new), bool)
    empty[[1, 4, 5, 6, 8]] = True
    assert np.isnan(out.y[empty]).all()
    want = statsmodels_by_group(df, new[~empty])
    np.testing.assert_allclose(out.y[~empty], want, rtol=1e-10)
    # one warning line: 5 of 30 rows, by why, the first of each with its row as every error
    # of the tool names it (CSV: the header is line 1; Parquet: records from 1)
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("torchlinreg: warning: 5 of 30 rows"), r.err
    shown, at = ("'harbour'" if text else "77"), (2 if kind == "csv" else 1)
    assert f"3 of groups not in the model (first: group {shown}, {data}, row {1 + at})" in lines[0]
    assert f"2 with missing or non-finite values (first: {data}, row {6 + at})" in lines[0]


def test_predict_missing_raise_still_refuses_and_says_what_to_do(tmp_path, capsys):
    model = _train(tmp_path, capsys, _stores(text=True))
    new = _stores(30, seed=1, text=True)
    new.loc[[1, 4], "store"] = "harbour"
    data = write(new, tmp_path / "n.csv")
    r = cli(capsys, "predict", model, data)
    r.assert_one_error_line(2, "n.csv, row 3", "group 'harbour' of column 'store' is not in the "
                            "model", "--missing keep")  # fmt: skip
    # --keep reads the file as written: the same first row, the same error
    r = cli(capsys, "predict", model, data, "--keep", "day")
    r.assert_one_error_line(2, "n.csv, row 3", "group 'harbour'", "--missing keep")
    r = cli(capsys, "evaluate", model, data)
    r.assert_one_error_line(2, "n.csv, row 3", "group 'harbour'", "--missing drop")
    new.loc[[1, 4], "store"], new.loc[6, "x2"] = "north", None
    r = cli(capsys, "predict", model, write(new, tmp_path / "n.csv"), "--keep", "day")
    r.assert_one_error_line(2, "n.csv, row 8", "column 'x2'", "missing value", "--missing keep")


@pytest.mark.parametrize("text", [False, True])
def test_an_unknown_group_after_a_blank_line_is_named_at_its_line(tmp_path, capsys, text):
    # rows are lines as a text editor counts them (header = line 1), blank lines included,
    # as every other error of the tool names them; the old code said row 4 here
    model = _train(tmp_path, capsys, _stores(text=text))
    label = "harbour" if text else "77"
    first = "north" if text else "1"
    data = tmp_path / "n.csv"
    data.write_text(f"store,day,x1,x2,y\n{first},0,1,2,3\n\n\n{label},1,1,2,3\n")
    r = cli(capsys, "predict", model, data)
    r.assert_one_error_line(2, "n.csv, row 5", f"group {label!r}" if text else "group 77")


def test_predict_interval_with_a_grouped_model_is_one_error_line(tmp_path, capsys):
    model = _train(tmp_path, capsys, _stores())
    data = write(_stores(10, seed=1), tmp_path / "n.csv")
    r = cli(capsys, "predict", model, data, "--interval", "0.9")
    r.assert_one_error_line(2, "--interval", "grouped model")


def test_predict_refuses_to_write_over_its_data(tmp_path, capsys):
    model = _train(tmp_path, capsys, _stores())
    data = write(_stores(10, seed=1), tmp_path / "n.csv")
    before = data.read_bytes()
    r = cli(capsys, "predict", model, data, "-o", data)
    r.assert_one_error_line(2, "is the data file this run reads")
    assert data.read_bytes() == before


def test_a_group_without_a_fit_is_predicted_empty_with_a_warning(tmp_path, capsys):
    # store 4 has two rows for three parameters: no fit. predict wrote NaN for its rows and
    # said nothing; now one warning names it
    df = _stores()
    df = pd.concat([df[df.store != 4], df[df.store == 4].head(2)], ignore_index=True)
    model = _train(tmp_path, capsys, df)
    new = _stores(20, seed=3)
    r = cli(capsys, "predict", model, write(new, tmp_path / "n.csv"))
    assert r.code == 0, r.err
    out = read_csv_text(r.out)
    four = (new.store == 4).to_numpy()
    assert four.any() and np.isnan(out.y[four]).all() and np.isfinite(out.y[~four]).all()
    first = int(np.flatnonzero(four)[0]) + 2
    assert r.err.startswith(f"torchlinreg: warning: {four.sum()} of 20 rows predicted empty: "
                            f"{four.sum()} of groups without a fit at training (first: group 4, "
                            f"{tmp_path / 'n.csv'}, row {first})"), r.err  # fmt: skip


@pytest.mark.parametrize("weights", [False, True])
def test_evaluate_missing_drop_leaves_out_rows_it_cannot_score(tmp_path, capsys, weights):
    # at the old code --missing drop was ignored: the unknown store stopped the run
    df = _stores(text=True)
    model = _train(tmp_path, capsys, df)
    new = _stores(40, seed=1, text=True)
    new["w"] = np.random.default_rng(4).uniform(0.5, 2, len(new))
    holed = _holes(new, "harbour").astype({"y": object})
    holed.loc[10, "y"] = None  # no true value: left out as well
    data = write(holed, tmp_path / "n.csv")
    more = ["--weights", "w"] if weights else []
    r = cli(capsys, "evaluate", model, data, "--missing", "drop", "--json", *more)
    assert r.code == 0, r.err
    ev = r.json
    keep = np.ones(len(new), bool)
    keep[[1, 4, 5, 6, 8, 10]] = False
    want = statsmodels_by_group(df, new[keep])
    w = new.w[keep] if weights else np.ones(keep.sum())
    mse = np.sum(w * (new.y[keep] - want) ** 2) / np.sum(w)
    np.testing.assert_allclose(ev["targets"]["y"]["mse"], mse, rtol=1e-10)
    assert ev["rows"] == keep.sum() and ev["rows_dropped"] == 6
    assert ev["rows_dropped_why"] == {
        "missing_values": 3, "unknown_group": 3, "group_without_fit": 0,
    }  # fmt: skip
    # the text report says how many and why
    r = cli(capsys, "evaluate", model, data, "--missing", "drop", *more)
    assert r.code == 0 and "6 rows dropped: 3 with missing or non-finite values" in r.out


def test_evaluate_missing_drop_with_nothing_left_is_one_error_line(tmp_path, capsys):
    model = _train(tmp_path, capsys, _stores())
    new = _stores(5, seed=1).assign(store=77)
    r = cli(capsys, "evaluate", model, write(new, tmp_path / "n.csv"), "--missing", "drop")
    r.assert_one_error_line(2, "every row was left out", "5 of groups not in the model")


def test_evaluate_weights_that_are_a_model_column_are_refused(tmp_path, capsys):
    model = _train(tmp_path, capsys, _stores())
    data = write(_stores(10, seed=1), tmp_path / "n.csv")
    r = cli(capsys, "evaluate", model, data, "--weights", "store")
    r.assert_one_error_line(2, "'store'", "--weights", "another column")


@pytest.mark.parametrize("by", [False, True])
def test_window_warns_when_order_values_are_tied(tmp_path, capsys, by):
    # duplicate (store, day) rows: the old code wrote the paths without a word, the windows
    # holding tied rows by their order in the file and the output repeating the key
    df = _stores(200).assign(day=lambda d: d.groupby("store").cumcount())
    more = ["--by", "store"] if by else []
    out = tmp_path / "p.csv"
    args = ["-t", "y", "--window", "20", "--order-by", "day", "--features", "x1,x2", *more]
    r = cli(capsys, "train", write(df, tmp_path / "u.csv"), *args, "-o", out)
    assert r.code == 0 and (r.err == "" if by else "rows repeat" in r.err), r.err
    dup = pd.concat([df, df[df.store == 3].iloc[[4, 6]]], ignore_index=True)
    r = cli(capsys, "train", write(dup, tmp_path / "t.csv"), *args, "-o", out)
    assert r.code == 0, r.err
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("torchlinreg: warning: "), r.err
    if by:
        assert "2 rows repeat the --order-by 'day' value of an earlier row of the same --by " \
            "group (first: store 3, day 4)" in lines[0]  # fmt: skip
    assert "drop duplicate rows, or order by a column without ties" in lines[0]


def test_a_kept_text_column_with_a_missing_value_is_written_as_empty(tmp_path, capsys):
    # a single model too: a block whose kept text column started with a missing value went
    # to pyarrow as NaN first and failed ("unexpected ArrowInvalid ... a bug in torchlinreg")
    model = tmp_path / "s.safetensors"
    df = _stores(50)
    assert cli(capsys, "train", write(df, tmp_path / "d.csv"), "-t", "y", "--features",
               "x1,x2", "-o", model).code == 0  # fmt: skip
    data = tmp_path / "n.csv"
    data.write_text("x1,x2,name\n1,2,a\n2,1,b\n3,3,\n4,4,d\n")
    r = cli(capsys, "predict", model, data, "--keep", "name", "--block-rows", "2")
    assert r.code == 0, r.err
    assert [line.split(",")[0] for line in r.out.splitlines()] == ["name", '"a"', '"b"', "", '"d"']
