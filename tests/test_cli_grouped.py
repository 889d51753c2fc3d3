"""`train --by` (one model per group in one file), routed predict/evaluate, summary --json,
and `train --window --order-by` (coefficient paths), against statsmodels."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.regression.rolling import RollingOLS

from cli_helpers import cli, read_csv_text, statsmodels_by_group, write


def _stores(n=900, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    store = rng.integers(1, 5, size=n)  # rows of a store anywhere in the file
    x1, x2 = rng.normal(size=n), rng.normal(10, 3, size=n)
    y = store * x1 - 0.5 * x2 + 3 * store + rng.normal(size=n)
    return pd.DataFrame({"store": store, "day": rng.permutation(n), "x1": x1, "x2": x2, "y": y})


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_train_by_fits_each_store_as_statsmodels_does(tmp_path, capsys, kind):
    df = _stores()
    data = write(df, tmp_path / f"d.{kind}", kind)
    model = tmp_path / "m.safetensors"
    # 1. small blocks: a store's rows are spread over many blocks
    r = cli(capsys, "train", data, "-t", "y", "--by", "store", "--features", "x1,x2",
            "--block-rows", "50", "-o", model)  # fmt: skip
    assert r.code == 0, r.err
    s = cli(capsys, "summary", model, "--json").json
    assert s["by"] == "store" and sorted(s["coefficients"]) == ["1", "2", "3", "4"]
    for label, coef in s["coefficients"].items():
        part = df[df.store == int(label)]
        ref = sm.OLS(part.y, sm.add_constant(part[["x1", "x2"]])).fit()
        got = [coef["intercept"], coef["x1"], coef["x2"]]
        np.testing.assert_allclose(got, ref.params.to_numpy(), rtol=1e-10)
        assert coef["nobs"] == len(part)


def test_train_by_leaves_stores_without_enough_weight_without_a_fit(tmp_path, capsys):
    # store 2 all zero weights, store 3 two weighted rows for 3 parameters: no fit for
    # either, one warning that says why and what to do, the others as WLS
    df = _stores()
    rng = np.random.default_rng(5)
    df["w"] = rng.uniform(0.5, 2.0, len(df))
    df.loc[df.store == 2, "w"] = 0.0
    df.loc[df.index[df.store == 3][2:], "w"] = 0.0
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", write(df, tmp_path / "d.csv"), "-t", "y", "--by", "store",
            "--features", "x1,x2", "--weights", "w", "-o", model)  # fmt: skip
    assert r.code == 0, r.err
    assert "2 groups get NaN" in r.err and "nonzero weight" in r.err
    assert "drop the column or those groups" in r.err
    coefs = cli(capsys, "summary", model, "--json").json["coefficients"]
    for label, coef in coefs.items():
        got = [coef["intercept"], coef["x1"], coef["x2"]]
        if label in ("2", "3"):
            assert got == [None, None, None]
            continue
        part = df[df.store == int(label)]
        ref = sm.WLS(part.y, sm.add_constant(part[["x1", "x2"]]), weights=part.w).fit()
        np.testing.assert_allclose(got, ref.params.to_numpy(), rtol=1e-10)


def test_predict_and_evaluate_route_rows_to_their_store(tmp_path, capsys):
    df = _stores()
    data = write(df, tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    assert cli(capsys, "train", data, "-t", "y", "--by", "store", "--features", "x1,x2",
               "-o", model).code == 0  # fmt: skip
    new = _stores(50, seed=1)
    pred = read_csv_text(cli(capsys, "predict", model, write(new, tmp_path / "n.csv")).out)
    want = statsmodels_by_group(df, new)  # each row by its own store's fit
    np.testing.assert_allclose(pred["y"], want, rtol=1e-10)
    # 2. evaluate's MSE is that of the routed predictions
    ev = cli(capsys, "evaluate", model, tmp_path / "n.csv", "--json").json
    np.testing.assert_allclose(ev["targets"]["y"]["mse"], np.mean((new.y - want) ** 2), rtol=1e-10)


def test_an_unknown_group_is_one_error_line_naming_its_row(tmp_path, capsys):
    df = _stores()
    model = tmp_path / "m.safetensors"
    cli(capsys, "train", write(df, tmp_path / "d.csv"), "-t", "y", "--by", "store",
        "--features", "x1,x2", "-o", model)  # fmt: skip
    new = _stores(5, seed=2)
    new.loc[3, "store"] = 77
    r = cli(capsys, "predict", model, write(new, tmp_path / "n.csv"))
    # CSV row 5: the header is line 1
    r.assert_one_error_line(2, "row 5", "group 77 of column 'store' is not in the model")


def test_window_writes_the_coefficient_paths_of_rolling_ols(tmp_path, capsys):
    df = _stores(400)
    data = write(df, tmp_path / "d.parquet", "parquet")
    out = tmp_path / "paths.csv"
    r = cli(capsys, "train", data, "-t", "y", "--window", "60", "--order-by", "day",
            "--features", "x1,x2", "-o", out)  # fmt: skip
    assert r.code == 0, r.err
    paths = pd.read_csv(out)
    ordered = df.sort_values("day")  # 1. rows in --order-by order, windows over them
    np.testing.assert_array_equal(paths.day, ordered.day)
    ref = RollingOLS(ordered.y.to_numpy(), sm.add_constant(ordered[["x1", "x2"]].to_numpy()),
                     window=60).fit()  # fmt: skip
    got = paths[["const", "x1", "x2"]].to_numpy()
    np.testing.assert_allclose(got, ref.params, rtol=1e-8, equal_nan=True)
    np.testing.assert_allclose(paths.se_x1, ref.bse[:, 1], rtol=1e-8, equal_nan=True)
    np.testing.assert_allclose(paths.rsquared, ref.rsquared, rtol=1e-8, equal_nan=True)


def test_window_needs_order_by_and_one_target(tmp_path, capsys):
    data = write(_stores(100), tmp_path / "d.csv")
    r = cli(capsys, "train", data, "-t", "y", "--window", "20", "-o", tmp_path / "p.csv")
    r.assert_one_error_line(2, "--order-by")
    r = cli(capsys, "train", data, "-t", "y", "-t", "x2", "--by", "store", "-o", tmp_path / "m")
    r.assert_one_error_line(2, "one target")
