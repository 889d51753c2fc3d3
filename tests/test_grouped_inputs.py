"""Grouped fits from formulas and labels as users hold them, from a grouped hunt
(2026-11-29). References: a statsmodels loop over the groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import torchlinreg as tlr
from torchlinreg.errors import DataError

STATS = ("params", "bse", "rsquared", "rsquared_adj", "fvalue", "f_pvalue", "df_model", "llf")


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1"])
def test_dummies_that_sum_to_one_are_a_constant_in_every_group(fair, cov_type):
    # the grouped formula path reported the uncentred R2 (0.113 for 0.011) and F 32 for 3.7
    formula = "affairs ~ C(children) - 1 + age + yrs_married"
    data = fair.assign(children=(fair["children"] > 1).astype(int))
    res = tlr.ols(formula, data=data, groups="religious", cov_type=cov_type)
    for g, label in enumerate(res.groups):
        part = data[data["religious"] == label]
        ref = smf.ols(formula, part).fit(cov_type=cov_type)
        for name in STATS:
            got, want = np.asarray(getattr(res, name))[g], np.asarray(getattr(ref, name))
            np.testing.assert_allclose(got, want, rtol=1e-8, err_msg=f"{name} {label}")


def test_a_formula_groups_series_is_matched_by_its_index(fair):
    # taken by position: the firms' rows scrambled, GM's R2 0.769 for 0.921, silently
    data = fair.sample(frac=1, random_state=0)
    groups = data["religious"].sort_index()
    with pytest.raises(DataError, match="row index of groups"):
        tlr.ols("affairs ~ age", data=data, groups=groups)
    res = tlr.ols("affairs ~ age", data=data, groups=data["religious"])
    ref = smf.ols("affairs ~ age", data[data["religious"] == 2]).fit()
    np.testing.assert_allclose(res.params[list(res.groups).index(2)], ref.params, rtol=1e-10)


def test_unsigned_labels_past_two_to_the_63_keep_their_values():
    # np.arange of such labels was float64: 2^63 + 1 and 2^63 + 2 both came back 2^63
    labels = np.array([2**63 + 1] * 4 + [2**63 + 2] * 4, dtype=np.uint64)
    x = np.arange(8.0)
    y = np.r_[1 + 2 * x[:4], 3 - x[4:]] + np.array([0.1, -0.1, 0.0, 0.05] * 2)
    res = tlr.ols(x, y, groups=labels)
    assert [int(v) for v in res.groups] == [2**63 + 1, 2**63 + 2]
    assert [int(v) for v in res.to_frame()["group"].unique()] == [2**63 + 1, 2**63 + 2]
    roll = tlr.rolling_ols(x, y, window=3, groups=labels)
    assert sorted({int(v) for v in roll.groups}) == [2**63 + 1, 2**63 + 2]


@pytest.mark.parametrize(
    "labels",
    [
        pd.Series(["a", "b"] * 10, dtype=object).where(np.arange(20) != 5),
        pd.Series(["a", "b"] * 10, dtype=object).where(np.arange(20) != 5, None),
        pd.Series(["a", "b"] * 10, dtype="string").where(np.arange(20) != 5),
        pd.Series(pd.to_datetime(["2020-01-01", "2021-01-01"] * 10)).where(np.arange(20) != 5),
    ],
)
def test_a_missing_label_is_refused_naming_its_row(labels):
    # text with NaN said "cannot be ordered ... use labels of one type"; NaT was a group
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=20), rng.normal(size=20)
    with pytest.raises(DataError, match=r"missing .* label at row 6"):
        tlr.ols(x, y, groups=labels.to_numpy())
    with pytest.raises(DataError, match=r"missing .* label at row 6"):
        tlr.rolling_ols(x, y, window=4, groups=labels.to_numpy())


def test_missing_drop_leaves_out_incomplete_rows_as_the_single_fit_does(fair):
    data = fair[["age", "yrs_married", "affairs", "religious"]].copy()
    data.loc[[3, 50, 700], "age"] = np.nan
    res = tlr.ols(data[["age", "yrs_married"]], data["affairs"], groups=data["religious"],
                  missing="drop")  # fmt: skip
    assert res.nobs_dropped == 3
    kept = data.dropna()
    for g, label in enumerate(res.groups):
        part = kept[kept["religious"] == label]
        ref = sm.OLS(part["affairs"], sm.add_constant(part[["age", "yrs_married"]])).fit()
        np.testing.assert_allclose(res.params[g], ref.params, rtol=1e-10)
    with pytest.raises(DataError, match="NaN"):
        tlr.ols(data[["age", "yrs_married"]], data["affairs"], groups=data["religious"])
