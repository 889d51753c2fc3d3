"""One definition of each metric (NOTE [metric definitions] in ``stats/metrics.py``).

``regression_metrics`` (rows in memory), ``StreamingMetrics`` (row blocks) and
``state_metrics`` (the exact state alone) give the same numbers, and they are
scikit-learn's ``mean_squared_error``, ``mean_absolute_error`` and ``r2_score`` with
``sample_weight``, and the uncentred R2 ``1 - sum(w e^2) / sum(w y^2)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from sklearn.datasets import load_diabetes

import torchlinreg as tlr
from torchlinreg.exact.state import LeastSquaresState
from torchlinreg.stats.metrics import StreamingMetrics, regression_metrics


def _reference(Y, P, w) -> dict[str, np.ndarray]:
    raw = {"multioutput": "raw_values", "sample_weight": w}
    ww = np.ones(len(Y)) if w is None else w
    mse = skm.mean_squared_error(Y, P, **raw)
    return {
        "mse": mse,
        "rmse": np.sqrt(mse),
        "mae": skm.mean_absolute_error(Y, P, **raw),
        "r2": skm.r2_score(Y, P, **raw),
        "r2_uncentered": 1.0 - ww @ (Y - P) ** 2 / (ww @ Y**2),
    }


def _problem(seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    Y = X @ rng.normal(size=(3, 2)) + 1e4 + rng.normal(size=(n, 2))  # a large offset
    w = rng.uniform(0.0, 3.0, n)
    w[:40] = 0.0  # a whole block of zero weight, and rows of weight 0 among the others
    return X, Y, w


@pytest.mark.parametrize("weighted", [False, True])
def test_in_memory_and_streamed_metrics_are_scikit_learns(weighted):
    X, Y, w = _problem()
    w = w if weighted else None
    P = Y + 0.1 * X[:, :2] - 0.05
    ref = _reference(Y, P, w)
    # 1) all rows at once
    wt = None if w is None else torch.tensor(w)
    got = regression_metrics(torch.tensor(Y), torch.tensor(P), wt, uncentered=True)
    # 2) in uneven blocks (the first one all zero weight when weighted)
    acc = StreamingMetrics(uncentered=True)
    for lo, hi in [(0, 40), (40, 41), (41, 200), (200, 300)]:
        acc.update(
            torch.tensor(Y[lo:hi]), torch.tensor(P[lo:hi]), None if wt is None else wt[lo:hi]
        )
    streamed = acc.result()
    for key, value in ref.items():
        np.testing.assert_allclose(got[key].numpy(), value, rtol=1e-10, err_msg=key)
        np.testing.assert_allclose(streamed[key].numpy(), value, rtol=1e-10, err_msg=key)
    # 3) r2_uncentered only when asked (a model without an intercept)
    plain = StreamingMetrics()
    plain.update(torch.tensor(Y), torch.tensor(P))
    assert set(plain.result()) == set(regression_metrics(torch.tensor(Y), torch.tensor(P)))
    assert set(plain.result()) == {"mse", "rmse", "mae", "r2"}


@pytest.mark.parametrize("solver", ["qr", "gram"])
@pytest.mark.parametrize("intercept", [True, False])
def test_state_metrics_are_the_metrics_of_the_rows(solver, intercept):
    X, Y, w = _problem(1)
    model = tlr.LinearRegression(solver=solver, fit_intercept=intercept)
    model.fit_blocks([(X[i : i + 64], Y[i : i + 64], w[i : i + 64]) for i in range(0, 300, 64)])
    P = np.asarray(model.predict(X))
    ref = _reference(Y, P, w)
    got = model.state_metrics()
    # 1) with an intercept: r2; without: r2_uncentered (the state has no target mean)
    assert set(got) == ({"mse", "rmse", "r2"} if intercept else {"mse", "rmse", "r2_uncentered"})
    for key, value in got.items():
        np.testing.assert_allclose(value.numpy(), ref[key], rtol=1e-9, err_msg=key)
    # 2) with the targets' moments, the centred r2 of a model without an intercept too
    targets = LeastSquaresState(0, 2, method="gram").absorb(np.zeros((300, 0)), Y, w)
    both = model.state_metrics(target_moments=targets)
    np.testing.assert_allclose(both["r2"].numpy(), ref["r2"], rtol=1e-9)


def test_the_metrics_agree_on_real_data():
    # scikit-learn's diabetes data, weighted, without an intercept
    X, y = load_diabetes(return_X_y=True)
    w = np.linspace(0.2, 2.0, len(y))
    model = tlr.LinearRegression(fit_intercept=False).fit_blocks(
        [(X[i : i + 100], y[i : i + 100], w[i : i + 100]) for i in range(0, len(y), 100)]
    )
    p = np.asarray(model.predict(X))
    ref = _reference(y[:, None], p[:, None], w)
    state = model.state_metrics()
    acc = StreamingMetrics(uncentered=True)
    acc.update(torch.tensor(y), torch.tensor(p), torch.tensor(w))
    for key in ("mse", "rmse", "r2_uncentered"):
        np.testing.assert_allclose(state[key].numpy(), ref[key], rtol=1e-10, err_msg=key)
        np.testing.assert_allclose(acc.result()[key].numpy(), ref[key], rtol=1e-10, err_msg=key)


def test_one_row_gives_nan_r2_and_a_constant_target_follows_scikit_learn():
    one = regression_metrics(torch.tensor([2.0]), torch.tensor([1.0]), uncentered=True)
    assert np.isnan(float(one["r2"])) and np.isnan(float(one["r2_uncentered"]))
    y = np.full(5, 3.0)
    for p in (y, y + 0.5):
        got = regression_metrics(torch.tensor(y), torch.tensor(p))
        assert float(got["r2"]) == skm.r2_score(y, p)
