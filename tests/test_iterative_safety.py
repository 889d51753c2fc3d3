"""No silent failure in iterative fits (issue 10): divergence caught early, the best model
returned, extreme scales, the gap against numpy, the gap where no Gram is formed, and the
ridge solver consistency of scikit-learn's test_ridge.py (our own version).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression
from sklearn.linear_model import Ridge as SkRidge
from sklearn.preprocessing import minmax_scale

import torchlinreg as tlr
from corpus import load
from torchlinreg.iterative import fit as fit_module
from torchlinreg.iterative.fit import fit_iterative


def _t(a):
    return torch.from_numpy(np.array(a, dtype=np.float64))  # a copy: bundled data is read-only


def _standardized(X, y):
    return (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()


# --- divergence ----------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1.02, 1.2])
def test_divergence_is_caught_at_the_first_sustained_rise(factor):
    # gd a little above the stable step 1 / lambda_max (loss units): the loss first falls,
    # then the top direction grows geometrically. Reference: the same loop in numpy.
    X, y = load("diabetes")
    Xs, ys = _standardized(X, y)
    lr = factor / np.linalg.eigvalsh(Xs.T @ Xs / len(X))[-1]
    w, losses = np.zeros(X.shape[1]), []
    for _ in range(60):
        r = Xs @ w - ys
        losses.append((r**2).mean())
        w -= lr * 2 * Xs.T @ r / len(X)
    first = next(
        t
        for t in range(3, 60)
        if all(losses[t - i] > losses[t - i - 1] for i in range(3))
        and losses[t] > min(losses[: t + 1]) * (1 + 1e-3)
    )
    with pytest.raises(tlr.DivergenceError, match=rf"epoch {first}: .*smaller lr") as ei:
        fit_iterative(_t(X), _t(y), solver="gd", lr=lr)
    # 1) caught where the loss first rose three epochs in a row, 2) long before it grew a
    # million times (the former rule)
    assert ei.value.epoch == first and ei.value.solver == "gd"
    assert losses[first] < 1e3 * losses[0]


def test_gd_that_ends_while_its_loss_rises_raises_instead_of_returning_a_worse_model():
    # the same too-large step, stopped by max_iter after two rises (the guard needs three):
    # full-batch gd keeps no copy of its best model, so it must not return the last one
    X, y = load("diabetes")
    Xs, _ = _standardized(X, y)
    lr = 1.02 / np.linalg.eigvalsh(Xs.T @ Xs / len(X))[-1]
    with pytest.raises(tlr.DivergenceError, match=r"rose in the last epochs.*epoch 2"):
        fit_iterative(_t(X), _t(y), solver="gd", lr=lr, max_iter=4, tol=None)
    # stopped before the first rise, it returns its last model, the best
    res = fit_iterative(_t(X), _t(y), solver="gd", lr=lr, max_iter=2, tol=None)
    assert res.n_iter == 2 and res.best_epoch == 2


# --- the model returned ----------------------------------------------------------------------


def _standardized_loss(model_coef, model_intercept, X, y):
    pred = X @ np.ravel(model_coef) + float(np.ravel(model_intercept)[0])
    return ((y - pred) ** 2).mean() / y.var()


def test_the_fit_returns_the_best_model_it_saw_not_the_last():
    # adam with a large step wanders: its last epoch is not its best
    X, y = load("fair")
    res = fit_iterative(
        _t(X), _t(y), solver="adam", lr=0.3, batch_size=8, tol=None, max_iter=12, random_state=0
    )
    history = np.array(res.loss_history)
    assert history.min() < history[-1]  # 1) the run did get worse at the end
    # 2) the model returned is the one of the lowest loss (recomputed from the data)
    got = _standardized_loss(res.coef, res.intercept, X, y)
    assert got == pytest.approx(history.min(), rel=1e-10)
    assert res.best_epoch == int(history.argmin())


def test_early_stopping_on_a_plateau_returns_the_best_model(monkeypatch):
    # no Gram (as above 2048 columns): the plateau rule stops the fit, which then says that
    # its gap is unknown, and returns the best model it saw, not the last
    monkeypatch.setattr(fit_module, "GRAM_MAX_COLUMNS", 2)
    X, y = load("fair")
    with pytest.warns(tlr.ConvergenceWarning, match="gap is not known"):
        res = fit_iterative(_t(X), _t(y), solver="adam", lr=0.3, batch_size=8, random_state=0)
    history = np.array(res.loss_history)
    assert res.stop_reason.startswith("loss improved by less than") and res.gap_kind == "unknown"
    assert np.isnan(res.optimality_gap) and history.min() < history[-1]
    got = _standardized_loss(res.coef, res.intercept, X, y)
    assert got == pytest.approx(history.min(), rel=1e-10)


# --- extreme scales ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_scale", "y_scale"), [(1e160, 1e160), (1e-15, 1.0), (1e200, 1.0), (1.0, 1e-200)]
)
@pytest.mark.parametrize("solver", ["gd", "lbfgs"])
def test_scaled_data_fits_as_the_unscaled_data(solver, x_scale, y_scale):
    # 1) finite coefficients, never all zero; 2) the model, mapped back, has the R2 of the
    # fit on unscaled data (lstsq), within the solver's target, or it says how far it is
    X, y = load("copper")
    model = tlr.LinearRegression(solver=solver, max_iter=5000).fit(X * x_scale, y * y_scale)
    coef = model.coef_ * x_scale / y_scale
    assert np.all(np.isfinite(coef)) and np.any(coef != 0)
    pred = X @ coef + model.intercept_ / y_scale
    ref = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    ref_ssr = ((y - np.c_[X, np.ones(len(X))] @ ref) ** 2).sum()
    gap = (((y - pred) ** 2).sum() - ref_ssr) / ((y - y.mean()) ** 2).sum()
    assert gap <= {"gd": 1e-6, "lbfgs": 1e-10}[solver]
    assert model.optimality_gap_ == pytest.approx(gap, rel=1e-3, abs=1e-12)


# --- the gap against numpy -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("alpha", "weighted", "intercept", "targets"),
    [(0.0, False, True, 1), (5.0, True, True, 2), (0.0, True, False, 1), (5.0, False, False, 3)],
)
def test_reported_gap_is_the_excess_objective_over_the_centred_sst(
    alpha, weighted, intercept, targets
):
    # a fit stopped early (3 epochs) has a visible gap: it must equal, per target, the excess
    # of sum(w r^2) + alpha ||coef||^2 over scikit-learn's Ridge optimum, divided by the
    # centred weighted SST (the R2 gap for OLS with an intercept)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 5)) * [1, 10, 0.1, 3, 7] + 40
    Y = X @ rng.normal(size=(5, targets)) + rng.normal(size=(300, targets)) * 3 + 9
    w = rng.uniform(0.2, 3, 300) if weighted else np.ones(300)
    res = fit_iterative(
        _t(X), _t(Y), sample_weight=_t(w) if weighted else None, solver="gd", alpha=alpha,
        fit_intercept=intercept, max_iter=3, tol=None,
    )  # fmt: skip
    ref = SkRidge(alpha=alpha if alpha else 1e-12, fit_intercept=intercept, solver="cholesky")
    ref.fit(X, Y, sample_weight=w)

    def objective(coef, b):
        r = Y - X @ np.atleast_2d(coef).T - b
        return (w[:, None] * r**2).sum(0) + alpha * (np.atleast_2d(coef) ** 2).sum(1)

    sst = (w[:, None] * (Y - np.average(Y, axis=0, weights=w)) ** 2).sum(0)
    want = (
        objective(res.coef.numpy(), res.intercept.numpy()) - objective(ref.coef_, ref.intercept_)
    ) / sst
    assert res.gap_kind == "exact"
    assert res.optimality_gap == pytest.approx(want.max(), rel=1e-6)


def test_ridge_gap_without_a_gram_is_an_upper_bound(monkeypatch):
    # no Gram (as above 2048 columns), alpha > 0: strong convexity bounds the gap; the bound
    # is above the true gap (numpy) and the fit stops once it is below tol
    monkeypatch.setattr(fit_module, "GRAM_MAX_COLUMNS", 2)
    X, y = load("diabetes")
    res = fit_iterative(_t(X), _t(y), solver="lbfgs", alpha=10.0, tol=1e-8)
    ref = SkRidge(alpha=10.0, solver="cholesky").fit(X, y)

    def objective(coef, b):
        return ((y - X @ np.ravel(coef) - np.ravel(b)[0]) ** 2).sum() + 10.0 * (coef**2).sum()

    true_gap = (
        objective(res.coef.numpy(), res.intercept.numpy()) - objective(ref.coef_, ref.intercept_)
    ) / ((y - y.mean()) ** 2).sum()
    assert res.gap_kind == "bound" and res.converged
    assert true_gap <= res.optimality_gap <= 1e-8


def test_partial_fit_claims_no_gap():
    # each call sees one block: its optimum is not the model's, so no gap and no verdict
    X, y = load("fair")
    model = tlr.LinearRegression(solver="sgd", random_state=0).partial_fit(X[:3000], y[:3000])
    model.partial_fit(X[3000:], y[3000:])
    assert np.isnan(model.optimality_gap_) and model.optimality_gap_kind_ == "unknown"
    assert model.converged_ is False and model.n_iter_ == 2


def test_lbfgs_line_search_has_evaluations_and_moves_from_zeros():
    # torch's LBFGS(max_iter=1) without max_eval gave its line search no evaluation: the
    # loss stayed flat from zeros on raw, collinear data (Longley)
    X, y = load("longley")
    res = fit_iterative(_t(X), _t(y), solver="lbfgs", max_iter=2, tol=None)
    assert res.state["optimizer"]["param_groups"][0]["max_eval"] >= 20
    assert res.loss_history[2] < 0.1 * res.loss_history[0]


# --- scikit-learn's ridge solver consistency, our own version ------------------------------


def _sparse_offset_regression(n_samples, proportion_nonzero, seed):
    # as scikit-learn's test_ridge._make_sparse_offset_regression, dense
    noise = 50.0 if proportion_nonzero > 0.9 else 500.0
    X, y = make_regression(
        n_samples=n_samples, n_features=30, n_informative=10, bias=10.0, noise=noise,
        random_state=seed,
    )  # fmt: skip
    X += 30.0
    mask = np.random.RandomState(seed).binomial(1, proportion_nonzero, X.shape) > 0
    return minmax_scale(X * mask), y


@pytest.mark.parametrize("solver", ["gd", "lbfgs"])
@pytest.mark.parametrize(("n_samples", "proportion_nonzero"), [(20, 0.2), (40, 1.0), (20, 0.1)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ridge_solver_consistency_with_svd_at_1e_6(solver, n_samples, proportion_nonzero, seed):
    # scikit-learn's test_solver_consistency compares each solver with svd at 1e-3 with
    # tol=1e-10; ours at 1e-6 (relative, coefficients and intercept) with a gap of 1e-14
    X, y = _sparse_offset_regression(n_samples, proportion_nonzero, seed)
    ref = SkRidge(alpha=1.0, solver="svd").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning either
        model = tlr.Ridge(alpha=1.0, solver=solver, tol=1e-14, random_state=seed).fit(X, y)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=0, atol=1e-6 * np.abs(ref.coef_).max())
    assert model.intercept_ == pytest.approx(ref.intercept_, rel=1e-6)


def test_a_checkpoint_whose_optimizer_does_not_fit_is_refused_with_what_to_do():
    # a run that trained the intercept (as standardized runs did before NOTE [centred
    # intercept]) cannot continue as one that does not: a clear error, not torch's
    X, y = load("fair")
    saved = []
    fit_iterative(
        _t(X), _t(y), solver="adam", standardize=False, max_iter=2, tol=None,
        callbacks=[tlr.Checkpoint(saved.append)],
    )  # fmt: skip
    with pytest.raises(tlr.ModelFileError, match="start again without resuming"):
        fit_iterative(_t(X), _t(y), solver="adam", max_iter=4, resume_from=saved[-1])


@pytest.mark.parametrize("change", ["zero first chunk", "1e160 later"])
def test_columns_whose_scale_changes_after_the_first_chunk_still_fit(change, monkeypatch):
    # the Gram's column units come from the first 65536 rows: a column that is zero there,
    # or whose later rows are 1e160 (squares overflow), takes the units of all rows
    rng = np.random.default_rng(5)
    n = 70_000
    X = rng.normal(size=(n, 3))
    if change == "zero first chunk":
        X[:65_536, 0] = 0.0
    else:
        X[66_000:, 1] *= 1e160
    tried = []
    real = fit_module._optimum_in
    monkeypatch.setattr(fit_module, "_optimum_in", lambda *a: tried.append(a[4]) or real(*a))
    y = X[:, 0] + X[:, 2] + rng.normal(size=n) + X[:, 1] * 1e-160
    res = fit_iterative(_t(X), _t(y), solver="lbfgs")
    assert res.converged and torch.isfinite(res.coef).all()
    units = np.array([1.0, 1e160 if change == "1e160 later" else 1.0, 1.0])
    Xs = X / units  # the same model in tamer units, for numpy
    A = np.c_[Xs, np.ones(n)]
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    coef = res.coef.numpy()[0] * units
    pred = Xs @ coef + res.intercept.numpy()[0]
    sst = ((y - y.mean()) ** 2).sum()
    gap = (((y - pred) ** 2).sum() - ((y - A @ ref) ** 2).sum()) / sst
    assert gap <= 1e-10 and res.optimality_gap == pytest.approx(gap, abs=1e-12)
    # 1e160 later: the first chunk's units were tried first and overflowed; a zero first
    # chunk goes to all rows at once
    assert len(tried) == (2 if change == "1e160 later" else 1)


def test_without_a_gram_gds_step_comes_from_power_iteration(monkeypatch):
    # 1) the step is 1 / lambda_max whether lambda_max comes from the Gram (eigvalsh) or
    # from power iteration over the rows; 2) numpy's eigvalsh agrees
    X, y = load("diabetes")
    Xs, _ = _standardized(X, y)
    lam = np.linalg.eigvalsh(Xs.T @ Xs / len(X))[-1]
    with_gram = fit_iterative(_t(X), _t(y), solver="gd", max_iter=3, tol=None)
    monkeypatch.setattr(fit_module, "GRAM_MAX_COLUMNS", 2)
    without = fit_iterative(_t(X), _t(y), solver="gd", max_iter=3, tol=None)
    lr = [r.state["optimizer"]["param_groups"][0]["lr"] for r in (with_gram, without)]
    assert lr[0] == pytest.approx(1 / (2 * lam), rel=1e-9)
    assert lr[1] == pytest.approx(lr[0], rel=1e-3)
    assert without.gap_kind == "unknown" and np.isnan(without.optimality_gap)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_the_gap_of_collinear_columns_is_measured_from_the_attainable_optimum(fit_intercept):
    # with a duplicated column the Gram's factor is singular and its residual block is not
    # the optimum: lbfgs at the optimum read a gap of 0.06..0.46 and warned. Invariants:
    # 1) the reported gap equals the true one (numpy lstsq) to 1e-12; 2) the fit converged
    rng = np.random.default_rng(11)
    X = rng.normal(size=(40, 3))
    X = np.c_[X, X[:, :2]]  # rank 3 of 5
    y = X[:, 0] - 2 * X[:, 2] + rng.normal(size=40) + (3.0 if fit_intercept else 0.0)
    res = fit_iterative(_t(X), _t(y), solver="lbfgs", fit_intercept=fit_intercept)
    A = np.c_[X, np.ones(40)] if fit_intercept else X
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    pred = X @ res.coef.numpy()[0] + res.intercept.numpy()[0]
    sst = ((y - y.mean()) ** 2).sum()
    gap = (((y - pred) ** 2).sum() - ((y - A @ ref) ** 2).sum()) / sst
    assert res.optimality_gap == pytest.approx(gap, abs=1e-12)  # 1
    assert res.converged  # 2


@pytest.mark.parametrize("standardize", [True, False])
def test_lbfgs_on_float32_rows_fits_instead_of_diverging(standardize):
    # NOTE [lbfgs curvature test]: the loss scale of 2^32 overflowed float32 in the line
    # search's cubic interpolation, and linnerud (20 x 3, float32, with an intercept)
    # stopped at epoch 1 with a NaN loss, said to have diverged
    from sklearn.datasets import load_linnerud

    X, Y = load_linnerud(return_X_y=True)
    y = Y[:, 0]
    m = tlr.LinearRegression(solver="lbfgs", standardize=standardize).fit(
        X.astype(np.float32), y.astype(np.float32)
    )  # no warning: it reaches float32's tolerance
    assert m.converged_ and m.optimality_gap_ <= 1e-6
    exact = tlr.LinearRegression().fit(X, y).coef_
    np.testing.assert_allclose(m.coef_, exact, rtol=2e-2)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_blocks_of_dataframes_in_another_column_order_are_refused(solver):
    # fitted by position: coefficients [0.137, 0.080, 4.46] for [0.115, 0.218, 0.780],
    # reported converged (an iterative hunt); the names are kept for predict
    import statsmodels.api as sm

    g = sm.datasets.grunfeld.load_pandas().data
    X, y = g[["value", "capital", "year"]].astype(float), g["invest"]
    blocks = [(X[i : i + 50], y[i : i + 50]) for i in range(0, len(y), 50)]
    m = tlr.LinearRegression(solver=solver, random_state=0).fit_blocks(blocks)
    assert list(m.feature_names_in_) == ["value", "capital", "year"]
    swapped = [(b[0][["capital", "value", "year"]], b[1]) if i % 2 else b
               for i, b in enumerate(blocks)]  # fmt: skip
    with pytest.raises(tlr.DataError, match="block 2 has the columns"):
        tlr.LinearRegression(solver=solver, random_state=0).fit_blocks(swapped)
    if solver == "sgd":  # a factory streams: checked block by block
        with pytest.raises(tlr.DataError, match="a block's feature columns are"):
            tlr.LinearRegression(solver=solver, random_state=0).fit_blocks(lambda: iter(swapped))
