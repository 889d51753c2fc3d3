"""The Gram route's panel products and its deferred NaN/infinity scan (issue 11, item 3).

NOTE [upper block triangle] in ``exact/summaries.py``: the fast path forms only the panels on
and above the diagonal; NOTE in ``ExactFitMixin._absorb``: a whole ``fit`` with the Gram
route finds NaN and infinity in its totals and only then scans the rows for the message.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from torchlinreg import LinearRegression
from torchlinreg.errors import DataError
from torchlinreg.exact.state import LeastSquaresState
from torchlinreg.exact.summaries import (
    _add_upper_gram,
    _column_cuts,
    _panels,
    _symmetrized,
    _upper_rows,
)


@pytest.mark.parametrize("q", [1, 31, 32, 63, 64, 104, 257, 600])
def test_the_panel_gram_equals_the_full_product(q):
    # 1. the cuts cover 0..q in increasing order, at most 8 panels of at least 32 columns
    # 2. upper panels + symmetrization = z.T @ z to rounding
    cuts = _column_cuts(q)
    assert cuts[0] == 0 and cuts[-1] == q and bool(np.all(np.diff(cuts) > 0))
    assert len(cuts) - 1 <= 8 and (len(cuts) == 2 or min(np.diff(cuts)) >= 32)
    z = torch.randn(700, q, dtype=torch.float64) + 3.0
    acc = torch.zeros(q, q, dtype=torch.float64)
    _add_upper_gram(_upper_rows(acc, cuts), _panels(z, cuts))
    _add_upper_gram(_upper_rows(acc, cuts), _panels(z[:50], cuts))  # accumulates like addmm_
    full = z.T @ z + z[:50].T @ z[:50]
    torch.testing.assert_close(_symmetrized(acc, cuts), full, rtol=1e-13, atol=1e-9)


@pytest.mark.parametrize("p, k", [(40, 1), (120, 3), (300, 2)])
@pytest.mark.parametrize("weighted", [False, True])
def test_wide_gram_fits_match_numpy_lstsq_with_offsets(p, k, weighted):
    # several panels (p >= 64 columns of [X | Y | 1]): coefficients as numpy's lstsq on the
    # centred problem, with offsets 1e4 that the shift must keep out of the squares
    rng = np.random.default_rng(p + k)
    n = 6000
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 5.0, p) + rng.uniform(-1e4, 1e4, p)
    Y = X @ rng.normal(size=(p, k)) + rng.normal(size=(n, k)) + 7.0
    w = rng.uniform(0.1, 2.0, n) if weighted else np.ones(n)
    state = LeastSquaresState(p, k, method="gram", block_rows=1024)
    state.absorb(
        torch.from_numpy(X), torch.from_numpy(Y), torch.from_numpy(w) if weighted else None
    )
    sol = state.solve()
    mx, my = w @ X / w.sum(), w @ Y / w.sum()
    sw = np.sqrt(w)[:, None]
    ref = np.linalg.lstsq((X - mx) * sw, (Y - my) * sw, rcond=None)[0]
    np.testing.assert_allclose(sol.coef.numpy().T, ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sol.intercept.numpy(), my - mx @ ref, rtol=1e-8)


def _problem(n=9000, p=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) + 5.0
    return X, X @ np.arange(1.0, p + 1) + rng.normal(size=n)


@pytest.mark.parametrize("row", [0, 3, 8999])  # the first block (careful path), later ones
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_gram_fit_names_the_row_and_column_of_non_finite_data_as_qr_does(
    row, value, where, weighted
):
    # 1. the same one-line DataError (row, column, what to do) as the up-front scan of qr
    # 2. the estimator learned nothing (no state left behind)
    X, y = _problem()
    if where == "X":
        X[row, 2] = value
    else:
        y[row] = value
    w = np.random.default_rng(1).uniform(0.0, 2.0, len(y)) if weighted else None
    messages = []
    for solver in ("qr", "gram"):
        model = LinearRegression(solver=solver)
        with pytest.raises(DataError) as err:
            model.fit(X, y, w)
        messages.append((str(err.value), err.value.row, err.value.column))
        assert not hasattr(model, "state_") and not hasattr(model, "coef_")
    assert messages[0] == messages[1]
    assert f"row {row + 1}" in messages[1][0]


def test_a_partial_gram_fit_still_refuses_a_bad_block_before_absorbing_it():
    # partial_fit keeps the up-front scan: the state learned from earlier blocks survives
    X, y = _problem()
    model = LinearRegression(solver="gram").partial_fit(X[:100], y[:100])
    before = model.state_.state_dict()
    bad = X[100:200].copy()
    bad[7, 1] = np.nan
    with pytest.raises(DataError, match="row 8"):
        model.partial_fit(bad, y[100:200])
    after = model.state_.state_dict()
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, after[key]), key
    model.partial_fit(X[100:], y[100:])
    ref = LinearRegression(solver="gram").fit(X, y)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-12)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("aliased", [False, True])
def test_many_targets_on_the_gram_route_equal_lstsq(fit_intercept, aliased):
    # past 16 targets the Gram factor's target block is diagonal (its column norms: each
    # target's rss); an aliased feature column takes the whole-matrix factor instead
    rng = np.random.default_rng(7)
    n, d, k = 2000, 12, 40
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 20, d) + rng.uniform(-100, 100, d)
    if aliased:
        X[:, 5] = X[:, 1] - 2 * X[:, 2]
    Y = X @ rng.normal(size=(d, k)) + rng.normal(size=(n, k)) * rng.uniform(0.1, 10, k) + 3
    w = rng.uniform(0.2, 2.0, n)
    gram = LinearRegression(solver="gram", fit_intercept=fit_intercept)
    qr = LinearRegression(solver="qr", fit_intercept=fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the aliased column's RankWarning
        rg = gram.fit(X, Y, w).results_
        rq = qr.fit(X, Y, w).results_
    A = np.c_[np.ones(n), X] if fit_intercept else X
    sw = np.sqrt(w)[:, None]
    ref, *_ = np.linalg.lstsq(A * sw, Y * sw, rcond=None)
    ssr = (((Y - A @ ref) * sw) ** 2).sum(0)
    np.testing.assert_allclose(rg.ssr, ssr, rtol=1e-9)
    np.testing.assert_allclose(rg.ssr, rq.ssr, rtol=1e-9)
    if not aliased:
        np.testing.assert_allclose(rg.params, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())
        np.testing.assert_allclose(rg.bse, rq.bse, rtol=1e-8)


@pytest.mark.parametrize("weighted", [False, True])
def test_row_ranges_on_threads_equal_one_thread(weighted):
    # NOTE [parallel row ranges]: with two intra-op threads the fast path cuts the rows into
    # two ranges on Python threads; the state equals the one-thread state to rounding and
    # its weight totals exactly
    from torchlinreg.exact.summaries import _row_ranges

    assert _row_ranges(10, 3, 2) == [(0, 6), (6, 10)]
    assert _row_ranges(10, 3, 1) == [(0, 10)]
    rng = np.random.default_rng(5)
    X = rng.normal(size=(9000, 6)) * [1.0, 3.0, 0.1, 10.0, 2.0, 5.0] + 1e6
    Y = X @ rng.normal(size=(6, 2)) + rng.normal(size=(9000, 2))
    w = rng.uniform(0.0, 2.0, 9000) if weighted else None
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    wt = None if w is None else torch.from_numpy(w)
    states = []
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            st = LeastSquaresState(6, 2, method="gram", block_rows=256).absorb(Xt, Yt, wt)
        finally:
            torch.set_num_threads(before)
        states.append(st)
    one, two = (s._summary for s in states)
    assert float(one.sum_w) == float(two.sum_w) or weighted
    np.testing.assert_allclose(float(two.sum_w), float(one.sum_w), rtol=1e-14)
    assert int(one.n_nonzero) == int(two.n_nonzero)
    np.testing.assert_allclose(float(two.sum_log_w), float(one.sum_log_w), rtol=1e-13)
    torch.testing.assert_close(two.comoment, one.comoment, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(two.mean, one.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(states[1].solve().coef, states[0].solve().coef, rtol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("targets", [20, 600])
def test_an_empty_state_sums_into_its_own_co_moment(monkeypatch, weighted, targets):
    # NOTE [an empty state's co-moment]: a first call's rows after the first block go into
    # the state's co-moment (no second (d + k)^2 Gram; 20 targets: with the size threshold
    # lowered, 600: past it as it is), later calls into a Gram of their own; the state
    # equals the one whose first block came in a call of its own
    from torchlinreg.exact import summaries

    rng = np.random.default_rng(9)
    X = rng.normal(size=(3000, 5)) * [1.0, 3.0, 0.1, 10.0, 2.0] + 1e5
    Y = X @ rng.normal(size=(5, targets)) + rng.normal(size=(3000, targets))
    w = rng.uniform(0.0, 2.0, 3000) if weighted else None
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    wt = None if w is None else torch.from_numpy(w)
    seen, real = [], summaries._shifted_gram_into

    def spy(acc, *args):
        seen.append(acc)
        return real(acc, *args)

    monkeypatch.setattr(summaries, "_shifted_gram_into", spy)
    if targets == 20:
        monkeypatch.setattr(summaries, "_PARALLEL_GRAM_VALUES", 64)
    whole = LeastSquaresState(5, targets, method="gram", block_rows=512)
    whole.absorb(Xt, Yt, wt)
    assert len(seen) == 1 and seen[0] is whole._summary.comoment
    split = LeastSquaresState(5, targets, method="gram", block_rows=512)
    rows = summaries._gram_rows(512, 5 + targets)  # the first block as absorb cuts it
    split.absorb(Xt[:rows], Yt[:rows], None if wt is None else wt[:rows])
    split.absorb(Xt[rows:], Yt[rows:], None if wt is None else wt[rows:])
    assert len(seen) == 1  # later calls: a Gram of their own
    a, b = whole._summary, split._summary
    torch.testing.assert_close(a.comoment, b.comoment, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(a.mean, b.mean, rtol=1e-12, atol=1e-12)
    assert float(a.sum_w) == pytest.approx(float(b.sum_w), rel=1e-15)
    np.testing.assert_allclose(whole.solve().coef, split.solve().coef, rtol=1e-10)


def test_an_empty_state_that_cannot_take_the_fast_path_is_reset_first(monkeypatch):
    # a block near 1e200 after a first block near 1: the fast path fails on an empty state,
    # which is reset and refitted on the careful path; the same as one block per call
    from torchlinreg.exact import summaries

    monkeypatch.setattr(summaries, "_PARALLEL_GRAM_VALUES", 4)  # the empty-state road
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 2)) + 5.0
    Y = X @ [[2.0], [-1.0]] + 0.01 * rng.normal(size=(3000, 1))
    X[2000:] *= 1e200
    Y[2000:] *= 1e200
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    whole = LeastSquaresState(2, 1, method="gram", block_rows=1000).absorb(Xt, Yt)
    careful = LeastSquaresState(2, 1, method="gram", block_rows=1000)
    for lo in range(0, 3000, 1000):
        careful._summary._absorb_blocks(Xt[lo : lo + 1000], Yt[lo : lo + 1000], None, 1000)
    careful.n_samples = whole.n_samples
    a, b = whole._summary, careful._summary
    assert torch.equal(a.scale, b.scale) and torch.equal(a.shift, b.shift)
    torch.testing.assert_close(a.comoment, b.comoment, rtol=0, atol=0)
    assert float(a.sum_w) == float(b.sum_w) == 3000.0
    np.testing.assert_allclose(whole.solve().coef, careful.solve().coef, rtol=0, atol=0)
