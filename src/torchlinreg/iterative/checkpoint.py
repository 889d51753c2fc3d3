"""Training checkpoints: a trainer's nested state in one safetensors file.

:func:`.trainer.flatten_state` splits the state (optimizer state included) into
named tensors and a JSON tree; the tensors go into safetensors and the tree into its
metadata, so nothing in the file can execute code when it is read. Writes are atomic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelFileError
from ..files.io import load_tensors, save_tensors
from .trainer import flatten_state, unflatten_state

CHECKPOINT_FORMAT = "torchlinreg-checkpoint"


def save_checkpoint(path: str | Path, state: dict[str, Any], config: dict[str, Any]) -> None:
    """Write a trainer state and the run's settings (JSON-able) to ``path``, atomically.

    Example:
        >>> save_checkpoint("run.ckpt", trainer.state_dict(), {"solver": "sgd"})  # doctest: +SKIP
    """
    tensors, tree = flatten_state(state)
    save_tensors(path, tensors, {"state": tree, "config": config}, file_format=CHECKPOINT_FORMAT)


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read ``(state, config)`` written by :func:`save_checkpoint`."""
    tensors, meta = load_tensors(str(path), expected_format=CHECKPOINT_FORMAT)
    try:
        return unflatten_state(tensors, meta["state"]), dict(meta["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: the checkpoint record is damaged ({exc}); start again without --resume"
        ) from None
