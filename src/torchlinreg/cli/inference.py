"""`train --cov-type / --cluster`: coefficient tests of an exact fit with robust errors.

The fit streams DATA once (``fit_blocks``); robust covariances need the residuals, so DATA
is read a second time, block by block (``OLSResults.robust_from_blocks`` for HC0-HC3 and
HAC in file order, ``cluster_from_blocks`` for one- or two-way clusters, a cluster's rows
anywhere in the files, or on any rank under torchrun). Cluster labels are numbers or, in
one process, text (firm names, read by ``files.keys.KeyStream``). Memory stays at one block plus a
vector per cluster.
"""

from __future__ import annotations

import itertools
from typing import Any

import click
import numpy as np

from ..distributed.clusters import merge_cluster_sums
from ..distributed.collectives import agree_on_errors, is_distributed
from ..errors import DataError
from ..files.keys import KeyStream, check_numeric_keys, text_labels
from ..stats.robust_blocks import RESIDUALS_TOL, add_blocks, check_rows, cluster_move
from .robustpass import Reread

ROBUST_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "HAC")


def wanted(opts: dict[str, Any]) -> bool:
    """Whether train should report coefficient tests (--cov-type or --cluster given)."""
    return bool(opts.get("cov_type") or opts.get("cluster_cols"))


def check_options(opts: dict[str, Any], exact: bool, distributed: bool, source=None) -> None:
    """Usage errors before any row is read (and, given the table, its cluster columns)."""
    clusters = list(opts.get("cluster_cols") or ())
    if opts.get("maxlags") is not None and opts.get("cov_type") != "HAC":
        raise click.UsageError("--maxlags is for --cov-type HAC")
    if not wanted(opts):
        return
    if not exact or opts["alpha"]:
        raise click.UsageError(
            "--cov-type and --cluster report OLS statistics: use an exact solver (qr, gram) "
            "with --alpha 0"
        )
    if clusters and opts.get("cov_type") not in (None, "cluster"):
        raise click.UsageError("--cluster sets the covariance; leave out --cov-type")
    if len(clusters) > 2:
        raise click.UsageError("--cluster takes one or two columns (two-way clustering)")
    if len(set(clusters)) != len(clusters):
        raise click.UsageError("--cluster names the same column twice")
    if source is not None and clusters:
        source._resolve(clusters)  # an unknown column: the table's own one-line error
        numeric = set(source.numeric_columns())
        text = [c for c in clusters if c not in numeric]
        if text and distributed:  # ranks exchange labels as tensors: numbers only
            raise DataError(
                f"--cluster column {text[0]!r} holds text; on several processes cluster "
                "labels must be numbers: recode them as numeric ids, or run in one process",
                path=source.path,
                column=text[0],
            )
    if distributed and opts.get("cov_type") not in (None, "nonrobust"):
        raise click.UsageError(
            "--cov-type HC0-HC3/HAC reads DATA a second time in one process; run without "
            "torchrun / --nproc (--cluster works on several processes)"
        )


def robust_results(est, source, features, targets, weight_col, opts):
    """The streamed fit's results with the covariance asked for (second pass over DATA)."""
    res = est.results_
    clusters = list(opts.get("cluster_cols") or ())
    cov_type = opts.get("cov_type")
    if not clusters and cov_type in (None, "nonrobust"):
        return res
    d = len(features)
    numeric = set(source.numeric_columns()) if clusters else set()
    cols = features + [c for c in clusters if c not in features and c in numeric]
    index = {c: cols.index(c) for c in clusters if c in cols}

    seen: set = set()

    def blocks():
        # text labels (firm names) come from a stream of their own, row for row
        streams = {c: KeyStream(source, c) for c in clusters if c not in index}
        for b in source.read_columns(cols, targets, weight_col):
            labels = [
                b.X[:, index[c]].numpy()
                if c in index
                else np.asarray(text_labels(streams[c].take(b.n_rows)), dtype=str)
                for c in clusters
            ]
            for c, values in zip(clusters, labels, strict=True):
                if c in index:
                    check_numeric_keys(source, c, values, seen)
            yield b.X[:, :d], b.Y, b.w, labels[0] if len(labels) == 1 else tuple(labels)

    if clusters:
        acc = _cluster_pass(res, blocks)
        # read again at the least-squares residuals where the fitted parameters' may be off
        # (NOTE [blocks at the least-squares residuals]); every rank holds the same merged
        # sums, so every rank decides alike
        delta, move = cluster_move(res, acc, True)
        if move > RESIDUALS_TOL:
            acc = _cluster_pass(res, blocks, delta)
        acc.corrected = True  # checked: with_cluster_sums need not bound it again
        return res.with_cluster_sums(acc)
    kwds = {"maxlags": opts.get("maxlags")} if cov_type == "HAC" else {}
    rows = Reread(lambda: ((X, Y, w) for X, Y, w, _ in blocks()))
    return res.robust_from_blocks(rows, cov_type, **kwds)


def _cluster_pass(res, blocks, delta=None):
    """One pass over DATA's blocks: every rank's cluster sums, merged (a cluster may span
    ranks), at the residuals less ``A delta`` where given."""
    rows, labels = itertools.tee(blocks())  # one pass, two views (zip takes one of each)
    rows = ((X, Y, w) for X, Y, w, _ in rows)
    labels = (g for *_, g in labels)
    with agree_on_errors():
        acc = add_blocks(res, rows, labels, delta=delta)
    if is_distributed():
        acc = merge_cluster_sums(acc, n_targets=res._b.shape[1], n_params=res.rank)
    check_rows(res, acc)
    return acc
