"""Port of scikit-learn's ``linear_model/tests/test_base.py`` (LinearRegression).

Ported, for both exact solvers (``qr``, ``gram``): ``test_linear_regression``,
``test_linear_regression_vs_lstsq``, ``test_linear_regression_sample_weights``,
``test_raises_value_error_if_sample_weights_greater_than_1d``, ``test_fit_intercept``,
``test_linear_regression_sparse``, ``test_linear_regression_sparse_equal_dense``,
``test_linear_regression_multiple_outcome``,
``test_linear_regression_sparse_multiple_outcome``, ``test_inplace_data_preprocessing``
(``copy_X=True``; there is no ``copy_X``) and
``test_linear_regression_sample_weight_consistency`` (dense; the peer itself marks CSR
xfail).

Left out: the ``positive=True`` tests (non-negative least squares: a later issue),
``test_raises_value_error_if_positive_and_sparse``, the private-helper tests
(``_preprocess_data``, ``_rescale_data``, ``make_dataset``, ``test_csr_preprocess_data``,
``test_preprocess_copy_data_no_checks``, ``test_dtype_preprocess_data``), the array-API
tests and ``test_predict_proba_lr_large_values`` (classifiers). ``check_estimator`` already
runs in ``tests/test_estimator.py``.

``global_random_seed`` (scikit-learn's fixture, 42 by default) runs over 0 and 42 here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_almost_equal
from scipy import linalg, sparse
from sklearn.datasets import make_regression, make_sparse_uncorrelated
from sklearn.preprocessing import add_dummy_feature

import torchlinreg as tlr
from torchlinreg.errors import RankWarning

EXACT = ["qr", "gram"]
SEEDS = [0, 42]


def _quiet_rank(fn):
    """Run ``fn`` with RankWarning silenced (scikit-learn does not warn; we do, by design)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)
        return fn()


@pytest.mark.parametrize("solver", EXACT)
def test_linear_regression(solver):
    X, Y = [[1], [2]], [1, 2]
    reg = tlr.LinearRegression(solver=solver).fit(X, Y)
    assert_array_almost_equal(reg.coef_, [1])
    assert_array_almost_equal(reg.intercept_, [0])
    assert_array_almost_equal(reg.predict(X), [1, 2])
    # degenerate input: one sample
    X, Y = [[1]], [0]
    reg = _quiet_rank(lambda: tlr.LinearRegression(solver=solver).fit(X, Y))
    assert_array_almost_equal(reg.coef_, [0])
    assert_array_almost_equal(reg.intercept_, [0])
    assert_array_almost_equal(reg.predict(X), [0])


@pytest.mark.parametrize("solver", EXACT)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_regression_vs_lstsq(dtype, solver):
    # scikit-learn #33032: as good as scipy.linalg.lstsq
    rng = np.random.RandomState(1137)
    n_samples = 500_000
    x1 = rng.rand(n_samples)
    x2 = 0.3 * x1 + 0.1 * rng.rand(n_samples)
    X = np.column_stack([x1, x2])
    y = X @ [0.5, 2.0] + 0.1 * rng.rand(n_samples)
    X, y = X.astype(dtype), y.astype(dtype)
    coef_scipy = linalg.lstsq(X, y)[0]
    coef = tlr.LinearRegression(fit_intercept=False, solver=solver).fit(X, y).coef_
    rmse_scipy = np.linalg.norm(y - X @ coef_scipy)
    rmse_ours = np.linalg.norm(y - X @ coef)
    assert rmse_ours == pytest.approx(rmse_scipy, rel=1e-6)


def _sample_weight_case(fit_intercept, seed, container, solver):
    rng = np.random.RandomState(seed)
    n_samples, n_features = 6, 5  # not under-determined
    X = rng.normal(size=(n_samples, n_features))
    y = rng.normal(size=n_samples)
    sample_weight = 1.0 + rng.uniform(size=n_samples)
    reg = tlr.LinearRegression(fit_intercept=fit_intercept, solver=solver)
    reg.fit(container(X), y, sample_weight=sample_weight)
    assert reg.coef_.shape == (X.shape[1],)
    # closed form of weighted least squares
    W = np.diag(sample_weight)
    X_aug = X if not fit_intercept else add_dummy_feature(X)
    coefs2 = linalg.solve(X_aug.T @ W @ X_aug, X_aug.T @ W @ y)
    if not fit_intercept:
        assert_allclose(reg.coef_, coefs2)
    else:
        assert_allclose(reg.coef_, coefs2[1:])
        assert_allclose(reg.intercept_, coefs2[0])


@pytest.mark.parametrize("solver", EXACT)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regression_sample_weights(fit_intercept, seed, solver):
    _sample_weight_case(fit_intercept, seed, np.asarray, solver)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regression_sample_weights_sparse(fit_intercept):
    _sample_weight_case(fit_intercept, 42, sparse.csr_array, "qr")


@pytest.mark.parametrize("n_samples, n_features", [(2, 3), (3, 2)])
def test_sample_weights_scalar_or_1d_are_accepted(n_samples, n_features):
    rng = np.random.RandomState(0)
    X = rng.randn(n_samples, n_features)
    y = rng.randn(n_samples)
    reg = tlr.LinearRegression()
    for sample_weight in (rng.randn(n_samples) ** 2 + 1, 1.0, 2.0):
        _quiet_rank(lambda w=sample_weight: reg.fit(X, y, w))


@pytest.mark.parametrize("solver", EXACT)
def test_fit_intercept(solver):
    # coef_ has the same shape with and without an intercept
    X2 = np.array([[0.38349978, 0.61650022], [0.58853682, 0.41146318]])
    X3 = np.array([[0.27677969, 0.70693172, 0.01628859], [0.08385139, 0.20692515, 0.70922346]])
    y = np.array([1, 1])

    def fit(X, fit_intercept):
        model = tlr.LinearRegression(fit_intercept=fit_intercept, solver=solver)
        return _quiet_rank(lambda: model.fit(X, y))

    lr2_without, lr2_with = fit(X2, False), fit(X2, True)
    lr3_without, lr3_with = fit(X3, False), fit(X3, True)
    assert lr2_with.coef_.shape == lr2_without.coef_.shape
    assert lr3_with.coef_.shape == lr3_without.coef_.shape
    assert lr2_without.coef_.ndim == lr3_without.coef_.ndim


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_regression_sparse(seed):
    rng = np.random.RandomState(seed)
    n = 100
    X = sparse.eye_array(n, n)
    beta = rng.rand(n)
    y = X @ beta
    reg = _quiet_rank(lambda: tlr.LinearRegression().fit(X, y.ravel()))
    assert_array_almost_equal(beta, reg.coef_ + reg.intercept_)
    assert_array_almost_equal(reg.predict(X) - y.ravel(), 0)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regression_sparse_equal_dense(fit_intercept):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 2)
    X[X < 0.1] = 0.0
    y = rng.rand(200)
    dense = tlr.LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    sparse_fit = tlr.LinearRegression(fit_intercept=fit_intercept).fit(sparse.csr_array(X), y)
    assert dense.intercept_ == pytest.approx(sparse_fit.intercept_)
    assert_allclose(dense.coef_, sparse_fit.coef_)


@pytest.mark.parametrize("solver", EXACT)
def test_linear_regression_multiple_outcome(solver):
    X, y = make_regression(random_state=np.random.RandomState(0))  # 100 x 100: wide
    Y = np.vstack((y, y)).T
    reg = tlr.LinearRegression(solver=solver)
    Y_pred = _quiet_rank(lambda: reg.fit(X, Y)).predict(X)
    assert reg.coef_.shape == (2, X.shape[1])
    y_pred = _quiet_rank(lambda: reg.fit(X, y)).predict(X)
    assert_array_almost_equal(np.vstack((y_pred, y_pred)).T, Y_pred, decimal=3)


def test_linear_regression_sparse_multiple_outcome():
    X, y = make_sparse_uncorrelated(random_state=np.random.RandomState(42))
    X = sparse.coo_array(X)
    Y = np.vstack((y, y)).T
    reg = tlr.LinearRegression().fit(X, Y)
    assert reg.coef_.shape == (2, X.shape[1])
    Y_pred = reg.predict(X)
    y_pred = reg.fit(X, y.ravel()).predict(X)
    assert_array_almost_equal(np.vstack((y_pred, y_pred)).T, Y_pred, decimal=3)


@pytest.mark.parametrize("solver", EXACT)
@pytest.mark.parametrize("use_sw", [True, False])
def test_inplace_data_preprocessing(use_sw, solver):
    # fitting never modifies X, y or sample_weight
    rng = np.random.RandomState(42)
    original_X, original_y, original_sw = rng.randn(10, 12), rng.randn(10, 2), rng.rand(10)
    X, y = original_X.copy(), original_y.copy()
    sample_weight = original_sw.copy() if use_sw else None
    reg = tlr.LinearRegression(solver=solver)
    _quiet_rank(lambda: reg.fit(X, y, sample_weight=sample_weight))
    assert_allclose(X, original_X)
    assert_allclose(y, original_y)
    if use_sw:
        assert_allclose(sample_weight, original_sw)


@pytest.mark.parametrize("solver", EXACT)
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize(
    "X_shape, seed",
    [((10, 5), 0), ((10, 5), 42), ((10, 20), 0), ((10, 20), 42), ((100, 100), 42)],
)
def test_linear_regression_sample_weight_consistency(X_shape, seed, fit_intercept, solver):
    rng = np.random.RandomState(seed)
    n_samples, n_features = X_shape
    X = rng.rand(n_samples, n_features)
    y = rng.rand(n_samples)
    params = dict(fit_intercept=fit_intercept, solver=solver)

    def fit(reg, X, y, sample_weight):
        return _quiet_rank(lambda: reg.fit(X, y, sample_weight=sample_weight))

    reg = fit(tlr.LinearRegression(**params), X, y, None)
    coef, intercept = reg.coef_.copy(), reg.intercept_
    # 1) sample_weight=np.ones(..) is sample_weight=None
    fit(reg, X, y, np.ones_like(y))
    assert_allclose(reg.coef_, coef, rtol=1e-6)
    assert_allclose(reg.intercept_, intercept)
    # 2) a scalar weight is sample_weight=None
    fit(reg, X, y, 123.0)
    assert_allclose(reg.coef_, coef, rtol=1e-6)
    assert_allclose(reg.intercept_, intercept)
    # 3) scaling the weights changes nothing
    sample_weight = rng.uniform(low=0.01, high=2, size=X.shape[0])
    fit(reg, X, y, sample_weight)
    coef, intercept = reg.coef_.copy(), reg.intercept_
    fit(reg, X, y, np.pi * sample_weight)
    assert_allclose(reg.coef_, coef, rtol=1e-6)
    assert_allclose(reg.intercept_, intercept)
    # 4) a zero weight is a removed sample
    sample_weight_0 = sample_weight.copy()
    sample_weight_0[-5:] = 0
    y[-5:] *= 1000  # make excluding those samples important
    fit(reg, X, y, sample_weight_0)
    coef_0, intercept_0 = reg.coef_.copy(), reg.intercept_
    fit(reg, X[:-5], y[:-5], sample_weight[:-5])
    assert_allclose(reg.coef_, coef_0, rtol=1e-5)
    assert_allclose(reg.intercept_, intercept_0)
    # 5) a weight of 2 is a repeated sample
    X2 = np.concatenate([X, X[: n_samples // 2]], axis=0)
    y2 = np.concatenate([y, y[: n_samples // 2]])
    sample_weight_1 = sample_weight.copy()
    sample_weight_1[: n_samples // 2] *= 2
    sample_weight_2 = np.concatenate([sample_weight, sample_weight[: n_samples // 2]], axis=0)
    reg1 = fit(tlr.LinearRegression(**params), X, y, sample_weight_1)
    reg2 = fit(tlr.LinearRegression(**params), X2, y2, sample_weight_2)
    assert_allclose(reg1.coef_, reg2.coef_, rtol=1e-6)
    assert_allclose(reg1.intercept_, reg2.intercept_)
