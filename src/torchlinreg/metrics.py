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
    return {"mse": mse, "rmse": mse.sqrt(), "mae": mae, "r2": r2}


def r2_score(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> float:
    """R2 averaged uniformly over targets (scikit-learn's default for several outputs)."""
    return float(regression_metrics(y_true, y_pred, sample_weight)["r2"].mean())
