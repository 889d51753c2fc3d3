"""`train --cov-type HC0..HC3`: the robust covariance of a streamed exact fit, one more pass.

Example:
    >>> store_robust_columns(est, source, ["x"], ["y"], None, "HC1")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..estimator.formula_fit import keep_offsets_covariance
from ..stats.robust_blocks import hc_covariances


class Reread:
    """Blocks that a second pass may read again: each ``iter`` calls ``read`` anew, so the
    pass can take the least-squares residuals where the fitted parameters' would be off
    (NOTE [blocks at the least-squares residuals] in stats/robust_blocks.py)."""

    def __init__(self, read: Callable[[], Iterable]) -> None:
        self._read = read

    def __iter__(self):
        return iter(self._read())


def store_robust(est, rows, cov_type: str) -> None:
    """Compute the covariance from ``rows`` (blocks ``(X, Y, w)``, a :class:`Reread` to let
    the pass read them again) and keep it with ``est``:
    ``results_``, ``summary`` and the model file then report it (and predictions, with
    the covariance about the offsets: NOTE [robust covariances in model files])."""
    est._results = None
    res = est.results_
    raw, shifted = hc_covariances(res, rows, cov_type)
    factor = res._shifted_factor()
    est.robust_cov_ = (raw, cov_type)
    if shifted is not None and factor is not None:
        keep_offsets_covariance(est, shifted, factor.shift)
    est._results = None  # rebuilt with the robust covariance


def store_robust_columns(est, source, features, targets, weight_col, cov_type: str) -> None:
    """The plain (numeric columns) form of :func:`store_robust`."""

    def rows():
        return ((b.X, b.Y, b.w) for b in source.read_columns(features, targets, weight_col))

    store_robust(est, Reread(rows), cov_type)
