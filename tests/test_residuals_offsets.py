"""Residuals and the summary's diagnostics of columns far from zero, from a diagnostics hunt.

``resid`` was ``y - A b`` in float64: copper + 1e9 with weights over 16 decades had residuals
2.3e-4 off and skew, Jarque-Bera and Durbin-Watson with them, silently (NOTE [residuals of
the least-squares solution] in stats/results.py); get_influence().summary_frame() dropped
the rows' labels. References: exact rationals (tests/exact_ls.py), statsmodels.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import torchlinreg as tlr
from exact_ls import exact_fit


def _exact_resid(X, y, w, intercept=True):
    params = exact_fit(X, y, w, intercept=intercept)["params"]
    A = np.c_[np.ones(len(y)), X] if intercept else X

    def fitted(row):
        return sum(Fraction(float(a)) * b for a, b in zip(row, params, strict=True))

    return np.array([float(Fraction(float(v)) - fitted(r)) for r, v in zip(A, y, strict=True)])


@pytest.mark.parametrize("offset, weighted", [(1e8, False), (1e9, False), (1e9, True)])
@pytest.mark.parametrize("intercept", [True, False])
def test_residuals_of_columns_far_from_zero(offset, weighted, intercept):
    d = sm.datasets.copper.load_pandas()
    X = d.exog.to_numpy(float) + offset
    y = d.endog.to_numpy(float)
    w = 10.0 ** np.random.default_rng(0).uniform(-8, 8, len(y)) if weighted else None
    res = tlr.ols(X, y, sample_weight=w, fit_intercept=intercept)
    ref = _exact_resid(X, y, w, intercept)
    got = np.asarray(res.resid)
    # no intercept: rows about a reference column (through the raw factor 1e-6 off)
    assert np.linalg.norm(got - ref) <= 1e-12 * np.linalg.norm(ref)
    if not intercept:
        return  # the summary's diagnostics below are statsmodels' with a constant
    # the diagnostics are of the whitened residuals: statsmodels' functions on exact ones
    white = ref if w is None else ref * np.sqrt(w)
    from statsmodels.stats.stattools import durbin_watson, jarque_bera

    jb = jarque_bera(white)
    diag = res.diagnostics
    assert np.isclose(float(np.ravel(diag["jarque_bera"])[0]), jb[0], rtol=1e-10)
    assert np.isclose(float(np.ravel(diag["durbin_watson"])[0]), durbin_watson(white), rtol=1e-10)


def test_influence_frame_keeps_the_rows_labels():
    d = sm.datasets.stackloss.load_pandas().data
    d.loc[2, "AIRFLOW"] = np.nan
    res = tlr.ols("STACKLOSS ~ AIRFLOW + WATERTEMP", data=d, missing="drop")
    ref = smf.ols("STACKLOSS ~ AIRFLOW + WATERTEMP", d).fit()
    ours = res.get_influence().summary_frame()
    theirs = ref.get_influence().summary_frame()
    assert list(ours.index) == list(theirs.index)
    pd.testing.assert_series_equal(ours["cooks_d"], theirs["cooks_d"], rtol=1e-9)
