"""Port of scikit-learn's ``linear_model/tests/test_huber.py`` (HuberRegressor).

Ported: ``test_huber_equals_lr_for_high_epsilon`` (against scikit-learn's LinearRegression),
``test_huber_max_iter``, ``test_huber_gradient`` (our ``models.huber.huber_loss_and_grad``,
scikit-learn's layout ``[w, (b,) s]``; ``fit_intercept`` is an argument there, scikit-learn
infers it from the length), ``test_huber_sample_weights`` (dense and CSR; split in two:
the half comparing weights with repeated rows, 5 rows x 20 columns, failed until the fit
tried the raw coordinates too, NOTE [huber in the raw coordinates]),
``test_huber_sparse``, ``test_huber_scaling_invariant``, ``test_huber_and_sgd_same_results``
(against scikit-learn's SGDRegressor), ``test_huber_warm_start``,
``test_huber_better_r2_score`` (against scikit-learn's Ridge) and ``test_huber_bool``.

Left out: nothing; every test of the file applies.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_almost_equal, assert_array_almost_equal, assert_array_equal
from scipy import optimize, sparse
from sklearn.datasets import make_regression
from sklearn.linear_model import LinearRegression, Ridge, SGDRegressor

from torchlinreg import HuberRegressor
from torchlinreg.models.huber import huber_loss_and_grad

torch.set_num_threads(1)

CSR_CONTAINERS = [sparse.csr_matrix, sparse.csr_array]


def make_regression_with_outliers(n_samples=50, n_features=20):
    rng = np.random.RandomState(0)
    X, y = make_regression(n_samples=n_samples, n_features=n_features, random_state=0, noise=0.05)
    num_noise = int(0.1 * n_samples)
    random_samples = rng.randint(0, n_samples, num_noise)
    X[random_samples, :] = 2.0 * rng.normal(0, 1, (num_noise, X.shape[1]))
    return X, y


def test_huber_equals_lr_for_high_epsilon():
    X, y = make_regression_with_outliers()
    lr = LinearRegression()
    lr.fit(X, y)
    huber = HuberRegressor(epsilon=1e3, alpha=0.0)
    huber.fit(X, y)
    assert_almost_equal(huber.coef_, lr.coef_, 3)
    assert_almost_equal(huber.intercept_, lr.intercept_, 2)


def test_huber_max_iter():
    X, y = make_regression_with_outliers()
    huber = HuberRegressor(max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns too (lbfgs stopped)
        huber.fit(X, y)
    assert huber.n_iter_ == huber.max_iter


def test_huber_gradient():
    rng = np.random.RandomState(1)
    X, y = make_regression_with_outliers()
    sample_weight = rng.randint(1, 3, (y.shape[0]))

    def loss_func(x, *args):
        return huber_loss_and_grad(x, *args, len(x) == X.shape[1] + 2)[0]

    def grad_func(x, *args):
        return huber_loss_and_grad(x, *args, len(x) == X.shape[1] + 2)[1]

    for _ in range(5):
        for n_features in [X.shape[1] + 1, X.shape[1] + 2]:
            w = rng.randn(n_features)
            w[-1] = np.abs(w[-1])
            grad_same = optimize.check_grad(loss_func, grad_func, w, X, y, 0.01, 0.1, sample_weight)
            assert_almost_equal(grad_same, 1e-6, 4)


@pytest.mark.parametrize("csr_container", CSR_CONTAINERS)
def test_huber_sample_weights(csr_container):
    X, y = make_regression_with_outliers()
    huber = HuberRegressor()
    huber.fit(X, y)
    huber_coef = huber.coef_
    huber_intercept = huber.intercept_
    scale = max(np.mean(np.abs(huber.coef_)), np.mean(np.abs(huber.intercept_)))

    huber.fit(X, y, sample_weight=np.ones(y.shape[0]))
    assert_array_almost_equal(huber.coef_ / scale, huber_coef / scale)
    assert_array_almost_equal(huber.intercept_ / scale, huber_intercept / scale)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("csr_container", CSR_CONTAINERS)
def test_huber_sample_weights_as_repetitions(csr_container):
    # the second half of test_huber_sample_weights (split so the first half runs)
    X, y = make_regression_with_outliers()
    huber = HuberRegressor()
    huber.fit(X, y)
    scale = max(np.mean(np.abs(huber.coef_)), np.mean(np.abs(huber.intercept_)))

    X, y = make_regression_with_outliers(n_samples=5, n_features=20)
    X_new = np.vstack((X, np.vstack((X[1], X[1], X[3]))))
    y_new = np.concatenate((y, [y[1]], [y[1]], [y[3]]))
    huber.fit(X_new, y_new)
    huber_coef = huber.coef_
    huber_intercept = huber.intercept_
    sample_weight = np.ones(X.shape[0])
    sample_weight[1] = 3
    sample_weight[3] = 2
    huber.fit(X, y, sample_weight=sample_weight)
    assert_array_almost_equal(huber.coef_ / scale, huber_coef / scale)
    assert_array_almost_equal(huber.intercept_ / scale, huber_intercept / scale)

    X_csr = csr_container(X)
    huber_sparse = HuberRegressor()
    huber_sparse.fit(X_csr, y, sample_weight=sample_weight)
    assert_array_almost_equal(huber_sparse.coef_ / scale, huber_coef / scale)


@pytest.mark.parametrize("csr_container", CSR_CONTAINERS)
def test_huber_sparse(csr_container):
    X, y = make_regression_with_outliers()
    huber = HuberRegressor(alpha=0.1)
    huber.fit(X, y)
    X_csr = csr_container(X)
    huber_sparse = HuberRegressor(alpha=0.1)
    huber_sparse.fit(X_csr, y)
    assert_array_almost_equal(huber_sparse.coef_, huber.coef_)
    assert_array_equal(huber.outliers_, huber_sparse.outliers_)


def test_huber_scaling_invariant():
    X, y = make_regression_with_outliers()
    huber = HuberRegressor(fit_intercept=False, alpha=0.0)
    huber.fit(X, y)
    n_outliers_mask_1 = huber.outliers_
    assert not np.all(n_outliers_mask_1)

    huber.fit(X, 2.0 * y)
    n_outliers_mask_2 = huber.outliers_
    assert_array_equal(n_outliers_mask_2, n_outliers_mask_1)

    huber.fit(2.0 * X, 2.0 * y)
    n_outliers_mask_3 = huber.outliers_
    assert_array_equal(n_outliers_mask_3, n_outliers_mask_1)


def test_huber_and_sgd_same_results():
    X, y = make_regression_with_outliers(n_samples=10, n_features=2)
    huber = HuberRegressor(fit_intercept=False, alpha=0.0, epsilon=1.35)
    huber.fit(X, y)
    X_scale = X / huber.scale_
    y_scale = y / huber.scale_
    huber.fit(X_scale, y_scale)
    assert_almost_equal(huber.scale_, 1.0, 3)

    sgdreg = SGDRegressor(
        alpha=0.0,
        loss="huber",
        shuffle=True,
        random_state=0,
        max_iter=10000,
        fit_intercept=False,
        epsilon=1.35,
        tol=None,
    )
    sgdreg.fit(X_scale, y_scale)
    assert_array_almost_equal(huber.coef_, sgdreg.coef_, 1)


def test_huber_warm_start():
    X, y = make_regression_with_outliers()
    huber_warm = HuberRegressor(alpha=1.0, max_iter=10000, warm_start=True, tol=1e-1)
    huber_warm.fit(X, y)
    huber_warm_coef = huber_warm.coef_.copy()
    huber_warm.fit(X, y)
    assert_array_almost_equal(huber_warm.coef_, huber_warm_coef, 1)
    assert huber_warm.n_iter_ == 0


def test_huber_better_r2_score():
    X, y = make_regression_with_outliers()
    huber = HuberRegressor(alpha=0.01)
    huber.fit(X, y)
    linear_loss = np.dot(X, huber.coef_) + huber.intercept_ - y
    mask = np.abs(linear_loss) < huber.epsilon * huber.scale_
    huber_score = huber.score(X[mask], y[mask])
    huber_outlier_score = huber.score(X[~mask], y[~mask])

    ridge = Ridge(alpha=0.01)
    ridge.fit(X, y)
    ridge_score = ridge.score(X[mask], y[mask])
    ridge_outlier_score = ridge.score(X[~mask], y[~mask])
    assert huber_score > ridge_score
    assert ridge_outlier_score > huber_outlier_score


def test_huber_bool():
    X, y = make_regression(n_samples=200, n_features=2, noise=4.0, random_state=0)
    X_bool = X > 0
    HuberRegressor().fit(X_bool, y)
