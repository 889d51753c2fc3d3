"""Robust covariances from a second pass over the blocks, at the least-squares residuals.

In memory, HC, HAC and clustered covariances take the exact least-squares solution's
residuals (NOTE [the residuals HC squares] in stats/covariance.py); the pass over the
blocks took those of the coefficients as returned. Longley with weights over 16 decades and
a column near 1e9 gave HC3 standard errors 7% off, HC0 1.8e-8 and clustered ones 1.5e-7,
without a word. The pass now sums A'e too: blocks that can be read again (a list, the CLI's
file) are read at the least-squares residuals where the move could pass 1e-8, and one
iterator says how far off it may be (NOTE [blocks at the least-squares residuals] in
stats/robust_blocks.py). References: mpmath at 60 digits from the float64 data.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import torchlinreg as tlr
from cli_helpers import cli
from test_robust_offsets import _cut, _mp_hc
from test_robust_offsets_stream import _mp_cluster
from torchlinreg.errors import RankWarning


def _longley_far(seed: int = 1):
    d = sm.datasets.longley.load_pandas()
    X = d.exog.to_numpy(float).copy()
    X[:, 0] += 1e9
    w = 10.0 ** np.random.default_rng(seed).uniform(-8, 8, len(X))
    return X, d.endog.to_numpy(float), w


def _quotes(seen) -> list[float]:
    return [w.message.error for w in seen if isinstance(w.message, RankWarning)]


@pytest.mark.parametrize("kind", ["HC0", "HC1", "HAC"])
def test_blocks_read_again_take_the_least_squares_residuals(kind):
    X, y, w = _longley_far()
    res = tlr.ols(X, y, sample_weight=w)
    kw = {"maxlags": 2} if kind == "HAC" else {}
    mem = np.asarray(res.get_robustcov_results(kind, **kw).bse)
    if kind != "HAC":
        np.testing.assert_allclose(mem, _mp_hc(X, y, intercept=True, w=w)[kind], rtol=1e-9)
    blocks = _cut(X, y, w, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        listed = np.asarray(res.robust_from_blocks(blocks, kind, **kw).bse)
    np.testing.assert_allclose(listed, mem, rtol=1e-9)
    # one iterator is read once: the returned parameters' residuals (1.8e-8 off here),
    # with the bound that covers them
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        once = np.asarray(res.robust_from_blocks(iter(blocks), kind, **kw).bse)
    actual = float(np.max(np.abs(once / mem - 1)))
    assert actual > 1e-9
    assert _quotes(seen) and actual <= max(_quotes(seen))


def test_hc3_from_blocks_near_leverage_one_says_so():
    # four rows weigh 1e6-1e8 times the rest: leverage within 1e-8 of 1. Memory takes
    # 1 - h from the other rows; the blocks cannot, and say how far off HC3 may be
    X, y, w = _longley_far()
    res = tlr.ols(X, y, sample_weight=w)
    ref = _mp_hc(X, y, intercept=True, w=w)["HC3"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        listed = np.asarray(res.robust_from_blocks(_cut(X, y, w, 5), "HC3").bse)
    actual = float(np.max(np.abs(listed / ref - 1)))
    assert actual < 1e-7  # 7e-2 before: the returned parameters' residuals
    near = [w for w in seen if "leverage within" in str(w.message)]
    assert len(near) == 1 and actual <= near[0].message.error
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        once = np.asarray(res.robust_from_blocks(iter(_cut(X, y, w, 5)), "HC3").bse)
    assert float(np.max(np.abs(once / ref - 1))) <= max(_quotes(seen))


@pytest.mark.parametrize(
    "name, offset, weighted",
    [(n, o, wt) for n in ("stackloss", "copper", "longley") for o in (0.0, 1e6) for wt in (0, 1)],
)
def test_one_pass_is_right_or_says_how_far_off(name, offset, weighted):
    data = getattr(sm.datasets, name).load_pandas()
    X = data.exog.to_numpy(float) + offset
    y = data.endog.to_numpy(float)
    w = 10.0 ** np.random.default_rng(3).uniform(-6, 6, len(y)) if weighted else None
    res = tlr.ols(X, y, sample_weight=w)
    ref = _mp_hc(X, y, intercept=True, w=w)
    for kind in ("HC0", "HC1"):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            once = np.asarray(res.robust_from_blocks(iter(_cut(X, y, w, 4)), kind).bse)
        actual = float(np.max(np.abs(once / ref[kind] - 1)))
        assert actual <= max(_quotes(seen), default=1e-8), (kind, actual, _quotes(seen))


def test_cluster_blocks_read_again_take_the_least_squares_residuals():
    X, y, w = _longley_far()
    g = np.arange(len(y)) % 4
    res = tlr.ols(X, y, sample_weight=w)
    ref = _mp_cluster(X, y, g, w=w)
    blocks = _cut(X, y, w, 5)
    groups = [g[i : i + 5] for i in range(0, len(y), 5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        listed = np.asarray(res.cluster_from_blocks(blocks, groups).bse)
    np.testing.assert_allclose(listed, ref, rtol=1e-9)  # 1.5e-7 before
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        once = np.asarray(res.cluster_from_blocks(iter(blocks), iter(groups)).bse)
    actual = float(np.max(np.abs(once / ref - 1)))
    assert actual > 1e-8
    assert _quotes(seen) and actual <= max(_quotes(seen))


@pytest.mark.parametrize("how", [("--cov-type", "HC1"), ("--cluster", "g")])
def test_train_reads_the_file_again_at_the_least_squares_residuals(capsys, tmp_path, how):
    X, y, w = _longley_far()
    g = np.arange(len(y)) % 4
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame = frame.assign(y=y, w=w, g=g)
    data = tmp_path / "far.csv"
    frame.to_csv(data, index=False)
    back = pd.read_csv(data)  # the file's numbers as the reader takes them
    X, y, w = back.filter(like="x").to_numpy(), back["y"].to_numpy(), back["w"].to_numpy()
    features = ",".join(frame.filter(like="x").columns)
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "y", "--features", features, "--weights", "w", *how,
            "--block-rows", 5, "-o", model, "--json")  # fmt: skip
    assert r.code == 0, r.err
    assert "off by up to" not in r.err
    if how[0] == "--cov-type":
        ref = _mp_hc(X, y, intercept=True, w=w)["HC1"]
        stored = np.asarray(tlr.load(model).results_.bse).reshape(-1)
        np.testing.assert_allclose(stored, ref, rtol=1e-9)
    else:
        ref = _mp_cluster(X, y, g, w=w)
    got = np.asarray(json.loads(r.out)["inference"]["bse"]).reshape(-1)
    np.testing.assert_allclose(got, ref, rtol=1e-9)
