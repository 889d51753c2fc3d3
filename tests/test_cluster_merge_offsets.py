"""distributed.clusters.merge_cluster_sums keeps the offsets and the no-intercept sizes.

Each rank's add_blocks records the offsets its rows were taken about (ClusterSums.shift)
and, without an intercept, the sizes NOTE [blocks without an intercept] bounds the pass
with; the merge built fresh ClusterSums and dropped them, so sums of another fit's offsets
merged silently and a fit without an intercept warned that its error was unbounded. The
ranks are threads here, their all-gathers a barrier (the merge's own code runs unchanged).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch

import torchlinreg as tlr
from test_robust_offsets import _cut, _near_1e9
from test_robust_offsets_stream import _labels, _mp_cluster
from torchlinreg.distributed import clusters
from torchlinreg.errors import DataError, RankWarning
from torchlinreg.stats.robust_blocks import ClusterSums, add_blocks


class _Threads:
    """All-gather between threads: every rank's tensor, in rank order, on every rank."""

    def __init__(self, n: int) -> None:
        self.barrier = threading.Barrier(n, timeout=60)
        self.slots: list = [None] * n
        self.local = threading.local()

    def allgather(self, t: torch.Tensor) -> list[torch.Tensor]:
        self.slots[self.local.rank] = t.detach().clone()
        self.barrier.wait()
        out = [s.clone() for s in self.slots]
        self.barrier.wait()
        return out


def _merge_on_ranks(monkeypatch, accs: list, n_params: int) -> list:
    """merge_cluster_sums run by one thread per rank: each rank's result or exception."""
    group = _Threads(len(accs))
    monkeypatch.setattr(clusters, "is_distributed", lambda: True)
    monkeypatch.setattr(clusters, "allgather", group.allgather)
    out: list = [None] * len(accs)

    def rank(r: int) -> None:
        group.local.rank = r
        try:
            out[r] = clusters.merge_cluster_sums(accs[r], n_targets=1, n_params=n_params)
        except Exception as exc:  # each rank's outcome is the subject
            out[r] = exc

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(len(accs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def _shares(res, blocks, groups, cuts):
    return [add_blocks(res, blocks[a:b], groups[a:b]) for a, b in cuts]


def test_merged_sums_keep_the_fits_offsets(monkeypatch):
    X, y, w = _near_1e9(1)
    g = _labels(1, len(y))
    blocks = _cut(X, y, w, 9)
    groups = [g[i : i + 9] for i in range(0, len(y), 9)]
    res = tlr.LinearRegression().fit_blocks(blocks).results_
    shift = res._shifted_factor().shift
    accs = _shares(res, blocks, groups, [(0, 2), (2, 2), (2, 7)])  # rank 1 has no rows
    merged = _merge_on_ranks(monkeypatch, accs, res.rank)
    ref = _mp_cluster(X, y, g, w=w, params=res.params)
    exact = _mp_cluster(X, y, g, w=w)
    for m in merged:
        assert isinstance(m, ClusterSums), m
        assert m.shift is not None and torch.equal(m.shift.cpu(), shift.cpu())
        assert m.nobs == len(y)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            bse = np.asarray(res.with_cluster_sums(m).bse)
        np.testing.assert_allclose(bse, ref, rtol=1e-12)
        # the returned parameters' residuals, 6e-9 from the least-squares ones: the merge
        # keeps each cluster's leverages, whose bound says so (NOTE [blocks at the
        # least-squares residuals])
        quoted = [w.message.error for w in seen if isinstance(w.message, RankWarning)]
        assert len(quoted) == 1
        assert 1e-9 < np.max(np.abs(bse / exact - 1)) <= quoted[0]
    # merged sums are then refused by another fit, as one rank's are
    other = tlr.ols(X + 1.0, y, sample_weight=w)
    with pytest.raises(DataError, match="other offsets"):
        other.with_cluster_sums(merged[0])


def test_a_rank_with_another_fits_offsets_is_refused_on_every_rank(monkeypatch):
    X, y, _ = _near_1e9(3)
    g = _labels(3, len(y))
    blocks = _cut(X, y, None, 20)
    groups = [g[i : i + 20] for i in range(0, len(y), 20)]
    res = tlr.ols(X, y)
    other = tlr.ols(X + 1.0, y)
    accs = _shares(res, blocks, groups, [(0, 1), (1, 2)])
    accs.append(add_blocks(other, [(X[40:] + 1.0, y[40:])], [g[40:]]))
    merged = _merge_on_ranks(monkeypatch, accs, res.rank)
    for m in merged:  # every rank raises the same error: none waits in a collective
        assert isinstance(m, DataError), m
        assert "different offsets" in str(m) and "rank 0" in str(m) and "rank 2" in str(m)
    # a rank whose sums say they took the raw rows
    raw = _shares(res, blocks, groups, [(0, 1), (1, 3)])
    raw[1].shift = None
    for m in _merge_on_ranks(monkeypatch, raw, res.rank):
        assert isinstance(m, DataError) and "raw rows" in str(m), m


def test_merged_sums_without_an_intercept_keep_their_bound(monkeypatch):
    # the merge dropped the sizes: "the standard errors may be off by an unknown amount"
    # (error inf) where one process quoted a finite bound
    rng = np.random.default_rng(0)
    X = 1e8 + rng.standard_normal((30, 2))
    y = X @ rng.uniform(-1, 1, 2) + 1e-3 * rng.standard_normal(30)
    g = rng.integers(0, 6, 30)
    blocks = _cut(X, y, None, 8)
    groups = [g[i : i + 8] for i in range(0, 30, 8)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fit's own warnings: not the subject
        res = tlr.LinearRegression(fit_intercept=False).fit_blocks(blocks).results_

    def quote(sums):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            bse = np.asarray(res.with_cluster_sums(sums).bse)
        quoted = [w.message.error for w in seen if isinstance(w.message, RankWarning)]
        assert quoted, "no quote"
        return bse, max(quoted)  # the pass's, beside the fit's covariance's own

    one = add_blocks(res, blocks, groups)
    _, expected = quote(one)
    assert np.isfinite(expected)
    merged = _merge_on_ranks(monkeypatch, _shares(res, blocks, groups, [(0, 1), (1, 4)]), 2)
    ref = _mp_cluster(X, y, g, intercept=False)
    for m in merged:
        assert isinstance(m, ClusterSums), m
        assert m.shift is None
        torch.testing.assert_close(m.size, one.size, rtol=0, atol=0)  # the largest row
        torch.testing.assert_close(m.sum_squares, one.sum_squares, rtol=1e-14, atol=0)
        bse, quoted = quote(m)
        np.testing.assert_allclose(quoted, expected, rtol=1e-12)
        assert float(np.max(np.abs(bse / ref - 1))) <= quoted
