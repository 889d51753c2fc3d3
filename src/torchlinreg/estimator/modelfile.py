"""Model files: a fitted estimator as one ``.safetensors`` file, and back.

The file holds the weights, the intercepts and (for exact solvers) the least-squares state
as tensors, and a JSON record in its metadata: torchlinreg version, estimator class and
hyper-parameters, feature and target names, and the training summary. Because the state is
kept, a saved exact model can absorb new rows later and still equal one fit on all rows.
Loading never executes code: safetensors holds only tensors and strings.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import DataError, ModelFileError
from ..exact.state import LeastSquaresState
from ..files.io import load_tensors, save_tensors
from ..model import LinearModel
from .formula_fit import encoding_record, restore_encoding, restore_robust, robust_record
from .linear import LinearRegression, Ridge, check_is_fitted
from .modelcheck import check_model, weights_match_state
from .penalized import ElasticNet, Lasso

_ESTIMATORS = {
    "LinearRegression": LinearRegression,
    "Ridge": Ridge,
    "Lasso": Lasso,
    "ElasticNet": ElasticNet,
}
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
    if type(estimator).__name__ not in _ESTIMATORS or getattr(estimator, "positive", False):
        # their weights are not the state's least-squares solution the loader checks
        raise ValueError(
            f"saving {type(estimator).__name__}"
            f"{' with positive=True' if getattr(estimator, 'positive', False) else ''} is not "
            "supported yet; save LinearRegression, Ridge, Lasso or ElasticNet (for a *CV "
            "model: one fitted at its alpha_), or pickle the estimator"
        )
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
        "n_iter": int(np.max(estimator.n_iter_)),  # one per target for Lasso (as scikit-learn)
        "rank": getattr(estimator, "rank_", None),
        "weighted": bool(getattr(estimator, "_weighted", False)),
        "training": training or {},
        # rows left out for missing values: results_.nobs_dropped (0 after a load, before)
        "nobs_dropped": int(getattr(estimator, "nobs_dropped_", 0) or 0),
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
    if encoding_record(estimator) is not None:
        meta["formula"] = encoding_record(estimator)
    if robust_record(estimator) is not None:
        meta["robust_cov"] = robust_record(estimator)
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


def load(path: str | Path) -> LinearRegression:
    """Read a model file written by :func:`save` and return the fitted estimator.

    Raises :class:`ModelFileError` for anything that is not a valid torchlinreg model. The
    file is checked whole (:mod:`.modelcheck`) before anything it describes is allocated,
    and the weights must be the solution of the stored least-squares state.

    Example:
        >>> model = load("crops.safetensors")  # doctest: +SKIP
        >>> model.predict(X)  # doctest: +SKIP
    """
    path = str(path)
    tensors, meta = load_tensors(path)
    k, d = check_model(path, meta, tensors)
    try:
        estimator = _ESTIMATORS[meta["estimator"]]().set_params(**_portable(meta["params"]))
        estimator._validate_params()
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: the model record is invalid ({_short(exc)}); re-train and save again"
        ) from None
    weight, bias = tensors["weight"], tensors["bias"]
    features, targets = meta.get("feature_names"), meta.get("target_names")
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
    dropped = meta.get("nobs_dropped", 0)
    if not (isinstance(dropped, int) and not isinstance(dropped, bool) and dropped >= 0):
        raise ModelFileError(f"{path}: nobs_dropped is not a count; re-train and save again")
    if dropped:
        estimator.nobs_dropped_ = dropped
    if "state" in meta:
        _load_state(estimator, path, meta, tensors, features)
    if "formula" in meta:
        restore_encoding(estimator, path, meta["formula"])
    if "robust_cov" in meta and "state" in meta:
        restore_robust(estimator, path, meta["robust_cov"])
    estimator._publish()
    return estimator


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _load_state(estimator, path: str, meta: dict, tensors: dict, features) -> None:
    """The least-squares state (shapes checked by check_model), solved and compared."""
    record = dict(meta["state"])
    record.update(
        {k[len(_STATE_PREFIX) :]: v for k, v in tensors.items() if k.startswith(_STATE_PREFIX)}
    )
    if not meta.get("weighted", False) and record.get("sum_log_weights") is None:
        record["sum_log_weights"] = 0.0  # an unweighted fit, saved before it was kept
    try:
        estimator.state_ = LeastSquaresState.from_state_dict(record)
        with warnings.catch_warnings():
            # the fit already warned about aliased columns; loading repeats no warnings
            warnings.simplefilter("ignore")
            if not isinstance(estimator, ElasticNet):  # the penalised fits check their own
                estimator.solution_ = estimator.state_.solve(
                    alpha=estimator.alpha, rcond=estimator.rcond, feature_names=features
                )
    except (ModelFileError, DataError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"{path}: the least-squares state is invalid ({_short(exc)}); re-train and save again"
        ) from None
    estimator._weighted = bool(meta.get("weighted", False))
    model = estimator.model_
    if isinstance(estimator, ElasticNet):  # lasso and elastic net: optimal for their penalty
        if not estimator.weights_fit_state(model.weight, model.bias):
            raise ModelFileError(
                f"{path}: the weights are not the {type(estimator).__name__} solution of the "
                "least-squares state stored with them (the file was edited or damaged); "
                "restore it, or re-train and save again"
            )
        return
    if not weights_match_state(
        estimator.state_, estimator.solution_, model.weight, model.bias, estimator.alpha
    ):
        raise ModelFileError(
            f"{path}: the weights disagree with the least-squares state stored with them (the "
            "file was edited or damaged); restore it, or re-train and save again"
        )
    solution = estimator.solution_
    if not solution.aliased and not bool(torch.any(torch.as_tensor(estimator.alpha) != 0)):
        # NOTE [saved coefficients are the statistics' parameters]: the saved weights were
        # refined from the rows, the state's own solve was not: a float32 fit's results_
        # after load gave parameters 8.3e-5 from its own coef_ (2e-7 in memory), silently
        estimator.solution_ = dataclasses.replace(
            solution,
            coef=model.weight.to(solution.coef.dtype),
            intercept=model.bias.to(solution.intercept.dtype),
        )


def describe(path: str | Path) -> dict[str, Any]:
    """The model file's record (metadata) without building an estimator."""
    _, meta = load_tensors(str(path))
    return meta
