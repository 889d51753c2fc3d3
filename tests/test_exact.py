"""The exact engine against numpy.linalg.lstsq, scikit-learn and NIST Filip."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch as safetensors_torch
import torch
from sklearn.linear_model import LinearRegression, Ridge

from torchlinreg.datasets import make_regression
from torchlinreg.errors import DataError, ModelFileError, RankWarning
from torchlinreg.exact import linalg
from torchlinreg.exact.state import LeastSquaresState, default_rcond, fit_exact

METHODS = ("qr", "gram")
NIST = Path(__file__).parent / "data" / "nist-strd"


def _problem(n=400, d=6, k=1, seed=0, weighted=False):
    X, Y, _, _ = make_regression(n, d, k, seed=seed)
    Y = Y.reshape(n, k)
    w = np.random.default_rng(seed + 100).uniform(0.2, 3.0, n) if weighted else None
    return X, Y, w


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


def _weighted_rss(X, Y, w, coef, intercept):
    resid = Y - X @ np.asarray(coef).T - np.asarray(intercept)
    w = np.ones(len(X)) if w is None else w
    return (w[:, None] * resid**2).sum(axis=0)


def _signed(R):
    """R with rows flipped to a non-negative diagonal: the unique factor of A.T @ A."""
    sign = torch.where(R.diagonal() < 0, -1.0, 1.0).to(R.dtype)
    return R * sign[:, None]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_targets", [1, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_ols_matches_sklearn_linear_regression(method, fit_intercept, n_targets, weighted):
    X, Y, w = _problem(k=n_targets, weighted=weighted)
    _, sol = fit_exact(X, Y, sample_weight=w, fit_intercept=fit_intercept, method=method)
    ref = LinearRegression(fit_intercept=fit_intercept).fit(X, Y, sample_weight=w)
    assert sol.coef.dtype == torch.float64
    assert sol.coef.shape == (n_targets, 6)
    assert sol.intercept.shape == (n_targets,)
    assert _rel(sol.coef, ref.coef_) < 1e-8
    assert _rel(sol.intercept, np.broadcast_to(ref.intercept_, (n_targets,))) < 1e-8
    rss = _weighted_rss(X, Y, w, ref.coef_, ref.intercept_)
    assert _rel(sol.rss, rss) < 1e-8
    assert (sol.rank, sol.aliased) == (6, ())


@pytest.mark.parametrize("alpha", [0.5, 300.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_ridge_matches_sklearn_ridge(method, fit_intercept, weighted, alpha):
    X, Y, w = _problem(k=2, weighted=weighted, seed=3)
    _, sol = fit_exact(
        X, Y, sample_weight=w, fit_intercept=fit_intercept, method=method, alpha=alpha
    )
    ref = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="cholesky", tol=1e-12)
    ref.fit(X, Y, sample_weight=w)
    assert _rel(sol.coef, ref.coef_) < 1e-8
    assert _rel(sol.intercept, np.broadcast_to(ref.intercept_, (2,))) < 1e-8
    assert _rel(sol.rss, _weighted_rss(X, Y, w, ref.coef_, ref.intercept_)) < 1e-8


def test_ridge_on_duplicated_column_needs_no_rank_warning():
    X, Y, _ = _problem(seed=4)
    Xd = np.column_stack([X, X[:, 1]])
    _, sol = fit_exact(Xd, Y, alpha=2.0)  # filterwarnings=error: a warning would fail here
    ref = Ridge(alpha=2.0, solver="cholesky").fit(Xd, Y)
    assert _rel(sol.coef, ref.coef_) < 1e-8
    assert sol.aliased == (6,)


@pytest.mark.parametrize("method", METHODS)
def test_merge_of_blocks_equals_single_absorb(method):
    X, Y, w = _problem(n=600, k=2, weighted=True, seed=5)
    whole = LeastSquaresState(6, 2, method=method).absorb(X, Y, w)
    expected = whole.solve()
    splits = [(0, 7, 250, 251, 600), (0, 300, 600), (0, 599, 600)]
    for cuts in splits:
        parts = [
            LeastSquaresState(6, 2, method=method).absorb(X[a:b], Y[a:b], w[a:b])
            for a, b in itertools.pairwise(cuts)
        ]
        for states in (parts, parts[::-1]):
            merged = LeastSquaresState(6, 2, method=method)
            for s in states:
                merged.merge(s)
            for combined in (merged, LeastSquaresState.merge_all(states)):
                sol = combined.solve()
                assert combined.n_samples == 600
                assert combined.sum_weights == pytest.approx(w.sum(), rel=1e-12)
                assert _rel(sol.coef, expected.coef) < 1e-10
                assert _rel(sol.intercept, expected.intercept) < 1e-10
                # Gram's rss cancels ||y||^2 against the fit: eps * ||y||^2 / rss ~ 1e-10 here.
                assert _rel(sol.rss, expected.rss) < (1e-10 if method == "qr" else 1e-8)
                R, R0 = _signed(combined.r_factor()), _signed(whole.r_factor())
                assert _rel(R, R0) < 1e-10


@pytest.mark.parametrize("method", METHODS)
def test_block_rows_do_not_change_the_answer(method):
    X, Y, w = _problem(n=500, k=3, weighted=True, seed=6)
    ref = LeastSquaresState(6, 3, method=method).absorb(X, Y, w).solve()
    for rows in (1, 13, 64, 499):
        state = LeastSquaresState(6, 3, method=method, block_rows=rows).absorb(X, Y, w)
        assert _rel(state.solve().coef, ref.coef) < 1e-10


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_r_factor_reproduces_the_weighted_augmented_gram(method, fit_intercept):
    X, Y, w = _problem(n=300, k=2, weighted=True, seed=7)
    state = LeastSquaresState(6, 2, fit_intercept=fit_intercept, method=method)
    R = state.absorb(X, Y, w).r_factor()
    cols = [np.ones((300, 1))] if fit_intercept else []
    A = np.sqrt(w)[:, None] * np.hstack([*cols, X, Y])
    assert torch.equal(R, R.triu())
    G, ref = (R.T @ R).numpy(), A.T @ A
    # every target on its own: the cross products of two targets are not kept by the QR
    # state (NOTE [one big right-hand side]), which gram states do keep
    if method == "qr":
        t = len(cols) + 6
        off = ~np.eye(2, dtype=bool)
        G[t:, t:][off] = ref[t:, t:][off] = 0.0
    assert _rel(G, ref) < 1e-12


@pytest.mark.parametrize("method", METHODS)
def test_sample_weight_invariants(method):
    X, Y, _ = _problem(n=120, k=2, seed=8)
    base = fit_exact(X, Y, method=method)[1]
    # 1) weights of ones equal no weights
    ones = fit_exact(X, Y, sample_weight=np.ones(120), method=method)[1]
    assert _rel(ones.coef, base.coef) < 1e-12
    assert _rel(ones.intercept, base.intercept) < 1e-12
    # 2) weight 2 on a row equals that row repeated twice
    w = np.ones(120)
    w[:10] = 2.0
    twice = fit_exact(X, Y, sample_weight=w, method=method)[1]
    rep = fit_exact(np.vstack([X, X[:10]]), np.vstack([Y, Y[:10]]), method=method)[1]
    assert _rel(twice.coef, rep.coef) < 1e-10
    assert _rel(twice.intercept, rep.intercept) < 1e-10
    assert _rel(twice.rss, rep.rss) < 1e-10
    # 3) a zero weight equals removing the row
    w = np.ones(120)
    w[5:15] = 0.0
    state, zero = fit_exact(X, Y, sample_weight=w, method=method)
    kept = fit_exact(np.delete(X, range(5, 15), 0), np.delete(Y, range(5, 15), 0))[1]
    assert _rel(zero.coef, kept.coef) < 1e-10
    assert _rel(zero.intercept, kept.intercept) < 1e-10
    assert (state.n_samples, state.n_nonzero) == (120, 110)


@pytest.mark.parametrize("method", METHODS)
def test_float32_input_gives_float64_accuracy(method):
    X, Y, _, _ = make_regression(2000, 5, 2, seed=9, dtype=np.float32)
    _, sol = fit_exact(torch.from_numpy(X), torch.from_numpy(Y), method=method)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    ref = LinearRegression().fit(X64, Y64)
    assert sol.coef.dtype == torch.float64
    assert _rel(sol.coef, ref.coef_) < 1e-9
    assert _rel(sol.intercept, ref.intercept_) < 1e-9


def test_large_offsets_only_move_the_intercept():
    X, Y, _ = _problem(n=300, k=1, seed=10)
    shift = np.array([1e7, -3e6, 0.0, 5e5, 1e8, 2.0])
    _, sol = fit_exact(X, Y)
    _, moved = fit_exact(X + shift, Y)
    assert _rel(moved.coef, sol.coef) < 1e-8
    assert _rel(moved.intercept, sol.intercept - sol.coef @ torch.from_numpy(shift)) < 1e-8


def _centred_lstsq(X, Y):
    coef = np.linalg.lstsq(X - X.mean(0), Y - Y.mean(0), rcond=None)[0].T
    return coef, Y.mean(0) - X.mean(0) @ coef.T


@pytest.mark.parametrize("method", METHODS)
def test_duplicated_column_gives_min_norm_answer_and_names_it(method):
    X, Y, _ = _problem(n=200, k=2, seed=11)
    Xd = np.column_stack([X[:, :3], 2.5 * X[:, 1], X[:, 3:]])
    names = [f"x{j}" for j in range(7)]
    with pytest.warns(RankWarning, match="aliased: 'x3'"):
        _, sol = fit_exact(Xd, Y, method=method, feature_names=names)
    coef, intercept = _centred_lstsq(Xd, Y)
    assert (sol.rank, sol.aliased, sol.n_params) == (6, (3,), 7)
    assert _rel(sol.coef, coef) < 1e-8
    assert _rel(sol.intercept, intercept) < 1e-8
    assert _rel(sol.rss, _weighted_rss(Xd, Y, None, coef, intercept)) < 1e-8


@pytest.mark.parametrize("method", METHODS)
def test_fewer_rows_than_features_gives_min_norm_answer(method):
    X, Y, _ = _problem(n=6, d=10, k=2, seed=12)
    with pytest.warns(RankWarning, match="5 of 10 features"):
        _, sol = fit_exact(X, Y, method=method)
    coef, intercept = _centred_lstsq(X, Y)
    assert sol.rank == 5
    assert sol.aliased == (5, 6, 7, 8, 9)
    assert _rel(sol.coef, coef) < 1e-8
    assert _rel(sol.intercept, intercept) < 1e-8


def test_constant_column_is_aliased_with_the_intercept_only():
    X, Y, _ = _problem(n=100, seed=13)
    Xc = np.column_stack([np.full(100, 0.1), X])
    with pytest.warns(RankWarning, match="aliased: 0"):
        _, sol = fit_exact(Xc, Y)
    assert sol.aliased == (0,)
    assert _rel(sol.coef[:, 1:], LinearRegression().fit(X, Y).coef_) < 1e-8
    _, no_int = fit_exact(Xc, Y, fit_intercept=False)
    assert no_int.aliased == ()
    ref = LinearRegression(fit_intercept=False).fit(Xc, Y)
    assert _rel(no_int.coef, ref.coef_) < 1e-8


def _filip():
    lines = (NIST / "Filip.dat").read_text().splitlines()
    certified = np.array([float(line.split()[1]) for line in lines[30:41]])
    data = np.array([[float(v) for v in line.split()] for line in lines[60:] if line.strip()])
    y, x = data[:, 0], data[:, 1]
    return np.stack([x**p for p in range(1, 11)], axis=1), y, certified


def test_filip_is_full_rank_with_qr():
    X, y, certified = _filip()
    _, sol = fit_exact(X, y)  # a RankWarning would fail here (filterwarnings=error)
    assert (sol.rank, sol.aliased) == (10, ())
    assert 1e8 < sol.cond < 1e11  # raw design 1.8e15; centred and scaled far smaller
    params = np.concatenate([sol.intercept.numpy(), sol.coef[0].numpy()])
    lre = -np.log10(np.abs(params - certified) / np.abs(certified))
    assert lre.min() > 6.0


def test_default_rcond_separates_filip_from_a_duplicate():
    # Filip's smallest centred, scaled orthogonal part is 6e-8; a duplicate's is rounding.
    assert default_rcond(10, torch.float64, "qr") < 1e-9
    assert default_rcond(10, torch.float64, "gram") > 1e-8
    X, y, _ = _filip()
    with pytest.warns(RankWarning):
        fit_exact(X, y, rcond=1e-7)  # R's lm tolerance calls Filip rank-deficient


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_state_dict_round_trip(method, fit_intercept):
    X, Y, w = _problem(n=200, k=2, weighted=True, seed=14)
    state = LeastSquaresState(6, 2, method=method, fit_intercept=fit_intercept)
    state.absorb(X[:150], Y[:150], w[:150])
    record = state.state_dict()
    assert all(isinstance(v, (torch.Tensor, int, float, str, bool)) for v in record.values())
    # safetensors stores only contiguous tensors
    assert all(v.is_contiguous() for v in record.values() if isinstance(v, torch.Tensor))
    again = LeastSquaresState.from_state_dict(record)
    twin = state.copy()
    assert torch.equal(again.r_factor(), state.r_factor())
    assert torch.equal(twin.r_factor(), state.r_factor())
    assert (again.n_samples, again.sum_weights) == (state.n_samples, state.sum_weights)
    state.absorb(X[150:], Y[150:], w[150:])
    again.absorb(X[150:], Y[150:], w[150:])
    assert torch.equal(again.solve().coef, state.solve().coef)
    assert twin.n_samples == 150  # the copy did not follow the original


def test_from_state_dict_rejects_foreign_records():
    record = LeastSquaresState(2, 1).state_dict()
    with pytest.raises(ModelFileError, match="not a LeastSquaresState"):
        LeastSquaresState.from_state_dict({**record, "format": "other"})
    with pytest.raises(ModelFileError, match=r"r is \(2, 2\), not \(4, 4\)"):
        LeastSquaresState.from_state_dict({**record, "r": torch.zeros(2, 2)})


@pytest.mark.parametrize("method", METHODS)
def test_empty_state_cannot_be_solved(method):
    state = LeastSquaresState(3, 1, method=method).absorb(np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(DataError, match="no rows absorbed"):
        state.solve()


def test_all_zero_weights_cannot_fit_an_intercept():
    X, Y, _ = _problem(n=20, seed=15)
    with pytest.raises(DataError, match="weights are zero"):
        fit_exact(X, Y, sample_weight=np.zeros(20))


def test_bad_inputs_raise_typed_errors():
    state = LeastSquaresState(3, 2)
    with pytest.raises(DataError, match=r"X must have shape \(n, 3\)"):
        state.absorb(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(DataError, match="Y must have shape"):
        state.absorb(np.zeros((4, 3)), np.zeros((5, 2)))
    with pytest.raises(DataError, match="negative"):
        state.absorb(np.zeros((4, 3)), np.zeros((4, 2)), np.array([1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="'method' parameter"):
        LeastSquaresState(3, 2, method="svd")
    with pytest.raises(ValueError, match="cannot merge"):
        state.merge(LeastSquaresState(3, 2, method="gram"))
    with pytest.raises(DataError, match="non-finite"):
        LeastSquaresState(1, 1).absorb(np.array([[np.nan], [1.0]]), np.ones(2)).solve()


def test_intercept_only_model_fits_the_weighted_mean():
    y = np.array([1.0, 2.0, 4.0, 7.0])
    w = np.array([1.0, 0.5, 2.0, 1.0])
    _, sol = fit_exact(np.zeros((4, 0)), y, sample_weight=w)
    assert sol.coef.shape == (1, 0)
    mean = (w * y).sum() / w.sum()
    assert float(sol.intercept[0]) == pytest.approx(mean, rel=1e-14)
    assert float(sol.rss[0]) == pytest.approx((w * (y - mean) ** 2).sum(), rel=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", METHODS)
def test_cuda_state_matches_cpu(method):
    X, Y, w = _problem(n=5000, k=2, weighted=True, seed=16)
    cpu = fit_exact(X, Y, sample_weight=w, method=method)[1]
    Xg, Yg, wg = (torch.from_numpy(a).cuda() for a in (X, Y, w))
    state, gpu = fit_exact(Xg, Yg, sample_weight=wg, method=method)
    assert gpu.coef.is_cuda and state.r_factor().is_cuda
    assert _rel(gpu.coef.cpu(), cpu.coef) < 1e-10
    assert _rel(state.to("cpu").solve().coef, cpu.coef) < 1e-10


def test_read_only_arrays_are_absorbed_without_copy_warnings(tmp_path):
    X, Y, _ = _problem(n=300, k=2, seed=17)
    np.save(tmp_path / "X.npy", X)
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")  # read-only memory map
    Y_ro = Y.copy()
    Y_ro.flags.writeable = False
    _, sol = fit_exact(X_map, Y_ro)  # filterwarnings=error: torch's warning would fail here
    assert _rel(sol.coef, LinearRegression().fit(X, Y).coef_) < 1e-8


@pytest.mark.parametrize(
    "M",
    [
        [[1.0, 1.0], [1.0, 1.0]],  # singular: Cholesky fails, the eigen fallback must not
        [[4.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1e-30]],  # rank 2 and a tiny scale
        [[2.0, -1.0], [-1.0, 3.0]],  # positive definite: plain Cholesky
    ],
)
def test_psd_factor_reproduces_semidefinite_matrices(M):
    M = torch.tensor(M, dtype=torch.float64)
    R = linalg.psd_upper_factor(M)
    assert torch.equal(R, R.triu())
    scale = M.diagonal().sqrt()
    # Equilibrated comparison: each entry relative to sqrt(M_ii M_jj), as Cholesky guarantees.
    err = (R.T @ R - M).abs() / torch.outer(scale, scale)
    assert float(err.max()) < 1e-14


def test_state_dict_survives_a_safetensors_file(tmp_path):
    X, Y, w = _problem(n=100, k=2, weighted=True, seed=18)
    state = LeastSquaresState(6, 2).absorb(X, Y, w)
    record = state.state_dict()
    tensors = {k: v for k, v in record.items() if isinstance(v, torch.Tensor)}
    plain = {k: v for k, v in record.items() if not isinstance(v, torch.Tensor)}
    path = tmp_path / "state.safetensors"
    safetensors_torch.save_file(tensors, path, metadata={"state": json.dumps(plain)})
    with safetensors_torch.safe_open(path, framework="pt") as f:
        plain_back = json.loads(f.metadata()["state"])
    again = LeastSquaresState.from_state_dict({**plain_back, **safetensors_torch.load_file(path)})
    assert torch.equal(again.r_factor(), state.r_factor())


def _sequential_aliases(X, tol):
    """Oracle: scan columns, alias one whose scaled lstsq residual on the kept ones is <= tol."""
    Xs = X / np.linalg.norm(X, axis=0)
    kept, aliased = [], []
    for j in range(X.shape[1]):
        coef = np.linalg.lstsq(Xs[:, kept], Xs[:, j], rcond=None)[0] if kept else []
        resid = Xs[:, j] - (Xs[:, kept] @ coef if kept else 0.0)
        (aliased if np.linalg.norm(resid) <= tol else kept).append(j)
    return aliased


def test_aliased_columns_match_a_sequential_lstsq_scan():
    rng = np.random.default_rng(19)
    for _ in range(60):
        n, d = int(rng.integers(3, 25)), int(rng.integers(1, 12))
        X = rng.standard_normal((n, d)) * rng.choice([1.0, 1e6], size=d)
        for j in range(1, d):
            if rng.random() < 0.3:  # plant a combination of up to two earlier columns
                src = rng.choice(j, size=min(j, 2), replace=False)
                X[:, j] = X[:, src] @ rng.standard_normal(len(src))
        R = torch.linalg.qr(torch.from_numpy(X), mode="r").R
        R = torch.cat([R, R.new_zeros(d - R.shape[0], d)])  # n < d: pad to square
        norms = torch.linalg.vector_norm(R, dim=0)
        assert linalg.aliased_columns(R, norms, 1e-10) == _sequential_aliases(X, 1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_affine_copies_are_aliased_after_many_blocks(method):
    # Offset copies carry the rounding of their offset (eps * 5, not eps * 1e-3): the raw-norm
    # scale of NOTE [rank tolerance] must still catch them, across hundreds of merged blocks.
    X, Y, _ = _problem(n=8000, d=4, k=1, seed=20)
    Xa = np.column_stack([X, 5.0 + 1e-3 * X[:, 0], 3.7 * X[:, 2] - X[:, 1]])
    state = LeastSquaresState(6, 1, method=method, block_rows=64).absorb(Xa, Y)
    with pytest.warns(RankWarning, match="aliased: 4, 5"):
        sol = state.solve()
    ref = LinearRegression().fit(X, Y)
    assert sol.rank == 4
    assert _rel(sol.rss, _weighted_rss(X, Y, None, ref.coef_, ref.intercept_)) < 1e-6


def test_inputs_that_require_grad_build_no_autograd_graph():
    X = torch.randn(50, 3, dtype=torch.float64, requires_grad=True)
    y = X.detach() @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    state, sol = fit_exact(X, y)
    assert not sol.coef.requires_grad
    assert not state.r_factor().requires_grad


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_many_targets_are_one_big_right_hand_side(fit_intercept, weighted):
    # NOTE [one big right-hand side]: 40 targets (reflectors applied to Y) give what each
    # target gives alone (one joint QR), in blocks and merged, and what lstsq gives
    rng = np.random.default_rng(21)
    X = rng.normal(size=(700, 5)) * [1, 5, 0.2, 3, 10] + rng.uniform(-10, 10, 5)
    Y = X @ rng.normal(size=(5, 40)) + rng.normal(size=(700, 40)) + 3.0
    w = rng.uniform(0.2, 3.0, 700) if weighted else None
    kw = dict(fit_intercept=fit_intercept, method="qr", block_rows=128)
    many = LeastSquaresState(5, 40, **kw).absorb(X, Y, w)
    halves = [
        LeastSquaresState(5, 40, **kw).absorb(X[s], Y[s], None if w is None else w[s])
        for s in (slice(0, 300), slice(300, 700))
    ]
    merged = halves[0].merge(halves[1])
    sw = np.ones(700) if w is None else np.sqrt(w)
    A = np.hstack([np.ones((700, 1)), X]) if fit_intercept else X
    ref, rss, *_ = np.linalg.lstsq(A * sw[:, None], Y * sw[:, None], rcond=None)
    for state in (many, merged):
        sol = state.solve()
        assert _rel(sol.coef, ref[int(fit_intercept) :].T) < 1e-10
        assert _rel(sol.rss, rss) < 1e-10
    for t in (0, 17, 39):
        alone = LeastSquaresState(5, 1, **kw).absorb(X, Y[:, t : t + 1], w).solve()
        assert _rel(many.solve().coef[t], alone.coef[0]) < 1e-12
        assert _rel(many.solve().rss[t], alone.rss[0]) < 1e-12
