"""Grouped fits (torchlinreg.ols(..., groups=)) against a statsmodels loop, one fit per group."""

import re
import warnings

import mpmath
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import torchlinreg
from torchlinreg.errors import DataError, DegenerateWarning, RankWarning

SCALARS = ("rsquared", "rsquared_adj", "fvalue", "f_pvalue", "llf", "aic", "bic", "ssr")
ROWS = ("params", "bse", "tvalues", "pvalues", "HC0_se", "HC1_se", "HC2_se", "HC3_se")


def _reference(X, y, g, label, w=None, intercept=True):
    m = g == label
    A = sm.add_constant(X[m], has_constant="add") if intercept else X[m]
    if w is None:
        return sm.OLS(y[m], A).fit()
    return sm.WLS(y[m], A, weights=w[m]).fit()


def _exact_hc23(X, y, w, intercept) -> dict[str, np.ndarray]:
    """HC2 and HC3 standard errors at 50 digits (mpmath) from the float64 data."""
    with mpmath.workdps(50):
        A = np.c_[np.ones(len(y)), X] if intercept else X
        sw = [mpmath.sqrt(mpmath.mpf(float(v))) for v in (np.ones(len(y)) if w is None else w)]
        Aw = [[mpmath.mpf(float(v)) * s for v in row] for row, s in zip(A, sw, strict=True)]
        Aw = mpmath.matrix(Aw)
        yw = mpmath.matrix([mpmath.mpf(float(v)) * s for v, s in zip(y, sw, strict=True)])
        Gi = (Aw.T * Aw) ** -1
        e = yw - Aw * (Gi * (Aw.T * yw))
        H = Aw * Gi * Aw.T
        out = {}
        for name, power in (("HC2_se", 1), ("HC3_se", 2)):
            meat = mpmath.matrix(A.shape[1], A.shape[1])
            for i in range(len(y)):
                meat += (e[i] ** 2 / (1 - H[i, i]) ** power) * (Aw[i, :].T * Aw[i, :])
            V = Gi * meat * Gi
            out[name] = np.array([float(mpmath.sqrt(V[j, j])) for j in range(A.shape[1])])
        return out


def _assert_matches_loop(res, X, y, g, w=None, intercept=True, rtol=1e-10):
    for i, label in enumerate(res.groups):
        ref = _reference(X, y, g, label, w, intercept)
        for name in SCALARS:
            got, want = getattr(res, name)[i], getattr(ref, name)
            # R2 = 1 - rss / tss is known to a few eps absolutely on both sides, and F,
            # whose numerator is tss - rss, to a few eps times df_resid / df_model: tiny
            # ones (R2 3.6e-7, F 9.4e-6 in groups of 5 weighted rows) are compared so there
            eps = np.finfo(float).eps
            atol = {"rsquared": 16 * eps, "rsquared_adj": 16 * eps}.get(name, 0.0)
            if name == "fvalue" and ref.df_model > 0:
                atol = 64 * eps * ref.df_resid / ref.df_model
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)
        # A leverage near 1 divides statsmodels' rounding by (1 - h)^2 in HC2/HC3 (seen:
        # h = 0.9985, statsmodels 2.5e-9 off where torchlinreg is 5e-13): there the
        # reference is computed at 50 digits instead.
        # (and at h = 0.988 statsmodels' HC3 was 1.1e-8 off, torchlinreg 1e-13: from 0.9)
        near_one = float(np.max(np.square(np.linalg.qr(ref.model.wexog)[0]).sum(1))) > 0.9
        exact = _exact_hc23(X[g == label], y[g == label], None if w is None else w[g == label],
                            intercept) if near_one else {}  # fmt: skip
        for name in ROWS:
            want = exact[name] if name in exact else np.asarray(getattr(ref, name))
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                got = getattr(res, name)[i]
            # where a leverage near 1 is warned of (NOTE [leverage near one]), its quote is
            # the tolerance: 1 - h = 3.6e-7 left HC2 1.1e-8 off, quoted 2e-7
            quoted = [m.message.error for m in seen if "leverage near 1" in str(m.message)]
            assert len(quoted) == len(seen), [str(m.message) for m in seen]
            tol = max([rtol, *quoted])
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
        ci = np.asarray(ref.conf_int())
        np.testing.assert_allclose(res.conf_int()[i], ci, rtol=rtol, atol=rtol * np.abs(ci).max())


def test_hc3_of_a_group_with_leverage_near_one_is_right_where_the_loop_is_not():
    # a group hypothesis found: 6 rows, 4 parameters, one leverage 0.9985
    rng = np.random.default_rng(5043)
    rng.shuffle(np.zeros(6))  # the draws as the property test makes them
    X = rng.normal(size=(6, 3)) * rng.uniform(0.1, 100, size=3) + rng.normal(size=3) * 50
    y = X @ rng.normal(size=3) + rng.normal(size=6) * 3 + 10
    w = rng.uniform(0.5, 2.0, size=6)
    res = torchlinreg.ols(X, y, groups=np.zeros(6), sample_weight=w)
    exact = _exact_hc23(X, y, w, True)
    loop = sm.WLS(y, sm.add_constant(X), weights=w).fit()
    for name in ("HC2_se", "HC3_se"):
        np.testing.assert_allclose(getattr(res, name)[0], exact[name], rtol=1e-11)
    assert np.max(np.abs(loop.HC3_se / exact["HC3_se"] - 1)) > 1e-9  # the loop's rounding


def test_grunfeld_per_firm_equals_a_statsmodels_loop():
    data = sm.datasets.grunfeld.load_pandas().data
    X, y, g = data[["value", "capital"]], data["invest"], data["firm"]
    res = torchlinreg.ols(X, y, groups=g)
    # 1. one row per firm, labels sorted, parameter names from the DataFrame
    assert list(res.groups) == sorted(g.unique())
    assert res.param_names == ["const", "value", "capital"]
    G = g.nunique()
    assert res.params.shape == (G, 3) and res.conf_int().shape == (G, 3, 2)
    # 2. every statistic equals statsmodels' fit of that firm's rows
    _assert_matches_loop(res, X.to_numpy(), y.to_numpy(), g.to_numpy())


def test_groups_may_be_a_column_of_the_dataframe_and_rows_of_a_group_anywhere():
    data = sm.datasets.grunfeld.load_pandas().data
    shuffled = data.sample(frac=1.0, random_state=0)
    a = torchlinreg.ols(shuffled[["value", "capital", "firm"]], shuffled["invest"], groups="firm")
    b = torchlinreg.ols(data[["value", "capital"]], data["invest"], groups=data["firm"])
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12)
    np.testing.assert_allclose(a.bse, b.bse, rtol=1e-12)


def test_to_frame_is_the_tidy_table_of_the_statistics():
    data = sm.datasets.grunfeld.load_pandas().data
    res = torchlinreg.ols(data[["value", "capital"]], data["invest"], groups=data["firm"])
    frame = res.to_frame()
    assert list(frame.columns) == [
        "group",
        "parameter",
        "estimate",
        "se",
        "t",
        "p",
        "lower",
        "upper",
    ]
    assert len(frame) == 3 * data["firm"].nunique()
    row = frame[(frame.group == "IBM") & (frame.parameter == "value")].iloc[0]
    ref = _reference(
        data[["value", "capital"]].to_numpy(), data["invest"].to_numpy(),
        data["firm"].to_numpy(), "IBM",
    )  # fmt: skip
    np.testing.assert_allclose(
        [row.estimate, row.se, row.t, row.p, row.lower, row.upper],
        [ref.params[1], ref.bse[1], ref.tvalues[1], ref.pvalues[1], *ref.conf_int()[1]],
        rtol=1e-10,
    )


def test_large_offsets_keep_the_digits_of_the_spread():
    # x = 1e9 + small: statsmodels would lose ~9 digits on the raw data, so the reference is
    # statsmodels on the exactly shifted data, mapped back (the shift is exact in float64)
    rng = np.random.default_rng(1)
    G, m, off, offy = 40, 30, 1e9, 5e8
    g = np.repeat(np.arange(G), m)
    small = np.round(rng.normal(size=(G * m, 2)) * 1024) / 1024
    noise = np.round(rng.normal(size=G * m) * 1024) / 1024
    ys = small @ np.array([2.0, -1.0]) + noise + g
    res = torchlinreg.ols(small + off, ys + offy, groups=g)
    for i in range(G):
        ref = _reference(small, ys, g, i)
        J = np.eye(3)
        J[0, 1:] = -off
        b = ref.params
        want = np.r_[b[0] + offy - off * (b[1] + b[2]), b[1:]]
        cov = J @ ref.cov_params() @ J.T
        # 1. slopes and their errors to 1e-10, the intercept to 1e-10 of its own size
        np.testing.assert_allclose(res.params[i, 1:], want[1:], rtol=1e-10)
        np.testing.assert_allclose(res.params[i, 0], want[0], rtol=0, atol=1e-10 * off * 3)
        np.testing.assert_allclose(res.bse[i], np.sqrt(np.diag(cov)), rtol=1e-10)
        # 2. R2 and llf do not depend on the offset
        np.testing.assert_allclose(res.rsquared[i], ref.rsquared, rtol=1e-10)
        np.testing.assert_allclose(res.llf[i], ref.llf, rtol=1e-10)


def test_weights_equal_a_statsmodels_wls_loop():
    data = sm.datasets.grunfeld.load_pandas().data
    X, y, g = data[["value", "capital"]].to_numpy(), data["invest"].to_numpy(), data["firm"]
    w = 1 + np.arange(len(y)) % 5
    res = torchlinreg.ols(X, y, groups=g, sample_weight=w)
    _assert_matches_loop(res, X, y, g.to_numpy(), w=w)


def test_a_group_without_weight_is_nan_and_named_the_others_equal_wls():
    # Grunfeld's firms, one firm all zero weights and one with only 2 rows of weight
    # (3 parameters): NaN for both, one warning saying why, every other firm as WLS.
    data = sm.datasets.grunfeld.load_pandas().data
    X, y, g = data[["value", "capital"]].to_numpy(), data["invest"].to_numpy(), data["firm"]
    g = g.to_numpy()
    w = 1.0 + np.arange(len(y)) % 3
    w[g == "General Motors"] = 0.0
    w[np.flatnonzero(g == "US Steel")[2:]] = 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = torchlinreg.ols(X, y, groups=g, sample_weight=w)
    msgs = [str(m.message) for m in caught if issubclass(m.category, DegenerateWarning)]
    assert len(msgs) == 1 and msgs[0].startswith("2 of 11 groups")
    assert "nonzero weight" in msgs[0]
    for i, label in enumerate(res.groups):
        if label in ("General Motors", "US Steel"):
            assert np.isnan(res.params[i]).all() and np.isnan(res.bse[i]).all()
            continue
        m = g == label
        ref = sm.WLS(y[m], sm.add_constant(X[m]), weights=w[m]).fit()
        np.testing.assert_allclose(res.params[i], ref.params, rtol=1e-10)
        np.testing.assert_allclose(res.bse[i], ref.bse, rtol=1e-10)


def test_hc_cov_type_gives_robust_errors_and_normal_p_values():
    data = sm.datasets.grunfeld.load_pandas().data
    X, y, g = data[["value", "capital"]].to_numpy(), data["invest"].to_numpy(), data["firm"]
    res = torchlinreg.ols(X, y, groups=g, cov_type="HC3")
    for i, label in enumerate(res.groups):
        m = (g == label).to_numpy()
        ref = sm.OLS(y[m], sm.add_constant(X[m])).fit(cov_type="HC3")
        np.testing.assert_allclose(res.bse[i], ref.bse, rtol=1e-10)
        np.testing.assert_allclose(res.pvalues[i], ref.pvalues, rtol=1e-9)
        np.testing.assert_allclose(res.fvalue[i], ref.fvalue, rtol=1e-10)


def test_degenerate_groups_get_nan_and_one_warning_that_counts_them():
    rng = np.random.default_rng(2)
    g = np.repeat(["ok1", "few", "flat", "twin", "ok2"], [20, 3, 20, 20, 20])
    X = rng.normal(size=(len(g), 2))
    X[g == "flat", 1] = 7.0  # constant within the group: aliased with the intercept
    X[g == "twin", 1] = 2 * X[g == "twin", 0]
    y = X @ np.array([1.0, 2.0]) + rng.normal(size=len(g))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = torchlinreg.ols(X, y, groups=g)
    # 1. exactly one warning, counting 3 groups: 1 with too few rows, 2 rank-deficient
    msgs = [str(w.message) for w in caught if issubclass(w.category, DegenerateWarning)]
    assert len(msgs) == 1 and msgs[0].startswith("3 of 5 groups") and "1 with at most" in msgs[0]
    bad = {"few", "flat", "twin"}
    for i, label in enumerate(res.groups):
        if label in bad:  # 2. NaN everywhere for them
            assert np.isnan(res.params[i]).all() and np.isnan(res.bse[i]).all()
            assert np.isnan(res.rsquared[i]) and np.isnan(res.HC1_se[i]).all()
        else:  # 3. the others are untouched
            ref = _reference(X, y, g, label)
            np.testing.assert_allclose(res.params[i], ref.params, rtol=1e-10)
            np.testing.assert_allclose(res.HC2_se[i], ref.HC2_se, rtol=1e-10)


def test_labels_must_be_one_per_row_and_not_missing():
    X, y = np.ones((4, 1)), np.arange(4.0)
    with pytest.raises(DataError, match="one label per row"):
        torchlinreg.ols(X, y, groups=[1, 2])
    with pytest.raises(DataError, match="NaN\\) label at row 2"):
        torchlinreg.ols(X, y, groups=[1.0, np.nan, 1.0, 2.0])
    with pytest.raises(DataError, match="one target"):
        torchlinreg.ols(X, np.ones((4, 2)), groups=[1, 1, 2, 2])


def test_without_groups_ols_is_the_single_fit():
    X, y = np.arange(10.0), np.arange(10.0) ** 1.5
    assert isinstance(torchlinreg.ols(X, y), torchlinreg.OLSResults)


def test_torch_inputs_on_their_device_give_the_same_answer():
    data = sm.datasets.grunfeld.load_pandas().data
    X = torch.tensor(data[["value", "capital"]].to_numpy())
    y = torch.tensor(data["invest"].to_numpy())
    codes = torch.tensor(pd.factorize(data["firm"], sort=True)[0])
    res = torchlinreg.ols(X, y, groups=codes)
    ref = torchlinreg.ols(X.numpy(), y.numpy(), groups=data["firm"])
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-13)


@settings(max_examples=12, deadline=None)
@given(
    sizes=st.lists(st.integers(5, 40), min_size=1, max_size=6),
    d=st.integers(1, 3),
    weighted=st.booleans(),
    intercept=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_any_grouping_equals_the_loop(sizes, d, weighted, intercept, seed):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(g)
    X = rng.normal(size=(len(g), d)) * rng.uniform(0.1, 100, size=d) + rng.normal(size=d) * 50
    y = X @ rng.normal(size=d) + rng.normal(size=len(g)) * 3 + 10
    w = rng.uniform(0.5, 2.0, size=len(g)) if weighted else None
    res = torchlinreg.ols(X, y, groups=g, sample_weight=w, fit_intercept=intercept)
    _assert_matches_loop(res, X, y, g, w=w, intercept=intercept, rtol=1e-9)


def test_grouped_moments_over_blocks_equal_the_loop_wherever_the_rows_are():
    from torchlinreg.models.groupstate import GroupedMoments

    data = sm.datasets.grunfeld.load_pandas().data.sample(frac=1.0, random_state=1)
    X, y = data[["value", "capital"]].to_numpy(), data["invest"].to_numpy()
    g = data["firm"].to_numpy()
    X[g == "IBM", 1] = 5.0  # constant within one group: that group has no fit
    acc = GroupedMoments(2)
    for lo in range(0, len(y), 37):  # 1. blocks that cut groups anywhere
        acc.absorb(X[lo : lo + 37] + 1e6, y[lo : lo + 37], None, g[lo : lo + 37])
    with pytest.warns(DegenerateWarning, match="1 groups get NaN"):
        fit = acc.solve(True)
    for i, label in enumerate(acc.labels):
        if label == "IBM":  # 2. NaN for the group with a constant column
            assert np.isnan(fit["params"][i]).all()
            continue
        ref = _reference(X, y, g, label)  # 3. slopes of the loop (offset 1e6 on X), normwise
        atol = 1e-10 * np.abs(ref.params[1:]).max()
        np.testing.assert_allclose(fit["params"][i, 1:], ref.params[1:], rtol=1e-10, atol=atol)
        np.testing.assert_allclose(fit["ssr"][i], ref.ssr, rtol=1e-10)


@pytest.mark.parametrize("seed", [1, 19, 25])
def test_grouped_moments_leave_groups_with_too_few_weighted_rows_without_a_fit(seed):
    # What `train --by --weights` solves: 40 groups of 20 rows spread over blocks, group k
    # keeping k % 5 rows of weight for 4 parameters, offsets of 1e4. Those with fewer than 4
    # must get no fit: their moments are singular, but rounding left a pivot above the
    # aliasing threshold in one group of each of these seeds (finite, wrong parameters).
    from torchlinreg.models.groupstate import GroupedMoments

    rng = np.random.default_rng(seed)
    G, m, d = 40, 20, 3
    X = rng.normal(size=(G * m, d)) * 10.0 ** rng.uniform(-3, 3, d) + rng.uniform(-1e4, 1e4, d)
    y = X @ rng.normal(size=d) + rng.normal(size=G * m)
    g = rng.permutation(np.repeat(np.arange(G), m))
    w = rng.uniform(0.5, 2, G * m)
    for k in range(G):
        w[np.flatnonzero(g == k)[k % (d + 2) :]] = 0.0
    acc = GroupedMoments(d)
    for lo in range(0, G * m, 97):
        acc.absorb(X[lo : lo + 97], y[lo : lo + 97], w[lo : lo + 97], g[lo : lo + 97])
    thin = [k for k in range(G) if k % (d + 2) < d + 1]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fit = acc.solve(True)
    said = [str(w.message) for w in seen]
    assert sum(f"{len(thin)} groups get NaN" in m for m in said) == 1, said
    # the groups left with exactly 4 weighted rows are fitted exactly: their ssr is
    # rounding noise, and their bounds say so (NOTE [bounds that warn])
    exact = G // (d + 2)
    assert any(m.startswith(f"{exact} groups may be off") for m in said), said
    for k in range(G):
        if k in thin:
            assert np.isnan(fit["params"][k]).all(), k
            continue
        mk = g == k
        ref = sm.WLS(y[mk], sm.add_constant(X[mk]), weights=w[mk]).fit()
        np.testing.assert_allclose(fit["params"][k, 1:], ref.params[1:], rtol=1e-7)


def test_fits_in_chunks_of_groups_equal_one_batch(monkeypatch):
    from torchlinreg.models import grouped

    data = sm.datasets.grunfeld.load_pandas().data
    X, y, g = data[["value", "capital"]], data["invest"], data["firm"]
    w = 1 + np.arange(len(y)) % 4
    whole = torchlinreg.ols(X, y, groups=g, sample_weight=w, cov_type="HC2")
    monkeypatch.setattr(grouped, "_CHUNK_VALUES", 90)  # 30 rows a chunk: whole firms, or one
    parts = torchlinreg.ols(X, y, groups=g, sample_weight=w, cov_type="HC2")
    for name in ("params", "bse", "rsquared", "llf", "fvalue", "HC0_se"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-13)
    plain = torchlinreg.ols(X, y, groups=g, sample_weight=w)
    _assert_matches_loop(plain, X.to_numpy(), y.to_numpy(), g.to_numpy(), w=w)


def test_a_formula_with_groups_equals_a_statsmodels_formula_loop():
    # ols("invest ~ value + np.log(capital)", data=df, groups="firm"): the formula's design,
    # one fit per firm, each equal to statsmodels' smf.ols on that firm's rows
    import statsmodels.formula.api as smf

    data = sm.datasets.grunfeld.load_pandas().data.sample(frac=1.0, random_state=3)
    formula = "invest ~ value + np.log(capital)"
    res = torchlinreg.ols(formula, data=data, groups="firm")
    assert list(res.groups) == sorted(data["firm"].unique())
    for i, firm in enumerate(res.groups):
        ref = smf.ols(formula, data[data["firm"] == firm]).fit()
        np.testing.assert_allclose(res.params[i], ref.params.to_numpy(), rtol=1e-10)
        np.testing.assert_allclose(res.bse[i], ref.bse.to_numpy(), rtol=1e-10)
        assert res.rsquared[i] == pytest.approx(ref.rsquared, rel=1e-10)


def test_p_values_split_over_idle_cores_equal_scipy_in_one_piece(monkeypatch):
    from scipy import stats

    from torchlinreg.models import batchstats

    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(300), rng.integers(8, 20, 300))  # df differs by group
    X = rng.normal(size=(len(g), 3))
    y = X @ [0.1, 0.0, -0.05] + rng.normal(size=len(g))
    monkeypatch.setattr(batchstats, "threads_for_a_fit", lambda: 3)
    monkeypatch.setattr(batchstats, "_PARALLEL_SF_VALUES", 100)  # 1200 values: 3 parts
    res = torchlinreg.ols(X, y, groups=g)
    t, df = res.tvalues, res.df_resid[:, None]
    np.testing.assert_array_equal(res.pvalues, 2 * stats.t.sf(np.abs(t), df))


def _offset_close_to_exact():
    x = np.arange(5.0)[:, None]
    y = np.array([30000000.00000129, 30000002.0000005, 30000004.00000004,
                  30000005.99999973, 30000007.99999936])  # fmt: skip
    return x, y, None


def _weighted_four_rows():
    X = np.array([[-0.0005155450798969091, -53178336.30546841],
                  [-0.0013298744871160098, -53178336.25947787],
                  [0.00438958859713461, -53178336.25556193],
                  [-0.001264866452632351, -53178336.28642416]])  # fmt: skip
    y = np.array([-7204346368.652215, -7204346362.421635, -7204346361.891134,
                  -7204346366.072189])  # fmt: skip
    w = np.array([0.00017486884119814102, 66.45839375188655, 25.14615594086929,
                  0.00010237156568502633])  # fmt: skip
    return X, y, w


def _intercept_near_zero():
    rng = np.random.default_rng(7)
    x = np.round(rng.standard_normal(27), 4)
    return x[:, None], 200.58 * x + 3.6e-8 * rng.standard_normal(27), None


@pytest.mark.parametrize(
    "case", [_offset_close_to_exact, _weighted_four_rows, _intercept_near_zero]
)
def test_a_group_off_by_its_rounding_says_so_within_its_estimates(case):
    # NOTE [coefficients next to their standard errors]: a grouped hunt's cases, silent
    # before: ssr 5.2e-4 and 5.7e6x off (the float64 parameters' rounding), an intercept
    # 3.5e-6 of its standard error off (measured against 1% of the norm)
    from exact_ls import exact_statistics

    X, y, w = case()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = torchlinreg.ols(X, y, groups=np.zeros(len(y), int), sample_weight=w)
        got = {k: np.asarray(getattr(res, k))[0] for k in ("params", "bse", "ssr")}
    said = [s.message for s in seen if isinstance(s.message, RankWarning)]
    assert len(said) == 1, [str(s.message) for s in seen]
    quoted = re.search(r"covariances by up to (\S+) ", str(said[0])).group(1)
    cov = float(quoted) if quoted != "any" else np.inf
    exact = exact_statistics(X, y, w)
    params = np.max(np.abs(got["params"] - exact["params"]) / np.maximum(
        np.abs(exact["params"]), exact["bse"]))  # fmt: skip
    bse = np.max(np.abs(got["bse"] / exact["bse"] - 1))
    ssr = abs(got["ssr"] / exact["ssr"] - 1)
    assert max(params, bse, ssr) > 1e-9  # the case matters
    # first-order estimates: the 4 weighted rows' coefficients came within 0.66x of it
    assert params <= 2 * said[0].error and max(bse, ssr) <= cov, (params, bse, ssr, said)


def test_groups_fitted_to_the_rounding_of_their_data_say_so():
    # a recheck's case (no intercept, 4 groups of 3-21 rows near 3e3 to 1e10): a group
    # came back with ssr and standard errors of exactly 0 where the exact ssr is 1e-13,
    # t infinite and p 0, with no word (NOTE [an essentially perfect fit])
    from pathlib import Path

    from exact_ls import exact_statistics

    data = np.loadtxt(
        Path(__file__).parent / "data" / "grouped_exact_fits.csv", delimiter=",", skiprows=1
    )
    g, X, y = data[:, 0].astype(int), data[:, 1:2], data[:, 2]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = torchlinreg.ols(X, y, groups=g, fit_intercept=False)
    said = [str(w.message) for w in seen if "fitted exactly, to the rounding" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in seen]
    named = re.search(r"e\.g\. \[([^\]]*)\]", said[0]).group(1)
    off = []
    for k, label in enumerate(res.groups):
        exact = exact_statistics(X[g == label], y[g == label], intercept=False)["ssr"]
        if abs(res.ssr[k] - exact) > 1e-8 * exact:
            off.append(int(label))
            assert str(int(label)) in named.split(", "), (label, res.ssr[k], exact, said)
    assert off  # the case matters
