"""t, F and Wald tests, nested-model comparisons and anova_lm, against statsmodels.

Ported from statsmodels' ``regression/tests/test_regression.py`` (TestFtest, TestFTest2,
TestFtestQ, TestTtest, TestTtest2: Longley, with R ``car`` and Stata reference numbers),
``test_robustcov.py`` (CheckOLSRobust.test_tests: ``t_test``/``f_test`` with the robust
covariance against Stata; TestOLSRobust2SmallNew.test_compare: ``compare_lr_test``
against Stata) and ``stats/tests/test_anova.py`` (TestAnovaLMCompare: R's ``anova``).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose, assert_equal
from scipy import stats
from statsmodels.regression.tests.results import results_grunfeld_ols_robust_cluster as grun
from statsmodels.regression.tests.results import results_macro_ols_robust as macro
from statsmodels.stats.tests.test_anova import kidney_table

import torchlinreg
from torchlinreg.errors import DataError, InvalidTestWarning
from torchlinreg.stats.constraints import linear_constraints
from torchlinreg.stats.results import ols

NAMES = ["const", "x1", "x2", "x3", "x4", "x5", "x6"]


@cache
def _longley():
    data = sm.datasets.longley.load_pandas()
    return np.asarray(data.exog, dtype=float), np.asarray(data.endog, dtype=float)


@cache
def _longley_fit():
    X, y = _longley()
    return ols(X, y), sm.OLS(y, sm.add_constant(X)).fit()


def _const_first(row):
    # statsmodels' tests put the constant last; ours comes first
    row = np.asarray(row, dtype=float)
    return np.roll(row, 1, axis=-1)


# ---- the constraint parser ----------------------------------------------------------------
@pytest.mark.parametrize(
    "text, R, q",
    [
        ("x1 = 0", [[0, 1, 0]], [0]),
        ("x1 = x2, const = 1", [[0, 1, -1], [1, 0, 0]], [0, 1]),
        ("2*x1 + x2/4 = 3", [[0, 2, 0.25]], [3]),
        ("-(x1 - x2) * 3 = -1.5e0", [[0, -3, 3]], [-1.5]),
        ("x1 = x2 = const", [[0, 1, -1], [-1, 0, 1]], [0, 0]),
        ("x1 + 1 = 2 + x2", [[0, 1, -1]], [1]),
        ("x2", [[0, 0, 1]], [0]),
    ],
)
def test_constraint_strings_give_patsys_matrices(text, R, q):
    names = ["const", "x1", "x2"]
    ours = linear_constraints(text, names)
    assert_allclose(ours[0], R)
    assert_allclose(ours[1], q)
    if "= const" not in text:  # and patsy's own parser (statsmodels' dependency) agrees
        from patsy import DesignInfo

        lc = DesignInfo(names).linear_constraint(text)
        assert_allclose(ours[0], lc.coefs)
        assert_allclose(ours[1], lc.constants.ravel())


def test_constraint_names_are_matched_longest_first():
    R, _ = linear_constraints("x10 = x1", ["x1", "x10", "a b[T.1]"])
    assert_allclose(R, [[-1, 1, 0]])
    R, q = linear_constraints("a b[T.1] = 2", ["x1", "x10", "a b[T.1]"])
    assert_allclose(R, [[0, 0, 1]])
    assert_allclose(q, [2])


@pytest.mark.parametrize(
    "text, message",
    [
        ("x9 = 0", "cannot read 'x9"),
        ("x1 * x2 = 0", "not linear"),
        ("1 / x1 = 0", "not linear"),
        ("(x1 = 0", "not closed"),
        ("x1 =", "ends too early"),
        ("2 = 2", "involves no parameter"),
    ],
)
def test_bad_constraints_raise_one_line_errors(text, message):
    with pytest.raises(DataError, match=message):
        linear_constraints(text, ["const", "x1", "x2"])


def test_constraint_matrix_of_the_wrong_width_raises():
    with pytest.raises(DataError, match="one column per parameter"):
        linear_constraints(np.eye(2), ["const", "x1", "x2"])


# ---- statsmodels' TestFtest / TestFTest2 / TestFtestQ / TestTtest / TestTtest2 -------------
def test_ftest_of_all_slopes_equals_fvalue():
    res, ref = _longley_fit()
    ft = res.f_test(np.eye(7)[1:])
    # the Wald form inverts R V R' (cond ~1e10 on Longley): in units of the constraints'
    # standard deviations (NOTE [constraints at one scale]) 5e-13 from the ess-based F,
    # statsmodels' raw pinv 1.4e-9
    assert_allclose(ft.fvalue, res.fvalue, rtol=1e-11)
    assert_allclose(ft.pvalue, res.f_pvalue, rtol=1e-10)
    assert_equal((ft.df_num, ft.df_denom), (6, 9))
    assert_allclose(ft.fvalue, ref.f_test(np.eye(7)[1:]).fvalue, rtol=5e-9)


def test_ftest2_matches_r_car():
    res, _ = _longley_fit()
    ft = res.f_test(_const_first([[0, 1, -1, 0, 0, 0, 0], [0, 0, 0, 0, 1, -1, 0]]))
    # R car's linearHypothesis (statsmodels' reference numbers)
    assert_allclose(ft.fvalue, 9.7404618732968196, rtol=1e-8)
    assert_allclose(ft.pvalue, 0.0056052885317493459, rtol=1e-7)
    assert_equal((ft.df_num, ft.df_denom), (2, 9))
    # 1. the string form is the same test (statsmodels' x2 = x3, x5 = x6)
    assert_allclose(res.f_test("x2 = x3, x5 = x6").fvalue, ft.fvalue, rtol=1e-14)


def test_ftest_q_matches_stata():
    res, _ = _longley_fit()
    R = _const_first(
        [
            [0, 1, 1, 0, 0, 0, 0],
            [0, 1, 0, 1, 0, 0, 0],
            [0, 1, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 1, 0],
        ]
    )
    ft = res.f_test((R, [0, 0, 0, 1, 0]))
    assert_allclose(ft.fvalue, 70.115557, atol=1.5e-5)  # statsmodels: 5 decimals
    assert_allclose(ft.pvalue, 6.229e-07, rtol=1e-3)
    assert_equal((ft.df_num, ft.df_denom), (5, 9))


def test_ttest_identity_gives_the_parameter_table():
    res, ref = _longley_fit()
    tt = res.t_test(np.eye(7))
    new = res.t_test("x1 = 0, x2 = 0, x3 = 0, x4 = 0, x5 = 0, x6 = 0, const = 0")
    assert_allclose(np.roll(new.tvalue, 1), tt.tvalue, rtol=1e-14)
    assert_allclose(tt.tvalue, res.tvalues, rtol=1e-12)
    assert_allclose(tt.sd, res.bse, rtol=1e-12)
    assert_allclose(tt.pvalue, 2 * stats.t.sf(np.abs(res.tvalues), 9), rtol=1e-12)
    assert tt.df_denom == 9
    assert_allclose(tt.effect, res.params, rtol=1e-14)
    assert_allclose(tt.conf_int(), ref.t_test(np.eye(7)).conf_int(), rtol=1e-8)


def test_ttest2_matches_r_car():
    res, _ = _longley_fit()
    tt = res.t_test(_const_first([0, 0, 0, 0, 1, -1, 0]))
    assert_allclose(tt.tvalue, -4.0167754636397284, rtol=1e-8)
    assert_allclose(tt.sd, 455.39079425195314, rtol=1e-8)
    assert_allclose(tt.pvalue, 2 * 0.0015163772380932246, rtol=1e-7)
    assert_allclose(tt.effect, -1829.2025687186533, rtol=1e-9)
    assert tt.df_denom == 9


def test_statsmodels_docstring_hypotheses_with_divisions_and_values():
    # statsmodels' t_test docstring: 'GNPDEFL = GNP, UNEMP = 2, YEAR/1829 = 1'
    X, y = _longley()
    cols = ["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]
    res = ols(X, y, feature_names=cols)
    tt = res.t_test("GNPDEFL = GNP, UNEMP = 2, YEAR/1829 = 1")
    assert_allclose(tt.effect, [15.0977, -2.0202, 1.0001], atol=1e-4)
    assert_allclose(tt.sd, [84.937, 0.488, 0.249], atol=1e-3)
    ft = res.f_test("(GNPDEFL = GNP), (UNEMP = 2), (YEAR/1829 = 1)")
    assert_allclose(ft.fvalue, 144.17976065, rtol=1e-8)


# ---- robust covariances: CheckOLSRobust.test_tests -----------------------------------------
def _macro():
    d2 = sm.datasets.macrodata.load_pandas().data
    g_gdp = 400 * np.diff(np.log(d2["realgdp"].values))
    g_inv = 400 * np.diff(np.log(d2["realinv"].values))
    return np.c_[g_gdp, d2["realint"][:-1].values], g_inv


@pytest.mark.parametrize(
    "cov_type, kw, res2",
    [
        ("HC1", None, macro.results_ivhc0_small),
        ("HAC", {"maxlags": 4, "use_correction": True}, macro.results_ivhac4_small),
    ],
)
def test_robust_t_and_f_tests_match_stata(cov_type, kw, res2):
    X, y = _macro()
    res = ols(X, y, cov_type=cov_type, cov_kwds=kw, use_t=True)
    tt = res.t_test(np.eye(3))
    assert_allclose(tt.effect, _const_first(res2.params), rtol=1e-10)
    assert_allclose(tt.sd, _const_first(res2.bse), rtol=1e-10)
    assert_allclose(tt.tvalue, _const_first(res2.tvalues), rtol=1e-10)
    assert_allclose(tt.pvalue, _const_first(res2.pvalues), rtol=5e-10)
    ft = res.f_test(np.eye(3)[1:])
    assert_allclose(ft.fvalue, res2.F, rtol=1e-10)
    assert_allclose(ft.pvalue, res2.Fp, rtol=1e-10)
    assert_equal((ft.df_num, ft.df_denom), (res2.Fdf1, res2.Fdf2))


def test_cluster_f_test_uses_cluster_degrees_of_freedom():
    data = sm.datasets.grunfeld.load_pandas()
    exog = data.exog[:200]
    X = np.asarray(exog[["value", "capital"]], dtype=float)
    y = np.asarray(data.endog[:200], dtype=float)
    firm = np.unique(np.asarray(exog["firm"]), return_inverse=True)[1]
    res = ols(X, y, cov_type="cluster", cov_kwds={"groups": firm}, use_t=True)
    ref = sm.OLS(y, sm.add_constant(X)).fit(
        cov_type="cluster", cov_kwds={"groups": firm}, use_t=True
    )
    ft, ft2 = res.f_test("x1 = 0, x2 = 0"), ref.f_test("x1 = 0, x2 = 0")
    assert_allclose(ft.fvalue, ft2.fvalue, rtol=1e-10)
    assert_allclose(ft.pvalue, ft2.pvalue, rtol=1e-9)
    assert ft.df_denom == ft2.df_denom == 9
    assert_allclose(ft.fvalue, grun.results_cluster.F, rtol=1e-6)  # Stata's regress
    wt, wt2 = (
        res.wald_test("x1 = 0, x2 = 0", use_f=False),
        ref.wald_test("x1 = 0, x2 = 0", use_f=False, scalar=True),
    )
    assert_allclose(wt.statistic, wt2.statistic, rtol=1e-10)
    assert_allclose(wt.pvalue, wt2.pvalue, rtol=1e-9)


def test_wald_default_follows_use_t():
    X, y = _macro()
    res = ols(X, y, cov_type="HC0")  # normal reference: chi2
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type="HC0")
    w, w2 = res.wald_test("x1 = 0, x2 = 0.5"), ref.wald_test("x1 = 0, x2 = 0.5", scalar=True)
    assert w.distribution == "chi2"
    assert_allclose(w.statistic, w2.statistic, rtol=1e-10)
    assert_allclose(w.pvalue, w2.pvalue, rtol=1e-9)
    tt, tt2 = res.t_test("x1 - 3 * x2 = 1"), ref.t_test("x1 - 3 * x2 = 1")
    assert_allclose(tt.tvalue, np.ravel(tt2.tvalue), rtol=1e-10)
    assert_allclose(tt.pvalue, np.ravel(tt2.pvalue), rtol=1e-10)
    assert_allclose(tt.conf_int(), tt2.conf_int(), rtol=1e-10)


def test_rank_deficient_constraint_covariance_counts_its_rank():
    # 4 clusters, 6 slopes: the cluster covariance has rank 3 (statsmodels warns, J = 3)
    X, y = _longley()
    groups = np.arange(len(y)) % 4
    res = ols(X, y, cov_type="cluster", cov_kwds={"groups": groups})
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type="cluster", cov_kwds={"groups": groups})
    with pytest.warns(UserWarning, match="rank 3"):
        f = res.fvalue
    with pytest.warns(UserWarning):
        f2, p2 = ref.fvalue, ref.f_pvalue
    assert_allclose(f, f2, rtol=1e-7)
    assert_allclose(res.f_pvalue, p2, rtol=1e-6)


def test_hypothesis_on_an_aliased_parameter_raises():
    X, y = _longley()
    Xa = np.c_[X, X[:, 0]]
    with pytest.warns(UserWarning):
        res = ols(Xa, y)
    with pytest.raises(DataError, match="aliased"):
        res.t_test("x7 = 0")
    # 1. a hypothesis that avoids the aliased column is still tested
    full = ols(X, y)
    assert_allclose(res.t_test("x2 = 0").tvalue, full.t_test("x2 = 0").tvalue, rtol=1e-7)


# ---- several targets ---------------------------------------------------------------------
def test_several_targets_get_one_test_each():
    X, y = _longley()
    Y = np.c_[y, np.log(y), X[:, 1]]
    both = ols(X[:, [0, 2, 3]], Y, cov_type="HC1")
    tt = both.t_test("x1 = x2, x3 = 0")
    ft = both.f_test("x1 = x2, x3 = 0")
    for t in range(3):
        one = ols(X[:, [0, 2, 3]], Y[:, t], cov_type="HC1")
        assert_allclose(tt.tvalue[:, t], one.t_test("x1 = x2, x3 = 0").tvalue, rtol=1e-9)
        assert_allclose(ft.fvalue[t], one.f_test("x1 = x2, x3 = 0").fvalue, rtol=1e-9)
    assert tt.effect.shape == (2, 3) and ft.pvalue.shape == (3,)


# ---- nested models -------------------------------------------------------------------------
def test_compare_lr_and_f_tests_match_stata_and_statsmodels():
    # TestOLSRobust2SmallNew.test_compare: drop realint (Stata's lrtest)
    X, y = _macro()
    full, small = ols(X, y), ols(X[:, :1], y)
    chi2, pval, df = full.compare_lr_test(small)
    assert_allclose(chi2, 4.667944083588736, rtol=1e-11)
    assert_allclose(pval, 0.0307306938402991, rtol=1e-11)
    assert df == 1
    restricted = sm.OLS(y, sm.add_constant(X[:, :1])).fit()
    ref = sm.OLS(y, sm.add_constant(X)).fit().compare_f_test(restricted)
    assert_allclose(full.compare_f_test(small)[:2], ref[:2], rtol=1e-10)
    # 1. the F comparison equals the Wald F of the dropped parameter (nonrobust OLS)
    assert_allclose(full.compare_f_test(small)[0], full.f_test("x2 = 0").fvalue, rtol=1e-10)
    with pytest.warns(InvalidTestWarning):
        ols(X, y, cov_type="HC1").compare_f_test(small)


def test_compare_models_of_different_rows_raises():
    X, y = _macro()
    with pytest.raises(DataError, match="same rows"):
        ols(X, y).compare_f_test(ols(X[:-1, 1:], y[:-1]))


def _kidney_designs():
    d = kidney_table
    dur = pd.get_dummies(d["Duration"], prefix="D", drop_first=True, dtype=float)
    wt = pd.get_dummies(d["Weight"], prefix="W", drop_first=True, dtype=float)
    inter = pd.DataFrame({f"{a}:{b}": dur[a] * wt[b] for a in dur for b in wt})
    y = np.log(d["Days"].to_numpy(dtype=float) + 1)
    return pd.concat([dur, wt], axis=1), pd.concat([dur, wt, inter], axis=1), y


def test_anova_lm_matches_r_anova():
    # TestAnovaLMCompare: R's anova(lm(log(Days+1) ~ Duration + Weight), ... * ...)
    small, big, y = _kidney_designs()
    table = torchlinreg.anova_lm(ols(small, y), ols(big, y))
    assert_equal(table["df_resid"], [56, 54])
    assert_allclose(table["ssr"], [29.62486, 28.9892], atol=5e-5)
    assert_allclose(table["df_diff"], [0, 2])
    assert_allclose(table["ss_diff"], [np.nan, 0.6356584], atol=1e-7)
    assert_allclose(table["F"], [np.nan, 0.5920404], atol=1e-7)
    assert_allclose(table["Pr(>F)"], [np.nan, 0.5567479], atol=1e-7)
    frame = table.to_frame()
    assert list(frame.columns) == ["df_resid", "ssr", "df_diff", "ss_diff", "F", "Pr(>F)"]


def test_anova_lm_of_three_models_uses_the_largest_models_df_like_r():
    from statsmodels.stats.anova import anova_lm as sm_anova

    small, big, y = _kidney_designs()
    fits = [ols(small.iloc[:, :2], y), ols(small, y), ols(big, y)]
    refs = [sm.OLS(y, sm.add_constant(m)).fit() for m in (small.iloc[:, :2], small, big)]
    ours, ref = torchlinreg.anova_lm(*fits), sm_anova(*refs)
    for col in ("df_resid", "ssr", "df_diff", "ss_diff", "F"):
        assert_allclose(ours[col], ref[col].to_numpy(), rtol=1e-10)
    # R: every F against (df_diff, df_resid of the largest model)
    assert_allclose(ours["Pr(>F)"][1:], stats.f.sf(ours["F"][1:], ours["df_diff"][1:], 54))


def test_anova_lm_wrong_order_raises():
    small, big, y = _kidney_designs()
    with pytest.raises(ValueError, match="most restricted model first"):
        torchlinreg.anova_lm(ols(big, y), ols(small, y))


def test_anova_lm_several_targets_one_table_per_target():
    small, big, y = _kidney_designs()
    Y = np.c_[y, y**2]
    table = torchlinreg.anova_lm(ols(small, Y), ols(big, Y))
    for t in range(2):
        one = torchlinreg.anova_lm(ols(small, Y[:, t]), ols(big, Y[:, t]))
        assert_allclose(table["F"][:, t], one["F"], rtol=1e-10)
    assert "target y2" in str(table)


def test_tests_of_a_streamed_fit_equal_in_memory():
    # the state alone gives the classical covariance and the sums: no rows needed
    X, y = _longley()
    blocks = [(X[i : i + 5], y[i : i + 5]) for i in range(0, 16, 5)]
    streamed = torchlinreg.LinearRegression().fit_blocks(blocks).results_
    small = torchlinreg.LinearRegression().fit_blocks([(b[0][:, :3], b[1]) for b in blocks])
    full = ols(X, y)
    hyp = "x1 = x2, x5 = 0"
    assert_allclose(streamed.f_test(hyp).fvalue, full.f_test(hyp).fvalue, rtol=1e-8)
    assert_allclose(streamed.t_test(hyp).tvalue, full.t_test(hyp).tvalue, rtol=1e-8)
    ref = full.compare_f_test(ols(X[:, :3], y))
    assert_allclose(streamed.compare_f_test(small.results_)[:2], ref[:2], rtol=1e-8)


def test_joint_tests_do_not_depend_on_the_columns_units():
    # NOTE [constraints at one scale]: AIRFLOW in units of 1e-8 and WATERTEMP in 1e8 made
    # the constraints' covariance "rank 1": F 28.2 on 1 df (p 5.8e-5) against 74.1 on 2
    # (p 4e-9), HC1's fvalue 16.4 against 66.3, under a warning about clusters
    import statsmodels.api as sm

    import torchlinreg

    d = sm.datasets.stackloss.load_pandas().data
    X = d[["AIRFLOW", "WATERTEMP", "ACIDCONC"]].to_numpy(float)
    y = d["STACKLOSS"].to_numpy(float)
    H = (np.array([[0, 1, 0, 0], [0, 0, 1, 0.0]]), np.zeros(2))
    ref = torchlinreg.ols(X, y)
    res = torchlinreg.ols(X * [1e-8, 1e8, 1.0], y)  # any warning fails (filterwarnings=error)
    got, want = res.f_test(H), ref.f_test(H)
    assert float(got.df_num) == float(want.df_num) == 2.0
    np.testing.assert_allclose(float(got.fvalue), float(want.fvalue), rtol=1e-10)
    np.testing.assert_allclose(float(got.pvalue), float(want.pvalue), rtol=1e-8)
    np.testing.assert_allclose(
        float(res.wald_test(H).statistic), float(ref.wald_test(H).statistic), rtol=1e-10
    )
    hc, hc_ref = res.get_robustcov_results("HC1"), ref.get_robustcov_results("HC1")
    np.testing.assert_allclose(float(hc.fvalue), float(hc_ref.fvalue), rtol=1e-10)


def test_anova_of_one_model_by_type_says_what_to_do_instead():
    # statsmodels' anova_lm(model, typ=2): a TypeError ("unexpected keyword argument") before
    X, y = _longley()
    with pytest.raises(ValueError, match=r"typ=2.*not supported; compare nested fits"):
        torchlinreg.anova_lm(ols(X, y), typ=2)
