"""Formulas over files and new rows, from a hunt on streamed formulas (2026-11-29).

- "#N/A" or "<NA>" in a numeric column read as text: under --missing drop the column
  became categorical, silently (8 dummies for one slope).
- C(g, levels=[...]) in memory kept rows outside the levels, coded as the reference
  (NOTE [values outside the levels given]).
- np.log of a value <= 0 in new rows: NaN and inf predictions, evaluate nulls with exit 0
  (NOTE [terms that are not finite]); in training under --missing drop an error.
References: statsmodels' formula API on the rows pandas reads.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import torchlinreg as tlr
from cli_helpers import cli


def _fair(n=300) -> pd.DataFrame:
    d = sm.datasets.fair.load_pandas().data.iloc[:n].copy()
    d["occ"] = d["occupation"].map({1.0: "farm", 2.0: "prof", 3.0: "mgr", 4.0: "teacher",
                                    5.0: "white", 6.0: "student"})  # fmt: skip
    return d


@pytest.mark.parametrize("na", ["#N/A", "<NA>", "#NA"])
def test_spreadsheet_and_pandas_missing_markers_are_missing(tmp_path, capsys, na):
    d = _fair()
    text = d[["affairs", "educ", "age"]].astype(object)
    text.loc[5, "educ"] = na
    path = tmp_path / "d.csv"
    text.to_csv(path, index=False)
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", path, "-t", "affairs", "--features", "educ,age", "--missing", "drop",
            "--block-rows", 50, "-o", model, "--json")  # fmt: skip
    assert r.code == 0, r.err
    assert json.loads(r.out)["features"] == ["educ", "age"]
    back = pd.read_csv(path)  # pandas reads the marker as NaN
    ref = smf.ols("affairs ~ educ + age", back.dropna()).fit()
    est = tlr.load(model)
    np.testing.assert_allclose(np.r_[est.intercept_, est.coef_], ref.params, rtol=1e-10)


def test_text_in_a_column_chosen_as_numbers_is_refused(tmp_path, capsys):
    d = _fair()[["affairs", "educ", "age"]].astype(object)
    d.loc[7, "educ"] = "twelve"
    path = tmp_path / "d.csv"
    d.to_csv(path, index=False)
    r = cli(capsys, "train", path, "-t", "affairs", "--features", "educ,age", "--missing", "drop",
            "-o", tmp_path / "m.safetensors")  # fmt: skip
    r.assert_one_error_line(2, "'educ' holds text beside numbers (e.g. 'twelve')")


def test_values_outside_the_levels_given_are_missing():
    d = _fair()
    levels = ["prof", "student", "mgr"]
    formula = f"affairs ~ C(occ, levels={levels!r})"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # formulaic's own warning about those values
        with pytest.raises(tlr.errors.DataError, match="outside the levels"):
            tlr.ols(formula, data=d)
        res = tlr.ols(formula, data=d, missing="drop")
    ref = smf.ols(formula, d[d["occ"].isin(levels)]).fit()
    assert res.nobs == ref.nobs
    np.testing.assert_allclose(np.asarray(res.params), ref.params, rtol=1e-10)


def test_terms_that_are_not_finite_in_new_rows_count_as_missing(tmp_path, capsys):
    d = _fair()
    path = tmp_path / "train.csv"
    d.to_csv(path, index=False)
    model = tmp_path / "m.safetensors"
    formula = "affairs ~ np.log(age) + educ"
    assert cli(capsys, "train", path, "--formula", formula, "-o", model, "-q").code == 0
    new = d.iloc[:20].copy()
    new.loc[new.index[3], "age"] = -1.0
    new_path = tmp_path / "new.csv"
    new.to_csv(new_path, index=False)
    cli(capsys, "predict", model, new_path).assert_one_error_line(2, "NaN or infinite at row 4")
    r = cli(capsys, "evaluate", model, new_path, "--missing", "drop", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["rows"] == 19 and report["rows_dropped"] == 1
    est = tlr.load(model)
    kept = new.drop(index=new.index[3])
    pred = est.predict(kept)
    mse = float(np.mean((kept["affairs"].to_numpy() - pred) ** 2))
    assert np.isclose(report["targets"]["affairs"]["mse"], mse, rtol=1e-10)


def test_training_leaves_out_rows_whose_terms_are_not_finite(tmp_path, capsys):
    d = _fair()
    d["z"] = d["age"] - 25  # some <= 0: their log is not finite
    path = tmp_path / "d.csv"
    d.to_csv(path, index=False)
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", path, "--formula", "affairs ~ np.log(z) + educ", "--missing", "drop",
            "--block-rows", 50, "-o", model, "-q")  # fmt: skip
    assert r.code == 0, r.err
    ref = smf.ols("affairs ~ np.log(z) + educ", d[d["z"] > 0]).fit()
    est = tlr.load(model)
    np.testing.assert_allclose(np.r_[est.intercept_, est.coef_], ref.params, rtol=1e-10)
