"""`ols()` and `get_prediction` take their inputs as the estimators do: one validator, the
data's own names, and no number computed from misplaced columns (issue 9, items 2, 4-6).

Real data: Longley (statsmodels' copy, raw units, with its column names and year index).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import torchlinreg as tlr
from torchlinreg.errors import DataError


@pytest.fixture(scope="module")
def longley():
    data = sm.datasets.longley.load_pandas()
    X, y = data.exog.copy(), data.endog.copy()
    X.index = y.index = pd.Index(range(1947, 1963), name="year")
    return X, y


def _both(X, y, **kw):
    """The message of ols() and of LinearRegression().fit() for the same bad input."""
    messages = []
    for fit in (lambda: tlr.ols(X, y, **kw), lambda: tlr.LinearRegression().fit(X, y, **kw)):
        with pytest.raises(DataError) as info:
            fit()
        messages.append(str(info.value))
    return messages


def test_bad_inputs_get_the_estimators_one_line_errors(longley):
    X, y = longley
    # 1) a target row short
    ols_msg, est_msg = _both(X, y.iloc[:-1])
    assert ols_msg == est_msg and "y has 15 rows but X has 16" in ols_msg
    # 2) a text column, named
    ols_msg, est_msg = _both(X.assign(region="north"), y)
    assert ols_msg == est_msg and "'region'" in ols_msg
    # 3) a missing value, located by row and column name
    Xn = X.copy()
    Xn.iloc[3, 1] = np.nan
    ols_msg, est_msg = _both(Xn, y)
    assert ols_msg == est_msg and "X contains NaN at row 4, column 'GNP'" in ols_msg
    # 4) weights: one per row, not negative
    ols_msg, est_msg = _both(X, y, sample_weight=np.ones(5))
    assert ols_msg == est_msg and "sample_weight has 5 values" in ols_msg
    ols_msg, est_msg = _both(X, y, sample_weight=np.r_[-1.0, np.ones(15)])
    assert ols_msg == est_msg and "negative value" in ols_msg


def test_the_intercept_only_model_equals_statsmodels(longley):
    X, y = longley
    ours = tlr.ols(X.iloc[:, :0], y)
    theirs = sm.OLS(y, np.ones(len(y))).fit()
    np.testing.assert_allclose(ours.params, theirs.params.to_numpy(), rtol=1e-14)
    np.testing.assert_allclose(ours.bse, theirs.bse.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.llf, theirs.llf, rtol=1e-13)
    assert ours.param_names == ["const"] and ours.df_model == 0.0 and ours.rsquared == 0.0
    # without an intercept a model needs a column
    with pytest.raises(DataError, match="0 feature"):
        tlr.ols(X.iloc[:, :0], y, fit_intercept=False)


def test_a_scalar_weight_weighs_every_row_alike(longley):
    X, y = longley
    ours = tlr.ols(X, y, sample_weight=2.0)
    theirs = sm.WLS(y, sm.add_constant(X), weights=2.0).fit()
    np.testing.assert_allclose(ours.params, theirs.params.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.bse, theirs.bse.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(ours.llf, theirs.llf, rtol=1e-12)
    # and in predictions: the observation variance is scale / weight
    new = X.iloc[:4]
    mine = ours.get_prediction(new, weights=3.0).summary_frame()
    ref = theirs.get_prediction(sm.add_constant(new, has_constant="add"), weights=3.0)
    np.testing.assert_allclose(
        mine.to_numpy(), ref.summary_frame()[list(mine.columns)].to_numpy(), rtol=1e-7
    )


def test_names_come_from_the_data(longley):
    X, y = longley
    res = tlr.ols(X, y)
    assert res.param_names == ["const", *X.columns] and res.target_names == ["TOTEMP"]
    assert "Dep. Variable:                  TOTEMP" in res.summary()
    est = tlr.LinearRegression().fit(X, y)
    assert est.results_.target_names == ["TOTEMP"]
    assert list(est.feature_names_in_) == list(X.columns)
    # a 1-D X is one column, named by its Series
    one = tlr.ols(X["GNP"], y)
    assert one.param_names == ["const", "GNP"]
    # given names win, and must fit the columns
    assert tlr.ols(X.to_numpy(), y.to_numpy(), target_names=["jobs"]).target_names == ["jobs"]
    with pytest.raises(DataError, match="2 feature_names for 6 columns"):
        tlr.ols(X, y, feature_names=["a", "b"])


def test_predictions_from_a_frame_keep_its_rows_and_check_its_columns(longley):
    X, y = longley
    res = tlr.ols(X, y)
    frame = res.get_prediction(X.iloc[:3]).summary_frame()
    # 1) the frame's rows are the input's rows, and the means are predict's
    assert list(frame.index) == [1947, 1948, 1949] and frame.index.name == "year"
    np.testing.assert_allclose(frame["mean"], res.fittedvalues[:3], rtol=1e-12)
    assert frame["mean"].iloc[0] == pytest.approx(60055.66, rel=1e-6)
    # 2) columns in another order, or missing, are refused, never used by position
    with pytest.raises(DataError, match="not the features the model was fitted on"):
        res.get_prediction(X[X.columns[::-1]])
    with pytest.raises(DataError, match="not the features"):
        res.get_prediction(X.iloc[:, :3])
    with pytest.raises(DataError, match="exog has 3 columns, but the model was fitted on 6"):
        res.get_prediction(X.iloc[:, :3].to_numpy())
    # 3) a flat sequence of one value per feature is one row
    flat = res.get_prediction(X.iloc[0].to_numpy()).predicted_mean
    np.testing.assert_allclose(flat, res.fittedvalues[:1], rtol=1e-12)


def test_several_targets_label_the_prediction_frame_by_name(longley):
    X, y = longley
    Y = pd.DataFrame({"TOTEMP": y, "half": y / 2 + np.arange(16.0)})
    frame = tlr.ols(X, Y).get_prediction(X.iloc[:2]).summary_frame()
    assert list(frame.columns.get_level_values(1)[:2]) == ["TOTEMP", "half"]
    assert list(frame.index) == [1947, 1948]
    single = tlr.ols(X, y).get_prediction(X.iloc[:2]).summary_frame()
    np.testing.assert_allclose(frame[("mean", "TOTEMP")], single["mean"], rtol=1e-12)
