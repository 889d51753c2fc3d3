"""Influence measures and the summary's residual diagnostics, against R and statsmodels.

Ported from statsmodels' ``stats/tests/test_diagnostic.py`` (TestDiagnosticG.test_influence
and test_influence_wrapped: R's ``ls.diag`` and ``influence.measures`` of the macrodata
growth-rate regression, copied to ``tests/data/statsmodels/``), with statsmodels'
``OLSInfluence`` on Longley and macrodata, and leave-one-out refits as a third reference.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from statsmodels.stats.outliers_influence import OLSInfluence
from statsmodels.stats.stattools import durbin_watson, jarque_bera, omni_normtest

from torchlinreg.errors import DataError, DegenerateWarning
from torchlinreg.stats.results import ols

DATA = Path(__file__).parent / "data" / "statsmodels"


@cache
def _macro():
    d = sm.datasets.macrodata.load_pandas().data
    g_inv = 400 * np.diff(np.log(d["realinv"].values))
    g_gdp = 400 * np.diff(np.log(d["realgdp"].values))
    return np.c_[g_gdp, d["realint"][:-1].values], g_inv


@cache
def _longley():
    data = sm.datasets.longley.load_pandas()
    return np.asarray(data.exog, dtype=float), np.asarray(data.endog, dtype=float)


def test_influence_matches_r_ls_diag_and_influence_measures():
    X, y = _macro()
    infl = ols(X, y).get_influence()
    lsdiag = json.loads((DATA / "influence_lsdiag_R.json").read_text())
    # statsmodels asserts 12 decimals
    assert_allclose(infl.cooks_distance[0], lsdiag["cooks"], atol=1e-12)
    assert_allclose(infl.hat_matrix_diag, lsdiag["hat"], atol=1e-12)
    assert_allclose(infl.resid_studentized_internal, lsdiag["std.res"], atol=1e-12)
    assert_allclose(infl.dffits[0], lsdiag["dfits"], atol=1e-12)
    assert_allclose(infl.resid_studentized_external, lsdiag["stud.res"], atol=1e-12)
    r = np.asarray(pd.read_csv(DATA / "influence_measures_R.csv", index_col=0))
    assert_allclose(infl.dfbetas, r[:, :3], atol=1e-12)
    assert_allclose(infl.dffits[0], r[:, 3], atol=1e-12)
    assert_allclose(infl.cov_ratio, r[:, 4], atol=1e-12)
    assert_allclose(infl.cooks_distance[0], r[:, 5], atol=1e-12)
    assert_allclose(infl.hat_matrix_diag, r[:, 6], atol=1e-12)


@pytest.mark.parametrize("data", ["longley", "macro"])
def test_influence_matches_statsmodels_olsinfluence(data):
    X, y = _longley() if data == "longley" else _macro()
    ours = ols(X, y).get_influence()
    ref = OLSInfluence(sm.OLS(y, sm.add_constant(X)).fit())
    for name in ("hat_matrix_diag", "resid_studentized_internal", "resid_studentized_external"):
        assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-8, err_msg=name)
    for name in ("cooks_distance", "dffits", "dffits_internal"):
        assert_allclose(getattr(ours, name)[0], getattr(ref, name)[0], rtol=1e-8, err_msg=name)
        assert_allclose(getattr(ours, name)[1], getattr(ref, name)[1], rtol=1e-8, err_msg=name)
    assert_allclose(ours.dfbetas, ref.dfbetas, rtol=1e-7, atol=1e-12)
    assert_allclose(ours.sigma2_not_obsi, ref.sigma2_not_obsi, rtol=1e-8)


def test_closed_forms_equal_leave_one_out_refits():
    # 1. s_(i)^2 and b - b_(i) from one fit equal n refits without row i
    X, y = _macro()
    X, y = X[:40], y[:40]
    res = ols(X, y)
    infl = res.get_influence()
    for i in (0, 7, 39):
        keep = np.arange(len(y)) != i
        loo = ols(X[keep], y[keep])
        assert_allclose(infl.sigma2_not_obsi[i], loo.scale, rtol=1e-11)
        assert_allclose(infl.dfbeta[i], res.params - loo.params, rtol=1e-9, atol=1e-12)


def test_leverage_sums_to_the_rank_and_is_computed_in_blocks(monkeypatch):
    from torchlinreg.stats import influence

    X, y = _longley()
    whole = ols(X, y).get_influence().hat_matrix_diag
    monkeypatch.setattr(influence, "BLOCK_ROWS", 3)  # several blocks, one partial
    blocked = ols(X, y).get_influence().hat_matrix_diag
    assert_allclose(blocked, whole, rtol=1e-13)
    assert_allclose(whole.sum(), 7, rtol=1e-12)


def test_weighted_influence_is_ols_on_whitened_rows():
    # R's influence.measures of a weighted lm; statsmodels' OLSInfluence of a WLS mixes
    # whitened and raw quantities, so the reference is its OLS on the whitened rows
    X, y = _macro()
    w = 1.0 / (1.0 + np.abs(X[:, 1]))
    root = np.sqrt(w)
    ours = ols(X, y, sample_weight=w).get_influence()
    design = sm.add_constant(X) * root[:, None]
    ref = OLSInfluence(sm.OLS(y * root, design).fit())
    assert_allclose(ours.hat_matrix_diag, ref.hat_matrix_diag, rtol=1e-10)
    assert_allclose(ours.resid_studentized_external, ref.resid_studentized_external, rtol=1e-9)
    assert_allclose(ours.cooks_distance[0], ref.cooks_distance[0], rtol=1e-9)


def test_several_targets_equal_separate_fits():
    X, y = _macro()
    Y = np.c_[y, X[:, 0] * 0.5 + np.cos(np.arange(len(y)))]
    both = ols(X[:, 1:], Y).get_influence()
    for t in range(2):
        one = ols(X[:, 1:], Y[:, t]).get_influence()
        assert_allclose(both.hat_matrix_diag, one.hat_matrix_diag, rtol=1e-13)
        assert_allclose(both.cooks_distance[0][:, t], one.cooks_distance[0], rtol=1e-11)
        assert_allclose(both.dffits[0][:, t], one.dffits[0], rtol=1e-11)
        assert_allclose(both.dfbetas[:, :, t], one.dfbetas, rtol=1e-10, atol=1e-14)


def test_leverage_one_row_gives_nan_with_a_warning():
    X, y = _macro()
    dummy = np.zeros(len(y))
    dummy[5] = 1.0  # a column that sees row 6 alone
    res = ols(np.c_[X, dummy], y)
    with pytest.warns(DegenerateWarning, match="row\\(s\\) 6"):
        infl = res.get_influence()
    assert np.isnan(infl.cooks_distance[0][5]) and np.isnan(infl.dffits[0][5])
    assert np.isfinite(np.delete(infl.cooks_distance[0], 5)).all()


def test_streamed_fit_has_no_rows_for_influence():
    import torch

    from torchlinreg.exact.state import fit_exact
    from torchlinreg.stats.results import OLSResults

    X, y = _macro()
    state, sol = fit_exact(torch.from_numpy(X), torch.from_numpy(y)[:, None])
    res = OLSResults.from_state(state, sol, y_was_1d=True)
    with pytest.raises(DataError, match="refit in memory"):
        res.get_influence()


# ---- the summary's diagnostics block ---------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
def test_diagnostics_match_statsmodels(weighted):
    X, y = _longley()
    w = np.linspace(0.5, 2.0, len(y)) if weighted else None
    res = ols(X, y, sample_weight=w)
    model = sm.WLS(y, sm.add_constant(X), weights=w) if weighted else sm.OLS(y, sm.add_constant(X))
    ref = model.fit()
    d = res.diagnostics
    jb, jbp, skew, kurt = jarque_bera(ref.wresid)
    omni, omnip = omni_normtest(ref.wresid)
    expected = {
        "omnibus": omni,
        "omnibus_pvalue": omnip,
        "skew": skew,
        "kurtosis": kurt,
        "durbin_watson": durbin_watson(ref.wresid),
        "jarque_bera": jb,
        "jarque_bera_pvalue": jbp,
    }
    for key, value in expected.items():
        assert_allclose(d[key], value, rtol=1e-7, err_msg=key)  # Longley: resid to ~1e-9
    assert_allclose(res.condition_number, ref.condition_number, rtol=1e-8)
    # 1. the summary prints statsmodels' block with the same rounded numbers
    theirs = str(ref.summary().tables[2]).splitlines()[1:-1]
    ours = res.summary().splitlines()
    for line in theirs:
        cells = line.split()
        found = [o for o in ours if o.startswith(line[:14].rstrip())]
        assert found and found[0].split() == cells, (line, found)


def test_diagnostics_of_several_targets_and_few_rows():
    X, y = _macro()
    Y = np.c_[y, y**2]
    d = ols(X, Y).diagnostics
    for t in range(2):
        assert_allclose(d["jarque_bera"][t], ols(X, Y[:, t]).diagnostics["jarque_bera"])
    few = ols(X[:6], y[:6]).diagnostics  # Omnibus needs 8 rows, as statsmodels
    assert np.isnan(few["omnibus"]) and np.isfinite(few["durbin_watson"])


def test_influence_of_some_rows_equals_get_influence():
    # the plots' rows: any subset, from R and the scale alone (streamed fits too)
    from torchlinreg.stats.influence import influence_of_rows

    X, y = _macro()
    w = 1.0 / (1.0 + np.abs(X[:, 1]))
    res = ols(X, y, sample_weight=w)
    infl = res.get_influence()
    rows = np.arange(10, 60)
    d = influence_of_rows(res, X[rows], y[rows], w[rows])
    assert_allclose(d["leverage"], infl.hat_matrix_diag[rows], rtol=1e-12)
    assert_allclose(d["std_resid"][:, 0], infl.resid_studentized_internal[rows], rtol=1e-10)
    assert_allclose(d["cooks"][:, 0], infl.cooks_distance[0][rows], rtol=1e-10)
    assert_allclose(d["resid"][:, 0], res.resid[rows], rtol=1e-10)
    assert_allclose(d["fitted"][:, 0], res.fittedvalues[rows], rtol=1e-12)


def test_longley_influence_against_60_digit_arithmetic():
    # statsmodels' Longley residuals carry ~1e-9 relative error (the 1e-8 comparisons
    # above); against mpmath ours are within 1e-9 for every measure
    import mpmath as mp

    mp.mp.dps = 60
    X, y = _longley()
    A = mp.matrix([[1] + [mp.mpf(float(v)) for v in row] for row in X])
    Y = mp.matrix([mp.mpf(float(v)) for v in y])
    C = (A.T * A) ** -1
    e = Y - A * (C * (A.T * Y))
    n, p = A.rows, A.cols
    h = [(A[i, :] * C * A[i, :].T)[0] for i in range(n)]
    s2 = sum(v**2 for v in e) / (n - p)
    r = [e[i] / mp.sqrt(s2 * (1 - h[i])) for i in range(n)]
    cooks = [r[i] ** 2 / p * h[i] / (1 - h[i]) for i in range(n)]
    infl = ols(X, y).get_influence()
    assert_allclose(infl.hat_matrix_diag, [float(v) for v in h], rtol=1e-11)
    assert_allclose(infl.resid_studentized_internal, [float(v) for v in r], rtol=1e-9)
    assert_allclose(infl.cooks_distance[0], [float(v) for v in cooks], rtol=2e-9)


def _exact_leverage_and_cooks(X, y):
    """Leverage and Cook's distance of the float64 data in 80-digit arithmetic."""
    import mpmath as mp

    mp.mp.dps = 80
    A = np.c_[np.ones(len(y)), X]
    n, p = A.shape
    Am, ym = mp.matrix(A.tolist()), mp.matrix(y.tolist())
    Gi = mp.inverse(Am.T * Am)
    b = Gi * (Am.T * ym)
    e = [ym[i] - (Am[i, :] * b)[0] for i in range(n)]
    h = [(Am[i, :] * Gi * Am[i, :].T)[0] for i in range(n)]
    s2 = sum(x**2 for x in e) / (n - p)
    cook = [e[i] ** 2 / (s2 * (1 - h[i])) / p * h[i] / (1 - h[i]) for i in range(n)]
    return np.array([float(x) for x in h]), np.array([float(x) for x in cook])


@pytest.mark.parametrize("offset", [1e7, 1e9])
def test_influence_of_columns_far_from_zero_is_taken_about_them(offset):
    # NOTE [influence about the offsets]: from the raw rows copper + 1e9 gave leverage
    # 4.9e-7 off and Cook's distance 7e-5 (the float64 parameters' residuals), silently
    d = sm.datasets.copper.load_pandas().data
    X = d.drop(columns="WORLDCONSUMPTION").to_numpy(float) + offset
    y = d["WORLDCONSUMPTION"].to_numpy(float)
    infl = ols(X, y).get_influence()
    h, cook = _exact_leverage_and_cooks(X, y)
    np.testing.assert_allclose(infl.hat_matrix_diag, h, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(infl.cooks_distance[0], cook, rtol=1e-10)


def test_one_spare_row_leaves_the_leave_one_out_statistics_undefined():
    # n = p + 1: leaving a row out leaves no residual degrees of freedom (0 / 0); they came
    # out 0 (read as "no influence") or +-inf, silently; statsmodels gives NaN
    d = sm.datasets.stackloss.load_pandas().data
    X = d[["AIRFLOW", "WATERTEMP", "ACIDCONC"]].to_numpy(float)[:5]
    y = d["STACKLOSS"].to_numpy(float)[:5]
    infl = ols(X, y).get_influence()
    with pytest.warns(DegenerateWarning, match="no residual degrees of freedom") as rec:
        got = (infl.sigma2_not_obsi, infl.resid_studentized_external, infl.dffits[0])
    assert len(rec) == 1
    for values in got:
        assert np.isnan(values).all()
    assert np.isfinite(infl.cooks_distance[0]).all()  # internal studentization: defined


def test_a_row_of_leverage_near_one_keeps_its_digits():
    # NOTE [one minus leverage]: grunfeld with the last row's columns x 1e4 (1 - h =
    # 1.36e-11): 1 - h as 1 - ||q||^2 had 5 digits, and Cook's distance was 2.6e-5 off,
    # studentized residuals 6.6e-6, HC3 standard errors 4.6e-5, all silently
    import mpmath as mp

    d = sm.datasets.grunfeld.load_pandas().data
    X = d[["value", "capital", "year"]].to_numpy(float)
    y = d["invest"].to_numpy(float)
    X[-1] *= 1e4
    mp.mp.dps = 80
    A = np.c_[np.ones(len(y)), X]
    Am, ym = mp.matrix(A.tolist()), mp.matrix(y.tolist())
    Gi = mp.inverse(Am.T * Am)
    e = ym - Am * (Gi * (Am.T * ym))
    h = [(Am[i, :] * Gi * Am[i, :].T)[0] for i in range(len(y))]
    s2 = sum(v**2 for v in e) / (len(y) - A.shape[1])
    stud = np.array([float(e[i] / mp.sqrt(s2 * (1 - h[i]))) for i in range(len(y))])
    meat = mp.matrix(A.shape[1], A.shape[1])
    for i in range(len(y)):
        meat += (e[i] / (1 - h[i])) ** 2 * (Am[i, :].T * Am[i, :])
    hc3 = Gi * meat * Gi
    res = ols(X, y)
    infl = res.get_influence()
    np.testing.assert_allclose(infl.resid_studentized_internal, stud, rtol=1e-8)
    # HC3 of the least-squares residuals (NOTE [the residuals HC squares]): the returned
    # coefficients' put it 7.7e-8 from the exact solution's here
    bse = res.get_robustcov_results("HC3").bse
    np.testing.assert_allclose(bse, [float(mp.sqrt(hc3[j, j])) for j in range(4)], rtol=1e-8)


def test_many_rows_near_leverage_one_are_said_rather_than_refactored():
    # NOTE [one minus leverage]: each row's 1 - h from the other rows costs a QR; past the
    # budget (rare categories of a large fit) the rest keep 1 - ||q||^2 and a warning
    # quotes what that may cost
    from torchlinreg.errors import RankWarning

    rng = np.random.default_rng(0)
    n, k = 20_000, 15
    D = 1e-6 * rng.normal(size=(n, k))
    D[rng.choice(n, k, replace=False), np.arange(k)] = 1.0
    X = np.c_[rng.normal(size=(n, 4)), D]
    y = X[:, :4] @ [1.0, 2.0, 3.0, 4.0] + rng.normal(size=n)
    res = ols(X, y)
    with pytest.warns(RankWarning, match=r"^\d+ rows have leverage within 0.0001 of 1, too many"):
        bse = res.get_robustcov_results("HC3").bse
    assert np.isfinite(bse).all()
