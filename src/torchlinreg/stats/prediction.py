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


def prediction(
    A: Tensor,
    b: Tensor,
    cov: Tensor,
    robust: bool,
    scale: np.ndarray,
    weights: np.ndarray | None,
    dist,
    *,
    squeeze: bool = False,
    row_labels=None,
    target_names=None,
    variance_rows: Tensor | None = None,
) -> PredictionResults:
    """Predictions for basis rows ``A`` ``(m, q)`` with parameters ``b`` ``(q, k)``.

    ``cov`` is ``(A'A)^-1`` ``(q, q)`` (scaled by ``scale`` per target) or, when ``robust``,
    a per-target covariance ``(q, q, k)``; the observation variance adds ``scale / weights``.
    ``row_labels`` (the new rows' DataFrame index) and ``target_names`` label the summary
    frame. ``variance_rows`` are the rows ``cov`` belongs to where they are not ``A`` (the
    rows about the offsets, NOTE [refinement about the shift] in exact/refine.py).
    """

    def out(a: np.ndarray) -> np.ndarray:
        return a[..., 0] if squeeze else a

    def to_np(t: Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy()

    mean = to_np(A @ b)
    A = A if variance_rows is None else variance_rows
    if robust:
        var_mean = to_np(torch.einsum("na,abk,nb->nk", A, cov, A))
    else:
        var_mean = to_np(((A @ cov) * A).sum(1))[:, None] * scale[None, :]
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
        q = self.dist.ppf(1 - alpha / 2)
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
