"""Lasso and elastic net from the exact state, against scikit-learn's coordinate descent.

Invariants:
1. At tol=1e-10 the objective is no worse than scikit-learn's by more than 1e-9 relative,
   and the coefficients agree to 1e-6 (relative to the largest).
2. Weighted fits follow scikit-learn's sample_weight semantics (objective over sum(w)).
3. fit, fit_blocks and several targets give the same coefficients.
4. A fit that stops early warns with the duality gap it reached.
5. lasso_path / enet_path equal scikit-learn's paths; a state stands in for X.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.linear_model as sk
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes

import torchlinreg as tlr
from torchlinreg.estimator.penalized import ElasticNet, Lasso
from torchlinreg.models.coordinate import enet_gram, objective
from torchlinreg.models.paths import enet_path, lasso_path

X_DIA, Y_DIA = load_diabetes(return_X_y=True)


def _sk_objective(X, y, coef, b, alpha, l1_ratio, w=None):
    w = np.ones(len(y)) if w is None else w
    r = y - X @ coef - b
    return (w @ r**2) / (2 * w.sum()) + alpha * (
        l1_ratio * np.abs(coef).sum() + 0.5 * (1 - l1_ratio) * coef @ coef
    )


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha,l1_ratio", [(0.01, 1.0), (0.05, 1.0), (0.003, 0.3), (0.2, 0.8)])
def test_diabetes_matches_scikit_learn_objective_and_coefficients(alpha, l1_ratio, weighted):
    w = np.random.default_rng(1).uniform(0.1, 3.0, len(Y_DIA)) if weighted else None
    ours = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-10, max_iter=100_000)
    ours.fit(X_DIA, Y_DIA, w)
    ref = sk.ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-10, max_iter=1_000_000)
    ref.fit(X_DIA, Y_DIA, sample_weight=w)
    f_ours = _sk_objective(X_DIA, Y_DIA, ours.coef_, ours.intercept_, alpha, l1_ratio, w)
    f_ref = _sk_objective(X_DIA, Y_DIA, ref.coef_, ref.intercept_, alpha, l1_ratio, w)
    assert f_ours <= f_ref * (1 + 1e-9)  # 1.
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6 * scale)  # 1.
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-6 * scale)
    assert ours.dual_gap_ <= 1e-10 * np.average(
        (Y_DIA - np.average(Y_DIA, weights=w)) ** 2, weights=w
    )


def test_lasso_is_elastic_net_with_l1_ratio_one_and_zeroes_weak_features():
    a = Lasso(alpha=0.5).fit(X_DIA, Y_DIA)
    b = sk.Lasso(alpha=0.5, tol=1e-4).fit(X_DIA, Y_DIA)
    assert set(np.flatnonzero(a.coef_)) == set(np.flatnonzero(b.coef_))
    assert "l1_ratio" not in a.get_params()


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(5, 40),
    d=st.integers(1, 8),
    log_alpha=st.floats(-4, 0),
    l1_ratio=st.sampled_from([0.1, 0.5, 1.0]),
    positive=st.booleans(),
    intercept=st.booleans(),
)
def test_random_problems_match_scikit_learn(seed, n, d, log_alpha, l1_ratio, positive, intercept):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))  # correlated columns
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    alpha = 10.0**log_alpha
    kw = dict(alpha=alpha, l1_ratio=l1_ratio, positive=positive, fit_intercept=intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn may not converge; we compare objectives
        ours = ElasticNet(**kw, tol=1e-10, max_iter=100_000).fit(X, y)
        ref = sk.ElasticNet(**kw, tol=1e-10, max_iter=100_000).fit(X, y)
    b_o = ours.intercept_ if intercept else 0.0
    b_r = ref.intercept_ if intercept else 0.0
    f_ours = _sk_objective(X, y, ours.coef_, b_o, alpha, l1_ratio)
    f_ref = _sk_objective(X, y, ref.coef_, b_r, alpha, l1_ratio)
    assert f_ours <= f_ref + 1e-9 * abs(f_ref)  # 1.
    if positive:
        assert (ours.coef_ >= 0).all()


def test_fit_blocks_and_several_targets_equal_one_fit_per_target():
    Y = np.c_[Y_DIA, 3 * Y_DIA - 50 * X_DIA[:, 2]]
    full = Lasso(alpha=0.05, tol=1e-12, max_iter=10_000).fit(X_DIA, Y)
    blocks = [(X_DIA[i : i + 100], Y[i : i + 100]) for i in range(0, len(Y), 100)]
    streamed = Lasso(alpha=0.05, tol=1e-12, max_iter=10_000, solver="qr").fit_blocks(blocks)
    assert full.coef_.shape == (2, X_DIA.shape[1]) and full.dual_gap_.shape == (2,)
    for t in range(2):
        one = sk.Lasso(alpha=0.05, tol=1e-12, max_iter=100_000).fit(X_DIA, Y[:, t])
        np.testing.assert_allclose(full.coef_[t], one.coef_, atol=1e-6 * np.abs(one.coef_).max())
    np.testing.assert_allclose(streamed.coef_, full.coef_, rtol=1e-9, atol=1e-9)  # 3.
    np.testing.assert_allclose(streamed.predict(X_DIA), full.predict(X_DIA), rtol=1e-9)


def test_warm_start_continues_from_the_last_fit():
    m = Lasso(alpha=0.05, warm_start=True, tol=1e-12, max_iter=100_000).fit(X_DIA, Y_DIA)
    first = m.coef_.copy()
    m.fit(X_DIA, Y_DIA)
    assert m.n_iter_ == 0  # already optimal: the gap is checked before any sweep
    np.testing.assert_array_equal(m.coef_, first)


def test_stopping_early_warns_with_the_gap():
    with pytest.warns(tlr.ConvergenceWarning, match="duality gap"):  # 4.
        m = Lasso(alpha=1e-4, tol=1e-16, max_iter=1).fit(X_DIA, Y_DIA)
    assert m.dual_gap_ > 0


def test_cd_solver_stops_on_the_gap_of_a_closed_form_problem():
    # Orthonormal design: the lasso solution is soft-thresholding of q.
    q = np.array([3.0, -0.5, 1.2])
    res = enet_gram(np.eye(3), q, 20.0, 1.0, 0.0, tol=1e-14)
    np.testing.assert_allclose(res.coef, [2.0, 0.0, 0.2], atol=1e-15)
    assert res.converged and abs(res.gap) <= 1e-14 * 20
    assert objective(np.eye(3), q, 20.0, res.coef, 1.0, 0.0) <= objective(
        np.eye(3), q, 20.0, res.coef + 1e-6, 1.0, 0.0
    )


@pytest.mark.parametrize("l1_ratio", [1.0, 0.4])
def test_paths_equal_scikit_learn_paths(l1_ratio):
    ours = enet_path(X_DIA, Y_DIA, l1_ratio=l1_ratio, alphas=30, tol=1e-12, max_iter=100_000)
    ref = sk.enet_path(X_DIA, Y_DIA, l1_ratio=l1_ratio, alphas=30, tol=1e-12, max_iter=100_000)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-14)  # 5. the same grid
    np.testing.assert_allclose(ours[1], ref[1], atol=1e-6 * np.abs(ref[1]).max())
    state = tlr.LeastSquaresState(X_DIA.shape[1], 1, fit_intercept=False).absorb(X_DIA, Y_DIA)
    from_state = lasso_path(state, alphas=ours[0], tol=1e-12, max_iter=100_000)
    if l1_ratio == 1.0:
        np.testing.assert_allclose(from_state[1], ours[1], rtol=1e-9, atol=1e-9)


def test_model_files_round_trip_and_refuse_edited_weights(tmp_path):
    from torchlinreg.files.io import load_tensors, save_tensors

    Y = np.c_[Y_DIA, -2 * Y_DIA]
    for m in (Lasso(alpha=0.1), ElasticNet(alpha=0.01, l1_ratio=0.3, solver="qr")):
        m.fit(X_DIA, Y)
        path = tmp_path / "m.safetensors"
        tlr.save(m, path)
        back = tlr.load(path)
        assert type(back) is type(m) and back.get_params() == m.get_params()
        np.testing.assert_array_equal(back.predict(X_DIA), m.predict(X_DIA))
        tensors, meta = load_tensors(str(path))
        tensors["weight"] = tensors["weight"].clone()
        tensors["weight"][0, 2] *= 1.001  # a small edit of an active coefficient
        save_tensors(str(tmp_path / "edited.safetensors"), tensors, meta)
        with pytest.raises(tlr.ModelFileError, match=r"not the .* solution"):
            tlr.load(tmp_path / "edited.safetensors")
