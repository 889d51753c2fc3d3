"""Clustered errors of streamed fits: a second pass over the blocks equals the in-memory fit.

The in-memory reference is itself checked against statsmodels and Stata in
``test_robust_cov.py``; here the blocks come in other orders and blockings, a cluster's
rows are spread over several blocks, two accumulators merge as two ranks would, and the
rows come from a CSV file through ``open_table``.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

from torchlinreg import LinearRegression, open_table
from torchlinreg.errors import DataError
from torchlinreg.stats.results import ols
from torchlinreg.stats.robust_blocks import ClusterSums, add_blocks, check_rows


@cache
def _grunfeld():
    data = sm.datasets.grunfeld.load_pandas()
    exog = data.exog[:200]
    X = np.asarray(exog[["value", "capital"]], dtype=float)
    firm = np.unique(np.asarray(exog["firm"]), return_inverse=True)[1].reshape(-1)
    year = np.asarray(exog["year"], dtype=float).astype(int)
    return X, np.asarray(data.endog[:200], dtype=float), firm, year


def _blocks(X, y, w, labels, order, size):
    """Rows in ``order``, cut into blocks of ``size``: (blocks, label blocks)."""
    cuts = range(0, len(order), size)
    idx = [order[c : c + size] for c in cuts]
    blocks = [(X[i], y[i]) if w is None else (X[i], y[i], w[i]) for i in idx]
    return blocks, [labels[i] for i in idx]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("two_way", [False, True])
def test_streamed_cluster_equals_in_memory(weighted, two_way):
    X, y, firm, year = _grunfeld()
    w = 1 / X[:, 0] if weighted else None
    labels = np.c_[firm, year] if two_way else firm
    ref = ols(X, y, sample_weight=w, cov_type="cluster", cov_kwds={"groups": labels}, use_t=True)
    order = np.random.default_rng(3).permutation(len(y))  # every firm spans many blocks
    blocks, groups = _blocks(X, y, w, labels, order, 37)
    est = LinearRegression().fit_blocks(blocks)
    res = est.results_.cluster_from_blocks(blocks, groups, use_t=True)
    # 1. covariance, standard errors, p-values and the cluster count equal the in-memory fit
    assert_allclose(res.cov_params(), ref.cov_params(), rtol=1e-10)
    assert_allclose(res.pvalues, ref.pvalues, rtol=1e-9)
    assert_allclose(res.fvalue, ref.fvalue, rtol=1e-9)
    assert res.df_resid_inference == ref.df_resid_inference


def test_merged_accumulators_equal_one_pass():
    # two "ranks" with overlapping clusters (two-way), merged in either order
    X, y, firm, year = _grunfeld()
    res = ols(X, y)
    labels = np.c_[firm, year]
    parts = []
    for rows in (np.arange(0, 200, 2), np.arange(1, 200, 2)):
        parts.append(add_blocks(res, *_blocks(X, y, None, labels, rows, 30)))
    ref = ols(X, y, cov_type="cluster", cov_kwds={"groups": labels})
    for first, second in ((0, 1), (1, 0)):
        merged = ClusterSums().merge(parts[first]).merge(parts[second])
        check_rows(res, merged)
        got = res.with_cluster_sums(merged, use_t=False)
        assert_allclose(got.cov_params(), ref.cov_params(), rtol=1e-10)
    # 1. one rank's share alone does not pass for the whole fit
    with pytest.raises(DataError, match="100 rows"):
        check_rows(res, parts[0])


def test_cluster_from_a_csv_file_read_twice(tmp_path):
    X, y, firm, _ = _grunfeld()
    path = tmp_path / "grunfeld.csv"
    frame = pd.DataFrame({"value": X[:, 0], "capital": X[:, 1], "invest": y, "firm": firm})
    frame.to_csv(path, index=False)
    table = open_table(str(path), block_rows=64)
    feats = ["value", "capital"]
    est = LinearRegression().fit_blocks(lambda: table.read_columns(feats, ["invest"]))
    blocks = table.read_columns(feats, ["invest"])
    labels = (b.X[:, 0].numpy() for b in table.read_columns(["firm"]))
    res = est.results_.cluster_from_blocks(blocks, labels)
    ref = ols(X, y, cov_type="cluster", cov_kwds={"groups": firm})
    assert_allclose(res.bse[:, 0], ref.bse, rtol=1e-10)  # a table target is a column


def test_wrong_rows_or_labels_raise():
    X, y, firm, _ = _grunfeld()
    res = ols(X, y)
    with pytest.raises(DataError, match="the blocks hold 100 rows but the fit has 200"):
        res.cluster_from_blocks([(X[:100], y[:100])], [firm[:100]])
    with pytest.raises(DataError, match="100 rows but 99 cluster labels"):
        res.cluster_from_blocks([(X[:100], y[:100])], [firm[:99]])
    with pytest.raises(ValueError):  # a label block missing: zip(strict=True)
        res.cluster_from_blocks([(X[:100], y[:100]), (X[100:], y[100:])], [firm[:100]])


@pytest.mark.parametrize(
    "cov_type, kw",
    [
        ("HC0", {}),
        ("HC1", {}),
        ("HC2", {}),
        ("HC3", {}),
        ("HAC", {"maxlags": 4}),
        ("HAC", {"maxlags": 9, "use_correction": True}),  # lags longer than a block
        ("HAC", {"maxlags": 3, "kernel": "uniform"}),
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_hc_and_hac_equal_in_memory(cov_type, kw, weighted):
    X, y, _, _ = _grunfeld()
    w = 1 / X[:, 0] if weighted else None
    Y = np.c_[y, np.log(y)]
    ref = ols(X, Y, sample_weight=w, cov_type=cov_type, cov_kwds=kw)
    blocks, _ = _blocks(X, Y, w, np.zeros(len(y)), np.arange(len(y)), 7)
    streamed = LinearRegression().fit_blocks(blocks).results_
    res = streamed.robust_from_blocks(blocks, cov_type, use_t=False, **kw)
    assert_allclose(res.cov_params(), ref.cov_params(), rtol=1e-10)
    assert_allclose(res.pvalues, ref.pvalues, rtol=1e-9)


def test_streamed_robust_refuses_cluster_and_unknown_types():
    X, y, _, _ = _grunfeld()
    res = ols(X, y)
    for bad in ("cluster", "nonrobust", "HC9"):
        with pytest.raises(ValueError, match="HC0-HC3 or HAC"):
            res.robust_from_blocks([(X, y)], bad)


@pytest.mark.distributed
def test_two_ranks_with_shared_clusters_equal_in_memory(tmp_path):
    # every firm's rows are on both ranks; the merged sums give the in-memory answer
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), env.get("PYTHONPATH", "")])
    worker = str(Path(__file__).parent / "_dist_cluster_worker.py")
    procs = [
        subprocess.Popen(
            [sys.executable, worker, str(tmp_path / "store"), str(r), "2", str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for r in range(2)
    ]
    logs = [p.communicate(timeout=180)[0].decode() for p in procs]
    for r, (p, log) in enumerate(zip(procs, logs, strict=True)):
        aborted_at_exit = p.returncode == -6 and (tmp_path / f"rank{r}.npz").exists()
        assert p.returncode == 0 or aborted_at_exit, log
    got = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(2)]
    X, y, firm, year = _grunfeld()
    for name, labels in (("one", firm), ("two", np.c_[firm, year])):
        ref = ols(X, y, cov_type="cluster", cov_kwds={"groups": labels})
        for r in range(2):
            assert_allclose(got[r][name], ref.bse, rtol=1e-10)
        assert np.array_equal(got[0][name], got[1][name])  # the same bits on every rank
