"""OLS/WLS statistics against statsmodels (1e-8 relative), on real and generated data."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
import torch

from torchlinreg.datasets import load_crops, make_regression
from torchlinreg.errors import DegenerateWarning, RankWarning
from torchlinreg.exact.state import fit_exact
from torchlinreg.stats.results import OLSResults, ols

RTOL = 1e-8
SCALARS = (
    "rsquared",
    "rsquared_adj",
    "fvalue",
    "f_pvalue",
    "ssr",
    "ess",
    "centered_tss",
    "uncentered_tss",
    "mse_resid",
    "mse_model",
    "llf",
    "aic",
    "bic",
    "df_model",
    "df_resid",
    "nobs",
)
ARRAYS = ("params", "bse", "tvalues", "pvalues")


def _close(ours, theirs, rtol=RTOL, what=""):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    scale = np.maximum(np.abs(theirs), np.abs(theirs).max() * 1e-12 + 1e-300)
    err = np.abs(ours - theirs) / scale
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    assert np.all(err <= rtol), (what, float(np.nanmax(err)))


def _statsmodels(X, y, w, intercept, cov_type):
    A = sm.add_constant(X, has_constant="add") if intercept else X
    model = sm.OLS(y, A) if w is None else sm.WLS(y, A, weights=w)
    return model.fit() if cov_type == "nonrobust" else model.fit(cov_type=cov_type)


def _compare(res, ref, X_new, intercept):
    for name in (*SCALARS, *ARRAYS):
        _close(getattr(res, name), getattr(ref, name), what=name)
    _close(res.conf_int(), ref.conf_int(), what="conf_int")
    _close(res.cov_params(), ref.cov_params(), what="cov_params")
    _close(res.fittedvalues, ref.fittedvalues, what="fittedvalues")
    assert np.allclose(res.resid, ref.resid, rtol=1e-8, atol=1e-10 * np.abs(ref.resid).max())
    new = sm.add_constant(X_new, has_constant="add") if intercept else X_new
    theirs = ref.get_prediction(new).summary_frame(alpha=0.1)
    ours = res.get_prediction(X_new).summary_frame(alpha=0.1)
    assert list(ours.columns) == [
        "mean",
        "mean_se",
        "mean_ci_lower",
        "mean_ci_upper",
        "obs_ci_lower",
        "obs_ci_upper",
    ]
    _close(ours.to_numpy(), theirs[list(ours.columns)].to_numpy(), what="summary_frame")


def _data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X, y, _, _ = make_regression(n, 3, seed=seed, noise=1.0)
    y = y + rng.standard_normal(n) * np.abs(X[:, 0])  # heteroscedastic, so HC differs
    return X, y, rng.uniform(0.2, 3.0, n), rng.standard_normal((7, 3)) * 5


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
def test_statistics_match_statsmodels(cov_type, weighted, intercept):
    X, y, w, X_new = _data()
    w = w if weighted else None
    res = ols(X, y, fit_intercept=intercept, sample_weight=w, cov_type=cov_type)
    _compare(res, _statsmodels(X, y, w, intercept, cov_type), X_new, intercept)


@pytest.mark.parametrize("refine", [False, True])
def test_refined_and_r_factor_sums_agree_with_statsmodels(refine):
    # 1) sums read off R (no second pass) and 2) sums from dd residuals: both equal statsmodels
    X, y, w, X_new = _data(n=3000, seed=3)
    state, sol = fit_exact(torch.tensor(X), torch.tensor(y), sample_weight=torch.tensor(w))
    res = OLSResults.from_fit(
        torch.tensor(X), torch.tensor(y), torch.tensor(w), True, state, sol, refine=refine
    )
    _compare(res, _statsmodels(X, y, w, True, "nonrobust"), X_new, True)


def test_longley_real_data_matches_statsmodels():
    data = sm.datasets.longley.load_pandas()
    X, y = data.exog.to_numpy(), data.endog.to_numpy()
    res = ols(X, y, feature_names=list(data.exog.columns))
    _compare(res, _statsmodels(X, y, None, True, "nonrobust"), X[:4] * 1.01, True)
    assert res.param_names == ["const", *data.exog.columns]
    # NIST certifies F = 330.285339234588: ours holds it to rounding, statsmodels to ~1e-12
    assert abs(res.fvalue - 330.285339234588) / 330.285339234588 < 1e-14


def test_longley_robust_matches_statsmodels_to_its_own_accuracy():
    # Longley's design has cond ~ 5e9: statsmodels' pinv-based robust covariance holds
    # ~8 digits (its coefficients ~11) and the Wald F (b' V^-1 b) ~7, so compare at that.
    data = sm.datasets.longley.load_pandas()
    X, y = data.exog.to_numpy(), data.endog.to_numpy()
    res, ref = ols(X, y, cov_type="HC3"), _statsmodels(X, y, None, True, "HC3")
    for name in (*ARRAYS, "rsquared", "llf"):
        _close(getattr(res, name), getattr(ref, name), rtol=1e-7, what=name)
    _close(res.cov_params(), ref.cov_params(), rtol=1e-7)
    _close(res.fvalue, ref.fvalue, rtol=1e-6)


def test_several_targets_equal_separate_fits():
    X, Y, _, _ = make_regression(60, 4, n_targets=3, seed=5, noise=0.5)
    w = np.random.default_rng(5).uniform(0.5, 2.0, 60)
    X_new = X[:5] + 0.5
    for cov_type in ("nonrobust", "HC1"):
        res = ols(X, Y, sample_weight=w, cov_type=cov_type)
        assert res.params.shape == (5, 3) and res.conf_int().shape == (5, 2, 3)
        assert res.cov_params().shape == (5, 5, 3)
        pred = res.get_prediction(X_new).summary_frame()
        for t in range(3):
            ref = _statsmodels(X, Y[:, t], w, True, cov_type)
            for name in (*SCALARS, *ARRAYS):
                value = getattr(res, name)
                _close(value[..., t] if np.ndim(value) else value, getattr(ref, name), what=name)
            _close(res.conf_int()[..., t], ref.conf_int(), what="conf_int")
            theirs = ref.get_prediction(sm.add_constant(X_new)).summary_frame()
            _close(pred["obs_ci_upper"][res.target_names[t]], theirs["obs_ci_upper"], what="pred")


def test_one_d_target_keeps_statsmodels_shapes():
    X, y, _, _ = _data(n=30)
    res = ols(X, y)
    assert res.params.shape == (4,) and res.bse.shape == (4,) and res.conf_int().shape == (4, 2)
    assert np.ndim(res.rsquared) == 0 and res.cov_params().shape == (4, 4)


def test_prediction_on_fitted_rows_uses_training_weights():
    X, y, w, _ = _data(n=40, seed=8)
    ours = ols(X, y, sample_weight=w).get_prediction().summary_frame()
    theirs = _statsmodels(X, y, w, True, "nonrobust").get_prediction().summary_frame()
    _close(ours.to_numpy(), theirs[list(ours.columns)].to_numpy())


def test_crops_two_targets_real_data():
    crops = load_crops()  # float32, 5 rows, 3 inputs: one residual degree of freedom
    res = ols(crops.data, crops.target, target_names=list(crops.target_names))
    for t in range(2):
        ref = sm.OLS(crops.target[:, t].astype(float), sm.add_constant(crops.data.astype(float)))
        ref = ref.fit()
        _close(res.params[:, t], ref.params, rtol=1e-7)
        _close(res.bse[:, t], ref.bse, rtol=1e-7)
    assert "apples" in res.summary() and "oranges" in res.summary()


def test_no_residual_degrees_of_freedom_gives_nan_and_warning():
    X = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
    y = np.array([1.0, 2.0, 4.0])
    res = ols(X, y)  # n == p == 3
    with pytest.warns(DegenerateWarning, match="no residual degrees of freedom"):
        bse = res.bse
    assert np.all(np.isnan(bse)) and np.all(np.isfinite(res.params))
    assert np.all(np.isnan(res.pvalues)) and np.isnan(res.fvalue)


def test_exact_fit_with_spare_rows_gives_zero_spread_not_nan():
    x = np.arange(10.0)[:, None]
    res = ols(x, 3.0 + 2.0 * x[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(res.bse == 0.0) and res.scale == 0.0
    assert np.isinf(res.fvalue) or res.fvalue > 1e25


def test_rank_deficiency_is_reported_with_nan_like_r():
    X, y, _, _ = _data(n=50, seed=2)
    Xd = np.column_stack([X[:, 0], X[:, 1], X[:, 0] + X[:, 1], X[:, 2]])
    with pytest.warns(RankWarning, match="x3"):
        res = ols(Xd, y, feature_names=["x1", "x2", "x3", "x4"])
    assert res.rank == 4 and res.aliased == (3,)
    assert np.isnan(res.params[3]) and np.isnan(res.bse[3])
    ref = _statsmodels(X, y, None, True, "nonrobust")  # the same model without x3
    keep = [0, 1, 2, 4]
    _close(res.params[keep], ref.params)
    _close(res.bse[keep], ref.bse)
    _close(res.rsquared, ref.rsquared)
    assert "rank-deficient" in res.summary() and "x3" in res.summary()


def test_rcond_is_the_users_tolerance():
    X, y, _, _ = _data(n=50, seed=4)
    Xn = np.column_stack([X, X[:, 0] + 1e-9 * np.random.default_rng(0).standard_normal(50)])
    assert ols(Xn, y).rank == 5  # resolvable at the default tolerance
    with pytest.warns(RankWarning):
        assert ols(Xn, y, rcond=1e-6).rank == 4


def test_summary_and_to_dict():
    X, y, _, _ = _data(n=40)
    res = ols(X, y, feature_names=["a", "b", "c"])
    text = res.summary()
    for needle in (
        "Dep. Variable",
        "No. Observations",
        "R-squared",
        "Adj. R-squared",
        "F-statistic",
        "Prob (F-statistic)",
        "Log-Likelihood",
        "AIC",
        "BIC",
        "coef",
        "std err",
        "P>|t|",
        "[0.025",
        "0.975]",
        "const",
        "Condition No.",
    ):
        assert needle in text, needle
    d = json.loads(json.dumps(res.to_dict()))
    _close(d["params"], res.params)
    assert d["param_names"] == ["const", "a", "b", "c"]


def test_bad_cov_type_is_rejected():
    X, y, _, _ = _data(n=20)
    with pytest.raises(ValueError, match="cov_type"):
        ols(X, y, cov_type="HC9")


def test_summary_frame_without_pandas_is_a_dict(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("no pandas here")
        return real_import(name, *args, **kwargs)

    X, y, _, X_new = _data(n=30)
    pred = ols(X, y).get_prediction(X_new)
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    frame = pred.summary_frame()
    assert isinstance(frame, dict) and frame["mean"].shape == (7,)


@pytest.mark.slow
def test_float32_input_does_not_fall_into_the_float32_trap():
    # 1e6 x 5 float32 with column means >> spread: float32 accumulation (scikit-learn's
    # LinearRegression on float32, float32 normal equations) loses the slopes; we
    # accumulate in float64 and keep them.
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    n = 1_000_000
    X = (rng.standard_normal((n, 5)) + rng.uniform(1e3, 1e4, 5)).astype(np.float32)
    y = X.astype(np.float64) @ [1.5, -2.0, 0.5, 3.0, -1.0] + 7 + rng.standard_normal(n)
    y = y.astype(np.float32)
    X64, y64 = X.astype(np.float64), y.astype(np.float64)  # the same numbers, exactly
    ref = np.linalg.lstsq(X64 - X64.mean(0), y64 - y64.mean(), rcond=None)[0]

    def err(coef):
        return float(np.max(np.abs(np.asarray(coef, dtype=np.float64) - ref) / np.abs(ref)))

    sk = err(LinearRegression().fit(X, y).coef_)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    A = torch.cat([torch.ones(n, 1), Xt], 1)
    normal32 = err(torch.linalg.solve(A.T @ A, A.T @ yt)[1:].numpy())
    _, sol = fit_exact(Xt, yt)
    ours = err(sol.coef[0].numpy())
    print(
        f"\nfloat32 trap, max rel. error of slopes: scikit-learn {sk:.1e}, "
        f"float32 normal equations {normal32:.1e}, torchlinreg {ours:.1e}"
    )
    assert normal32 > 1e-3  # the trap is real on this data
    assert ours < 1e-9 and sol.coef.dtype == torch.float64
    # the results object on float32 input equals statsmodels on the float64 values
    res = ols(X[:20000], y[:20000])
    ref_sm = sm.OLS(y64[:20000], sm.add_constant(X64[:20000])).fit()
    _close(res.params, ref_sm.params, rtol=1e-8)


def test_ridge_solutions_have_no_ols_statistics():
    X, y, _, _ = _data(n=30)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    state, sol = fit_exact(Xt, yt, alpha=1.0)
    with pytest.raises(ValueError, match="alpha=0"):
        OLSResults.from_fit(Xt, yt, None, True, state, sol)


def test_well_conditioned_large_fit_pays_no_refinement_pass(monkeypatch):
    import torchlinreg.stats.fitstats as fitstats

    def forbidden(*args, **kwargs):
        raise AssertionError("refinement ran on a well-conditioned fit")

    X, y, _, _ = make_regression(100_000, 10, seed=9, scales=False)
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    monkeypatch.setattr(fitstats, "refine_solution", forbidden)
    res = ols(X, y)  # sums and covariance read off the R factor alone
    for name in ("params", "bse", "rsquared", "fvalue", "llf", "ssr", "ess"):
        _close(getattr(res, name), getattr(ref, name), what=name)


def test_results_from_a_state_absorbed_in_blocks():
    # the estimator's streaming/partial_fit states feed the same results object
    from torchlinreg.exact.state import LeastSquaresState

    X, y, w, X_new = _data(n=90, seed=11)
    Xt, yt, wt = torch.tensor(X), torch.tensor(y), torch.tensor(w)
    state = LeastSquaresState(3, 1)
    for a, b in ((0, 40), (40, 75), (75, 90)):
        state.absorb(Xt[a:b], yt[a:b, None], wt[a:b])
    for refine in (False, True):
        res = OLSResults.from_fit(Xt, yt, wt, True, state, state.solve(), refine=refine)
        _compare(res, _statsmodels(X, y, w, True, "nonrobust"), X_new, True)


def test_one_row_as_a_series_is_one_row_and_alpha_outside_zero_one_is_refused():
    # a predictions hunt: one identical row per feature, labelled by them; conf_int(1.5)
    # gave intervals whose lower end lay above the upper
    import statsmodels.api as sm

    import torchlinreg as tlr

    d = sm.datasets.stackloss.load_pandas().data
    X, y = d[["AIRFLOW", "WATERTEMP", "ACIDCONC"]], d["STACKLOSS"]
    res = tlr.ols(X, y)
    one = res.get_prediction(X.iloc[5]).summary_frame()
    ref = sm.OLS(y, sm.add_constant(X)).fit().get_prediction(sm.add_constant(X).iloc[5:6])
    assert list(one.index) == [5]
    np.testing.assert_allclose(one["mean_se"], ref.summary_frame()["mean_se"], rtol=1e-10)
    for alpha in (1.5, 0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="alpha must lie between 0 and 1"):
            res.conf_int(alpha)
        with pytest.raises(ValueError, match="alpha must lie between 0 and 1"):
            res.get_prediction(X.iloc[:2]).summary_frame(alpha=alpha)
        with pytest.raises(ValueError, match="alpha must lie between 0 and 1"):
            tlr.ols(X, y, groups=d["AIRFLOW"] > 60).conf_int(alpha)


def test_nested_comparisons_refuse_other_weights_and_a_swapped_order():
    # OLS against WLS of the same rows: F 21215, p 0 (statsmodels too); swapped: df -1
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    import torchlinreg as tlr
    from torchlinreg.errors import DataError
    from torchlinreg.stats.hypothesis import anova_lm

    d = sm.datasets.fair.load_pandas().data
    small, big = "affairs ~ age", "affairs ~ age + yrs_married"
    wls = tlr.ols(small, data=d, sample_weight=d["educ"])
    full = tlr.ols(big, data=d)
    for call in (full.compare_f_test, full.compare_lr_test, lambda m: anova_lm(m, full)):
        with pytest.raises(DataError, match="not fitted on the same targets and weights"):
            call(wls)
    restricted = tlr.ols(small, data=d)
    with pytest.raises(DataError, match=r"larger\.compare_f_test"):
        restricted.compare_f_test(full)
    ref = smf.ols(big, d).fit().compare_f_test(smf.ols(small, d).fit())
    np.testing.assert_allclose(full.compare_f_test(restricted), ref, rtol=1e-9)
