"""Regression metrics per target: MSE, RMSE, MAE, R2 (optionally weighted)."""

from __future__ import annotations

import torch
from torch import Tensor


def _as_2d(t: Tensor) -> Tensor:
    return t.reshape(-1, 1) if t.ndim == 1 else t


def _weighted_mean(values: Tensor, w: Tensor | None) -> Tensor:
    if w is None:
        return values.mean(dim=0)
    w = w.to(values.dtype).reshape(-1, 1)
    return (values * w).sum(dim=0) / w.sum()


def regression_metrics(
    y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None
) -> dict[str, Tensor]:
    """MSE, RMSE, MAE and R2 for each target column, computed in float64.

    R2 is ``1 - SSE/SST`` about the (weighted) mean of each target; a constant target
    gives 1.0 for a perfect prediction and 0.0 otherwise, as scikit-learn does.

    Example:
        >>> m = regression_metrics(torch.tensor([1.0, 2, 3]), torch.tensor([1.0, 2, 4]))
        >>> round(float(m["mse"][0]), 4), round(float(m["r2"][0]), 4)
        (0.3333, 0.5)
    """
    yt = _as_2d(y_true).to(torch.float64)
    yp = _as_2d(y_pred).to(device=yt.device, dtype=torch.float64)
    err = yt - yp
    mse = _weighted_mean(err * err, sample_weight)
    mae = _weighted_mean(err.abs(), sample_weight)
    centred = yt - _weighted_mean(yt, sample_weight)
    sst = _weighted_mean(centred * centred, sample_weight)
    safe = torch.where(sst > 0, sst, torch.ones_like(sst))
    r2 = torch.where(sst > 0, 1.0 - mse / safe, torch.where(mse == 0, 1.0, 0.0).to(mse.dtype))
    if yt.shape[0] < 2:  # R2 is not defined for one row (scikit-learn gives NaN too)
        r2 = torch.full_like(r2, float("nan"))
    return {"mse": mse, "rmse": mse.sqrt(), "mae": mae, "r2": r2}


def r2_score(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> float:
    """R2 averaged uniformly over targets (scikit-learn's default for several outputs)."""
    return float(regression_metrics(y_true, y_pred, sample_weight)["r2"].mean())


class StreamingMetrics:
    """MSE, RMSE, MAE and R2 per target accumulated over row blocks in one pass.

    The target means and sums of squares are merged block by block with the pairwise
    formula (Chan, Golub & LeVeque), so R2 keeps its digits on targets with large offsets.

    Example:
        >>> acc = StreamingMetrics()
        >>> acc.update(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
        >>> acc.update(torch.tensor([3.0]), torch.tensor([4.0]))
        >>> round(float(acc.result()["r2"][0]), 4)
        0.375
    """

    def __init__(self) -> None:
        self.n = 0
        self._sse: Tensor | None = None
        self._sae: Tensor | None = None
        self._mean: Tensor | None = None
        self._m2: Tensor | None = None

    def update(self, y_true: Tensor, y_pred: Tensor) -> None:
        yt = _as_2d(y_true).to(torch.float64)
        err = yt - _as_2d(y_pred).to(device=yt.device, dtype=torch.float64)
        nb = yt.shape[0]
        if nb == 0:
            return
        mean_b = yt.mean(dim=0)
        m2_b = ((yt - mean_b) ** 2).sum(dim=0)
        sse_b, sae_b = (err * err).sum(dim=0), err.abs().sum(dim=0)
        if self._mean is None:
            self._sse, self._sae, self._mean, self._m2 = sse_b, sae_b, mean_b, m2_b
        else:
            n = self.n + nb
            delta = mean_b - self._mean
            self._mean = self._mean + delta * (nb / n)
            self._m2 = self._m2 + m2_b + delta * delta * (self.n * nb / n)
            self._sse, self._sae = self._sse + sse_b, self._sae + sae_b
        self.n += nb

    def result(self) -> dict[str, Tensor]:
        if self.n == 0:
            raise ValueError("no rows were evaluated")
        mse, mae = self._sse / self.n, self._sae / self.n
        m2 = self._m2
        r2 = torch.where(
            m2 > 0,
            1.0 - self._sse / torch.where(m2 > 0, m2, 1.0),
            torch.where(self._sse == 0, 1.0, 0.0).to(mse.dtype),
        )
        if self.n < 2:  # R2 is not defined for one row
            r2 = torch.full_like(r2, float("nan"))
        return {"mse": mse, "rmse": mse.sqrt(), "mae": mae, "r2": r2}
