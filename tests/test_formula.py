"""Formulas, categorical columns, missing values and labelled results (issue 13).

References: statsmodels' formula API (patsy) on its bundled real data: Grunfeld (firm
names), Fair's affairs (coded religion and occupation), the Mauna Loa CO2 series (59
missing weeks).
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
from torchlinreg.errors import DataError, ModelFileError

RTOL = 1e-8


@pytest.fixture(scope="module")
def co2():
    data = sm.datasets.co2.load_pandas().data
    t = np.arange(len(data), dtype=np.float64) / 52.0
    return data.assign(t=t, month=data.index.month)


def _same_as_statsmodels(ours, theirs, rtol=RTOL):
    """Every labelled statistic equals statsmodels', matched by parameter name."""
    names = list(theirs.params.index)
    # 1) the same parameter names (the order may differ: formulaic sorts terms its own way)
    assert sorted(ours.params.index) == sorted(names)
    for stat in ("params", "bse", "tvalues", "pvalues"):
        mine, ref = getattr(ours, stat), getattr(theirs, stat)
        # 2) pandas Series indexed by name, equal to statsmodels' value for value
        assert isinstance(mine, pd.Series), stat
        np.testing.assert_allclose(mine[names], ref[names], rtol=rtol, atol=1e-300, err_msg=stat)
    np.testing.assert_allclose(ours.conf_int().loc[names], theirs.conf_int().loc[names], rtol=rtol)
    for stat in ("rsquared", "fvalue", "llf", "ssr", "df_resid", "nobs"):
        np.testing.assert_allclose(getattr(ours, stat), getattr(theirs, stat), rtol=rtol)
    # 3) row statistics keep the data's index
    pd.testing.assert_index_equal(ours.resid.index, theirs.resid.index)
    np.testing.assert_allclose(ours.fittedvalues, theirs.fittedvalues, rtol=rtol)


def test_grunfeld_firm_dummies_equal_statsmodels_formula_fit(grunfeld):
    formula = "invest ~ value + capital + C(firm)"
    ours = tlr.ols(formula, data=grunfeld)
    theirs = smf.ols(formula, grunfeld).fit()
    _same_as_statsmodels(ours, theirs)
    assert "C(firm)[T.Chrysler]" in ours.params.index and ours.params.index[0] == "Intercept"
    # robust covariances through the same keyword as today
    hc = tlr.ols(formula, data=grunfeld, cov_type="HC1")
    ref = smf.ols(formula, grunfeld).fit(cov_type="HC1")
    np.testing.assert_allclose(hc.bse[ref.bse.index], ref.bse, rtol=RTOL)


def test_fair_interaction_of_two_coded_categories_equals_statsmodels(fair):
    formula = "affairs ~ C(religious) * C(occupation)"
    ours = tlr.ols(formula, data=fair)
    theirs = smf.ols(formula, fair).fit()
    _same_as_statsmodels(ours, theirs)
    assert "C(religious)[T.2.0]:C(occupation)[T.3.0]" in ours.params.index


def test_weighted_formula_fit_equals_statsmodels_wls(fair):
    formula = "affairs ~ age + C(religious) + np.log(yrs_married) + I(age ** 2)"
    w = 1.0 + fair["children"].to_numpy()
    ours = tlr.ols(formula, data=fair, sample_weight=w)
    theirs = smf.wls(formula, fair, weights=w).fit()
    _same_as_statsmodels(ours, theirs)


def test_missing_drop_equals_statsmodels_on_co2_with_59_missing_weeks(co2):
    formula = "co2 ~ t + I(t ** 2) + C(month)"
    # 1) the default refuses the first missing value, naming column and row
    with pytest.raises(DataError, match=r"column 'co2' has a missing value at row \d+"):
        tlr.ols(formula, data=co2)
    ours = tlr.ols(formula, data=co2, missing="drop")
    theirs = smf.ols(formula, co2, missing="drop").fit()
    _same_as_statsmodels(ours, theirs)
    # 2) the count of dropped rows is reported, in the summary and the dict
    assert ours.nobs_dropped == 59 and ours.nobs == len(co2) - 59
    assert "59 rows with missing values were dropped" in ours.summary()
    assert ours.to_dict()["nobs_dropped"] == 59
    # 3) arrays too: ols(X, y, missing="drop") is sm.OLS(..., missing="drop")
    X = co2[["t"]].assign(t2=co2["t"] ** 2)
    plain = tlr.ols(X, co2["co2"], missing="drop")
    ref = sm.OLS(co2["co2"], sm.add_constant(X), missing="drop").fit()
    np.testing.assert_allclose(plain.params, ref.params, rtol=RTOL)
    np.testing.assert_allclose(plain.bse, ref.bse, rtol=RTOL)
    assert plain.nobs_dropped == 59
    # 4) and the estimator
    est = tlr.LinearRegression().fit(X, co2["co2"], missing="drop")
    np.testing.assert_allclose(est.intercept_, ref.params["const"], rtol=RTOL)
    assert est.nobs_dropped_ == 59
    est_f = tlr.LinearRegression().fit_formula(formula, co2, missing="drop")
    np.testing.assert_allclose(est_f.results_.params[theirs.params.index], theirs.params, rtol=RTOL)


def test_every_kind_of_term_matches_statsmodels_names_and_numbers():
    rng = np.random.default_rng(3)
    n = 60
    df = pd.DataFrame(
        {
            "x": rng.uniform(1, 5, n),
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "g": rng.choice(["north", "south", "east"], n),
            "flag": rng.random(n) < 0.4,
        }
    )
    df["y"] = 1 + df.x + (df.g == "east") + df.a * df.b + rng.normal(size=n)
    formula = "y ~ x + C(g) + a:b + I(x**2) + np.log(x) + flag - 1"
    ours = tlr.ols(formula, data=df)
    theirs = smf.ols(formula, df).fit()
    _same_as_statsmodels(ours, theirs)
    # no intercept: every level of g gets a column, as in patsy; booleans are categories
    assert {"C(g)[east]", "flag[T.True]", "I(x ** 2)", "np.log(x)", "a:b"} <= set(ours.params.index)
    # the dummies of every level hold the constant: statsmodels counts it (centred R2)
    assert "Intercept" not in ours.params.index and ours.k_constant == theirs.k_constant == 1
    hc = tlr.ols(formula, data=df, cov_type="HC3")
    ref = smf.ols(formula, df).fit(cov_type="HC3")
    np.testing.assert_allclose(hc.bse[ref.bse.index], ref.bse, rtol=RTOL)
    assert np.isnan(hc.fvalue) and np.isnan(ref.fvalue)


def test_several_targets_give_dataframes_one_column_per_target(grunfeld):
    ours = tlr.ols("invest + value ~ capital + C(firm)", data=grunfeld)
    one = smf.ols("invest ~ capital + C(firm)", grunfeld).fit()
    assert isinstance(ours.params, pd.DataFrame) and list(ours.params.columns) == [
        "invest",
        "value",
    ]
    np.testing.assert_allclose(ours.bse["invest"][one.bse.index], one.bse, rtol=RTOL)
    ci = ours.conf_int()
    np.testing.assert_allclose(ci["invest"].loc[one.params.index], one.conf_int(), rtol=RTOL)
    assert isinstance(ours.resid, pd.DataFrame) and ours.resid.shape == (220, 2)


def test_pandas_input_is_labelled_numpy_input_stays_numpy(grunfeld):
    X, y = grunfeld[["value", "capital"]], grunfeld["invest"]
    labelled = tlr.ols(X, y)
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    # 1) pandas in: Series by name, target from the Series name, a DataFrame of intervals
    assert isinstance(labelled.params, pd.Series)
    assert list(labelled.params.index) == list(ref.params.index) == ["const", "value", "capital"]
    assert labelled.target_names == ["invest"]
    pd.testing.assert_frame_equal(labelled.conf_int(), ref.conf_int(), rtol=RTOL)
    pd.testing.assert_series_equal(labelled.bse, ref.bse, rtol=RTOL)
    pd.testing.assert_frame_equal(labelled.cov_params(), ref.cov_params(), rtol=RTOL)
    # 2) numpy in: numpy out, the same numbers
    plain = tlr.ols(X.to_numpy(), y.to_numpy())
    assert type(plain.params) is np.ndarray and type(plain.conf_int()) is np.ndarray
    np.testing.assert_allclose(plain.params, labelled.params.to_numpy(), rtol=1e-14)
    # 3) summary frames keep the data's row index, and the summary shows real names
    sub = grunfeld.iloc[[5, 50, 120]]
    frame = labelled.get_prediction(sub[["value", "capital"]]).summary_frame()
    assert list(frame.index) == [5, 50, 120]
    in_sample = labelled.get_prediction().summary_frame()
    pd.testing.assert_index_equal(in_sample.index, grunfeld.index)
    assert "capital" in labelled.summary() and "invest" in labelled.summary()
    # 4) the estimator's results_ too, for pandas input; numpy input stays numpy
    est = tlr.LinearRegression().fit(X, y).results_
    pd.testing.assert_series_equal(est.bse, ref.bse, rtol=RTOL)
    pd.testing.assert_index_equal(est.resid.index, grunfeld.index)
    assert type(tlr.LinearRegression().fit(X.to_numpy(), y.to_numpy()).results_.bse) is np.ndarray


def test_estimator_keeps_the_encoding_for_predict_and_intervals(grunfeld, tmp_path):
    formula = "invest ~ value + capital + C(firm)"
    model = tlr.LinearRegression().fit_formula(formula, grunfeld)
    theirs = smf.ols(formula, grunfeld).fit()
    # 1) new rows: a shuffled table with only some firms gets the training columns
    new = grunfeld.sample(7, random_state=1)[["firm", "capital", "value"]]
    np.testing.assert_allclose(model.predict(new), theirs.predict(new), rtol=RTOL)
    mine = model.get_prediction(new).summary_frame()
    ref = theirs.get_prediction(new).summary_frame()
    np.testing.assert_allclose(mine.to_numpy(), ref[list(mine.columns)].to_numpy(), rtol=RTOL)
    assert list(mine.index) == list(new.index)
    # 2) saved and loaded: the same columns, levels and numbers
    path = tmp_path / "grunfeld.safetensors"
    tlr.save(model, path)
    loaded = tlr.load(path)
    np.testing.assert_allclose(loaded.predict(new), theirs.predict(new), rtol=RTOL)
    np.testing.assert_allclose(
        loaded.results_.params[theirs.params.index], theirs.params, rtol=RTOL
    )
    # 3) an unseen level: one line naming column, value and row
    bad = new.assign(firm=["IBM"] * 6 + ["Tesla"])
    with pytest.raises(DataError) as info:
        loaded.predict(bad)
    message = str(info.value)
    assert "'firm'" in message and "'Tesla'" in message and "row 7" in message
    assert "\n" not in message
    # 4) a missing value in new rows: named too
    with pytest.raises(DataError, match="column 'capital' has a missing value at row 2"):
        loaded.predict(new.assign(capital=[1.0, np.nan, 1, 1, 1, 1, 1]))


def test_stateful_transforms_reuse_the_training_parameters(grunfeld, tmp_path):
    # center(x) subtracts the training mean, not the mean of the new rows
    model = tlr.LinearRegression().fit_formula("invest ~ center(value) + scale(capital)", grunfeld)
    mean_v = grunfeld["value"].mean()
    mean_c, sd_c = grunfeld["capital"].mean(), grunfeld["capital"].std(ddof=1)
    new = grunfeld.iloc[:3]
    coef, b = model.coef_, model.intercept_
    expected = b + coef[0] * (new["value"] - mean_v) + coef[1] * (new["capital"] - mean_c) / sd_c
    tlr.save(model, tmp_path / "m.safetensors")
    loaded = tlr.load(tmp_path / "m.safetensors")
    for m in (model, loaded):
        np.testing.assert_allclose(m.predict(new), expected, rtol=1e-12)


def _forged(tmp_path, grunfeld, edit):
    from hostile_helpers import rewrite_record

    model = tlr.LinearRegression().fit_formula("invest ~ value + C(firm)", grunfeld)
    path = tmp_path / "m.safetensors"
    tlr.save(model, path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(rewrite_record(path.read_bytes(), edit))
    return bad


@pytest.mark.parametrize(
    "edit",
    [
        # code in a term: refused before anything evaluates it
        lambda r: r["formula"]["rhs"]["terms"].append("{__import__('os').system('true')}"),
        lambda r: r["formula"].update(formula="invest ~ value + {open('/etc/passwd')}"),
        lambda r: r["formula"]["rhs"]["terms"].__setitem__(1, "value.__class__"),
        lambda r: r["formula"]["rhs"]["terms"].append("np.savetxt('pwned.txt', value)"),
        # types and shapes
        lambda r: r["formula"]["rhs"].update(encoder_state={"value": "numerical"}),
        lambda r: r["formula"]["rhs"]["encoder_state"][0][1].__setitem__(0, "pickle"),
        lambda r: r["formula"].update(version=99),
        lambda r: r["formula"]["rhs"]["transform_state"].append(["x", {"bytes": "gAR="}]),
        # levels that no longer give the model's columns
        lambda r: r["formula"].update(columns=["Intercept", "value"]),
    ],
)
def test_a_hostile_encoding_in_a_model_file_is_refused(tmp_path, grunfeld, edit):
    bad = _forged(tmp_path, grunfeld, edit)
    with pytest.raises(ModelFileError, match="formula encoding"):
        tlr.load(bad)


def test_changed_levels_in_a_model_file_are_caught_before_predicting(tmp_path, grunfeld):
    def drop_a_level(record):
        for _expr, (kind, state) in record["formula"]["rhs"]["encoder_state"]:
            if kind == "categorical":
                state["categories"] = state["categories"][:-1]
                state["contrasts"][2] = state["contrasts"][2][:-1]

    loaded = tlr.load(_forged(tmp_path, grunfeld, drop_a_level))
    # the record itself is well-formed, but its columns are not the model's: never used
    with pytest.raises(DataError, match="does not match the model"):
        loaded.predict(grunfeld.iloc[:3])


def test_the_record_is_plain_json_and_a_formula_may_not_call_anything(grunfeld):
    from torchlinreg.formula.encoding import Encoding

    enc, _ = Encoding.fit("invest ~ np.log(value) + C(firm, Treatment('IBM'))", grunfeld)
    record = enc.to_json()
    again = Encoding.from_json(json.loads(json.dumps(record)))
    assert again.columns == enc.columns and "C(firm, Treatment('IBM'))[T.Chrysler]" in enc.columns
    np.testing.assert_array_equal(again.design(grunfeld).X, enc.design(grunfeld).X)
    with pytest.raises(DataError, match="may not call"):
        tlr.ols("invest ~ value + {eval('1')}", data=grunfeld)
    # numpy's element-wise functions only: np.savetxt would write a file
    with pytest.raises(DataError, match=r"'np\.savetxt', which formulas may not call"):
        tlr.ols("invest ~ value + np.savetxt('pwned.txt', value)", data=grunfeld)
    assert "np.power(value, 2)" in tlr.ols("invest ~ np.power(value, 2)", data=grunfeld).params
    with pytest.raises(DataError, match="no column 'nope'"):
        tlr.ols("invest ~ nope", data=grunfeld)


def test_a_formula_sees_no_caller_variables(grunfeld):
    secret = grunfeld["value"] * 2  # noqa: F841 (a local a formula might reach for)
    with pytest.raises(DataError, match="no column 'secret'"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tlr.ols("invest ~ secret", data=grunfeld)
