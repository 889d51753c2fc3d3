"""In-memory inputs paired as their labels say, from an inputs hunt (2026-11-29).

- ``ols`` paired a y Series with X by position whatever their indexes said (statsmodels
  raises): shuffled y gave [0.68, 0.09] for [1.13, 1.49], residuals labelled with X's index
  (NOTE [rows matched by index] in stats/frames.py).
- ``score`` broadcast a y of another number of targets (R2 0.28 for 0.86).
- ``get_prediction`` of a one-row Series took its values by position, not by label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import torchlinreg as tlr
from torchlinreg.errors import DataError


def _frame():
    d = sm.datasets.longley.load_pandas().data
    return d[["GNP", "UNEMP"]], d["TOTEMP"]


def test_ols_refuses_a_y_whose_index_is_not_xs():
    X, y = _frame()
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    np.testing.assert_allclose(np.asarray(tlr.ols(X, y).params), ref.params, rtol=1e-10)
    with pytest.raises(DataError, match="row index of y is not X's"):
        tlr.ols(X, y.sample(frac=1, random_state=0))
    with pytest.raises(DataError, match="row index of sample_weight"):
        tlr.ols(X, y, sample_weight=pd.Series(1.0, index=X.index[::-1]))
    shuffled = y.sample(frac=1, random_state=0)
    aligned = tlr.ols(X, shuffled.loc[X.index])  # what the message says to do
    np.testing.assert_allclose(np.asarray(aligned.params), ref.params, rtol=1e-10)
    # arrays pair by position, as always
    np.testing.assert_allclose(np.asarray(tlr.ols(X.to_numpy(), y.to_numpy()).params),
                               ref.params.to_numpy(), rtol=1e-10)  # fmt: skip


def test_grouped_and_rolling_fits_refuse_misaligned_series():
    X, y = _frame()
    g = pd.Series(np.arange(len(y)) % 2, index=X.index)
    with pytest.raises(DataError, match="row index of groups"):
        tlr.ols(X, y, groups=g.iloc[::-1])
    with pytest.raises(DataError, match="row index of y"):
        tlr.rolling_ols(X, y.iloc[::-1], window=8)


def test_score_refuses_another_number_of_targets():
    X, y = _frame()
    Y = pd.concat([y, y * 2 + 1], axis=1)
    two = tlr.LinearRegression().fit(X, Y)
    with pytest.raises(DataError, match="y has 1 target"):
        two.score(X, y)
    one = tlr.LinearRegression().fit(X, y)
    with pytest.raises(DataError, match="y has 2 target"):
        one.score(X, Y)


def test_a_one_row_series_is_taken_by_its_labels():
    X, y = _frame()
    res = tlr.ols(X, y)
    row = X.iloc[3]
    want = res.get_prediction(X.iloc[[3]]).predicted_mean
    np.testing.assert_allclose(res.get_prediction(row).predicted_mean, want, rtol=1e-12)
    with pytest.raises(DataError, match="select and order them as in the fit"):
        res.get_prediction(row[["UNEMP", "GNP"]])


def test_numpy_scalar_weights_weight_every_row():
    X, y = _frame()
    ref = np.asarray(tlr.ols(X, y, sample_weight=2.0).params)
    for w in (np.float32(2), np.int64(2), np.array(2.0)):
        np.testing.assert_allclose(np.asarray(tlr.ols(X, y, sample_weight=w).params), ref,
                                   rtol=1e-12)  # fmt: skip


def test_dates_in_an_object_array_are_not_numbers():
    days = np.array([[np.datetime64("2024-01-01")], [np.datetime64("2024-01-02")],
                     [np.datetime64("2024-01-04")]], dtype=object)  # fmt: skip
    with pytest.raises(DataError, match="datetime64 at row 1: dates and durations"):
        tlr.ols(days, [1.0, 2.0, 3.5])


def test_polars_groups_by_name_and_unsupported_inputs_say_what_to_do():
    pl = pytest.importorskip("polars")
    import torch

    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"x": rng.normal(size=40), "g": np.arange(40) % 2})
    y = frame["x"].to_numpy() * 2 + 1 + frame["g"].to_numpy() + 0.01 * rng.normal(size=40)
    by_name = np.asarray(tlr.ols(frame, y, groups="g").params)  # a TypeError before
    by_array = np.asarray(tlr.ols(frame.drop("g"), y, groups=frame["g"].to_numpy()).params)
    np.testing.assert_array_equal(by_name, by_array)
    with pytest.raises(DataError, match="LazyFrame; collect"):
        tlr.ols(frame.lazy(), y)
    with pytest.raises(DataError, match="sparse tensor"):
        tlr.ols(torch.eye(3).to_sparse(), np.ones(3))
