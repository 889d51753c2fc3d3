"""The command with formulas, missing values, intervals, ids and robust errors (issue 13).

Round trips through CSV and Parquet files: `train --formula`, then `predict` and `evaluate`
apply the saved encoding; every number is checked against statsmodels' formula fit on the
same table (Grunfeld, with firm names).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import torchlinreg as tlr
from cli_helpers import cli

FORMULA = "invest ~ value + capital + C(firm)"
RTOL = 1e-8


@pytest.fixture(scope="module")
def grunfeld():
    g = sm.datasets.grunfeld.load_pandas().data.copy()
    g["id"] = [f"g{i}" for i in range(len(g))]
    return g


def _write(df: pd.DataFrame, path, kind: str):
    if kind == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_train_predict_evaluate_with_a_formula_round_trip(capsys, tmp_path, grunfeld, kind):
    data = _write(grunfeld, tmp_path / f"g.{kind}", kind)
    model = tmp_path / "m.safetensors"
    # small blocks: the firms appear block after block, the first block sees one firm
    r = cli(capsys, "train", data, "--formula", FORMULA, "-o", model, "--block-rows", 40, "--json")
    assert r.code == 0, r.err
    theirs = smf.ols(FORMULA, grunfeld).fit()
    # 1) the model file's statistics are statsmodels', by name
    res = tlr.load(model).results_
    np.testing.assert_allclose(res.params[theirs.params.index], theirs.params, rtol=RTOL)
    np.testing.assert_allclose(res.bse[theirs.params.index], theirs.bse, rtol=RTOL)
    assert r.json["rows"] == 220 and r.json["rows_dropped"] == 0
    # 2) predict a shuffled subset of firms, in another format, with ids carried through
    new = grunfeld.sample(9, random_state=2)
    other = "parquet" if kind == "csv" else "csv"
    new_path = _write(new.drop(columns="invest"), tmp_path / f"new.{other}", other)
    out = tmp_path / "pred.csv"
    r = cli(capsys, "predict", model, new_path, "--keep", "id", "--interval", 0.9, "-o", out)
    assert r.code == 0, r.err
    pred = pd.read_csv(out)
    assert list(pred["id"]) == list(new["id"])
    np.testing.assert_allclose(pred["invest"], theirs.predict(new), rtol=RTOL)
    ref = theirs.get_prediction(new).summary_frame(alpha=0.1)
    for col in ("mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper"):
        np.testing.assert_allclose(pred[f"invest_{col}"], ref[col], rtol=1e-7)
    # 3) evaluate on the training file: the same fit as the training report
    r = cli(capsys, "evaluate", model, data, "--json")
    assert r.code == 0, r.err
    mse = float(np.mean(theirs.resid**2))
    assert r.json["targets"]["invest"]["mse"] == pytest.approx(mse, rel=1e-9)


def test_unseen_levels_and_missing_values_in_predict(capsys, tmp_path, grunfeld):
    model = tmp_path / "m.safetensors"
    data = _write(grunfeld, tmp_path / "g.csv", "csv")
    assert cli(capsys, "train", data, "--formula", FORMULA, "-o", model, "-q").code == 0
    new = grunfeld.iloc[:4].drop(columns="invest").copy()
    new.loc[2, "firm"] = "Tesla"
    new.loc[1, "capital"] = np.nan
    path = _write(new, tmp_path / "new.csv", "csv")
    # 1) by default: one line naming the file, the row (CSV line 3) and the column
    r = cli(capsys, "predict", model, path)
    r.assert_one_error_line(2, "row 3", "capital", "missing value")
    only_level = _write(new.fillna(1.0), tmp_path / "level.csv", "csv")
    r = cli(capsys, "predict", model, only_level)
    r.assert_one_error_line(2, "row 4", "'firm'", "'Tesla'", "unseen in training")
    # 2) --missing keep: those rows are empty, the others predicted
    r = cli(capsys, "predict", model, path, "--missing", "keep", "--keep", "id")
    assert r.code == 0, r.err
    pred = pd.read_csv(io.StringIO(r.out))
    theirs = smf.ols(FORMULA, grunfeld).fit()
    assert pred["invest"].isna().tolist() == [False, True, True, False]
    np.testing.assert_allclose(
        pred["invest"].iloc[[0, 3]], theirs.predict(new.iloc[[0, 3]]), rtol=RTOL
    )


def test_missing_drop_in_train_and_evaluate_equals_statsmodels(capsys, tmp_path, grunfeld):
    holes = grunfeld.copy()
    holes.loc[[3, 50, 51, 190], "value"] = np.nan
    holes.loc[7, "firm"] = None
    data = _write(holes, tmp_path / "holes.csv", "csv")
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "--formula", FORMULA, "-o", model)
    r.assert_one_error_line(2, "row 5", "'value'", "missing value")
    r = cli(capsys, "train", data, "--formula", FORMULA, "-o", model, "--missing", "drop", "--json")
    assert r.code == 0, r.err
    assert r.json["rows_dropped"] == 5 and r.json["rows"] == 215
    theirs = smf.ols(FORMULA, holes, missing="drop").fit()
    res = tlr.load(model).results_
    np.testing.assert_allclose(res.params[theirs.params.index], theirs.params, rtol=RTOL)
    assert res.nobs == theirs.nobs == 215
    r = cli(capsys, "evaluate", model, data, "--missing", "drop", "--json")
    assert r.code == 0 and r.json["rows_dropped"] == 5 and r.json["rows"] == 215
    assert r.json["targets"]["invest"]["r2"] == pytest.approx(theirs.rsquared, rel=1e-9)


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
def test_train_cov_type_stores_robust_errors_from_a_second_pass(capsys, tmp_path, cov_type):
    longley = sm.datasets.longley.load_pandas().data
    data = _write(longley, tmp_path / "longley.csv", "csv")
    model = tmp_path / "m.safetensors"
    args = ["-t", "TOTEMP", "--features", "GNP,UNEMP,ARMED,POP", "--cov-type", cov_type]
    r = cli(capsys, "train", data, *args, "-o", model, "--block-rows", 5, "-q")
    assert r.code == 0, r.err
    X = sm.add_constant(longley[["GNP", "UNEMP", "ARMED", "POP"]])
    theirs = sm.OLS(longley["TOTEMP"], X).fit(cov_type=cov_type)
    res = tlr.load(model).results_
    assert res.cov_type == cov_type
    np.testing.assert_allclose(res.bse, theirs.bse.to_numpy(), rtol=1e-7)
    r = cli(capsys, "summary", model)
    assert r.code == 0 and f"Covariance Type:                   {cov_type}" in r.out


def test_formula_refusals_are_one_line(capsys, tmp_path, grunfeld):
    data = _write(grunfeld, tmp_path / "g.csv", "csv")
    out = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "--formula", "invest ~ nope + value", "-o", out)
    r.assert_one_error_line(2, "'nope'")
    r = cli(capsys, "train", data, "--formula", "invest ~ center(value)", "-o", out)
    r.assert_one_error_line(2, "stateful transform")
    r = cli(capsys, "train", data, "--formula", "invest ~ {open('x')}", "-o", out)
    r.assert_one_error_line(2, "may not call")
    for extra in (["--cov-type", "HAC"], ["--cluster", "year"]):  # not with a formula yet
        r = cli(capsys, "train", data, "--formula", "invest ~ value", *extra, "-o", out)
        r.assert_one_error_line(2, "HC0..HC3 only")
    assert not out.exists()


def test_plain_columns_with_missing_drop_equal_statsmodels(capsys, tmp_path):
    co2 = sm.datasets.co2.load_pandas().data.reset_index(drop=True)
    co2["t"] = np.arange(len(co2)) / 52.0
    co2["t2"] = co2["t"] ** 2
    data = _write(co2, tmp_path / "co2.parquet", "parquet")
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "co2", "--missing", "drop", "-o", model, "--json")
    assert r.code == 0, r.err
    assert r.json["rows_dropped"] == 59 and r.json["features"] == ["t", "t2"]
    theirs = sm.OLS(co2["co2"], sm.add_constant(co2[["t", "t2"]]), missing="drop").fit()
    res = tlr.load(model).results_
    np.testing.assert_allclose(res.params.to_numpy(), theirs.params.to_numpy(), rtol=RTOL)
    # predict keeps the missing rows empty; the others are statsmodels' predictions
    r = cli(capsys, "predict", model, data, "--missing", "keep")
    pred = pd.read_csv(io.StringIO(r.out))["co2"]
    assert pred.notna().sum() == len(co2)  # the features are complete: every row predicted
    np.testing.assert_allclose(pred, theirs.predict(sm.add_constant(co2[["t", "t2"]])), rtol=RTOL)


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r["robust_cov"].update(cov_type="HC9"),
        lambda r: r["robust_cov"]["cov"].pop(),
        lambda r: r["robust_cov"]["cov"][0][0].__setitem__(0, "1e3"),
    ],
)
def test_a_forged_robust_covariance_is_refused(capsys, tmp_path, edit):
    from hostile_helpers import rewrite_record
    from torchlinreg.errors import ModelFileError

    longley = sm.datasets.longley.load_pandas().data
    data = _write(longley, tmp_path / "longley.csv", "csv")
    model = tmp_path / "m.safetensors"
    args = ["-t", "TOTEMP", "--features", "GNP,POP", "--cov-type", "HC3", "-o", model, "-q"]
    assert cli(capsys, "train", data, *args).code == 0
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(rewrite_record(model.read_bytes(), edit))
    with pytest.raises(ModelFileError, match="robust covariance"):
        tlr.load(bad)


def test_evaluate_missing_drop_for_a_model_of_plain_columns(capsys, tmp_path):
    longley = sm.datasets.longley.load_pandas().data
    data = _write(longley, tmp_path / "longley.csv", "csv")
    model = tmp_path / "m.safetensors"
    assert (
        cli(capsys, "train", data, "-t", "TOTEMP", "--features", "GNP,POP", "-o", model).code == 0
    )
    holes = longley.copy()
    holes.loc[[2, 9], "GNP"] = np.nan
    test = _write(holes, tmp_path / "holes.csv", "csv")
    cli(capsys, "evaluate", model, test).assert_one_error_line(2, "GNP")
    r = cli(capsys, "evaluate", model, test, "--missing", "drop", "--json")
    assert r.code == 0, r.err
    assert r.json["rows"] == 14 and r.json["rows_dropped"] == 2
    fit = sm.OLS(longley["TOTEMP"], sm.add_constant(longley[["GNP", "POP"]])).fit()
    kept = holes.dropna()
    resid = kept["TOTEMP"] - fit.predict(sm.add_constant(kept[["GNP", "POP"]]))
    assert r.json["targets"]["TOTEMP"]["mse"] == pytest.approx(float(np.mean(resid**2)), rel=1e-9)


def test_a_flag_spelled_true_false_in_one_file_and_1_0_in_another_is_one_bool(capsys, tmp_path):
    # before: a text column of four levels, three dummies (NOTE [booleans spelled two ways])
    rng = np.random.default_rng(1)
    folder = tmp_path / "parts"
    folder.mkdir()
    frames = []
    for i, (yes, no) in enumerate([("True", "False"), ("1", "0")]):
        x, flag = rng.normal(size=40), rng.integers(0, 2, 40)
        frame = pd.DataFrame({"x": x, "flag": np.where(flag, yes, no)})
        frame["y"] = 1 + 2 * x + 3 * flag + 0.1 * rng.normal(size=40)
        frame.to_csv(folder / f"part{i}.csv", index=False)
        frames.append(frame.assign(flag=flag))
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", folder, "--formula", "y ~ x + flag", "-o", model, "-q")
    assert r.code == 0, r.err
    ref = smf.ols("y ~ x + flag", pd.concat(frames)).fit()
    params = tlr.load(model).results_.params
    assert list(params.index) == ["Intercept", "x", "flag[T.True]"]
    np.testing.assert_allclose(params.to_numpy(), ref.params.to_numpy(), rtol=1e-10)
    # the other spelling of the same flag predicts the same
    new = tmp_path / "new.csv"
    pd.DataFrame({"x": [0.5, 0.5], "flag": ["1", "TRUE"]}).to_csv(new, index=False)
    r = cli(capsys, "predict", model, new)
    assert r.code == 0, r.err
    values = [float(v) for v in r.out.split()[1:]]
    assert values[0] == values[1]
    np.testing.assert_allclose(values[0], ref.params @ [1, 0.5, 1], rtol=1e-10)


def test_c_of_an_expression_and_a_parquet_dictionary_column(capsys, tmp_path):
    # C(age // 10) made the column age categorical first (TypeError); a Parquet dictionary
    # column was taken for numbers ("unexpected ValueError ... bug" under C())
    rng = np.random.default_rng(2)
    n = 80
    age = np.r_[rng.integers(20, 50, 60), rng.integers(70, 80, 20)]
    frame = pd.DataFrame({"age": age, "x": rng.normal(size=n)})
    frame["cat"] = pd.Categorical(rng.choice(["lo", "mid", "hi"], n))
    frame["y"] = 1 + frame.x + 0.1 * (frame.age // 10) + 0.1 * rng.normal(size=n)
    data = tmp_path / "d.parquet"
    frame.to_parquet(data)
    plain = frame.assign(cat=frame["cat"].astype(str))
    model = tmp_path / "m.safetensors"
    for formula in ("y ~ x + C(age // 10)", "y ~ x + C(cat)", "y ~ x + cat"):
        r = cli(capsys, "train", data, "--formula", formula, "-o", model, "-q")
        assert r.code == 0, r.err
        ref = smf.ols(formula, plain).fit()
        got = tlr.load(model).results_.params
        np.testing.assert_allclose(got[ref.params.index], ref.params, rtol=1e-10)
    # levels of an expression come from the first block: a later value is refused, saying
    # what to do (formulaic's own text said the rows were "cast to nan")
    r = cli(capsys, "train", data, "--formula", "y ~ x + C(age // 10)", "-o", model,
            "--block-rows", "16")  # fmt: skip
    r.assert_one_error_line(2, "values {7} are outside", "levels=[...]", "--block-rows")
    levels = "C(age // 10, levels=[2, 3, 4, 7])"
    r = cli(capsys, "train", data, "--formula", f"y ~ x + {levels}", "-o", model,
            "--block-rows", "16", "-q")  # fmt: skip
    assert r.code == 0, r.err
    ref = smf.ols("y ~ x + C(age // 10)", plain).fit()
    got = tlr.load(model).results_.params.to_numpy()
    np.testing.assert_allclose(np.sort(got), np.sort(ref.params.to_numpy()), rtol=1e-10)
