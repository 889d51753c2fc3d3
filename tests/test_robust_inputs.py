"""Robust covariances through the formula path and from labels as pandas holds them, from a
robust-covariance hunt (2026-11-29). References: statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import torchlinreg as tlr
from torchlinreg.errors import DataError, RankWarning

MACRO = "realinv ~ realgdp + realcons + tbilrate + unemp"


@pytest.mark.parametrize("maxlags", [0, 2, 8])
def test_a_formula_passes_hac_lags_on(macrodata, maxlags):
    # the formula path dropped cov_kwds: maxlags=0 gave the default 4, bse 2.03x off
    kw = {"maxlags": maxlags}
    res = tlr.ols(MACRO, data=macrodata, cov_type="HAC", cov_kwds=kw)
    ref = smf.ols(MACRO, macrodata).fit(cov_type="HAC", cov_kwds=kw)
    assert res.cov_kwds["maxlags"] == maxlags
    np.testing.assert_allclose(np.asarray(res.bse), ref.bse, rtol=1e-9)


@pytest.mark.parametrize("holes", [False, True])
@pytest.mark.parametrize("formula", [False, True])
def test_cluster_labels_of_the_whole_table_are_taken_at_the_rows_kept(grunfeld, holes, formula):
    # cluster through a formula refused the labels it was given; with missing="drop" the
    # labels of the whole table are taken at the complete rows
    data = grunfeld.copy()
    if holes:
        data.loc[[3, 50, 77], "value"] = np.nan
    kept = data.dropna()
    ref = smf.ols("invest ~ value + capital", kept).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(kept["firm"])[0]}
    )
    kw = {"groups": data["firm"]}
    if formula:
        res = tlr.ols("invest ~ value + capital", data=data, missing="drop",
                      cov_type="cluster", cov_kwds=kw)  # fmt: skip
    else:
        res = tlr.ols(data[["value", "capital"]], data["invest"], missing="drop",
                      cov_type="cluster", cov_kwds=kw)  # fmt: skip
    np.testing.assert_allclose(np.asarray(res.bse), ref.bse, rtol=1e-10)
    # labels already of the rows kept are used as they are
    res = tlr.ols("invest ~ value + capital", data=data, missing="drop", cov_type="cluster",
                  cov_kwds={"groups": kept["firm"].to_numpy()})  # fmt: skip
    np.testing.assert_allclose(np.asarray(res.bse), ref.bse, rtol=1e-10)


def _labels(firm: pd.Series):
    return {
        "str": firm,
        "object": firm.astype(object),
        "object array": firm.to_numpy(dtype=object),
        "category": firm.astype("category"),
        "string": firm.astype("string"),
    }


def test_blocks_take_text_labels_in_any_pandas_form(grunfeld):
    # an object array's labels have no .item(): AttributeError from cluster_from_blocks
    X, y = grunfeld[["value", "capital"]].to_numpy(), grunfeld["invest"].to_numpy()
    res = tlr.ols(X, y)
    blocks = [(X[:100], y[:100]), (X[100:], y[100:])]
    ref = sm.OLS(y, sm.add_constant(X)).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(grunfeld["firm"])[0]}
    )
    for name, labels in _labels(grunfeld["firm"]).items():
        labels = np.asarray(labels)
        got = res.cluster_from_blocks(blocks, [labels[:100], labels[100:]])
        np.testing.assert_allclose(got.bse, ref.bse, rtol=1e-10, err_msg=name)
        mem = tlr.ols(X, y, cov_type="cluster", cov_kwds={"groups": labels})
        np.testing.assert_allclose(mem.bse, ref.bse, rtol=1e-10, err_msg=name)


def test_a_missing_text_label_is_refused_naming_its_row(grunfeld):
    # numpy's "'<' not supported between 'float' and 'str'" before
    X, y = grunfeld[["value", "capital"]], grunfeld["invest"]
    for labels in _labels(grunfeld["firm"]).values():
        holed = pd.Series(labels).where(grunfeld.index != 5)
        holed = holed.to_numpy(dtype=object) if isinstance(labels, np.ndarray) else holed
        with pytest.raises(DataError, match="missing at row 6"):
            tlr.ols(X, y, cov_type="cluster", cov_kwds={"groups": holed})
        values = np.asarray(holed)
        res = tlr.ols(X.to_numpy(), y.to_numpy())
        blocks = [(X.to_numpy()[:3], y.to_numpy()[:3]), (X.to_numpy()[3:], y.to_numpy()[3:])]
        with pytest.raises(DataError, match="missing at row 6"):
            res.cluster_from_blocks(blocks, [values[:3], values[3:]])


def test_labels_of_mixed_types_are_clusters_of_their_own(grunfeld):
    X, y = grunfeld[["value", "capital"]].to_numpy(), grunfeld["invest"].to_numpy()
    mixed = np.array([1 if i % 3 else "a" for i in range(len(y))], dtype=object)
    codes = np.array([0 if i % 3 else 1 for i in range(len(y))])
    got = tlr.ols(X, y, cov_type="cluster", cov_kwds={"groups": mixed}, use_t=False)
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type="cluster", cov_kwds={"groups": codes})
    np.testing.assert_allclose(got.bse, ref.bse, rtol=1e-10)


def test_one_cluster_and_lags_across_the_sample_say_their_errors_are_not_estimates():
    d = sm.datasets.stackloss.load_pandas().data
    X, y = d[["AIRFLOW", "WATERTEMP", "ACIDCONC"]].to_numpy(), d["STACKLOSS"].to_numpy()
    for kw in ({"use_correction": False}, {}):
        with pytest.warns(RankWarning, match="one cluster"):
            res = tlr.ols(X, y, cov_type="cluster", cov_kwds={"groups": np.zeros(len(y)), **kw})
        # what was silent: standard errors of rounding noise (t ~ 1e16) or NaN
        assert not np.all(np.asarray(res.bse) > 1e-6 * np.abs(res.params))
    with pytest.warns(RankWarning, match="spans the whole sample"):
        tlr.ols(X, y, cov_type="HAC", cov_kwds={"maxlags": len(y) - 1, "kernel": "uniform"})
    with pytest.warns(RankWarning, match="spans the whole sample"):
        tlr.ols(X, y, cov_type="HAC", cov_kwds={"maxlags": 1000})
    # two clusters and lags below the rows: nothing said
    tlr.ols(X, y, cov_type="cluster", cov_kwds={"groups": np.arange(len(y)) % 2})
    tlr.ols(X, y, cov_type="HAC", cov_kwds={"maxlags": len(y) - 2})
