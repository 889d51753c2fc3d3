"""The grouped fit's two routes (NOTE [grouped fit]): the Gram/Cholesky route where its
condition check certifies it, the QR route elsewhere; layouts (equal sizes, padding, chunks)
and the group coding, each against an independent reference."""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
import torch

import torchlinreg
from test_grouped import _assert_matches_loop
from torchlinreg.errors import DataError, DegenerateWarning, RankWarning
from torchlinreg.models import grouped, groupfit
from torchlinreg.models.segments import chunks, encode_groups, encode_tensor_groups, stable_order


@pytest.fixture
def qr_groups(monkeypatch):
    """Counts the groups that take the QR route."""
    seen = []
    real = groupfit._qr_route

    def spy(A, *args):
        seen.append(A.shape[0])
        return real(A, *args)

    monkeypatch.setattr(groupfit, "_qr_route", spy)
    return seen


def _panel(G, sizes, d, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    g = rng.permutation(np.repeat(np.arange(G), sizes))
    X = rng.normal(size=(len(g), d)) * rng.uniform(0.5, 20, d) + rng.uniform(-10, 10, d) + offset
    y = (X - offset) @ rng.normal(size=d) + g % 7 + rng.normal(size=len(g))
    return X, y, g


@pytest.mark.parametrize("d", [4, 9])  # the small factor (NOTE [small factors]), LAPACK
def test_well_conditioned_groups_take_the_gram_route_and_equal_the_loop(qr_groups, d):
    X, y, g = _panel(60, 25, d, seed=0)
    res = torchlinreg.ols(X, y, groups=g)
    # 1. no group needed the QR route; 2. every statistic equals statsmodels' per group
    assert sum(qr_groups) == 0
    _assert_matches_loop(res, X, y, g)


def test_the_qr_route_alone_equals_the_loop(monkeypatch, qr_groups):
    # a condition limit of 0 sends every group to the QR route: it must stand on its own
    monkeypatch.setattr(groupfit, "GRAM_COND_LIMIT", 0.0)
    X, y, g = _panel(30, [12, 30, 45] * 10, 3, seed=1)
    w = 1 + np.arange(len(y)) % 3
    res = torchlinreg.ols(X, y, groups=g, sample_weight=w)
    assert sum(qr_groups) == 30
    _assert_matches_loop(res, X, y, g, w=w)


def test_ill_conditioned_groups_go_to_qr_and_keep_their_digits(qr_groups, monkeypatch):
    # x2 = x1 + 1e-4 noise: cond(C) ~ 1e9, beyond the Gram route's limit; a near-exact fit
    rng = np.random.default_rng(2)
    G, m = 20, 40
    g = np.repeat(np.arange(G), m)
    x1 = rng.normal(size=G * m)
    X = np.c_[x1, x1 + 1e-4 * rng.normal(size=G * m), rng.normal(size=G * m)]
    y = 1 + X @ np.array([1.0, 2.0, -1.0]) + 1e-6 * rng.normal(size=G * m)
    res = torchlinreg.ols(X, y, groups=g)
    # 1. every group took the QR route
    assert sum(qr_groups) == G

    def errors(fit):
        out = []
        for i in range(G):  # lstsq (SVD) of the centred rows: cond(A) eps ~ 1e-11
            Xi, yi = X[g == i], y[g == i]
            b = np.linalg.lstsq(Xi - Xi.mean(0), yi - yi.mean(), rcond=None)[0]
            out.append(np.abs(fit.params[i, 1:] - b).max() / np.abs(b).max())
        return max(out)

    # 2. the routed fit keeps the digits of a QR (or SVD) solve
    assert errors(res) < 1e-9
    # 3. the check matters: the Gram route alone loses digits on these groups, and the
    # accuracy estimate says so (NOTE [grouped accuracy])
    monkeypatch.setattr(groupfit, "GRAM_COND_LIMIT", float("inf"))
    with pytest.warns(RankWarning, match="20 of 20 groups are ill-conditioned") as rec:
        gram_only = torchlinreg.ols(X, y, groups=g)
    assert errors(gram_only) > 1e-8
    assert errors(gram_only) <= rec[0].message.error


@pytest.mark.parametrize("power", [-140, 140])
def test_data_near_overflow_or_underflow_takes_the_qr_route(power, qr_groups):
    # sums of squares of 1e140 come near overflow and of 1e-140 near underflow: the Gram
    # cannot be trusted there
    X, y, g = _panel(8, 20, 2, seed=3)
    s = 10.0**power
    res = torchlinreg.ols(X * s, y * s, groups=g)
    ref = torchlinreg.ols(X, y, groups=g)
    assert sum(qr_groups) == 8
    # 1. slopes, t values and R2 do not depend on a common scale of X and y
    np.testing.assert_allclose(res.params[:, 1:], ref.params[:, 1:], rtol=1e-12)
    np.testing.assert_allclose(res.tvalues, ref.tvalues, rtol=1e-11)
    np.testing.assert_allclose(res.rsquared, ref.rsquared, rtol=1e-12)


def test_unequal_sizes_with_offsets_and_weights_in_small_chunks_equal_the_loop(monkeypatch):
    # dense chunks (a run of equal sizes), padded ones (sizes within a factor of two) and a
    # group larger than a chunk, all with data near 1e9 (reference: the exactly shifted data)
    monkeypatch.setattr(grouped, "_CHUNK_VALUES", 400)
    off = 1e9
    sizes = [40] * 6 + [17, 23, 31, 9, 12, 150]
    rng = np.random.default_rng(4)
    g = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    small = np.round(rng.normal(size=(len(g), 2)) * 1024) / 1024
    y = small @ np.array([2.0, -1.0]) + np.round(rng.normal(size=len(g)) * 256) / 256 + g
    w = 1.0 + np.arange(len(g)) % 4
    res = torchlinreg.ols(small + off, y, groups=g, sample_weight=w)
    for i in range(len(sizes)):
        m = g == i
        ref = sm.WLS(y[m], sm.add_constant(small[m]), weights=w[m]).fit()
        np.testing.assert_allclose(res.params[i, 1:], ref.params[1:], rtol=1e-10)
        np.testing.assert_allclose(res.bse[i, 1:], ref.bse[1:], rtol=1e-10)
        np.testing.assert_allclose(res.rsquared[i], ref.rsquared, rtol=1e-10)
        np.testing.assert_allclose(res.llf[i], ref.llf, rtol=1e-10)
        np.testing.assert_allclose(res.HC1_se[i, 1:], ref.HC1_se[1:], rtol=1e-9)


def test_a_column_flat_up_to_rounding_at_1e9_is_degenerate():
    # values 1e9 and 1e9 + 1 ulp: constant within the group up to rounding of its magnitude
    rng = np.random.default_rng(5)
    g = np.repeat([0, 1], 30)
    X = rng.normal(size=(60, 2))
    X[:30, 1] = 1e9 + np.spacing(1e9) * rng.integers(0, 2, 30)
    y = X[:, 0] + rng.normal(size=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = torchlinreg.ols(X, y, groups=g)
    msgs = [str(w.message) for w in caught if issubclass(w.category, DegenerateWarning)]
    # 1. one warning for one rank-deficient group; 2. NaN there, the other group fitted
    assert len(msgs) == 1 and msgs[0].startswith("1 of 2 groups")
    assert np.isnan(res.params[0]).all()
    ref = sm.OLS(y[30:], sm.add_constant(X[30:])).fit()
    np.testing.assert_allclose(res.params[1], ref.params, rtol=1e-10)


def test_a_group_with_every_weight_zero_is_nan():
    X, y, g = _panel(3, 10, 1, seed=6)
    w = np.where(g == 1, 0.0, 1.0)
    with pytest.warns(DegenerateWarning, match="1 of 3 groups"):
        res = torchlinreg.ols(X, y, groups=g, sample_weight=w)
    assert np.isnan(res.params[1]).all() and np.isfinite(res.params[[0, 2]]).all()


@pytest.mark.parametrize(
    "labels",
    [
        np.array([5, -3, 5, 7, -3, 0]),
        np.array([3, 1, 2], dtype=np.uint8),
        np.array([True, False, True]),
        np.array([2**63 + 5, 2**63 + 1, 2**63 + 5], dtype=np.uint64),
        np.array([10**12, 0, 10**12]),  # a wide range: sorted, not counted
        np.array(["b", "a", "b"]),
        # a range wider than half the type: the offsets from the least label wrap
        np.array([-128, 127, 0, 127], dtype=np.int8),
        np.array([30000, -30000, 1], dtype=np.int16),
        np.array([-(2**63), 2**63 - 1, -(2**63)], dtype=np.int64),  # sorted, not counted
    ],
)
def test_group_codes_equal_numpy_unique(labels):
    got_labels, got_codes = encode_groups(labels, len(labels))
    want_labels, want_codes = np.unique(labels, return_inverse=True)
    assert got_labels.dtype == want_labels.dtype
    np.testing.assert_array_equal(got_labels, want_labels)
    np.testing.assert_array_equal(got_codes, want_codes)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([5, -3, 5, 7, -3, 0]),
        np.array([3, 1, 2], dtype=np.uint8),
        np.array([True, False, True]),
        np.array([10**12, 0, 10**12]),
        np.array([2.5, -1.0, 2.5, 0.0]),
    ],
)
def test_group_codes_coded_by_torch_equal_numpy_unique(labels):
    # the route for labels on an accelerator (NOTE [grouping on the device]), run here on
    # a CPU tensor
    got_labels, codes, counts = encode_tensor_groups(torch.as_tensor(labels), len(labels), "cpu")
    want_labels, want_codes = np.unique(labels, return_inverse=True)
    np.testing.assert_array_equal(got_labels, want_labels)
    np.testing.assert_array_equal(codes.numpy(), want_codes)
    np.testing.assert_array_equal(counts.numpy(), np.bincount(want_codes))
    with pytest.raises(DataError, match=r"NaN.* row 3"):
        encode_tensor_groups(torch.tensor([1.0, 2.0, float("nan")]), 3, "cpu")


@pytest.mark.parametrize("sizes", [[7] * 9, [40] * 6 + [17, 23, 31, 9, 12, 150]])
def test_rows_ordered_by_torch_equal_the_radix_route(sizes, monkeypatch):
    g = np.random.default_rng(8).permutation(np.repeat(np.arange(len(sizes)), sizes))
    counts = np.bincount(g)
    for values in (400, 1 << 20):  # padded and dense chunks, one chunk or many
        a_order, a = chunks(g, counts, values, 3)
        b_order, b = chunks(torch.as_tensor(g), counts, values, 3)
        assert (a_order is None) == (b_order is None)
        if a_order is not None:
            assert torch.equal(a_order, b_order)
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x.groups, y.groups) and torch.equal(x.rows, y.rows)
            assert x.width == y.width
    # and a whole fit through it equals the default route bitwise
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(len(g), 2)) + 50, rng.normal(size=len(g))
    want = torchlinreg.ols(X, y, groups=g)
    real = groupfit.chunks
    monkeypatch.setattr(groupfit, "chunks", lambda c, *a: real(torch.as_tensor(c), *a))
    got = torchlinreg.ols(X, y, groups=g)
    np.testing.assert_array_equal(got.params, want.params)
    np.testing.assert_array_equal(got.bse, want.bse)


@pytest.mark.parametrize("n_keys", [3, 70_000, 5_000_000])
def test_stable_order_is_a_stable_argsort(n_keys):
    keys = np.random.default_rng(7).integers(0, n_keys, 20_000)
    np.testing.assert_array_equal(stable_order(keys, n_keys), np.argsort(keys, kind="stable"))


def test_p_values_are_scipys_t_and_normal_tails():
    from scipy import stats

    from torchlinreg.models.batchstats import BatchStatistics

    rng = np.random.default_rng(8)
    t = np.r_[rng.standard_cauchy(size=(200, 3)) * 5, [[np.inf, -np.inf, 0.0]] * 3]
    df = np.r_[rng.integers(1, 300, 200).astype(float), [np.nan, 0.0, 2.0]]
    G = len(df)
    st = BatchStatistics(
        params=t, cov_unscaled=np.ones((G, 3, 3)), ssr=np.ones(G), centered_tss=np.ones(G),
        uncentered_tss=np.ones(G), nobs=df + 3, sum_log_w=np.zeros(G), bad=np.zeros(G, bool),
        k_constant=1, param_names=["const", "a", "b"],
    )  # fmt: skip
    with np.errstate(invalid="ignore"):
        want = stats.t.sf(t, df[:, None])
    # 1. bit for bit scipy's t tail, NaN where df is not positive; 2. the normal tail
    np.testing.assert_array_equal(st._sf(t), want)
    st.use_t = False
    np.testing.assert_array_equal(st._sf(t), stats.norm.sf(t))


@pytest.mark.parametrize("c", [2, 5, 8])
def test_small_factors_equal_batched_lapack(c):
    # NOTE [small factors]: the vector Cholesky over the batch gives LAPACK's slopes and
    # inverse, and flags a Gram that is not positive definite as LAPACK's info does
    g = torch.Generator().manual_seed(c)
    A = torch.randn(400, 3 * c, c, generator=g, dtype=torch.float64)
    gram = A.mT @ A
    gram[7, -2, :] = gram[7, :, -2] = 0.0  # a zero column: a zero pivot
    gram[9] = -gram[9]
    factored, b, V, _, R_inv = groupfit._small_factor(gram)
    U, info = torch.linalg.cholesky_ex(gram, upper=True)
    assert factored.tolist() == (info == 0).tolist() and not factored[7] and not factored[9]
    assert bool(torch.isfinite(b).all()) and bool(torch.isfinite(V).all())
    ok = factored
    d = c - 1
    rinv = torch.linalg.inv(U[ok, :d, :d])
    torch.testing.assert_close(b[ok], (rinv @ U[ok, :d, d:])[..., 0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(V[ok], rinv @ rinv.mT, rtol=1e-12, atol=1e-16)
    torch.testing.assert_close(R_inv[ok], rinv, rtol=1e-12, atol=1e-16)


def test_fair_by_religion_keeps_the_digits_of_the_refined_single_fits():
    # Real data, integer columns nearly uncorrelated within a group: centred by a rough
    # shift (a sample's mean) and corrected by a rank-one term, a small coefficient lost a
    # digit (1.9e-12) and R2 two (2.6e-13); centred by the exact mean (NOTE [the mean and
    # what rounding left of it]) they are 1.5e-13 and 4.6e-15 from the refined single fits
    data = sm.datasets.fair.load_pandas().data
    cols = ["rate_marriage", "age", "yrs_married", "children", "educ"]
    X, y, g = data[cols].to_numpy(float), data["affairs"].to_numpy(float), data["religious"]
    res = torchlinreg.ols(X, y, groups=g.to_numpy())
    for i, label in enumerate(res.groups):
        rows = (g == label).to_numpy()
        one = torchlinreg.ols(X[rows], y[rows])
        np.testing.assert_allclose(res.params[i], one.params, rtol=1e-12)
        np.testing.assert_allclose(res.bse[i], one.bse, rtol=1e-13)
        np.testing.assert_allclose(res.rsquared[i], one.rsquared, rtol=1e-13)


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("X", "X contains NaN at row 18,"),
        ("y", "y contains infinity at row 6,"),
        ("zero weight", "X contains infinity at row 10,"),
        ("zero x", "y contains NaN at row 4,"),
    ],
)
def test_nan_or_infinity_in_the_rows_is_named_by_row(where, message, intercept):
    # the rows are not scanned first: sums or X'y that are not finite send them to the
    # scan (NOTE [no scan for NaN])
    X, y, g = _panel(4, 30, 2, seed=12)
    w = np.ones(len(y))
    if where == "X":
        X[17, 1] = np.nan
    elif where == "y":
        y[5] = np.inf
    elif where == "zero weight":
        X[9, 0], w[9] = np.inf, 0.0
    else:  # a row of zeros times NaN
        X[3], y[3] = 0.0, np.nan
    with pytest.raises(DataError, match=message):
        torchlinreg.ols(X, y, groups=g, sample_weight=w, fit_intercept=intercept)


def test_data_whose_gram_overflows_is_no_error():
    # finite rows near 1e160: the Grams overflow, the scan finds nothing, the fit goes on
    X, y, g = _panel(4, 30, 2, seed=13)
    with pytest.warns(UserWarning):
        res = torchlinreg.ols(X * 1e160, y * 1e160, groups=g)
    ref = torchlinreg.ols(X, y, groups=g)
    np.testing.assert_allclose(res.params[:, 1:], ref.params[:, 1:], rtol=1e-12)


def _single_fits(X, y, g, **kw):
    """Per group: the refined single fit and its HC0-HC3 standard errors."""
    out = []
    for label in np.unique(g):
        rows = g == label
        w = kw.get("sample_weight")
        args = {**kw, **({} if w is None else {"sample_weight": w[rows]})}
        one = torchlinreg.ols(X[rows], y[rows], **args)
        with warnings.catch_warnings():  # the reference's own covariance may warn (collinear)
            warnings.filterwarnings("ignore", "the design is nearly collinear", RankWarning)
            hc = {c: torchlinreg.ols(X[rows], y[rows], cov_type=c, **args).bse for c in HC_KINDS}
        out.append((one, hc))
    return out


HC_KINDS = ("HC0", "HC1", "HC2", "HC3")


@pytest.mark.parametrize("intercept", [True, False])
def test_hc_through_r_keeps_the_single_fits_digits_on_longley(intercept):
    # NOTE [the sandwich through R]: with the explicit (X'X)^-1 on both sides of the meat,
    # Longley without an intercept (cond(C) 1e6) had HC3 2.5e-11 from the single fits
    data = sm.datasets.longley.load_pandas().data
    X, y = data.drop(columns=["TOTEMP"]).to_numpy(float), data["TOTEMP"].to_numpy(float)
    X, y = np.r_[X, X[::-1] * 1.5], np.r_[y, y[::-1] * 1.5]  # two groups
    g = np.repeat([0, 1], len(data))
    w = 1.0 + np.arange(len(y)) % 3
    res = torchlinreg.ols(X, y, groups=g, sample_weight=w, fit_intercept=intercept)
    for i, (one, hc) in enumerate(_single_fits(X, y, g, sample_weight=w, fit_intercept=intercept)):
        np.testing.assert_allclose(res.params[i], one.params, rtol=1e-12)
        for c in HC_KINDS:
            np.testing.assert_allclose(getattr(res, f"{c}_se")[i], hc[c], rtol=5e-12)


def test_a_group_ill_conditioned_past_recovery_says_how_far_off_it_may_be():
    # Fair's data shifted by 1e8 and fitted without an intercept: cond(C) 3e15. The
    # coefficients were 1.6e-7 from the refined single fits and HC3 2.6x off or NaN, with
    # no warning (NOTE [grouped accuracy]); now HC is within eps kappa and both are said
    data = sm.datasets.fair.load_pandas().data
    cols = ["rate_marriage", "age", "yrs_married", "children", "educ"]
    X, y = data[cols].to_numpy(float) + 1e8, data["affairs"].to_numpy(float)
    g = data["religious"].to_numpy()
    with pytest.warns(RankWarning, match=r"4 of 4 groups are ill-conditioned.*torchlinreg\.ols"):
        res = torchlinreg.ols(X, y, groups=g, fit_intercept=False)
    error, cov_error = res._fit.error.numpy(), res._fit.cov_error.numpy()
    # HC squares residuals that carry the coefficients' error: its own, looser quote
    # (NOTE [HC through the residuals] in models/robust.py)
    with pytest.warns(RankWarning, match="square residuals"):
        ses = {c: getattr(res, f"{c}_se") for c in HC_KINDS}
    for i, (one, hc) in enumerate(_single_fits(X, y, g, fit_intercept=False)):
        assert np.abs(res.params[i] / one.params - 1).max() <= error[i]
        for c in HC_KINDS:
            assert np.abs(ses[c][i] / hc[c] - 1).max() <= cov_error[i] <= 1e-6


def test_a_row_of_leverage_one_makes_its_groups_hc2_hc3_nan_with_a_warning():
    # a dummy column for one row of group 0: that row's leverage is 1 and its residual 0,
    # so HC2/HC3 are 0/0 there, NaN as a single fit gives them (NOTE [leverage one]);
    # before, the group got a number from the rounding of 1 - h
    rng = np.random.default_rng(0)
    n = 20
    x = rng.normal(size=2 * n)
    dummy = np.zeros(2 * n)
    dummy[3] = 1.0
    X = np.c_[x, np.r_[dummy[:n], rng.normal(size=n)]]
    y = 1 + x + rng.normal(size=2 * n)
    g = np.repeat([0, 1], n)
    res = torchlinreg.ols(X, y, groups=g)
    for kind in ("HC2", "HC3"):
        with pytest.warns(DegenerateWarning, match=rf"1 of 2 groups .* \[0\]: {kind} divides"):
            se = getattr(res, f"{kind}_se")
        assert np.isnan(se[0]).all()
        with pytest.warns(DegenerateWarning, match="leverage 1"):
            single = torchlinreg.ols(X[g == 0], y[g == 0], cov_type=kind).bse
        assert np.isnan(single).all()
        ref = torchlinreg.ols(X[g == 1], y[g == 1], cov_type=kind).bse
        np.testing.assert_allclose(se[1], ref, rtol=1e-12)
    np.testing.assert_allclose(res.HC0_se[0], torchlinreg.ols(X[:n], y[:n], cov_type="HC0").bse)
