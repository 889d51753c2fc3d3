"""Prediction intervals: mean and observation intervals from a fitted OLSResults.

Example:
    >>> import numpy as np
    >>> from scipy import stats
    >>> pred = PredictionResults(np.array([1.0]), np.array([0.04]), np.array([1.0]), stats.t(10))
    >>> frame = pred.summary_frame()
    >>> round(float(np.asarray(frame["mean_se"])[0]), 3)
    0.2
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .levels import two_sided

# NOTE [prediction variances as sums of squares]
# The variance of a predicted mean is a' V a. Formed from an explicit V (R^-1 R^-T, or the
# robust sandwich) it cancels: each of its q^2 terms is as large as |a|^2 |V| while the sum
# can be as small as |R^-T a|^2 times the smallest variance. Longley with its last row
# x1e4 (a leverage near 1) left mean_se 3.3e-6 off on the fitted rows and 2.0e-5 on a new
# row near the last; without an intercept, columns near 1e6 (copper) 4.4% off on the
# fitted rows and near 1e9 20-140x off or NaN (a negative variance), nonrobust and HC1,
# while bse, a diagonal, was right. Now the rows are taken about the offsets (or the
# reference column: NOTE [columns about a reference column] in covariance.py), in the
# basis of the R factor of the fitted rows taken the same way, and z = R^-T a comes from
# a triangular solve (as get_influence's leverage): nonrobust, a'Va = scale ||z||^2, a sum
# of squares. A robust V = R^-1 M R^-T with M the covariance of the coefficients on the
# orthonormal Q of those rows (the robust covariance of the fit computed on Q: the meat,
# conditioned like the residuals, not like the columns), so a'Va = z'Mz. Against mpmath
# (tests/test_prediction_accuracy.py): copper near 1e6 and 1e9, nonrobust and HC1, 6e-14
# at most; Longley x1e4 4.6e-12 (fitted rows) and 1.9e-12 (new), its HC1 1.4e-10 (was
# 1.9e-9); Grunfeld without an intercept near 1e8, HC3 1.9e-11 (was 6.6e-6) and cluster
# 1.9e-12 (was 5.1e-8). Robust covariances given by a second pass over blocks (no rows to
# compute M from, or cluster sums without the rows' codes) still take a'Va, about the
# offsets where they dominate (NOTE [robust covariances in model files] in
# robust_blocks.py).


def prediction(
    A: Tensor,
    b: Tensor,
    cov: Tensor | None,
    robust: bool,
    scale: np.ndarray,
    weights: np.ndarray | None,
    dist,
    *,
    squeeze: bool = False,
    row_labels=None,
    target_names=None,
    variance_rows: Tensor | None = None,
    factor: Tensor | None = None,
) -> PredictionResults:
    """Predictions for basis rows ``A`` ``(m, q)`` with parameters ``b`` ``(q, k)``.

    ``variance_rows`` are the rows the variances are taken of where they are not ``A``
    (about the offsets or a reference column, NOTE [prediction variances as sums of
    squares]). With ``factor``, the R of the fitted rows in their basis, ``cov`` is None
    (nonrobust: the variance is ``scale ||R^-T a||^2``) or the robust covariance ``(q, q,
    k)`` of the coefficients on their orthonormal Q. Without it ``cov`` is ``(A'A)^-1``
    ``(q, q)`` (scaled by ``scale`` per target) or, when ``robust``, a per-target covariance
    ``(q, q, k)`` of those rows' parameters. The observation variance adds ``scale /
    weights``. ``row_labels`` (the new rows' DataFrame index) and ``target_names`` label
    the summary frame.
    """

    def out(a: np.ndarray) -> np.ndarray:
        return a[..., 0] if squeeze else a

    mean = _to_np(A @ b)
    rows = A if variance_rows is None else variance_rows
    var_mean = _mean_variance(rows, factor, cov, robust, scale)
    w = 1.0 if weights is None else np.asarray(weights, dtype=np.float64)[:, None]
    var_resid = scale[None, :] / w
    return PredictionResults(
        out(mean),
        out(var_mean),
        out(var_resid),
        dist,
        row_labels=row_labels,
        target_names=target_names,
    )


def _to_np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _mean_variance(
    rows: Tensor, factor: Tensor | None, cov: Tensor | None, robust: bool, scale: np.ndarray
) -> np.ndarray:
    """``(m, k)`` variances of the predicted means of ``rows`` (see :func:`prediction`)."""
    if factor is not None:  # z = R^-T a: the quadratic forms below no longer cancel
        R = factor.to(rows)
        rows = torch.linalg.solve_triangular(R.T, rows.T, upper=False).T
        if not robust:
            return _to_np((rows * rows).sum(1))[:, None] * scale[None, :]
    if robust:
        return _to_np(torch.einsum("na,abk,nb->nk", rows, cov, rows))
    return _to_np(((rows @ cov) * rows).sum(1))[:, None] * scale[None, :]


COLUMNS = ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper")


class PredictionResults:
    """Predicted means ``(m,)`` or ``(m, k)``, their variances and the residual variance."""

    def __init__(
        self,
        predicted: np.ndarray,
        var_pred: np.ndarray,
        var_resid: np.ndarray,
        dist,
        *,
        row_labels=None,
        target_names=None,
    ) -> None:
        self.predicted = predicted
        self.var_pred = var_pred
        self.var_resid = np.broadcast_to(var_resid, predicted.shape)
        self.dist = dist  # frozen scipy distribution of the pivots (t or normal)
        self.row_labels = row_labels
        self.target_names = target_names

    @property
    def predicted_mean(self) -> np.ndarray:
        """Predicted mean of each row."""
        return self.predicted

    @property
    def se_mean(self) -> np.ndarray:
        """Standard error of the predicted mean: sqrt(x' V x)."""
        return np.sqrt(self.var_pred)

    @property
    def se_obs(self) -> np.ndarray:
        """Standard error of a new observation: sqrt(x' V x + scale / weight)."""
        return np.sqrt(self.var_pred + self.var_resid)

    def conf_int(self, obs: bool = False, alpha: float = 0.05) -> np.ndarray:
        """Intervals ``(m, 2[, k])`` for the mean (or for a new observation with obs=True)."""
        q = two_sided(self.dist, alpha)
        se = self.se_obs if obs else self.se_mean
        return np.stack([self.predicted - q * se, self.predicted + q * se], axis=1)

    def summary_frame(self, alpha: float = 0.05):
        """statsmodels' columns; a pandas DataFrame when pandas imports, else a dict of arrays.

        The frame's index is the new rows' DataFrame index (else 0..m-1). With several
        targets each column holds an ``(m, k)`` array (dict), or the frame gets one block of
        columns per target, ``(column, target name)``.
        """
        mean_ci, obs_ci = self.conf_int(False, alpha), self.conf_int(True, alpha)
        values = (
            self.predicted,
            self.se_mean,
            mean_ci[:, 0],
            mean_ci[:, 1],
            obs_ci[:, 0],
            obs_ci[:, 1],
        )
        data = dict(zip(COLUMNS, values, strict=True))
        try:
            import pandas as pd
        except ImportError:
            return data
        index = self.row_labels
        if self.predicted.ndim == 1:
            return pd.DataFrame(data, index=index)
        names = self.target_names or list(range(self.predicted.shape[1]))
        return pd.concat(
            {k: pd.DataFrame(v, index=index, columns=names) for k, v in data.items()}, axis=1
        )
