"""Training checkpoints: a nested state (dicts, lists, tensors) in one safetensors file.

An optimizer's state dict nests dicts keyed by integers, lists and tensors. Safetensors
holds only flat named tensors and strings, so the structure goes into a JSON tree whose
leaves are plain values or references to the tensors stored beside it. Nothing in the file
can execute code when it is read, and the write is atomic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .errors import ModelFileError
from .io import load_tensors, save_tensors

CHECKPOINT_FORMAT = "torchlinreg-checkpoint"


def _encode(obj: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(obj, Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = obj.detach().to("cpu").contiguous()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: _encode(v, tensors) for k, v in obj.items()}}
        return {"__items__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def _decode(tree: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(tree, list):
        return [_decode(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        return tensors[tree["__tensor__"]]
    if "__dict__" in tree:
        return {k: _decode(v, tensors) for k, v in tree["__dict__"].items()}
    if "__items__" in tree:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in tree["__items__"]}
    if "__tuple__" in tree:
        return tuple(_decode(v, tensors) for v in tree["__tuple__"])
    raise KeyError(f"unknown node {sorted(tree)}")


def save_checkpoint(path: str | Path, state: dict[str, Any], config: dict[str, Any]) -> None:
    """Write a trainer state and the run's settings (JSON-able) to ``path``, atomically.

    Example:
        >>> save_checkpoint("run.ckpt", trainer.state_dict(), {"solver": "sgd"})  # doctest: +SKIP
    """
    tensors: dict[str, Tensor] = {}
    tree = _encode(state, tensors)
    save_tensors(path, tensors, {"state": tree, "config": config}, file_format=CHECKPOINT_FORMAT)


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read ``(state, config)`` written by :func:`save_checkpoint`."""
    tensors, meta = load_tensors(str(path), expected_format=CHECKPOINT_FORMAT)
    try:
        state = _decode(meta["state"], tensors)
        config = dict(meta["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: the checkpoint record is damaged ({exc}); start again without --resume"
        ) from None
    if "generator" in state and isinstance(state["generator"], Tensor):
        state["generator"] = state["generator"].to(torch.uint8)
    return state, config
