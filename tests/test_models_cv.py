"""Cross-validation from fold states, against scikit-learn's *CV given the same folds.

Invariants:
1. Given the same (train, test) splits, alpha_, alphas_ and mse_path_ equal scikit-learn's
   (LassoCV, ElasticNetCV with a list of l1_ratio, RidgeCV's best R2), weighted or not;
   RidgeCV's default leave-one-out equals scikit-learn's.
2. Hashed folds from one pass: each held-out MSE equals the MSE of the fold's rows under
   the model trained on the other rows (computed from the rows, independently).
3. fit_blocks deals rows to the same folds whatever the block sizes.
4. Groups never straddle folds.
5. The new estimators pass scikit-learn's check_estimator.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.linear_model as sk
from sklearn.datasets import load_diabetes
from sklearn.model_selection import KFold

from torchlinreg.estimator.penalized import ElasticNet, Lasso
from torchlinreg.estimator.penalized_cv import ElasticNetCV, LassoCV, RidgeCV
from torchlinreg.models.crossval import FoldStates, group_keys, hash_folds

X_DIA, Y_DIA = load_diabetes(return_X_y=True)
SPLITS = list(KFold(5, shuffle=True, random_state=0).split(X_DIA))


@pytest.mark.parametrize("weighted", [False, True])
def test_lasso_cv_equals_scikit_learn_given_the_same_folds(weighted):
    w = np.random.default_rng(2).uniform(0.1, 3.0, len(Y_DIA)) if weighted else None
    ours = LassoCV(cv=SPLITS, alphas=40, tol=1e-12, max_iter=100_000).fit(X_DIA, Y_DIA, w)
    ref = sk.LassoCV(cv=SPLITS, alphas=40, tol=1e-12, max_iter=100_000)
    ref.fit(X_DIA, Y_DIA, sample_weight=w)
    assert ours.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)  # 1.
    np.testing.assert_allclose(ours.alphas_, ref.alphas_, rtol=1e-13)
    np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, rtol=1e-9)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6 * np.abs(ref.coef_).max())


def test_elastic_net_cv_picks_the_same_l1_ratio_and_alpha():
    kw = dict(l1_ratio=[0.2, 0.7, 1.0], alphas=25, cv=SPLITS, tol=1e-12, max_iter=100_000)
    ours = ElasticNetCV(**kw).fit(X_DIA, Y_DIA)
    ref = sk.ElasticNetCV(**kw).fit(X_DIA, Y_DIA)
    assert (ours.l1_ratio_, ours.alpha_) == pytest.approx((ref.l1_ratio_, ref.alpha_), rel=1e-12)
    assert ours.mse_path_.shape == ref.mse_path_.shape == (3, 25, 5)
    np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, rtol=1e-9)


def test_ridge_cv_equals_scikit_learn_grid_search_given_the_same_folds():
    alphas = np.logspace(-4, 2, 25)
    Y = np.c_[Y_DIA, Y_DIA**0.5]
    for y in (Y_DIA, Y):
        ours = RidgeCV(alphas=alphas, cv=SPLITS).fit(X_DIA, y)
        ref = sk.RidgeCV(alphas=alphas, cv=SPLITS).fit(X_DIA, y)
        assert ours.alpha_ == ref.alpha_  # 1.
        assert ours.best_score_ == pytest.approx(ref.best_score_, rel=1e-10)
        np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-8)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
def test_ridge_cv_leave_one_out_equals_scikit_learn(weighted, intercept):
    w = np.random.default_rng(8).uniform(0.2, 3.0, len(Y_DIA)) if weighted else None
    alphas = np.logspace(-5, 2, 30)
    for X, y in ((X_DIA, np.c_[Y_DIA, Y_DIA**0.5]), (X_DIA[:8], Y_DIA[:8])):  # and n < p
        sw = None if w is None else w[: len(y)]
        ours = RidgeCV(alphas=alphas, fit_intercept=intercept).fit(X, y, sw)
        ref = sk.RidgeCV(alphas=alphas, fit_intercept=intercept).fit(X, y, sample_weight=sw)
        assert ours.alpha_ == ref.alpha_  # 1. cv=None: leave-one-out, as scikit-learn
        assert ours.best_score_ == pytest.approx(ref.best_score_, rel=1e-10)
        np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-8, atol=1e-8)


def test_hashed_folds_score_each_fold_from_its_own_rows():
    folds = hash_folds(np.arange(len(Y_DIA)), 5, seed=3)
    m = LassoCV(cv=5, random_state=3, alphas=[1.0, 0.1], tol=1e-12)
    m.fit_blocks([(X_DIA[i : i + 50], Y_DIA[i : i + 50]) for i in range(0, len(Y_DIA), 50)])
    for f in range(5):
        test = folds == f
        fit = sk.Lasso(alpha=0.1, tol=1e-12, max_iter=100_000).fit(X_DIA[~test], Y_DIA[~test])
        mse = np.mean((fit.predict(X_DIA[test]) - Y_DIA[test]) ** 2)
        assert m.mse_path_[1, f] == pytest.approx(mse, rel=1e-8)  # 2.
    # 3. one block or many: the same folds
    one = LassoCV(cv=5, random_state=3, alphas=[1.0, 0.1], tol=1e-12).fit_blocks([(X_DIA, Y_DIA)])
    np.testing.assert_allclose(one.mse_path_, m.mse_path_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::torchlinreg.ConvergenceWarning")
def test_in_memory_hashed_folds_are_balanced_and_seeded():
    a = LassoCV(cv=5, random_state=0).fit(X_DIA[:23], Y_DIA[:23])
    sizes = [s.n_samples for s in a._folds.states]
    assert sorted(sizes) == [4, 4, 5, 5, 5]
    b = LassoCV(cv=5, random_state=1).fit(X_DIA[:23], Y_DIA[:23])
    assert not np.allclose(a.mse_path_, b.mse_path_)


def test_groups_stay_in_one_fold():
    import torch

    groups = np.repeat([f"g{i}" for i in range(36)], 12)  # 36 groups of 12 rows
    X, Y = torch.as_tensor(X_DIA[:432]), torch.as_tensor(Y_DIA[:432])[:, None]
    folds = FoldStates(4, seed=0).absorb(X, Y, groups=groups)
    per_fold = np.array([s.n_samples for s in folds.states])
    expected = np.bincount(hash_folds(group_keys(groups), 4, 0), minlength=4)
    np.testing.assert_array_equal(per_fold, expected)  # 4. folds by the group's hash
    assert (per_fold % 12 == 0).all()  # 4. whole groups only


def test_too_many_folds_for_the_rows_is_one_clear_error():
    with pytest.raises(ValueError, match="n_samples=3"):
        LassoCV(cv=5).fit(X_DIA[:3], Y_DIA[:3])


@pytest.mark.parametrize(
    "estimator",
    [Lasso(), ElasticNet(), LassoCV(), ElasticNetCV(), RidgeCV()],
    ids=["Lasso", "ElasticNet", "LassoCV", "ElasticNetCV", "RidgeCV"],
)
def test_scikit_learn_check_estimator(estimator):
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BaseEstimator not inherited; tiny fits may not converge
        results = check_estimator(estimator, on_fail=None)
    failed = [
        (r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"
    ]
    assert not failed  # 5.


def _brute_force_loo(X, y, alpha):
    """Leave-one-out errors by refitting scikit-learn's Ridge (Cholesky on the centred
    Gram, float64) on each n - 1 rows; the columns at one scale first, the penalty carried
    along, so every direction is resolved (independent of the SVD under test)."""
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        Xk, yk = X[keep], y[keep]
        xm, ym = Xk.mean(0), yk.mean()
        D = np.linalg.norm(Xk - xm, axis=0)
        Z = (Xk - xm) / D
        coef = np.linalg.solve(Z.T @ Z + alpha * np.diag(1 / D**2), Z.T @ (yk - ym)) / D
        errors.append((y[i] - ym - (X[i] - xm) @ coef) ** 2)
    return float(np.mean(errors))


def test_ridge_cv_leave_one_out_resolves_columns_of_far_apart_scales():
    # NOTE [leave-one-out at any scale]: stackloss in units 1e-5, 3e2 and 1e10; the small
    # column's direction fell below the SVD's resolution and was dropped, though it weighs
    # 0.6 at alpha = 1e-8: mse 30.9 against 13.7, alpha_ 1000 chosen for 1e-8, silently
    import statsmodels.api as sm

    d = sm.datasets.stackloss.load_pandas().data
    X = d.drop(columns="STACKLOSS").to_numpy(float) * [1e-5, 10**2.5, 1e10]
    y = d["STACKLOSS"].to_numpy(float)
    alphas = [1e-8, 1e-3, 1.0, 1e3]
    m = RidgeCV(alphas=alphas).fit(X, y)
    ref = [_brute_force_loo(X, y, a) for a in alphas]
    np.testing.assert_allclose(m.mse_path_, ref, rtol=1e-8)
    assert m.alpha_ == 1e-8


def test_a_refit_drops_what_the_earlier_fit_learned():
    # a RidgeCV refit with cv=None kept the r2_path_ of an earlier cv=3 fit
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=60)
    m = RidgeCV(cv=3).fit(X, y)
    assert hasattr(m, "r2_path_")
    m.set_params(cv=None).fit(X, y)
    assert not hasattr(m, "r2_path_") and m.mse_path_.shape == (3,)
