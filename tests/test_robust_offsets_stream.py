"""The other second passes over the blocks, for columns far from their spread.

``streamhc.hc_from_blocks`` (``train --cov-type HC0..HC3``'s model file) took the raw rows
and the raw factor where ``robust_from_blocks`` now takes the rows about the fit's offsets
(NOTE [blocks about the offsets] in stats/robust_blocks.py): a column near 1e9 with a
spread of 0.01 gave HC standard errors up to 3.9e-6 from the 60-digit sandwich of the same
parameters, without a word. References are computed in mpmath at 60 digits from
the float64 data as given.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import torchlinreg as tlr
from cli_helpers import cli
from test_robust_offsets import _cut, _mp_hc, _near_1e9
from torchlinreg.stats.streamhc import hc_from_blocks, with_robust


def _tensor_blocks(blocks) -> list:
    return [
        (torch.from_numpy(b[0]), torch.from_numpy(b[1][:, None]))
        + ((torch.from_numpy(b[2]),) if len(b) == 3 else (None,))
        for b in blocks
    ]


# ---- 1. streamhc: the model file's HC covariance ------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 25, 60])
@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_hc_takes_the_rows_about_the_offsets(size, weighted):
    # before: 1.1e-6 to 3.9e-6 from the reference (NOTE [streamed HC about the offsets])
    X, y, w = _near_1e9()
    w = w if weighted else None
    res = tlr.ols(X, y, sample_weight=w)
    ref = _mp_hc(X, y, intercept=True, w=w, params=res.params)
    blocks = _tensor_blocks(_cut(X, y, w, size))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind in ("HC0", "HC1", "HC2", "HC3"):
            cov = hc_from_blocks(res, blocks, kind)
            bse = np.asarray(with_robust(res._rebuilt("nonrobust", None, {}), cov, kind).bse)
            np.testing.assert_allclose(bse, ref[kind], rtol=1e-12)
            np.testing.assert_allclose(bse, res.get_robustcov_results(kind).bse, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_hc_of_a_fit_from_blocks(weighted):
    X, y, w = _near_1e9(1)
    w = w if weighted else None
    blocks = _cut(X, y, w, 9)
    res = tlr.LinearRegression().fit_blocks(blocks).results_
    ref = _mp_hc(X, y, intercept=True, w=w, params=res.params)
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
        ref = _mp_hc(X, y, intercept=True, params=res.params)
        np.testing.assert_allclose(res.bse, ref["HC1"], rtol=1e-12)
