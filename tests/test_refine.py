"""Double-double kernels and iterative refinement, against exact rational arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from nist import load, lre
from torchlinreg.exact.ddouble import dd_div_d, dd_sum, two_prod, two_sum
from torchlinreg.exact.refine import needs_refinement, refine_blocks, refine_solution
from torchlinreg.exact.state import fit_exact


def _rand(n, seed):
    g = torch.Generator().manual_seed(seed)
    mant = torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1
    return mant * torch.exp2(torch.randint(-60, 60, (n,), generator=g).to(torch.float64))


def test_two_sum_and_two_prod_are_error_free():
    a, b = _rand(500, 1), _rand(500, 2)
    s, e = two_sum(a, b)
    p, f = two_prod(a, b)
    for i in range(500):
        x, y = Fraction(float(a[i])), Fraction(float(b[i]))
        assert Fraction(float(s[i])) + Fraction(float(e[i])) == x + y
        assert Fraction(float(p[i])) + Fraction(float(f[i])) == x * y


def test_dd_sum_matches_fsum_under_cancellation():
    # terms of size 1e16 that cancel, leaving a sum of small ones: float64 sum loses it all
    g = torch.Generator().manual_seed(3)
    small = torch.rand(1001, generator=g, dtype=torch.float64)
    big = torch.randn(1001, generator=g, dtype=torch.float64) * 1e16
    x = torch.cat([big, small, -big])[torch.randperm(3003, generator=g)]
    hi, lo = dd_sum((x, torch.zeros_like(x)))
    exact = math.fsum(x.tolist())
    assert abs(float(hi) + float(lo) - exact) <= 1e-15 * abs(exact)
    assert abs(float(x.sum()) - exact) > 1e-6 * abs(exact)  # the trap the kernel avoids


def test_dd_div_d_is_correct_to_double_double_precision():
    a, b = _rand(200, 4), _rand(200, 5)
    q = dd_div_d((a, torch.zeros_like(a)), b)
    for i in range(200):
        exact = Fraction(float(a[i])) / Fraction(float(b[i]))
        got = Fraction(float(q[0][i])) + Fraction(float(q[1][i]))
        assert abs(got - exact) <= abs(exact) * Fraction(1, 2**100)


def _rational_wls(X, y, w, intercept):
    """Exact WLS solution of the float64 data via rational normal equations."""
    rows = [[Fraction(1)] * intercept + [Fraction(v) for v in r] for r in X.tolist()]
    ys = [Fraction(v) for v in y.tolist()]
    ws = [Fraction(v) for v in w.tolist()]
    p = len(rows[0])
    M = [
        [sum(ws[i] * rows[i][a] * rows[i][b] for i in range(len(ys))) for b in range(p)]
        for a in range(p)
    ]
    v = [sum(ws[i] * rows[i][a] * ys[i] for i in range(len(ys))) for a in range(p)]
    for c in range(p):  # Gauss-Jordan, exact
        piv = next(r for r in range(c, p) if M[r][c] != 0)
        M[c], M[piv], v[c], v[piv] = M[piv], M[c], v[piv], v[c]
        for r in range(p):
            if r != c and M[r][c] != 0:
                f = M[r][c] / M[c][c]
                M[r] = [M[r][j] - f * M[c][j] for j in range(p)]
                v[r] -= f * v[c]
    return np.array([float(v[i] / M[i][i]) for i in range(p)])


@pytest.mark.parametrize("intercept", [True, False])
def test_weighted_refinement_reaches_the_exact_rational_solution(intercept):
    rng = np.random.default_rng(7)
    x = np.linspace(0.0, 2000.0, 25)
    X = np.stack([x, x**2, x**3], 1)  # raw powers: cond ~ 1e11
    y = 1 + 0.5 * x + 1e-3 * x**2 - 1e-7 * x**3 + rng.standard_normal(25) * 1e3
    w = rng.integers(1, 5, 25).astype(float)
    exact = _rational_wls(X, y, w, int(intercept))
    Xt, Yt, wt = torch.tensor(X), torch.tensor(y)[:, None], torch.tensor(w)
    state, sol = fit_exact(Xt, Yt, sample_weight=wt, fit_intercept=intercept)
    fit = refine_solution(Xt, Yt, wt, intercept, state, sol.coef, sol.intercept)
    ours = np.r_[fit.intercept.numpy(), fit.coef[0].numpy()] if intercept else fit.coef[0]
    assert lre(ours, exact).min() >= 14
    # integer weights equal repeated rows
    rep = np.repeat(np.arange(25), w.astype(int))
    Xr, Yr = torch.tensor(X[rep]), torch.tensor(y[rep])[:, None]
    s2, sol2 = fit_exact(Xr, Yr, fit_intercept=intercept)
    fit2 = refine_solution(Xr, Yr, None, intercept, s2, sol2.coef, sol2.intercept)
    assert torch.allclose(fit2.coef, fit.coef, rtol=1e-13, atol=0)
    assert torch.allclose(fit2.rss, fit.rss, rtol=1e-12, atol=0)


def test_refinement_rescues_the_large_residual_wampler5():
    s = load("Wampler5")
    X, Y = torch.tensor(s.design()), torch.tensor(s.y)[:, None]
    state, sol = fit_exact(X, Y)
    plain = np.r_[sol.intercept.numpy(), sol.coef[0].numpy()]
    fit = refine_solution(X, Y, None, True, state, sol.coef, sol.intercept)
    refined = np.r_[fit.intercept.numpy(), fit.coef[0].numpy()]
    assert lre(plain, s.params).min() < 9  # QR alone: cond**2 * eps * |r| digits lost
    assert lre(refined, s.params).min() >= 14.5 and fit.converged


def test_several_targets_refine_like_separate_ones():
    s = load("Wampler4")
    X = torch.tensor(s.design())
    Y = torch.stack([torch.tensor(s.y), torch.tensor(load("Wampler3").y)], 1)
    state, sol = fit_exact(X, Y)
    both = refine_solution(X, Y, None, True, state, sol.coef, sol.intercept)
    for t in range(2):
        st, so = fit_exact(X, Y[:, t : t + 1])
        one = refine_solution(X, Y[:, t : t + 1], None, True, st, so.coef, so.intercept)
        assert torch.equal(both.coef[t], one.coef[0]) and torch.equal(both.rss[t], one.rss[0])


def test_policy_skips_well_conditioned_data_and_gram_squares_kappa():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(20000, 20, generator=g, dtype=torch.float64)
    Y = X @ torch.randn(20, 2, generator=g, dtype=torch.float64) + torch.randn(
        20000, 2, generator=g, dtype=torch.float64
    )
    state, _ = fit_exact(X, Y)
    assert not needs_refinement(state, 21)
    # 1) offsets >> spread make the raw design ill-conditioned, but the state factors rows
    # shifted by its offsets, so its solution keeps its digits: no second pass;
    Xo = X * 1e-3 + 1e3
    state_o, sol_o = fit_exact(Xo, Y)
    assert not needs_refinement(state_o, 21)
    fit = refine_solution(Xo, Y, None, True, state_o, sol_o.coef, sol_o.intercept)
    assert float(((sol_o.coef - fit.coef) / fit.coef).abs().max()) < 1e-13
    # 2) nearly collinear columns are ill-conditioned whatever the shift: refine.
    Xc = X.clone()
    Xc[:, 1] = Xc[:, 0] + 1e-5 * X[:, 1]
    state_c, _ = fit_exact(Xc, Y)
    assert needs_refinement(state_c, 21)
    s = load("Longley")
    qr_state, _ = fit_exact(torch.tensor(s.design()), torch.tensor(s.y)[:, None])
    assert needs_refinement(qr_state, 7)


def test_aliased_columns_are_held_out_and_the_rest_refined():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 3)) * [1, 10, 100] + [5, -3, 1000]
    Xd = np.column_stack([X[:, 0], 2 * X[:, 0], X[:, 1:]])
    y = X @ [1.0, 2.0, 3.0] + rng.standard_normal(40)
    Xt, Yt = torch.tensor(Xd), torch.tensor(y)[:, None]
    with pytest.warns(UserWarning):
        state, sol = fit_exact(Xt, Yt)
    fit = refine_solution(Xt, Yt, None, True, state, sol.coef, sol.intercept, aliased=sol.aliased)
    ref = np.linalg.lstsq(np.column_stack([np.ones(40), X]), y, rcond=None)[0]
    ours = np.r_[fit.intercept.numpy(), fit.coef[0, [0, 2, 3]].numpy()]
    assert sol.aliased == (1,) and float(fit.coef[0, 1]) == 0.0
    assert np.allclose(ours, ref, rtol=1e-11, atol=0)


@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_refinement_equals_in_memory(weighted):
    # Wampler5 (large residuals) plus 1e6 offsets, read in three blocks
    s = load("Wampler5")
    X = torch.tensor(s.design())
    Y = torch.stack([torch.tensor(s.y), torch.tensor(s.y) + 1e6], 1)
    w = torch.linspace(0.5, 2.0, 21, dtype=torch.float64) if weighted else None
    state, sol = fit_exact(X, Y, sample_weight=w)
    whole = refine_solution(X, Y, w, True, state, sol.coef, sol.intercept)
    cuts = [(0, 7), (7, 15), (15, 21)]

    def blocks():
        return [(X[a:b], Y[a:b], None if w is None else w[a:b]) for a, b in cuts]

    streamed = refine_blocks(blocks, True, state, sol.coef, sol.intercept)
    assert torch.allclose(streamed.coef, whole.coef, rtol=1e-14, atol=0)
    assert torch.allclose(streamed.intercept, whole.intercept, rtol=1e-14, atol=0)
    for name in ("rss", "ess", "centered_tss", "uncentered_tss"):
        assert torch.allclose(getattr(streamed, name), getattr(whole, name), rtol=1e-13), name
    if not weighted:  # the certified values are for the unweighted fit
        params = np.r_[streamed.intercept[:1].numpy(), streamed.coef[0].numpy()]
        assert lre(params, s.params).min() >= 14.5


def test_offsets_over_many_columns_do_not_flag_a_well_conditioned_fit():
    # The intercept's bound summed every slope's normwise error over the columns, so any fit
    # with a few hundred offset columns was refined (200,000 x 500: 8-12x the fit). 1) the
    # policy leaves this kappa ~1.4 fit alone; 2) the unrefined fit, intercept included, is
    # as close to numpy's lstsq as the two can tell (1e-12 normwise)
    import torchlinreg as tlr
    from torchlinreg.exact.refine import targets_at_risk

    rng = np.random.default_rng(7)
    n, d = 20_000, 300
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 20.0, d) + rng.uniform(-10, 10, d)
    Y = X @ rng.standard_normal((d, 2)) + rng.standard_normal(2) + rng.standard_normal((n, 2))
    model = tlr.LinearRegression().fit(X, Y)
    assert targets_at_risk(model.state_, d + 1) == [False, False]  # 1
    ref = np.linalg.lstsq(np.c_[np.ones(n), X], Y, rcond=None)[0]
    got = np.r_[model.intercept_[None, :], model.coef_.T]
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-12  # 2


@pytest.mark.parametrize("n", [1, 15, 16, 17, 1000, 4096, 5000])
def test_dd_sum_of_columns_with_low_parts_is_exact_to_double_double(n):
    # NOTE [exact sums]: columns of different scales, real low parts, cancellation; the
    # rational sum of hi + lo within 2^-100 of sum |hi|, each column on its own
    g = torch.Generator().manual_seed(n)
    hi = torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor([1e-8, 1.0, 1e12])
    if n > 2:
        hi[n // 2 :, 2] = -hi[: n - n // 2, 2]  # the large column cancels to its tail
    lo = hi * torch.randn(n, 3, generator=g, dtype=torch.float64) * 2.0**-60
    s_hi, s_lo = dd_sum((hi, lo))
    for j in range(3):
        exact = sum(
            Fraction(a) + Fraction(b)
            for a, b in zip(hi[:, j].tolist(), lo[:, j].tolist(), strict=True)
        )
        got = Fraction(float(s_hi[j])) + Fraction(float(s_lo[j]))
        scale = float(hi[:, j].abs().sum())
        assert abs(float(got - exact)) <= 2.0**-100 * scale, (j, float(got - exact))
