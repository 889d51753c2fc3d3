"""Model files: a fitted estimator as one ``.safetensors`` file, and back.

The file holds the weights, the intercepts and (for exact solvers) the least-squares state
as tensors, and a JSON record in its metadata: torchlinreg version, estimator class and
hyper-parameters, feature and target names, and the training summary. Because the state is
kept, a saved exact model can absorb new rows later and still equal one fit on all rows.
Loading never executes code: safetensors holds only tensors and strings.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import ModelFileError
from ..exact.state import LeastSquaresState
from ..files.io import load_tensors, save_tensors
from ..model import LinearModel
from .linear import LinearRegression, Ridge, check_is_fitted

_ESTIMATORS = {"LinearRegression": LinearRegression, "Ridge": Ridge}
_STATE_PREFIX = "state."


def _jsonable_params(estimator: LinearRegression) -> dict[str, Any]:
    params = estimator.get_params()
    for key in ("device", "dtype"):
        if params[key] is not None:
            params[key] = str(params[key]).removeprefix("torch.")
    if np.ndim(params["alpha"]):  # one per target: a JSON list, an array again on load
        params["alpha"] = np.asarray(params["alpha"], dtype=np.float64).tolist()
    return params


def save(estimator: LinearRegression, path: str | Path, *, training: dict | None = None) -> Path:
    """Write a fitted estimator to ``path`` (``.safetensors``), atomically.

    ``training`` is an optional JSON-able summary (rows, time, metrics) kept in the file.

    Example:
        >>> import torchlinreg as tlr
        >>> crops = tlr.datasets.load_crops()
        >>> model = tlr.LinearRegression().fit(crops.data, crops.target)
        >>> tlr.save(model, "crops.safetensors")  # doctest: +SKIP
    """
    check_is_fitted(estimator)
    tensors = {
        "weight": estimator.model_.weight,
        "bias": estimator.model_.bias,
    }
    meta: dict[str, Any] = {
        "torchlinreg_version": __version__,
        "estimator": type(estimator).__name__,
        "params": _jsonable_params(estimator),
        "feature_names": _names(getattr(estimator, "feature_names_in_", None)),
        "target_names": estimator._target_names,
        "y_was_1d": bool(estimator._y_was_1d),
        "n_features": int(estimator.n_features_in_),
        "n_targets": int(estimator.model_.n_targets),
        "n_iter": int(estimator.n_iter_),
        "rank": estimator.rank_,
        "weighted": bool(getattr(estimator, "_weighted", False)),
        "training": training or {},
    }
    if estimator.loss_history_:
        tensors["loss_history"] = torch.tensor(estimator.loss_history_, dtype=torch.float64)
    state = getattr(estimator, "state_", None)
    if state is not None:
        plain = {}
        for key, value in state.state_dict().items():
            if isinstance(value, torch.Tensor):
                tensors[_STATE_PREFIX + key] = value
            else:
                plain[key] = value
        meta["state"] = plain
    save_tensors(path, tensors, meta)
    return Path(path)


def _portable(params: dict[str, Any]) -> dict[str, Any]:
    """A model trained on a GPU still loads and predicts on a machine without one: the
    saved device is only where it computed, so an unavailable CUDA device becomes None
    (compute where the input is)."""
    device = params.get("device")
    if isinstance(params.get("alpha"), list):
        params = {**params, "alpha": np.asarray(params["alpha"], dtype=np.float64)}
    if isinstance(device, str) and device.startswith("cuda") and not torch.cuda.is_available():
        return {**params, "device": None}
    return params


def _names(values) -> list[str] | None:
    return None if values is None else [str(v) for v in values]


def _require(cond: bool, path: str, what: str) -> None:
    if not cond:
        raise ModelFileError(f"{path}: {what}; the file is damaged or not a torchlinreg model")


def load(path: str | Path) -> LinearRegression:
    """Read a model file written by :func:`save` and return the fitted estimator.

    Raises :class:`ModelFileError` for anything that is not a valid torchlinreg model.

    Example:
        >>> model = load("crops.safetensors")  # doctest: +SKIP
        >>> model.predict(X)  # doctest: +SKIP
    """
    path = str(path)
    tensors, meta = load_tensors(path)
    try:
        cls = _ESTIMATORS[meta["estimator"]]
        estimator = cls().set_params(**_portable(meta["params"]))
        weight, bias = tensors["weight"], tensors["bias"]
        k, d = int(meta["n_targets"]), int(meta["n_features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: the model record is incomplete or invalid ({exc}); re-train and save again"
        ) from None
    _require(weight.shape == (k, d) and bias.shape == (k,), path, "weight shapes disagree")
    _require(
        bool(torch.isfinite(weight).all() and torch.isfinite(bias).all()),
        path,
        "non-finite weights",
    )
    features, targets = meta.get("feature_names"), meta.get("target_names")
    _require(features is None or len(features) == d, path, "feature names disagree")
    _require(targets is None or len(targets) == k, path, "target names disagree")
    estimator.model_ = LinearModel(weight, bias)
    estimator.n_features_in_ = d
    if features is not None:
        estimator.feature_names_in_ = np.asarray(features, dtype=object)
    estimator._target_names = targets
    estimator._y_was_1d = bool(meta.get("y_was_1d", False)) and k == 1
    estimator._output_kind = ("numpy", torch.device("cpu"))
    estimator.n_iter_ = int(meta.get("n_iter", 0))
    estimator.rank_ = meta.get("rank")
    estimator.loss_history_ = tensors["loss_history"].tolist() if "loss_history" in tensors else []
    estimator.training_ = meta.get("training", {})
    if "state" in meta:
        record = dict(meta["state"])
        record.update(
            {k[len(_STATE_PREFIX) :]: v for k, v in tensors.items() if k.startswith(_STATE_PREFIX)}
        )
        if not meta.get("weighted", False) and record.get("sum_log_weights") is None:
            record["sum_log_weights"] = 0.0  # an unweighted fit, saved before it was kept
        estimator.state_ = LeastSquaresState.from_state_dict(record)
        with warnings.catch_warnings():
            # the fit already warned about aliased columns; loading repeats no warnings
            warnings.simplefilter("ignore")
            estimator.solution_ = estimator.state_.solve(
                alpha=estimator.alpha, rcond=estimator.rcond, feature_names=features
            )
        estimator._weighted = bool(meta.get("weighted", False))
        _require(
            estimator.state_.n_features == d and estimator.state_.n_targets == k,
            path,
            "state shapes disagree",
        )
    estimator._publish()
    return estimator


def describe(path: str | Path) -> dict[str, Any]:
    """The model file's record (metadata) without building an estimator."""
    _, meta = load_tensors(str(path))
    return meta
