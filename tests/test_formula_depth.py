"""Formula fits in depth, from a formula hunt (2026-11-29). References: statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.formula.api as smf

import torchlinreg as tlr
from torchlinreg.errors import DataError


def test_a_refused_batch_leaves_the_model_as_it_was(fair, tmp_path):
    # formulaic wrote a text column's levels over the number's: valid rows were then
    # refused as "unseen in training", and the model saved so
    train, new = fair.iloc[:5000], fair.iloc[5000:5010]
    m = tlr.LinearRegression().fit_formula("affairs ~ age + educ", train)
    res = tlr.ols("affairs ~ age + educ", data=train)
    before = m.predict(new)
    bad = new.assign(age=new["age"].astype(str))
    for call in (m.predict, res.get_prediction):
        with pytest.raises(DataError):
            call(bad)
    np.testing.assert_array_equal(m.predict(new), before)
    res.get_prediction(new)
    tlr.save(m, tmp_path / "m.safetensors")
    np.testing.assert_array_equal(tlr.load(tmp_path / "m.safetensors").predict(new), before)


@pytest.mark.parametrize("formula", ["affairs ~ ra + rna + age - 1", "affairs ~ one + age - 1"])
def test_columns_summing_to_one_are_a_constant_in_the_model_file_too(fair, tmp_path, formula):
    # loaded: R2 0.109 for 0.018, F 260 for 59, df_model 3 for 2, silently
    data = fair.assign(ra=(fair["religious"] > 2).astype(float), one=1.0)
    data["rna"] = 1.0 - data["ra"]
    m = tlr.LinearRegression().fit_formula(formula, data)
    tlr.save(m, tmp_path / "m.safetensors")
    ref = smf.ols(formula, data).fit()
    for res in (m.results_, tlr.load(tmp_path / "m.safetensors").results_):
        for name in ("rsquared", "fvalue", "df_model"):
            np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-9)


def test_weights_and_cluster_labels_are_matched_by_index(grunfeld):
    # taken by position: intercept -41.0 for -37.65; clustered bse 10.3 for 18.1, silently
    data = grunfeld.sample(frac=1, random_state=0)
    with pytest.raises(DataError, match="row index of sample_weight"):
        tlr.ols("invest ~ value + capital", data=data, sample_weight=grunfeld["value"])
    with pytest.raises(DataError, match="row index of sample_weight"):
        tlr.LinearRegression().fit_formula("invest ~ value", data, sample_weight=grunfeld["value"])
    with pytest.raises(DataError, match="row index of groups"):
        tlr.ols("invest ~ value + capital", data=data, cov_type="cluster",
                cov_kwds={"groups": grunfeld["firm"]})  # fmt: skip
    res = tlr.ols("invest ~ value + capital", data=data, cov_type="cluster",
                  cov_kwds={"groups": data["firm"]})  # fmt: skip
    ref = smf.ols("invest ~ value + capital", data).fit(
        cov_type="cluster", cov_kwds={"groups": data["firm"].factorize()[0]}
    )
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-10)
    # an array of text labels (pandas 3's ArrowStringArray) with missing="drop"
    holed = grunfeld.copy()
    holed.loc[[3, 50], "value"] = np.nan
    res = tlr.ols("invest ~ value + capital", data=holed, missing="drop", cov_type="cluster",
                  cov_kwds={"groups": holed["firm"].values})  # fmt: skip
    kept = holed.dropna()
    ref = smf.ols("invest ~ value + capital", kept).fit(
        cov_type="cluster", cov_kwds={"groups": kept["firm"].factorize()[0]}
    )
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-10)


def test_quoted_names_and_polars_tables_predict(grunfeld):
    pl = pytest.importorskip("polars")
    data = grunfeld.rename(columns={"capital": "capital stock"})
    data["capital.stock"] = data["capital stock"]
    for formula in ("invest ~ value + `capital.stock`", "invest ~ value + np.log(`capital stock`)",
                    "invest ~ value + I(`capital stock` ** 2)"):  # fmt: skip
        m = tlr.LinearRegression().fit_formula(formula, data)  # refused its own table before
        np.testing.assert_allclose(m.predict(data.head(3)), np.asarray(m.predict(data))[:3])
    m = tlr.LinearRegression().fit_formula("invest ~ value + `capital.stock`", pl.from_pandas(data))
    res = tlr.ols("invest ~ value + `capital.stock`", data=pl.from_pandas(data))
    want = smf.ols("invest ~ value + Q('capital.stock')", data).fit().predict(data.head(3))
    np.testing.assert_allclose(m.predict(pl.from_pandas(data.head(3))), want, rtol=1e-10)
    got = res.get_prediction(pl.from_pandas(data.head(3))).predicted_mean
    np.testing.assert_allclose(got, want, rtol=1e-10)
