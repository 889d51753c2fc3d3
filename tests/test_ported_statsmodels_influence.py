"""Port of statsmodels' OLS influence tests (statsmodels 0.15.0, ``stats/tests`` and one
``regression/tests`` block) to torchlinreg's ``OLSResults.get_influence()``.

Ported (same data, same tolerances, torchlinreg's influence in place of ``OLSInfluence``):

- test_diagnostic.py ``TestDiagnosticG.test_basic`` and ``.test_influence`` (R ``ls.diag``
  and ``influence.measures`` of the macrodata growth regression, read from statsmodels'
  installed ``results/`` folder), ndarray input;
- ``TestDiagnosticGPandas.test_influence``: the same with pandas input (rows 1..202);
- ``test_influence_wrapped``: DataFrame exog; the constant as ``fit_intercept=True`` and,
  parametrized, as an explicit ``const`` column with ``fit_intercept=False``;
- ``test_influence_dtype``: cov_ratio of a no-constant fit, integer vs float endog (#2148);
- ``test_outlier_influence_funcs``: adapted, ``oi.summary_table`` is missing; the
  intercept-only ``get_influence()`` smoke test is kept, the GH3344 alpha check is made on
  ``get_prediction().summary_frame(alpha)``'s observation interval (summary_table's columns
  6, 7), and the table's residual/std-error/student/Cook's columns are compared with
  statsmodels' ``summary_table`` numbers (rtol 1e-10, an addition);
- ``test_outlier_test``: ``outlier_test`` is missing; R's ``rstudent`` / unadjusted / Bonferroni
  p-values (decimal 7) and the order of labels are checked against torchlinreg's
  externally studentized residuals, the t(df_resid - 1) p-values computed in the test;
- test_influence.py ``TestInfluenceGaussianGLMOLS.test_basics`` / ``.test_summary``: the
  OLS side (infl1) is torchlinreg's, fitted from the same formula; statsmodels'
  ``GLMInfluence`` (infl0) stays the reference; ``resid_studentized`` (statsmodels' alias)
  is read as ``resid_studentized_internal``;
- ``InfluenceCompareExact.test_basics`` / ``.test_summary`` (its tolerances) with
  statsmodels' ``OLSInfluence`` as infl0 on Duncan (formula), macrodata (pandas) and the
  no-constant dtype data; plus the outlier measures it does not reach (Cook's p-values,
  external studentization, dffits and threshold, cov_ratio, sigma2_not_obsi, resid_press)
  and ``params_not_obsi`` (statsmodels' n refits) as ``params - dfbeta``;
- ``test_olsinfluence_closed_form_measures``: the ``resid_press`` line;
- regression/tests/test_glsar_gretl.py ``TestGLSARGretl.test_all``: the gretl
  leverage / DFFITS / residual lines (decimal 3).

Left out:

- GLM/MLE influence (TestInfluenceLogitGLMMLE, Binomial, GaussianGLMMLE, Logit/Probit/
  Poisson compare, test_influence_glm_bernoulli, test_glminfluence_direct_constructor,
  _check_looo): other models;
- InfluenceCompareExact.test_plots and plot_influence / plot_index: plots;
- test_vif_instability, test_reset_stata (variance_inflation_factor, reset_ramsey): missing
  in torchlinreg;
- test_olsinfluence_closed_form_measures' ``hat_diag_factor``, ``ess_press``, ``resid_var``,
  ``resid_std`` lines: missing attributes;
- test_olsinfluence_ols_xnoti_and_get_drop_vari: statsmodels' private auxiliary regressions;
- outlier_test itself and summary_table (function and ``infl.summary_table()``): missing;
- the gretl ``influence`` column (``infl.influence``, u h/(1-h)): missing attribute;
- ``resid_studentized`` (statsmodels' alias of the internal one), ``params_not_obsi``,
  ``det_cov_params_not_obsi``, ``sigma_est``, ``get_resid_studentized_external``,
  ``summary_frame``'s ``dfb_<name>`` columns: missing, the tests read the equivalents;
- WLS: statsmodels tests no WLS influence, and its ``OLSInfluence`` of a WLS mixes raw and
  whitened rows while torchlinreg follows R (influence.py's docstring), so no reference;
- the rest of test_diagnostic.py (het/acorr/spec/compare/rainbow/...): not influence.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels
import statsmodels.api as sm
import torch
from numpy.testing import assert_allclose, assert_almost_equal, assert_equal
from pandas import testing as pdt
from scipy import stats
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.stats import outliers_influence as oi

from torchlinreg.stats.results import ols

torch.set_num_threads(1)

SM = Path(statsmodels.__file__).parent
RESULTS = SM / "stats" / "tests" / "results"


@cache
def _lsdiag():
    with (RESULTS / "influence_lsdiag_R.json").open(encoding="utf-8") as fp:
        return json.load(fp)


@cache
def _measures_r():
    return np.asarray(pd.read_csv(RESULTS / "influence_measures_R.csv", index_col=0))


@cache
def _macro_arrays():
    d = sm.datasets.macrodata.load_pandas().data
    gs_l_realinv = 400 * np.diff(np.log(d["realinv"].values))
    gs_l_realgdp = 400 * np.diff(np.log(d["realgdp"].values))
    lint = d["realint"][:-1].values
    return np.c_[gs_l_realgdp, lint], gs_l_realinv


@cache
def _macro_pandas():
    d = sm.datasets.macrodata.load_pandas().data
    d["gs_l_realinv"] = 400 * np.log(d["realinv"]).diff()
    d["gs_l_realgdp"] = 400 * np.log(d["realgdp"]).diff()
    d["lint"] = d["realint"].shift(1)
    d["tbilrate"] = d["tbilrate"].shift(1)
    d = d.dropna()
    return d[["gs_l_realgdp", "lint"]], d["gs_l_realinv"]


@cache
def _get_duncan_data():
    # statsmodels' get_duncan_data, read from its test module's source: importing the
    # module would register its fixtures and marks here
    import ast

    src = (SM / "stats" / "tests" / "test_diagnostic.py").read_text(encoding="utf-8")
    fn = next(
        node
        for node in ast.parse(src).body
        if isinstance(node, ast.FunctionDef) and node.name == "get_duncan_data"
    )
    namespace: dict = {}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "get_duncan_data", "exec"), namespace)
    return namespace["get_duncan_data"]()


def _duncan_frame():
    endog, exog, labels = _get_duncan_data()
    data = pd.DataFrame(
        np.column_stack((endog, exog)), columns=["y", "const", "var1", "var2"], index=labels
    )
    return endog, exog, labels, data


# ---- test_diagnostic.py: TestDiagnosticG / TestDiagnosticGPandas ------------------------


@pytest.fixture(scope="module", params=["ndarray", "pandas"])
def macro_res(request):
    X, y = _macro_arrays() if request.param == "ndarray" else _macro_pandas()
    return ols(X, y)


def test_basic(macro_res):
    # mainly to check I got the right regression
    # > mkarray(fm$coefficients, "params")
    params = np.array([-9.48167277465485, 4.3742216647032, -0.613996969478989])
    assert_almost_equal(np.asarray(macro_res.params), params, decimal=12)


def test_influence(macro_res):
    res = macro_res
    infl = res.get_influence()
    lsdiag = _lsdiag()

    # basic
    assert_almost_equal(
        np.array(lsdiag["cov.scaled"]).reshape(3, 3), np.asarray(res.cov_params()), decimal=12
    )
    assert_almost_equal(
        np.array(lsdiag["cov.unscaled"]).reshape(3, 3),
        np.asarray(res.normalized_cov_params),
        decimal=12,
    )

    c0, _c1 = infl.cooks_distance
    assert_almost_equal(np.asarray(c0), lsdiag["cooks"], decimal=12)
    assert_almost_equal(np.asarray(infl.hat_matrix_diag), lsdiag["hat"], decimal=12)
    assert_almost_equal(np.asarray(infl.resid_studentized_internal), lsdiag["std.res"], decimal=12)

    dffits, _dffth = infl.dffits
    assert_almost_equal(np.asarray(dffits), lsdiag["dfits"], decimal=12)
    assert_almost_equal(np.asarray(infl.resid_studentized_external), lsdiag["stud.res"], decimal=12)

    infl_r2 = _measures_r()
    assert_almost_equal(np.asarray(infl.dfbetas), infl_r2[:, :3], decimal=12)
    assert_almost_equal(np.asarray(infl.cov_ratio), infl_r2[:, 4], decimal=12)
    # duplicates
    assert_almost_equal(np.asarray(dffits), infl_r2[:, 3], decimal=12)
    assert_almost_equal(np.asarray(c0), infl_r2[:, 5], decimal=12)
    assert_almost_equal(np.asarray(infl.hat_matrix_diag), infl_r2[:, 6], decimal=12)


# ---- test_diagnostic.py: test_influence_wrapped ------------------------------------------


@pytest.mark.parametrize("const", ["fit_intercept", "column"])
def test_influence_wrapped(const):
    d = sm.datasets.macrodata.load_pandas().data
    gs_l_realinv = 400 * np.log(d["realinv"]).diff().dropna()
    gs_l_realgdp = 400 * np.log(d["realgdp"]).diff().dropna()
    lint = d["realint"][:-1]

    # re-index these because they will not conform to lint
    gs_l_realgdp.index = lint.index
    gs_l_realinv.index = lint.index

    data = dict(const=np.ones_like(lint), lint=lint, lrealgdp=gs_l_realgdp)
    # order is important
    exog = pd.DataFrame(data, columns=["const", "lrealgdp", "lint"])
    if const == "fit_intercept":
        res = ols(exog[["lrealgdp", "lint"]], gs_l_realinv)
    else:
        res = ols(exog, gs_l_realinv, fit_intercept=False)

    infl = res.get_influence()

    # smoke test just to make sure it works, results separately tested
    df = infl.summary_frame()
    assert isinstance(df, pd.DataFrame)
    pdt.assert_index_equal(df.index, exog.index)  # statsmodels wraps with the rows' labels

    lsdiag = _lsdiag()
    c0, _c1 = infl.cooks_distance
    assert_almost_equal(np.asarray(c0), lsdiag["cooks"], 12)
    assert_almost_equal(np.asarray(infl.hat_matrix_diag), lsdiag["hat"], 12)
    assert_almost_equal(np.asarray(infl.resid_studentized_internal), lsdiag["std.res"], 12)

    dffits, _dffth = infl.dffits
    assert_almost_equal(np.asarray(dffits), lsdiag["dfits"], 12)
    assert_almost_equal(np.asarray(infl.resid_studentized_external), lsdiag["stud.res"], 12)

    infl_r2 = _measures_r()
    assert_almost_equal(np.asarray(infl.dfbetas), infl_r2[:, :3], decimal=12)
    assert_almost_equal(np.asarray(infl.cov_ratio), infl_r2[:, 4], decimal=12)


# ---- test_diagnostic.py: test_influence_dtype --------------------------------------------


def test_influence_dtype():
    # see #2148  bug when endog is integer
    y = np.ones(20, dtype=np.int64)  # statsmodels' np.ones(20); #2148 was an integer endog
    rs = np.random.RandomState(123)
    x = rs.randn(20, 3)
    res1 = ols(x, y, fit_intercept=False)
    res2 = ols(x, y * 1.0, fit_intercept=False)
    cr1 = res1.get_influence().cov_ratio
    cr2 = res2.get_influence().cov_ratio
    assert_allclose(cr1, cr2, rtol=1e-14)
    # regression test for values
    cr3 = np.array(
        [
            1.22239215, 1.31551021, 1.52671069, 1.05003921, 0.89099323,
            1.57405066, 1.03230092, 0.95844196, 1.15531836, 1.21963623,
            0.87699564, 1.16707748, 1.10481391, 0.98839447, 1.08999334,
            1.35680102, 1.46227715, 1.45966708, 1.13659521, 1.22799038,
        ]
    )  # fmt: skip
    assert_almost_equal(cr1, cr3, decimal=8)


# ---- test_diagnostic.py: test_outlier_influence_funcs (adapted) --------------------------


def test_outlier_influence_funcs():
    rs = np.random.RandomState(38342002)
    x = sm.add_constant(rs.randn(10, 2))
    y = x.sum(1) + rs.randn(10)
    res = ols(x[:, 1:], y)

    # GH3344 : Check alpha has an effect (summary_table's columns 6, 7: the predict interval)
    out_05 = res.get_prediction(x[:, 1:]).summary_frame(alpha=0.05)
    out_01 = res.get_prediction(x[:, 1:]).summary_frame(alpha=0.01)
    assert np.all(np.asarray(out_01["obs_ci_lower"]) <= np.asarray(out_05["obs_ci_lower"]))
    assert np.all(np.asarray(out_01["obs_ci_upper"]) >= np.asarray(out_05["obs_ci_upper"]))

    # addition: the table's numbers are statsmodels'
    ref = oi.summary_table(sm.OLS(y, x).fit(), alpha=0.05)[1]
    assert_allclose(np.asarray(out_05["mean"]), ref[:, 2], rtol=1e-10)
    assert_allclose(np.asarray(out_05["obs_ci_lower"]), ref[:, 6], rtol=1e-10)
    assert_allclose(np.asarray(out_05["obs_ci_upper"]), ref[:, 7], rtol=1e-10)
    infl = res.get_influence()
    assert_allclose(np.asarray(res.resid), ref[:, 8], rtol=1e-10)
    std_err_resid = np.sqrt(res.scale * (1 - infl.hat_matrix_diag))
    assert_allclose(std_err_resid, ref[:, 9], rtol=1e-10)
    assert_allclose(infl.resid_studentized_internal, ref[:, 10], rtol=1e-10)
    assert_allclose(infl.cooks_distance[0], ref[:, 11], rtol=1e-10)

    # the intercept-only model (statsmodels' OLS(y, x[:, 0]))
    res2 = ols(np.empty((10, 0)), y)
    infl = res2.get_influence()
    ref2 = sm.OLS(y, x[:, 0]).fit().get_influence()
    assert_allclose(infl.hat_matrix_diag, ref2.hat_matrix_diag, rtol=1e-12)
    assert_allclose(infl.cooks_distance[0], ref2.cooks_distance[0], rtol=1e-10)
    df = infl.summary_frame()
    cols = ["cooks_d", "standard_resid", "hat_diag", "dffits_internal", "student_resid", "dffits"]
    assert_allclose(df[cols].values, ref2.summary_frame()[cols].values, rtol=1e-10)


# ---- test_diagnostic.py: test_outlier_test (adapted: outlier_test is missing) -------------

RSTUDENT = [
    3.1345185839, -2.397022399, 2.0438046359, -1.9309187757, 1.8870465798,
    -1.76049053, -1.7040324156, 1.6024285876, -1.4332485037, -1.1044851583,
    1.0688582315, 1.018527184, -0.9024219332, -0.9023876471, -0.8830953936,
    0.8265782334, 0.8089220547, 0.7682770197, 0.7319491074, -0.6665962829,
    0.5227352794, -0.5135016547, 0.5083881518, 0.4999224372, -0.4980818221,
    -0.4759717075, -0.429356582, -0.4114056499, -0.3779540862, 0.355687403,
    0.3409200462, 0.3062248646, 0.3038999429, -0.3030815773, -0.1873387893,
    0.1738050251, 0.1424246593, -0.1292266025, 0.1272066463, -0.0798902878,
    0.0788467222, 0.0722556991, 0.050509828, 0.0233215136, 0.0007112055,
]  # fmt: skip
UNADJ_P = [
    0.003177202, 0.021170298, 0.047432955, 0.060427645, 0.06624812,
    0.085783008, 0.095943909, 0.116738318, 0.15936889, 0.275822623,
    0.291386358, 0.314400295, 0.372104049, 0.37212204, 0.382333561,
    0.413260793, 0.423229432, 0.44672537, 0.468363101, 0.508764039,
    0.60397199, 0.610356737, 0.613905871, 0.619802317, 0.621087703,
    0.636621083, 0.669911674, 0.682917818, 0.707414459, 0.723898263,
    0.734904667, 0.760983108, 0.762741124, 0.763360242, 0.852319039,
    0.862874018, 0.887442197, 0.897810225, 0.899398691, 0.936713197,
    0.937538115, 0.942749758, 0.959961394, 0.981506948, 0.999435989,
]  # fmt: skip
BONF_P = [
    0.1429741, 0.9526634, 2.134483, 2.719244, 2.9811654,
    3.8602354, 4.3174759, 5.2532243, 7.1716001, 12.412018,
    13.1123861, 14.1480133, 16.7446822, 16.7454918, 17.2050103,
    18.5967357, 19.0453245, 20.1026416, 21.0763395, 22.8943818,
    27.1787396, 27.4660532, 27.6257642, 27.8911043, 27.9489466,
    28.6479487, 30.1460253, 30.7313018, 31.8336506, 32.5754218,
    33.07071, 34.2442399, 34.3233506, 34.3512109, 38.3543568,
    38.8293308, 39.9348989, 40.4014601, 40.4729411, 42.1520939,
    42.1892152, 42.4237391, 43.1982627, 44.1678127, 44.9746195,
]  # fmt: skip
SORTED_LABELS = [
    'minister', 'reporter', 'contractor', 'insurance.agent', 'machinist', 'store.clerk',
    'conductor', 'factory.owner', 'mail.carrier', 'streetcar.motorman', 'carpenter', 'coal.miner',
    'bartender', 'bookkeeper', 'soda.clerk', 'chemist', 'RR.engineer', 'professor',
    'electrician', 'gas.stn.attendant', 'auto.repairman', 'watchman', 'banker', 'machine.operator',
    'dentist', 'waiter', 'shoe.shiner', 'welfare.worker', 'plumber', 'physician',
    'pilot', 'engineer', 'accountant', 'lawyer', 'undertaker', 'barber',
    'store.manager', 'truck.driver', 'cook', 'janitor', 'policeman', 'architect',
    'teacher', 'taxi.driver', 'author',
]  # fmt: skip


def _outlier_table(res, infl, index):
    # outlier_test(method="b", order=True)'s arithmetic on torchlinreg's numbers
    t = np.asarray(infl.resid_studentized_external)
    unadj = 2 * stats.t.sf(np.abs(t), res.df_resid - 1)
    bonf = np.minimum(unadj * len(t), 1)
    df = pd.DataFrame({"student_resid": t, "unadj_p": unadj, "bonf(p)": bonf}, index=index)
    return df.iloc[np.argsort(unadj, kind="stable")]


def _check_outlier_table(df):
    bonf_p = np.array(BONF_P)
    bonf_p[bonf_p > 1] = 1
    res2 = np.c_[RSTUDENT, UNADJ_P, bonf_p]
    assert_almost_equal(df.values, res2, 7)
    assert_equal(df.index.tolist(), SORTED_LABELS)


def test_outlier_test():
    endog, exog, labels, data = _duncan_frame()
    ndarray_res = ols(np.asarray(exog)[:, 1:], endog)
    _check_outlier_table(_outlier_table(ndarray_res, ndarray_res.get_influence(), labels))

    # the labelled (formula) fit: the measures carry the rows' labels
    res_pd = ols("y ~ 0 + const + var1 + var2", data=data)
    infl = res_pd.get_influence()
    index = infl.summary_frame().index
    pdt.assert_index_equal(index, data.index)
    _check_outlier_table(_outlier_table(res_pd, infl, index))


# ---- test_influence.py: TestInfluenceGaussianGLMOLS ---------------------------------------


class TestInfluenceGaussianGLMOLS:
    @classmethod
    def setup_class(cls):
        data = _duncan_frame()[3]
        res0 = GLM.from_formula("y ~ const + var1 + var2 - 1", data).fit()
        res1 = ols("y ~ const + var1 + var2 - 1", data=data)
        cls.infl1 = res1.get_influence()
        cls.infl0 = res0.get_influence()

    def test_basics(self):
        infl1 = self.infl1
        infl0 = self.infl0

        assert_allclose(infl0.hat_matrix_diag, infl1.hat_matrix_diag, rtol=1e-12)
        assert_allclose(
            infl0.resid_studentized, infl1.resid_studentized_internal, rtol=1e-12, atol=1e-7
        )
        assert_allclose(
            infl0.cooks_distance, infl1.cooks_distance, rtol=1e-7, atol=1e-14
        )  # very small values possible
        assert_allclose(infl0.dfbetas, infl1.dfbetas, rtol=0.1)  # changed
        # OLSInfluence only has looo dfbeta/d_params
        assert_allclose(infl0.d_params, infl1.dfbeta, rtol=1e-9, atol=1e-14)
        assert_allclose(infl0.d_fittedvalues_scaled, infl1.dffits_internal[0], rtol=1e-9)

    def test_summary(self):
        df0 = self.infl0.summary_frame()
        df1 = self.infl1.summary_frame()
        # just some basic check on overlap except for dfbetas
        cols = ["cooks_d", "standard_resid", "hat_diag", "dffits_internal"]
        assert_allclose(df0[cols].values, df1[cols].values, rtol=1e-5)
        pdt.assert_index_equal(df0.index, df1.index)


# ---- test_influence.py: InfluenceCompareExact, with statsmodels' OLSInfluence as infl0 ------


def _compare_cases():
    data = _duncan_frame()[3]
    yield (
        "duncan",
        sm.OLS.from_formula("y ~ const + var1 + var2 - 1", data).fit(),
        ols("y ~ const + var1 + var2 - 1", data=data),
    )
    X, y = _macro_pandas()
    yield "macro", sm.OLS(y, sm.add_constant(X)).fit(), ols(X, y)
    rs = np.random.RandomState(123)
    x = rs.randn(20, 3)  # test_influence_dtype's no-constant fit
    yield "noconst", sm.OLS(np.ones(20), x).fit(), ols(x, np.ones(20), fit_intercept=False)


@pytest.fixture(scope="module", params=["duncan", "macro", "noconst"])
def compare_pair(request):
    for name, res0, res1 in _compare_cases():
        if name == request.param:
            return res0.get_influence(), res1.get_influence()


class TestInfluenceCompareOLS:
    """InfluenceCompareExact's checks (its tolerances) with statsmodels' OLSInfluence as
    infl0: d_params is OLSInfluence's dfbeta, d_fittedvalues_scaled its dffits_internal;
    d_fittedvalues exists in neither."""

    def test_basics(self, compare_pair):
        infl0, infl1 = compare_pair
        assert_allclose(infl0.hat_matrix_diag, infl1.hat_matrix_diag, rtol=1e-12)
        assert_allclose(
            infl0.resid_studentized, infl1.resid_studentized_internal, rtol=1e-12, atol=1e-7
        )
        assert_allclose(
            infl0.cooks_distance[0], infl1.cooks_distance[0], rtol=1e-7, atol=1e-14
        )  # very small values possible
        assert_allclose(infl0.dfbetas, infl1.dfbetas, rtol=1e-9, atol=5e-9)
        assert_allclose(infl0.dfbeta, infl1.dfbeta, rtol=1e-9, atol=5e-9)
        assert_allclose(infl0.dffits_internal[0], infl1.dffits_internal[0], rtol=5e-9, atol=1e-14)

    def test_outlier_measures(self, compare_pair):
        # the measures test_basics does not reach, at its tolerances
        infl0, infl1 = compare_pair
        assert_allclose(infl0.cooks_distance[1], infl1.cooks_distance[1], rtol=1e-7, atol=1e-14)
        assert_allclose(
            infl0.resid_studentized_external, infl1.resid_studentized_external, rtol=1e-9
        )
        assert_allclose(infl0.dffits[0], infl1.dffits[0], rtol=5e-9, atol=1e-14)
        assert_allclose(infl0.dffits[1], infl1.dffits[1], rtol=1e-14)
        assert_allclose(infl0.cov_ratio, infl1.cov_ratio, rtol=1e-9)
        assert_allclose(infl0.sigma2_not_obsi, infl1.sigma2_not_obsi, rtol=1e-9)
        assert_allclose(infl0.resid_press, infl1.resid_press, rtol=1e-9, atol=1e-14)

    def test_looo_params(self, compare_pair):
        # statsmodels' params_not_obsi (n refits) against params - dfbeta
        infl0, infl1 = compare_pair
        params = np.asarray(infl1.results.params)
        assert_allclose(infl0.params_not_obsi, params[None, :] - infl1.dfbeta, rtol=1e-9, atol=5e-9)

    def test_summary(self, compare_pair):
        infl0, infl1 = compare_pair
        df0 = infl0.summary_frame()
        df1 = infl1.summary_frame()
        # statsmodels' frame also has dfb_<name> columns, which torchlinreg's lacks
        cols = list(df1.columns)
        assert_allclose(df0[cols].values, df1.values, rtol=5e-5, atol=1e-14)
        pdt.assert_index_equal(df0.index, df1.index)


# ---- test_influence.py: test_olsinfluence_closed_form_measures (resid_press) --------------


def test_olsinfluence_closed_form_measures():
    rs = np.random.RandomState(20260821)
    n = 60
    exog = np.column_stack([np.ones(n), rs.standard_normal((n, 2))])
    endog = exog @ [1.0, 0.5, -0.5] + rs.standard_normal(n)
    res = ols(exog[:, 1:], endog)
    infl = res.get_influence()

    hii = infl.hat_matrix_diag
    assert_allclose(infl.resid_press, np.asarray(res.resid) / (1 - hii))


# ---- regression/tests/test_glsar_gretl.py: the gretl leverage table -----------------------


def test_gretl_leverage_dffits():
    fpath = SM / "regression" / "tests" / "results" / "leverage_influence_ols_nostars.txt"
    lev = pd.read_csv(fpath, skiprows=3, skipfooter=3, sep=r"\s+", header=None, engine="python")
    lev.columns = ["date", "residual", "leverage", "influence", "DFFITS"]
    X, y = _macro_arrays()
    res = ols(X, y)
    infl = res.get_influence()
    # just rough test, low decimal in Gretl output,
    assert_almost_equal(lev["residual"], np.asarray(res.resid), decimal=3)
    assert_almost_equal(lev["DFFITS"], infl.dffits[0], decimal=3)
    assert_almost_equal(lev["leverage"], infl.hat_matrix_diag, decimal=3)
