"""The other second passes over the blocks, for columns far from their spread.

``streamhc.hc_from_blocks`` (``train --cov-type HC0..HC3``'s model file) and
``cluster_from_blocks`` / ``with_cluster_sums`` took the raw rows and the raw factor where
``robust_from_blocks`` now takes the rows about the fit's offsets (NOTE [blocks about the
offsets] in stats/robust_blocks.py): a column near 1e9 with a spread of 0.01 gave HC
standard errors up to 3.9e-6 and clustered ones up to 2.2e-5 from the 60-digit sandwich of
the same parameters, without a word. References are computed in mpmath at 60 digits from
the float64 data as given.
"""

from __future__ import annotations

import warnings

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
import torch

import torchlinreg as tlr
from cli_helpers import cli
from test_robust_offsets import _cut, _mp_hc, _near_1e9
from torchlinreg.stats.robust_blocks import ClusterSums, add_blocks
from torchlinreg.stats.streamhc import hc_from_blocks, with_robust


def _mp_cluster(X, y, groups, *, w=None, params=None, intercept=True) -> np.ndarray:
    """One-way clustered standard errors (statsmodels' correction) at 60 digits, at the
    float64 ``params``, or at the exact least-squares solution of the float64 data where
    ``params`` is None."""
    with mp.workdps(60):
        n = len(y)
        A = mp.matrix([[mp.mpf(1)] * intercept + [mp.mpf(float(v)) for v in r] for r in X])
        p = A.cols
        ws = [mp.mpf(1)] * n if w is None else [mp.mpf(float(v)) for v in w]
        AW = mp.matrix([[A[i, j] * ws[i] for j in range(p)] for i in range(n)])
        C = mp.inverse(AW.T * A)
        Y = mp.matrix([mp.mpf(float(v)) for v in y])
        b = C * (AW.T * Y) if params is None else mp.matrix([mp.mpf(float(v)) for v in params])
        e = Y - A * b
        AC = A * C
        labels = sorted(set(np.asarray(groups).tolist()))
        var = [mp.mpf(0)] * p
        for g in labels:
            rows = [i for i in range(n) if groups[i] == g]
            for j in range(p):
                var[j] += sum(ws[i] * e[i] * AC[i, j] for i in rows) ** 2
        G = len(labels)
        c = mp.mpf(G) / (G - 1) * (n - 1) / (n - p)
        return np.array([float(mp.sqrt(c * v)) for v in var])


def _tensor_blocks(blocks) -> list:
    return [
        (torch.from_numpy(b[0]), torch.from_numpy(b[1][:, None]))
        + ((torch.from_numpy(b[2]),) if len(b) == 3 else (None,))
        for b in blocks
    ]


def _labels(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(100 + seed).integers(0, 8, n)


# ---- 1. streamhc: the model file's HC covariance ------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 25, 60])
@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_hc_takes_the_rows_about_the_offsets(size, weighted):
    # before: 1.1e-6 to 3.9e-6 from the reference (NOTE [streamed HC about the offsets])
    X, y, w = _near_1e9()
    w = w if weighted else None
    res = tlr.ols(X, y, sample_weight=w)
    ref = _mp_hc(X, y, intercept=True, w=w, params=res.params)
    exact = _mp_hc(X, y, intercept=True, w=w)
    blocks = _tensor_blocks(_cut(X, y, w, size))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind in ("HC0", "HC1", "HC2", "HC3"):
            cov = hc_from_blocks(res, blocks, kind)
            bse = np.asarray(with_robust(res._rebuilt("nonrobust", None, {}), cov, kind).bse)
            # blocks that can be read twice: the least-squares residuals' too (NOTE [blocks
            # at the least-squares residuals]); the returned parameters' are 1e-8 off here
            np.testing.assert_allclose(bse, exact[kind], rtol=1e-12)
            assert np.max(np.abs(ref[kind] / exact[kind] - 1)) > 1e-9
            # in memory: the least-squares residuals' (NOTE [the residuals HC squares])
            mem = res.get_robustcov_results(kind).bse
            np.testing.assert_allclose(mem, exact[kind], rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_hc_of_a_fit_from_blocks(weighted):
    X, y, w = _near_1e9(1)
    w = w if weighted else None
    blocks = _cut(X, y, w, 9)
    res = tlr.LinearRegression().fit_blocks(blocks).results_
    # the least-squares solution's (the streamed parameters' are 1e-8 off: NOTE [blocks at
    # the least-squares residuals]), as in memory
    ref = _mp_hc(X, y, intercept=True, w=w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind in ("HC1", "HC3"):
            cov = hc_from_blocks(res, _tensor_blocks(blocks), kind)
            bse = np.asarray(with_robust(res._rebuilt("nonrobust", None, {}), cov, kind).bse)
            np.testing.assert_allclose(bse, ref[kind], rtol=1e-12)


def test_train_cov_type_stores_the_covariance_about_the_offsets(capsys, tmp_path):
    # the CLI's second pass is hc_from_blocks: its model file held HC1 1e-6 off
    X, y, _ = _near_1e9(2)
    data = tmp_path / "near.csv"
    pd.DataFrame({"x": X[:, 0], "y": y}).to_csv(data, index=False)
    # the file's numbers as the reader takes them (repr round-trips)
    back = pd.read_csv(data)
    X, y = back[["x"]].to_numpy(), back["y"].to_numpy()
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "y", "--cov-type", "HC1", "--block-rows", 7, "-o", model)
    assert r.code == 0, r.err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = tlr.load(model).results_
        assert res.cov_type == "HC1"
        # at the least-squares residuals: the pass reads the file again where the streamed
        # parameters' could be off (NOTE [blocks at the least-squares residuals])
        ref = _mp_hc(X, y, intercept=True)
        np.testing.assert_allclose(res.bse, ref["HC1"], rtol=1e-12)


# ---- 2. clustered errors from the blocks --------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 25, 60])
@pytest.mark.parametrize("weighted", [False, True])
def test_cluster_blocks_take_the_rows_about_the_offsets(size, weighted):
    # before: 2.5e-6 to 2.2e-5 from the reference and the in-memory fit, silent
    X, y, w = _near_1e9()
    w = w if weighted else None
    g = _labels(0, len(y))
    res = tlr.ols(X, y, sample_weight=w)
    ref = _mp_cluster(X, y, g, w=w, params=res.params)
    blocks = _cut(X, y, w, size)
    groups = [g[i : i + size] for i in range(0, len(y), size)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bse = np.asarray(res.cluster_from_blocks(blocks, groups).bse)
        mem = np.asarray(res.get_robustcov_results("cluster", groups=g).bse)
    # lists are read again at the least-squares residuals (NOTE [blocks at the
    # least-squares residuals]): the returned parameters' are 6e-9 off here
    assert np.max(np.abs(ref / mem - 1)) > 1e-9
    np.testing.assert_allclose(bse, mem, rtol=1e-12)
    # in memory: the least-squares residuals' (NOTE [the residuals HC squares])
    np.testing.assert_allclose(mem, _mp_cluster(X, y, g, w=w), rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_cluster_sums_of_a_fit_from_blocks_merged_and_predicted(weighted):
    X, y, w = _near_1e9(1)
    w = w if weighted else None
    g = _labels(1, len(y))
    blocks = _cut(X, y, w, 9)
    groups = [g[i : i + 9] for i in range(0, len(y), 9)]
    res = tlr.LinearRegression().fit_blocks(blocks).results_
    ref = _mp_cluster(X, y, g, w=w, params=res.params)
    exact = _mp_cluster(X, y, g, w=w)
    # two shares merged, as ranks merge them (distributed.clusters): a merge of parts that
    # do not say their offsets reads them as the fit's
    first, second = add_blocks(res, blocks[:3], groups[:3]), add_blocks(res, blocks[3:], groups[3:])
    anonymous = ClusterSums()
    anonymous.labels, anonymous.sums, anonymous.nobs = second.labels, second.sums, second.nobs
    anonymous.leverage = second.leverage
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = res.cluster_from_blocks(blocks, groups)
        # read again at the least-squares residuals (NOTE [blocks at the least-squares
        # residuals]); the streamed parameters' are 1e-8 off
        np.testing.assert_allclose(one.bse, exact, rtol=1e-12)
        assert np.max(np.abs(ref / exact - 1)) > 1e-9
        # predictions take the covariance about the offsets (the rows are gone)
        frame = one.get_prediction(X[:3]).summary_frame()
    merged = ClusterSums().merge(first).merge(anonymous)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bse = np.asarray(res.with_cluster_sums(merged).bse)
    # merged sums cannot be read again: the returned parameters', with a quote that holds
    np.testing.assert_allclose(bse, ref, rtol=1e-12)
    quoted = [w.message.error for w in seen if isinstance(w.message, tlr.errors.RankWarning)]
    assert np.max(np.abs(bse / exact - 1)) <= max(quoted, default=1e-8)
    mem = tlr.ols(X, y, sample_weight=w)
    assert np.all(np.isfinite(frame["mean_se"]))
    want = mem.get_robustcov_results("cluster", groups=g).get_prediction(X[:3]).summary_frame()
    np.testing.assert_allclose(frame["mean_se"], want["mean_se"], rtol=1e-6)


def test_cluster_sums_of_another_fits_offsets_are_refused():
    X, y, _ = _near_1e9(3)
    g = _labels(3, len(y))
    res = tlr.ols(X, y)
    other = tlr.ols(X + 1.0, y)
    sums = add_blocks(other, [(X + 1.0, y)], [g])
    with pytest.raises(tlr.errors.DataError, match="other offsets"):
        res.with_cluster_sums(sums)
    with pytest.raises(tlr.errors.DataError, match="other offsets"):
        add_blocks(res, [(X, y)], [g], acc=sums)


def test_cluster_blocks_without_an_intercept_say_how_far_off_they_may_be():
    # one pass can neither project the residuals nor take a reference column: near 1e8 and
    # 1e10 the blocks' clustered errors were 1e-5 to 6e-3 off with no quote (a fit from
    # the blocks said only that its design was nearly collinear; one in memory nothing)
    from torchlinreg.errors import RankWarning

    worst = 0.0
    for offset in (1e4, 1e8, 1e10):
        for seed in range(2):
            rng = np.random.default_rng(seed)
            X = offset + rng.standard_normal((30, 2))
            y = X @ rng.uniform(-1, 1, 2) + 1e-3 * rng.standard_normal(30)
            g = rng.integers(0, 6, 30)
            blocks = _cut(X, y, None, 8)
            groups = [g[i : i + 8] for i in range(0, 30, 8)]
            ref = _mp_cluster(X, y, g, intercept=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the fits' own warnings: not scored here
                fits = [
                    tlr.ols(X, y, fit_intercept=False),
                    tlr.LinearRegression(fit_intercept=False).fit_blocks(blocks).results_,
                ]
            for res in fits:
                with warnings.catch_warnings(record=True) as seen:
                    warnings.simplefilter("always")
                    bse = np.asarray(res.cluster_from_blocks(blocks, groups).bse)
                quoted = [w.message.error for w in seen if isinstance(w.message, RankWarning)]
                actual = float(np.max(np.abs(bse / ref - 1)))
                assert actual <= max(quoted, default=1e-10), (offset, seed, actual, quoted)
                worst = max(worst, actual)
    # the cases are real: the data say so, not a tolerance (1e-5 before the blocks were
    # read again at the least-squares residuals, NOTE [blocks at the least-squares residuals])
    assert worst > 1e-6


def test_ordinary_cluster_blocks_without_an_intercept_say_nothing():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((50, 2)) + np.array([0.0, 5.0])
    y = X @ [1.0, 2.0] + rng.standard_normal(50)
    g = rng.integers(0, 7, 50)
    res = tlr.LinearRegression(fit_intercept=False).fit_blocks(_cut(X, y, None, 11)).results_
    groups = [g[i : i + 11] for i in range(0, 50, 11)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bse = res.cluster_from_blocks(_cut(X, y, None, 11), groups).bse
    np.testing.assert_allclose(bse, _mp_cluster(X, y, g, intercept=False), rtol=1e-11)
