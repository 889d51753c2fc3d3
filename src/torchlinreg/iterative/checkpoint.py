"""Training checkpoints: a trainer's nested state in one safetensors file.

:func:`.trainer.flatten_state` splits the state (optimizer state included) into
named tensors and a JSON tree; the tensors go into safetensors and the tree into its
metadata, so nothing in the file can execute code when it is read. Writes are atomic.
A checkpoint is read as untrusted input (NOTE [reading untrusted files] in
``files/tensorfile.py``): :func:`load_checkpoint` checks every entry a resumed run uses
(types, dtypes, shapes against the run's columns) and refuses a damaged one in one line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import ModelFileError
from ..files.io import load_tensors, save_tensors
from .trainer import flatten_state, unflatten_state

CHECKPOINT_FORMAT = "torchlinreg-checkpoint"
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def save_checkpoint(path: str | Path, state: dict[str, Any], config: dict[str, Any]) -> None:
    """Write a trainer state and the run's settings (JSON-able) to ``path``, atomically.

    Example:
        >>> save_checkpoint("run.ckpt", trainer.state_dict(), {"solver": "sgd"})  # doctest: +SKIP
    """
    tensors, tree = flatten_state(state)
    save_tensors(path, tensors, {"state": tree, "config": config}, file_format=CHECKPOINT_FORMAT)


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read ``(state, config)`` written by :func:`save_checkpoint`; every entry is checked."""
    tensors, meta = load_tensors(str(path), expected_format=CHECKPOINT_FORMAT)
    try:
        state, config = unflatten_state(tensors, meta["state"]), meta["config"]
        if not isinstance(state, dict) or not isinstance(config, dict):
            raise TypeError("the state and config must be objects")
        _check_config(config)
        _check_state(state, config)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        what = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ModelFileError(
            f"{path}: the checkpoint record is damaged ({what}); start again without --resume"
        ) from None
    return state, dict(config)


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


def _check_config(config: dict) -> None:
    # Only the keys a run writes are checked: a bare config (the library's own use) is fine.
    rules = {
        "solver": lambda v: isinstance(v, str),
        "features": _strings,
        "targets": _strings,
        "weights": lambda v: v is None or isinstance(v, str),
        "fit_intercept": lambda v: isinstance(v, bool),
        "alpha": lambda v: isinstance(v, int | float) and math.isfinite(v) and v >= 0,
        "seed": lambda v: v is None or _int(v),
        "rows": lambda v: v is None or (_int(v) and v >= 0),
        "fingerprint": lambda v: v is None or isinstance(v, str),
    }
    for key, ok in rules.items():
        if key in config:
            _need(ok(config[key]), f"config {key} has the wrong type")


def _tensor(v: Any, what: str, shape: tuple | None = None) -> Tensor:
    _need(isinstance(v, Tensor), f"{what} is not a tensor")
    _need(v.dtype in _FLOATS, f"{what} has dtype {str(v.dtype).removeprefix('torch.')}")
    _need(shape is None or tuple(v.shape) == shape, f"{what} has shape {tuple(v.shape)}")
    return v


def _check_state(state: dict, config: dict) -> None:
    """A :meth:`Trainer.state_dict`: what ``load_state_dict`` and the scaler read."""
    if set(state) <= {"epoch"} or "format" not in state:
        return  # not a trainer's state (a bare record): nothing a resume reads
    _need(isinstance(state["format"], str), "format is not a string")
    _need(isinstance(state.get("solver"), str), "solver is not a string")
    _need(_int(state.get("epoch")) and state["epoch"] >= 0, "epoch is not a count")
    losses = state.get("loss_history")
    _need(
        isinstance(losses, list)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in losses)
        and all(v >= 0 for v in losses),  # NaN fails; inf is a diverged run's loss
        "loss_history is not a list of losses",
    )
    # the loss before the first epoch, then one per epoch (a forged history of another
    # length could make a resumed run stop as 'diverged' on numbers it never saw)
    _need(len(losses) == state["epoch"] + 1, "loss_history does not have one loss per epoch")
    _need(state.get("stop_reason") is None or isinstance(state["stop_reason"], str), "stop_reason")
    _need(isinstance(state.get("converged", False), bool), "converged is not true or false")
    weight = _tensor(state.get("weight"), "weight")
    _need(weight.dim() == 2, "weight is not a matrix")
    k, d = weight.shape
    if "features" in config and "targets" in config:
        _need((k, d) == (len(config["targets"]), len(config["features"])), "weight shape")
    _tensor(state.get("bias"), "bias", (k,))
    _need(bool(torch.isfinite(weight).all() and torch.isfinite(state["bias"]).all()), "NaN weight")
    _check_optimizer(state.get("optimizer"))
    gen = state.get("generator")
    _need(isinstance(gen, Tensor) and gen.dtype == torch.uint8 and gen.dim() == 1, "generator")
    if "scaler" in state:
        _check_scaler(state["scaler"], k, d)


def _check_optimizer(opt: Any) -> None:
    _need(isinstance(opt, dict), "optimizer is not an object")
    entries, groups = opt.get("state"), opt.get("param_groups")
    _need(isinstance(entries, dict), "optimizer state is not an object")
    _need(isinstance(groups, list) and all(isinstance(g, dict) for g in groups), "param_groups")
    for key, entry in entries.items():
        _need(key.isdigit() and isinstance(entry, dict), "optimizer state entry")
        for name, value in entry.items():
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, Tensor):
                    _tensor(v, f"optimizer {name}")
                else:
                    _need(v is None or isinstance(v, int | float | str), f"optimizer {name}")


def _check_scaler(scaler: Any, k: int, d: int) -> None:
    _need(isinstance(scaler, dict), "scaler is not an object")
    for name, n in (("x_mean", d), ("x_scale", d), ("y_mean", k), ("y_scale", k)):
        t = _tensor(scaler.get(name), f"scaler {name}", (n,))
        _need(bool(torch.isfinite(t).all()), f"scaler {name} is not finite")
        if name.endswith("scale"):
            _need(bool((t > 0).all()), f"scaler {name} is not positive")
