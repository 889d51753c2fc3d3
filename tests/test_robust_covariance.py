"""HC0-HC3 covariances: digits on Longley against a 50-digit reference, leverage-1 rows,
the t/z labels of the summary and the JSON, use_t= and info_criteria against statsmodels."""

from __future__ import annotations

import json
import warnings

import mpmath as mp
import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from torchlinreg.errors import DegenerateWarning
from torchlinreg.stats.results import COV_TYPES, ols

HC_TYPES = ("HC0", "HC1", "HC2", "HC3")


def _longley():
    data = sm.datasets.longley.load_pandas()
    return data.exog.to_numpy(), data.endog.to_numpy()


def _mp_hc_standard_errors(X: np.ndarray, y: np.ndarray) -> dict[str, list]:
    """HC0-HC3 standard errors in 50-digit arithmetic, from the decimal data.

    ``repr`` of each float is the shortest decimal that reads back to it: for data read from
    a decimal file (Longley's) it is the file's number, so the reference is the exact answer
    for the published data, not for its binary rounding.
    """
    with mp.workdps(50):
        n, p = X.shape[0], X.shape[1] + 1
        A = mp.matrix([[mp.mpf(1)] + [mp.mpf(repr(float(v))) for v in row] for row in X])
        Y = mp.matrix([mp.mpf(repr(float(v))) for v in y])
        C = mp.inverse(A.T * A)
        e = Y - A * (C * (A.T * Y))
        AC = A * C
        h = [sum(AC[i, a] * A[i, a] for a in range(p)) for i in range(n)]
        factor = {
            "HC0": [mp.mpf(1)] * n,
            "HC1": [mp.mpf(n) / (n - p)] * n,
            "HC2": [1 / (1 - h[i]) for i in range(n)],
            "HC3": [1 / (1 - h[i]) ** 2 for i in range(n)],
        }
        out = {}
        for cov_type, f in factor.items():
            # the sandwich C (A' diag(u) A) C: its diagonal is sum_i u_i (AC)_ij^2
            out[cov_type] = [
                mp.sqrt(sum(f[i] * e[i] ** 2 * AC[i, j] ** 2 for i in range(n))) for j in range(p)
            ]
        return out


def _digits(ours, ref) -> list[float]:
    with mp.workdps(50):
        return [
            float(-mp.log10(abs((mp.mpf(float(v)) - r) / r)))
            for v, r in zip(np.asarray(ours), ref, strict=True)
        ]


def test_longley_hc_standard_errors_have_nine_digits_against_a_50_digit_reference():
    # Longley's design has condition number ~5e9: an explicit (X'X)^-1 in the sandwich left
    # 7.8-8.0 digits (statsmodels' pinv 8.8-10.5); Q from a QR of the design keeps 11-12.
    X, y = _longley()
    ref = _mp_hc_standard_errors(X, y)
    for cov_type in HC_TYPES:
        digits = _digits(ols(X, y, cov_type=cov_type).bse, ref[cov_type])
        # 1) every standard error of every HC type has at least 9 correct digits
        assert min(digits) >= 9.0, (cov_type, digits)


def test_longley_hc_results_agree_with_statsmodels():
    # statsmodels holds 8.8-10.5 digits of these standard errors, so 1e-8 is its accuracy
    X, y = _longley()
    for cov_type in HC_TYPES:
        res = ols(X, y, cov_type=cov_type)
        ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type=cov_type)
        np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-8)
        np.testing.assert_allclose(res.pvalues, ref.pvalues, rtol=1e-7)
        # 2) the whole covariance, off-diagonal entries included, at the diagonal's scale
        scale = np.outer(ref.bse, ref.bse)
        assert np.max(np.abs(res.cov_params() - ref.cov_params()) / scale) < 1e-8


def _with_dummies(n: int, rows: list[int], seed: int = 0):
    """A design whose dummy columns are 1 on one row each: those rows have leverage 1."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    for i in rows:
        dummy = np.zeros(n)
        dummy[i] = 1.0
        X = np.column_stack([X, dummy])
    y = X[:, 0] - 2 * X[:, 1] + rng.standard_normal(n) * (1 + np.abs(X[:, 0]))
    return X, y


def test_leverage_one_rows_give_nan_hc2_hc3_and_one_warning_naming_them():
    X, y = _with_dummies(30, [4, 17])
    for cov_type in ("HC2", "HC3"):
        res = ols(X, y, cov_type=cov_type)
        with pytest.warns(DegenerateWarning) as caught:
            bse = res.bse
            res.cov_params(), res.conf_int(), res.get_prediction(X[:3]).se_mean
        # 1) one warning, naming the rows (counting from 1) and what to do
        assert len(caught) == 1
        message = str(caught[0].message)
        assert "rows 5, 18" in message and "HC0" in message and "drop" in message
        # 2) 0/0 in the definition: the covariance is NaN, the parameters are not
        assert np.all(np.isnan(bse)) and np.all(np.isfinite(res.params))


def test_leverage_one_rows_leave_hc0_hc1_finite_and_equal_to_statsmodels():
    X, y = _with_dummies(30, [4, 17])
    for cov_type in ("HC0", "HC1"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = ols(X, y, cov_type=cov_type)
            bse = res.bse
        ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type=cov_type)
        # the leverage-1 rows' residuals are 0 and add nothing: statsmodels is right here
        np.testing.assert_allclose(bse, ref.bse, rtol=1e-9)


def test_high_but_not_one_leverage_is_not_flagged():
    # x far out: leverage 1 - 3e-7, a real number that HC3 divides by; no warning, and
    # the result agrees with statsmodels
    rng = np.random.default_rng(3)
    x = np.r_[rng.standard_normal(19), 1e4]
    y = 2 * x + rng.standard_normal(20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = ols(x[:, None], y, cov_type="HC3")
        bse = res.bse
    ref = sm.OLS(y, sm.add_constant(x)).fit(cov_type="HC3")
    assert 1 - ref.get_influence().hat_matrix_diag.max() < 1e-6
    np.testing.assert_allclose(bse, ref.bse, rtol=1e-6)


@settings(max_examples=12, deadline=None)
@given(
    n=st.integers(6, 40),
    picks=st.lists(st.integers(0, 1000), min_size=1, max_size=3, unique=True),
    targets=st.integers(1, 2),
    weighted=st.booleans(),
)
def test_leverage_one_rows_are_found_exactly(n, picks, targets, weighted):
    rows = sorted({p % n for p in picks})
    X, y = _with_dummies(n, rows, seed=n)
    if X.shape[1] + 2 > n:  # keep a residual degree of freedom beyond the dummies
        return
    Y = np.column_stack([y, y[::-1]])[:, :targets]
    w = np.linspace(0.5, 2.0, n) if weighted else None
    res = ols(X, Y, sample_weight=w, cov_type="HC3")
    with pytest.warns(DegenerateWarning) as caught:
        bse = res.bse
    # 1) exactly the dummies' rows are named; 2) HC3 is NaN for every target
    named = str(caught[0].message).split("rows" if len(rows) > 1 else "row", 1)[1]
    assert named.split(" (")[0].strip() == ", ".join(str(i + 1) for i in rows)
    assert np.all(np.isnan(bse))
    # 3) without the leverage-1 rows nothing is flagged
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(np.isfinite(ols(X[:, :2], Y, sample_weight=w, cov_type="HC3").bse))


def _our_labels(text: str) -> str:
    header = next(line for line in text.splitlines() if line.split()[:2] == ["coef", "std"])
    return " ".join(header.split())


def _statsmodels_labels(ref) -> str:
    return " ".join(h for h in ref.summary().tables[1].data[0] if h)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_summary_labels_follow_statsmodels_for_each_cov_type(cov_type):
    X, y = _longley()
    kw = {"cluster": {"groups": np.arange(len(y)) % 8}, "HAC": {"maxlags": 2}}.get(cov_type)
    res = ols(X, y, cov_type=cov_type, cov_kwds=kw)
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type=cov_type, cov_kwds=kw)
    # 1) the coefficient table's header is statsmodels' (t for nonrobust, z for HC)
    assert _our_labels(res.summary()) == _statsmodels_labels(ref)
    # 2) the JSON names the same statistic
    d = json.loads(json.dumps(res.to_dict()))
    statistic = "t" if cov_type == "nonrobust" else "z"
    assert d["statistic"] == statistic and d["use_t"] is (statistic == "t")


@pytest.mark.parametrize(("cov_type", "use_t"), [("HC3", True), ("nonrobust", False)])
def test_use_t_keyword_matches_statsmodels(cov_type, use_t):
    X, y = _longley()
    res = ols(X, y, cov_type=cov_type, use_t=use_t)
    ref = sm.OLS(y, sm.add_constant(X)).fit(cov_type=cov_type, use_t=use_t)
    # 1) p-values, intervals and F test use the distribution asked for
    assert res.use_t is use_t
    np.testing.assert_allclose(res.pvalues, ref.pvalues, rtol=1e-7)
    # an interval's end near 0 has cancelled digits: measure its error in standard errors
    assert np.all(np.abs(res.conf_int() - ref.conf_int()) <= 1e-8 * ref.bse[:, None])
    # 2) the labels follow
    assert _our_labels(res.summary()) == _statsmodels_labels(ref)
    assert res.to_dict()["statistic"] == ("t" if use_t else "z")


@pytest.mark.parametrize("crit", ["aic", "bic", "aicc", "hqic"])
@pytest.mark.parametrize("dk_params", [0, 1])
def test_info_criteria_match_statsmodels(crit, dk_params):
    X, y = _longley()
    ours = ols(X, y).info_criteria(crit, dk_params=dk_params)
    ref = sm.OLS(y, sm.add_constant(X)).fit().info_criteria(crit, dk_params=dk_params)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    # several targets: one value per target, each that target's own
    Y = np.column_stack([y, y**0.5])
    both = ols(X, Y).info_criteria(crit, dk_params)
    alone = ols(X, Y[:, 1]).info_criteria(crit, dk_params)
    assert both.shape == (2,)
    np.testing.assert_allclose(both[1], alone, rtol=1e-12)


def test_info_criteria_rejects_an_unknown_criterion():
    X, y = _longley()
    with pytest.raises(ValueError, match="aicc"):
        ols(X, y).info_criteria("cp")


def test_residuals_are_exact_to_rounding_where_the_float64_sum_cancels():
    from fractions import Fraction

    import torch

    from torchlinreg.stats.fitstats import residuals

    # fitted values ~1e8 next to residuals ~1e-2: a float64 sum keeps about 8 digits
    rng = np.random.default_rng(7)
    n = 50
    A = np.column_stack([np.ones(n), 1e8 + rng.uniform(0, 1e3, n)])
    b = np.array([[-3.7e5], [1.0037]])
    Y = A @ b + rng.standard_normal((n, 1)) * 1e-2
    exact = np.array(
        [
            float(Fraction(Y[i, 0]) - sum(Fraction(A[i, j]) * Fraction(b[j, 0]) for j in range(2)))
            for i in range(n)
        ]
    )[:, None]
    eps = np.finfo(float).eps
    plain = Y - A @ b
    assert np.max(np.abs(plain - exact) / np.abs(exact)) > 1e3 * eps  # the trap is real
    ours = residuals(*(torch.tensor(a) for a in (A, Y, b))).numpy()
    # 1) every residual to within rounding of itself
    assert np.all(np.abs(ours - exact) <= 2 * eps * np.abs(exact))


def test_hc1_without_residual_degrees_of_freedom_is_nan_with_a_warning():
    X = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
    y = np.array([1.0, 2.0, 4.0])  # n == p: every residual is 0, nobs / df_resid undefined
    res = ols(X, y, cov_type="HC1")
    with pytest.warns(DegenerateWarning, match="no residual degrees of freedom"):
        bse = res.bse
    assert np.all(np.isnan(bse))
    # HC0 is defined (0) there: all rows have leverage 1 but HC0 does not divide by 1 - h
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(np.abs(ols(X, y, cov_type="HC0").bse) < 1e-12)
