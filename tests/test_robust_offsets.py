"""Robust covariances of columns far from their spread, scored against 60-digit references.

Without an intercept, columns near 1e8 with residuals of 1e-3 had HC standard errors 4e-6
to 3e-5 from the exact least-squares solution's where the covariance warning quoted 2e-7
to 8e-7 (NOTE [the residuals HC squares], NOTE [columns about a reference column] in
stats/covariance.py). ``robust_from_blocks`` ignored the offsets that the in-memory path
takes the rows about (1.7e-6 off near 1e9, silent). HC warnings named covariance.py or
results.py instead of the caller's line (NOTE [warnings name the caller]).

Every reference is computed in mpmath at 60 digits from the float64 data as given.
"""

from __future__ import annotations

import warnings

import mpmath as mp
import numpy as np
import pytest
import torch

import torchlinreg as tlr
from torchlinreg.errors import DegenerateWarning, RankWarning
from torchlinreg.stats.covariance import hc_covariance

HC_TYPES = ("HC0", "HC1", "HC2", "HC3")


def _mp_hc(X, y, *, intercept: bool, w=None, params=None, at=None) -> dict[str, np.ndarray]:
    """HC0-HC3 standard errors (statsmodels' WLS sandwich) at 60 digits, at the exact
    least-squares solution of the float64 data, or at ``params`` (float64) where given;
    with ``at`` (new rows of the design, intercept included) the standard errors of
    their predicted means instead, ``sqrt(a' V a)``."""
    with mp.workdps(60):
        n = len(y)
        rows = [([mp.mpf(1)] if intercept else []) + [mp.mpf(float(v)) for v in r] for r in X]
        A = mp.matrix(rows)
        p = A.cols
        ws = [mp.mpf(1)] * n if w is None else [mp.mpf(float(v)) for v in w]
        Y = mp.matrix([mp.mpf(float(v)) for v in y])
        AW = mp.matrix([[A[i, j] * ws[i] for j in range(p)] for i in range(n)])
        C = mp.inverse(AW.T * A)
        b = C * (AW.T * Y) if params is None else mp.matrix([mp.mpf(float(v)) for v in params])
        e = Y - A * b
        AC = A * C
        h = [ws[i] * sum(AC[i, a] * A[i, a] for a in range(p)) for i in range(n)]
        factor = {
            "HC0": [mp.mpf(1)] * n,
            "HC1": [mp.mpf(n) / (n - p)] * n,
            "HC2": [1 / (1 - h[i]) for i in range(n)],
            "HC3": [1 / (1 - h[i]) ** 2 for i in range(n)],
        }
        if at is None:
            return {
                kind: np.array(
                    [
                        float(mp.sqrt(sum(f[i] * (ws[i] * e[i] * AC[i, j]) ** 2 for i in range(n))))
                        for j in range(p)
                    ]
                )
                for kind, f in factor.items()
            }
        # a' V a = sum_i f_i (w_i e_i)^2 (a' C A_i)^2
        new = [[mp.mpf(float(v)) for v in r] for r in at]
        return {
            kind: np.array(
                [
                    float(
                        mp.sqrt(
                            sum(
                                f[i] * (ws[i] * e[i] * sum(a[j] * AC[i, j] for j in range(p))) ** 2
                                for i in range(n)
                            )
                        )
                    )
                    for a in new
                ]
            )
            for kind, f in factor.items()
        }


def _offset_columns(seed: int, offset: float, p: int = 3, n: int = 20, spread: float = 1.0):
    """Columns near ``offset``, a target they fit up to residuals of 1e-3."""
    rng = np.random.default_rng(seed)
    X = offset + spread * rng.standard_normal((n, p))
    return X, X @ rng.uniform(-1, 1, p) + 1e-3 * rng.standard_normal(n)


def _bse_and_quote(res, kind: str) -> tuple[np.ndarray, float, list]:
    """``bse`` of ``kind``, the largest error any RankWarning quoted, every warning."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bse = np.asarray(res.get_robustcov_results(kind).bse)
    quoted = [w.message.error for w in seen if isinstance(w.message, RankWarning)]
    return bse, max(quoted, default=0.0), seen


# ---- 1. single in-memory fits without an intercept ---------------------------------------


@pytest.mark.parametrize("offset", [1e4, 1e6, 1e8, 1e10])
@pytest.mark.parametrize("spread", [1.0, 0.01])
def test_hc_without_an_intercept_is_the_exact_solutions_or_says_how_far_off(offset, spread):
    # 1e8, spread 1: 4.4e-6 to 3e-5 off where the covariance warning quoted 2e-7 to 8e-7;
    # 1e4: 1e-9 off without a word. Now the rows are taken about a reference column and
    # the residuals are the exact solution's: ~1e-14 against the reference
    worst = 0.0
    for seed in range(3):
        X, y = _offset_columns(seed, offset, spread=spread)
        with warnings.catch_warnings(record=True) as fit_seen:
            warnings.simplefilter("always")
            res = tlr.ols(X, y, fit_intercept=False)
        # a fit near 1e10 with a spread of 0.01 may say its refinement stopped short: that
        # is about the coefficients, which HC no longer depends on
        assert all("did not converge" in str(w.message) for w in fit_seen)
        ref = _mp_hc(X, y, intercept=False)
        for kind in HC_TYPES:
            bse, quoted, seen = _bse_and_quote(res, kind)
            actual = float(np.max(np.abs(bse / ref[kind] - 1)))
            assert actual <= max(quoted, 1e-11), (seed, kind, actual, quoted)
            assert not seen, [str(w.message) for w in seen]  # nothing left to quote
            worst = max(worst, actual)
    assert worst <= 1e-11


@pytest.mark.parametrize("offset", [1e6, 1e9])
def test_weighted_hc_without_an_intercept_is_the_exact_solutions(offset):
    rng = np.random.default_rng(7)
    X, y = _offset_columns(7, offset, p=2, n=25)
    w = rng.uniform(0.5, 2.0, len(y))
    res = tlr.ols(X, y, sample_weight=w, fit_intercept=False)
    ref = _mp_hc(X, y, intercept=False, w=w)
    for kind in HC_TYPES:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            bse = np.asarray(res.get_robustcov_results(kind).bse)
        np.testing.assert_allclose(bse, ref[kind], rtol=1e-11)


def test_nonrobust_standard_errors_without_an_intercept_near_offsets_are_exact():
    # the raw factor's (X'X)^-1 held the spread to eps times the offsets: 2e-10 to 9e-8 off
    # near 1e8 (with the covariance warning); about the reference column it is exact. The
    # sums are those of the parameters returned (NOTE [the last correction])
    X, y = _offset_columns(1, 1e8, spread=0.01)
    res = tlr.ols(X, y, fit_intercept=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bse = np.asarray(res.bse)
    with mp.workdps(60):
        A = mp.matrix([[mp.mpf(float(v)) for v in r] for r in X])
        b = mp.matrix([mp.mpf(float(v)) for v in res.params])
        e = A * b - mp.matrix([mp.mpf(float(v)) for v in y])
        s2 = sum(v**2 for v in e) / (len(y) - A.cols)
        C = mp.inverse(A.T * A)
        ref = np.array([float(mp.sqrt(s2 * C[j, j])) for j in range(A.cols)])
    np.testing.assert_allclose(bse, ref, rtol=1e-11)


def test_ordinary_data_without_an_intercept_say_nothing():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 3)) + np.array([0.0, 3.0, 20.0])
    y = X @ [1.0, -0.5, 0.25] + rng.standard_normal(40)
    res = tlr.ols(X, y, fit_intercept=False)
    ref = _mp_hc(X, y, intercept=False)
    for kind in HC_TYPES:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            bse = np.asarray(res.get_robustcov_results(kind).bse)
        np.testing.assert_allclose(bse, ref[kind], rtol=1e-12)


# ---- 2. robust_from_blocks about the offsets ---------------------------------------------


def _near_1e9(seed: int = 0, n: int = 60):
    rng = np.random.default_rng(seed)
    x = 1e9 + 0.01 * rng.standard_normal(n)
    y = 2.0 * x + 0.1 * rng.standard_normal(n) * (1 + 100 * np.abs(x - 1e9))
    return x[:, None], y, rng.uniform(0.5, 2.0, n)


def _cut(X, y, w, size: int) -> list:
    return [
        (X[i : i + size], y[i : i + size]) + (() if w is None else (w[i : i + size],))
        for i in range(0, len(y), size)
    ]


@pytest.mark.parametrize("size", [1, 7, 25, 60])
@pytest.mark.parametrize("weighted", [False, True])
def test_blocks_take_the_rows_about_the_offsets(size, weighted):
    # the second pass took the raw rows and factor: 2e-7 to 1.8e-6 from the in-memory
    # standard errors (exact here), without a word (NOTE [blocks about the offsets])
    X, y, w = _near_1e9()
    w = w if weighted else None
    res = tlr.ols(X, y, sample_weight=w)
    ref = _mp_hc(X, y, intercept=True, w=w, params=res.params)
    # in memory HC is the least-squares residuals' (NOTE [the residuals HC squares]), and
    # so is the blocks' where they can be read again (NOTE [blocks at the least-squares
    # residuals]); the returned parameters' is 3e-8 away on this column near 1e9
    exact = _mp_hc(X, y, intercept=True, w=w)
    blocks = _cut(X, y, w, size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind in HC_TYPES:
            assert np.max(np.abs(ref[kind] / exact[kind] - 1)) > 1e-9
            streamed = np.asarray(res.robust_from_blocks(blocks, kind).bse)
            np.testing.assert_allclose(streamed, exact[kind], rtol=1e-12)
            np.testing.assert_allclose(res.get_robustcov_results(kind).bse, exact[kind], rtol=1e-12)
        hac = res.robust_from_blocks(blocks, "HAC", maxlags=3).bse
        np.testing.assert_allclose(hac, res.get_robustcov_results("HAC", maxlags=3).bse, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_a_streamed_fit_takes_its_states_offsets(weighted):
    # a fit from the state alone: HC 7e-7 to 1.2e-6 off, and its predictions' mean_se NaN
    # or 1000x too large; the state's factor about its offsets serves both now. The
    # references are at the least-squares solution, whose residuals the blocks are read at
    # again (NOTE [blocks at the least-squares residuals])
    X, y, w = _near_1e9(1)
    w = w if weighted else None
    blocks = _cut(X, y, w, 9)
    res = tlr.LinearRegression().fit_blocks(blocks).results_
    ref = _mp_hc(X, y, intercept=True, w=w)
    means = _mp_hc(X, y, intercept=True, w=w, at=np.c_[np.ones(3), X[:3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind in ("HC0", "HC3"):
            streamed = res.robust_from_blocks(blocks, kind)
            np.testing.assert_allclose(streamed.bse, ref[kind], rtol=1e-12)
            frame = streamed.get_prediction(X[:3]).summary_frame()
            np.testing.assert_allclose(frame["mean_se"], means[kind], rtol=1e-10)


def test_blocks_without_an_intercept_say_how_far_off_they_may_be():
    # one pass can neither project the residuals nor find a reference column: near 1e8
    # with residuals of 1e-3 a streamed fit's HC was 7e-7 off where only 1.7e-7 was said
    worst = 0.0
    for offset in (1e4, 1e6, 1e8, 1e10):
        for seed in range(2):
            X, y = _offset_columns(seed, offset, p=2, n=30)
            blocks = _cut(X, y, None, 8)
            ref = _mp_hc(X, y, intercept=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the fits' own warnings: not scored here
                fits = [
                    tlr.ols(X, y, fit_intercept=False),
                    tlr.LinearRegression(fit_intercept=False).fit_blocks(blocks).results_,
                ]
            for res in fits:
                for kind in ("HC0", "HC3"):
                    with warnings.catch_warnings(record=True) as seen:
                        warnings.simplefilter("always")
                        bse = np.asarray(res.robust_from_blocks(blocks, kind).bse)
                    quoted = [w.message.error for w in seen if isinstance(w.message, RankWarning)]
                    actual = float(np.max(np.abs(bse / ref[kind] - 1)))
                    assert actual <= max(quoted, default=1e-10), (offset, seed, kind, actual)
                    worst = max(worst, actual)
    assert worst > 1e-7  # the cases are real: the data say so, not a tolerance


def test_ordinary_blocks_without_an_intercept_say_nothing():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((50, 2)) + np.array([0.0, 5.0])
    y = X @ [1.0, 2.0] + rng.standard_normal(50)
    blocks = _cut(X, y, None, 11)
    res = tlr.LinearRegression(fit_intercept=False).fit_blocks(blocks).results_
    ref = _mp_hc(X, y, intercept=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind in HC_TYPES:
            np.testing.assert_allclose(
                res.robust_from_blocks(blocks, kind).bse, ref[kind], rtol=1e-11
            )


# ---- 3. HC warnings name the caller's line ------------------------------------------------


def _leverage_one_data():
    rng = np.random.default_rng(0)
    X = np.c_[rng.standard_normal(20), np.eye(20)[0]]  # a dummy for row 1: leverage 1
    return X, rng.standard_normal(20)


@pytest.mark.parametrize("path", ["bse", "cov_params", "cov_type", "blocks"])
def test_hc_warnings_name_the_callers_file(path):
    # before, the leverage-one warning named stats/covariance.py whichever way it came
    X, y = _leverage_one_data()
    res = tlr.ols(X, y)
    with pytest.warns(DegenerateWarning, match="leverage 1") as seen:
        if path == "bse":  # a cached property: functools' __get__ sits between
            res.get_robustcov_results("HC3").bse  # noqa: B018
        elif path == "cov_params":
            res.get_robustcov_results("HC2").cov_params()
        elif path == "cov_type":
            tlr.ols(X, y, cov_type="HC3").bse  # noqa: B018
        else:
            res.robust_from_blocks([(X[:7], y[:7]), (X[7:], y[7:])], "HC3").bse  # noqa: B018
    assert [w.filename for w in seen] == [__file__]


def test_hc_warnings_of_a_direct_call_name_the_callers_file():
    X, y = _leverage_one_data()
    A = torch.tensor(np.c_[np.ones(20), X])
    e = torch.tensor(y[:, None])
    with pytest.warns(DegenerateWarning, match="leverage 1") as seen:
        hc_covariance(A, e, "HC3", 20, 17.0)
    with pytest.warns(DegenerateWarning, match="no residual degrees of freedom") as more:
        hc_covariance(A[:3], e[:3], "HC1", 3, 0.0)
    assert [w.filename for w in [*seen, *more]] == [__file__, __file__]


def test_the_hc1_and_accuracy_warnings_of_bse_name_the_callers_file():
    exact = tlr.ols(np.array([[1.0, 2.0], [3.0, 5.0]]), [1.0, 2.0], fit_intercept=False)
    with pytest.warns(DegenerateWarning, match="HC1 scales") as seen:
        exact.get_robustcov_results("HC1").bse  # noqa: B018
    # a nearly collinear design's covariance warning, read through an HC result's bse
    rng = np.random.default_rng(3)
    x1, x2 = rng.standard_normal(200), rng.standard_normal(200)
    X = np.c_[x1, x2, x1 + x2 + 1e-11 * rng.standard_normal(200)]
    res = tlr.ols(X, 1 + x1 + rng.standard_normal(200), cov_type="HC0")
    with pytest.warns(RankWarning, match="nearly collinear") as collinear:
        res.bse  # noqa: B018
    assert {w.filename for w in [*seen, *collinear]} == {__file__}


@pytest.mark.parametrize("offset", [1e6, 1e9])
def test_weights_over_many_decades_beside_offsets_keep_hc(offset):
    # NOTE [the residuals HC squares], NOTE [one minus leverage]: Longley weighted over 16
    # decades with its columns + 1e9: HC3 20x off, HC2 1.2e-3, HC0 4.8e-5 (+ 1e6: HC3
    # 1.7e-3), silently; the returned coefficients' residuals and 1 - h as 1 - ||q||^2
    import statsmodels.api as sm

    d = sm.datasets.longley.load_pandas()
    X, y = d.exog.to_numpy(float) + offset, d.endog.to_numpy(float)
    w = 10.0 ** np.random.default_rng(11).uniform(-8, 8, len(y))
    res = tlr.ols(X, y, sample_weight=w)
    ref = _mp_hc(X, y, intercept=True, w=w)
    for kind in HC_TYPES:
        np.testing.assert_allclose(res.get_robustcov_results(kind).bse, ref[kind], rtol=1e-9)
