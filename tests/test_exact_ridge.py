"""Ridge in the exact engine: the closed form for every alpha, the minimum-norm limit as
alpha -> 0, an honest warning where the factor cannot decide, and one alpha per target.

References: ``(Xc' W Xc + alpha I)^-1 Xc' W yc`` in float64 numpy on well-conditioned data,
the same at 40 digits with mpmath on Longley and on ill-conditioned data,
``numpy.linalg.lstsq`` (minimum norm) for the limit, and scikit-learn's Ridge for
per-target alpha.
"""

from __future__ import annotations

import itertools
import re
import warnings

import mpmath
import numpy as np
import pytest
import statsmodels.datasets.longley as longley
from sklearn.linear_model import Ridge as SkRidge

import torchlinreg as tlr
from torchlinreg.errors import RankWarning
from torchlinreg.exact.state import LeastSquaresState, fit_exact

METHODS = ("qr", "gram")


def _centred(X, Y, w, fit_intercept):
    """The weighted, centred (when fitting an intercept) problem, rows scaled by sqrt(w)."""
    w = np.ones(len(X)) if w is None else w
    if fit_intercept:
        X = X - w @ X / w.sum()
        Y = Y - w @ Y / w.sum()
    s = np.sqrt(w)[:, None]
    return s * X, s * Y


def _closed_form(X, Y, w, alpha, fit_intercept=True):
    Xc, Yc = _centred(X, Y, w, fit_intercept)
    return np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ Yc).T


def _min_norm(X, Y, w=None, fit_intercept=True):
    Xc, Yc = _centred(X, Y, w, fit_intercept)
    return np.linalg.lstsq(Xc, Yc, rcond=None)[0].T


def _rel(a, b):
    return np.abs(np.asarray(a) - b).max() / np.abs(b).max()


def _mp_closed_form(X, Y, alpha, fit_intercept=True):
    """Centred ridge at 40 digits (mpmath) from the float64 data as stored, (k, d)."""
    Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
    with mpmath.workdps(40):
        n, p = X.shape
        Xm = mpmath.matrix([[mpmath.mpf(v) for v in row] for row in X])
        Ym = mpmath.matrix([[mpmath.mpf(v) for v in row] for row in Y])
        if fit_intercept:
            for M in (Xm, Ym):
                for j in range(M.cols):
                    mean = mpmath.fsum(M[i, j] for i in range(n)) / n
                    for i in range(n):
                        M[i, j] -= mean
        A, XtY = Xm.T * Xm + alpha * mpmath.eye(p), Xm.T * Ym
        cols = [mpmath.lu_solve(A, XtY.column(j)) for j in range(Y.shape[1])]
        return np.array([[float(b[i]) for i in range(p)] for b in cols])


def _bound(record):
    """The relative error a warning promises (its 'up to X')."""
    found = [re.search(r"up to ([0-9.e+-]+)", str(w.message)) for w in record]
    return max((float(m.group(1)) for m in found if m), default=0.0)


@pytest.mark.parametrize("alpha", [1e-16, 1e-12])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_tiny_alpha_on_wide_data_gives_the_minimum_norm_solution(method, fit_intercept, alpha):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(10, 30)), rng.normal(size=(10, 2))
    _, sol = fit_exact(X, Y, alpha=alpha, method=method, fit_intercept=fit_intercept)
    # 1. the alpha -> 0 limit (gram was off by 58 at 1e-16); no warning: fewer rows than
    #    features makes the null directions exactly null
    assert _rel(sol.coef, _min_norm(X, Y, None, fit_intercept)) < 1e-8
    # 2. which is the closed form too (exact arithmetic: the null directions are exactly null)
    if alpha == 1e-12:
        assert _rel(sol.coef, _mp_closed_form(X, Y, alpha, fit_intercept)) < 1e-9


@pytest.mark.parametrize("method", METHODS)
def test_small_alphas_approach_the_minimum_norm_solution_continuously(method):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(8, 12)), rng.normal(size=(8, 1))
    limit = _min_norm(X, y)
    gaps = []
    for alpha in (1e-2, 1e-4, 1e-6, 1e-8):
        _, sol = fit_exact(X, y, alpha=alpha, method=method)
        assert _rel(sol.coef, _mp_closed_form(X, y, alpha)) < 1e-10
        gaps.append(_rel(sol.coef, limit))
    # the distance to the limit shrinks in proportion to alpha
    assert all(b < a / 50 for a, b in itertools.pairwise(gaps))


@pytest.mark.parametrize("method", METHODS)
def test_tiny_alpha_on_collinear_columns_warns_and_gives_the_limit(method):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 4))
    X = np.c_[X, X[:, 0], -0.5 * X[:, 2]]  # exactly collinear in float64
    y = rng.normal(size=(60, 1))
    with pytest.warns(RankWarning, match=r"ridge: 2 of 6 features .*: 4, 5"):
        _, sol = fit_exact(X, y, alpha=1e-14, method=method)
    assert _rel(sol.coef, _min_norm(X, y)) < 1e-9


@pytest.mark.parametrize("alpha", [1e-2, 1.0, 1e2])
@pytest.mark.parametrize("method", METHODS)
def test_ridge_on_collinear_columns_matches_the_closed_form(method, alpha):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 4))
    X = np.c_[X, 2 * X[:, 1]]
    Y = rng.normal(size=(50, 2))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _, sol = fit_exact(X, Y, alpha=alpha, method=method)
    err = _rel(sol.coef, _closed_form(X, Y, None, alpha))
    assert err < 1e-9
    # 1. qr resolves these columns to 1e-13: nothing to warn about
    # 2. gram cannot tell near from exact collinearity below ~1e-6 and says so; its bound holds
    assert (method == "qr") == (not record)
    assert err <= max(_bound(record), 1e-9)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_ridge_matches_the_closed_form_from_tiny_to_huge_alpha(method, fit_intercept, weighted):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(80, 5)) * [1.0, 3.0, 0.5, 10.0, 1.0] + [0.0, 5.0, -2.0, 0.0, 1.0]
    Y = rng.normal(size=(80, 2)) + X[:, :2]
    w = rng.uniform(0.1, 2.0, 80) if weighted else None
    for alpha in (1e-12, 1e-6, 1e-2, 1.0, 1e2, 1e6, 1e10):
        _, sol = fit_exact(
            X, Y, sample_weight=w, alpha=alpha, method=method, fit_intercept=fit_intercept
        )
        ref = _closed_form(X, Y, w, alpha, fit_intercept)  # cond < 100: float64 is exact enough
        assert _rel(sol.coef, ref) < 1e-11


@pytest.mark.parametrize("alpha", [1e-6, 1.0, 1e3, 1e6])
@pytest.mark.parametrize("method", METHODS)
def test_longley_ridge_matches_mpmath(method, alpha):
    data = longley.load_pandas().data
    y = data["TOTEMP"].to_numpy(float)
    X = data.drop(columns="TOTEMP").to_numpy(float)
    _, sol = fit_exact(X, y, alpha=alpha, method=method)
    ref = _mp_closed_form(X, y, alpha)[0]
    digits = -np.log10(np.maximum(np.abs(sol.coef[0].numpy() - ref) / np.abs(ref), 1e-300))
    assert digits.min() > (12 if method == "qr" else 11)  # measured 12.1-14.7 and 11.9-12.4


@pytest.mark.parametrize("method", METHODS)
def test_ill_conditioned_ridge_warns_with_a_bound_that_holds(method):
    rng = np.random.default_rng(5)
    U = np.linalg.qr(rng.normal(size=(40, 4)))[0]
    V = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    X = U @ np.diag([1.0, 1e-2, 1e-4, 1e-6]) @ V.T  # scaled condition number about 1e6
    y = X @ rng.normal(size=4) + 1e-3 * rng.normal(size=40)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _, sol = fit_exact(X, y, alpha=1e-14, method=method)
    err = _rel(sol.coef[0].numpy(), _mp_closed_form(X, y, 1e-14)[0])
    if method == "gram":  # eps * kappa^2: about 1e-5, and it says so
        assert any("may be off by up to" in str(w.message) for w in record)
        assert 1e-8 < err <= _bound(record)
    else:  # Householder: eps * kappa, far below the warning level
        assert not record and err < 1e-8


# ---------------------------------------------------------------- one alpha per target


@pytest.mark.parametrize("method", METHODS)
def test_alpha_per_target_equals_separate_fits(method):
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    alphas = [0.0, 0.5, 20.0]
    _, sol = fit_exact(X, Y, alpha=alphas, method=method)
    for t, a in enumerate(alphas):
        _, one = fit_exact(X, Y[:, t], alpha=a, method=method)
        np.testing.assert_allclose(sol.coef[t].numpy(), one.coef[0].numpy(), rtol=1e-12)
        np.testing.assert_allclose(sol.intercept[t].numpy(), one.intercept[0].numpy(), rtol=1e-12)
        np.testing.assert_allclose(sol.rss[t].numpy(), one.rss[0].numpy(), rtol=1e-12)
    assert sol.alpha == (0.0, 0.5, 20.0)


@pytest.mark.parametrize("bad", [[1.0, 2.0], [1.0, -1.0, 2.0], [1.0, np.nan, 1.0]])
def test_alpha_per_target_is_validated(bad):
    state = LeastSquaresState(2, 3).absorb(np.eye(4)[:, :2], np.ones((4, 3)))
    with pytest.raises(ValueError, match="alpha"):
        state.solve(alpha=bad)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("solver", METHODS)
def test_ridge_with_alpha_per_target_matches_scikit_learn(solver, fit_intercept, weighted):
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(60, 4)), rng.normal(size=(60, 3))
    w = rng.uniform(0.2, 2.0, 60) if weighted else None
    alpha = np.array([0.1, 1.0, 100.0])
    ours = tlr.Ridge(alpha=alpha, solver=solver, fit_intercept=fit_intercept).fit(X, Y, w)
    ref = SkRidge(alpha=alpha, fit_intercept=fit_intercept, solver="svd").fit(X, Y, w)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-10, atol=1e-12)


def test_ridge_alpha_of_one_value_broadcasts_and_a_wrong_length_is_refused():
    rng = np.random.default_rng(8)
    X, Y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    one = tlr.Ridge(alpha=np.array([3.0])).fit(X, Y)
    np.testing.assert_allclose(one.coef_, tlr.Ridge(alpha=3.0).fit(X, Y).coef_, rtol=1e-14)
    with pytest.raises(ValueError, match="alpha has 3 values for 2 targets"):
        tlr.Ridge(alpha=np.array([1.0, 2.0, 3.0])).fit(X, Y)
    with pytest.raises(ValueError, match="'alpha' parameter"):
        tlr.Ridge(alpha=np.array([1.0, -2.0])).fit(X, Y)
    with pytest.raises(ValueError, match="'alpha' parameter"):
        tlr.Ridge(alpha=np.ones((2, 1))).fit(X, Y)


@pytest.mark.parametrize("solver", ["gd", "sgd", "adam", "lbfgs"])
def test_iterative_solvers_refuse_alpha_per_target(solver):
    X, Y = np.eye(4)[:, :2], np.ones((4, 2))
    with pytest.raises(ValueError, match="one alpha per target needs an exact solver"):
        tlr.Ridge(alpha=np.array([1.0, 2.0]), solver=solver).fit(X, Y)


def test_alpha_per_target_survives_partial_fit_and_a_model_file(tmp_path):
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    alpha = np.array([0.5, 5.0])
    whole = tlr.Ridge(alpha=alpha).fit(X, Y)
    parts = tlr.Ridge(alpha=alpha).partial_fit(X[:20], Y[:20]).partial_fit(X[20:], Y[20:])
    np.testing.assert_allclose(parts.coef_, whole.coef_, rtol=1e-12)
    tlr.save(whole, tmp_path / "m.safetensors")
    loaded = tlr.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.alpha, alpha)
    np.testing.assert_allclose(loaded.coef_, whole.coef_, rtol=1e-14)
    with pytest.raises(AttributeError, match="alpha=0"):
        loaded.results_  # noqa: B018


def test_summary_command_shows_alpha_per_target(tmp_path, capsys):
    from cli_helpers import cli

    rng = np.random.default_rng(10)
    model = tlr.Ridge(alpha=np.array([0.5, 5.0])).fit(rng.normal(size=(30, 2)), np.ones((30, 2)))
    path = tlr.save(model, tmp_path / "m.safetensors")
    result = cli(capsys, "summary", str(path), "--json")
    assert result.code == 0, result.err
    assert result.json["params"]["alpha"] == [0.5, 5.0]


def test_ols_statistics_refuse_a_ridge_solution_with_alpha_per_target():
    from torchlinreg.stats.fitstats import results_from_fit, results_from_state

    X, Y = np.random.default_rng(11).normal(size=(20, 2)), np.ones((20, 2))
    state, sol = fit_exact(X, Y, alpha=[0.0, 1.0])
    with pytest.raises(ValueError, match="unpenalised"):
        results_from_fit(X, Y, None, True, state, sol)
    with pytest.raises(ValueError, match="unpenalised"):
        results_from_state(state, sol, weighted=False, y_was_1d=False)
