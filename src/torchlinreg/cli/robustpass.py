"""`train --cov-type HC0..HC3`: the robust covariance of a streamed exact fit, one more pass.

Example:
    >>> store_robust_columns(est, source, ["x"], ["y"], None, "HC1")  # doctest: +SKIP
"""

from __future__ import annotations

from ..stats.streamhc import hc_from_blocks


def store_robust(est, rows, cov_type: str) -> None:
    """Compute the covariance from ``rows`` (blocks ``(X, Y, w)``) and keep it with ``est``:
    ``results_``, ``summary`` and the model file then report it."""
    est._results = None
    est.robust_cov_ = (hc_from_blocks(est.results_, rows, cov_type), cov_type)
    est._results = None  # rebuilt with the robust covariance


def store_robust_columns(est, source, features, targets, weight_col, cov_type: str) -> None:
    """The plain (numeric columns) form of :func:`store_robust`."""
    blocks = source.read_columns(features, targets, weight_col)
    store_robust(est, ((b.X, b.Y, b.w) for b in blocks), cov_type)
