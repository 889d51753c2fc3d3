"""A trainer's state as plain values: what a checkpoint holds and a resumed run restores.

:meth:`TrainerState.state_dict` is tensors, ints, floats, bools, strings, ``None``, lists and
dicts with string keys; :func:`flatten_state` splits it into named tensors (safetensors) and
a JSON tree, :func:`unflatten_state` joins them again. No pickle anywhere.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor

from ..errors import ModelFileError

__all__ = ["STATE_FORMAT", "TrainerState", "flatten_state", "unflatten_state"]

STATE_FORMAT = "torchlinreg.iterative.v1"


class TrainerState:
    """:class:`~.trainer.Trainer`'s ``state_dict`` and ``load_state_dict``."""

    def state_dict(self) -> dict:
        """Everything a resumed run needs, as a snapshot.

        Only tensors, ints, floats, bools, strings, ``None``, lists and dicts with string
        keys: :func:`flatten_state` splits it into named tensors (for safetensors) and a
        JSON-ready rest, and no pickle is ever needed.
        """
        lin = self._linear
        return {
            "format": STATE_FORMAT,
            "solver": self.spec.name,
            "epoch": self.epoch,
            "loss_history": list(self.loss_history),
            "stop_reason": self.stop_reason,
            "converged": self.converged,
            "weight": lin.weight.detach().clone(),
            "bias": lin.bias.detach().clone(),
            "optimizer": _plain_optimizer_state(self.optimizer.state_dict()),
            "generator": self.generator.get_state(),
            "best": {
                "loss": self.best_loss if math.isfinite(self.best_loss) else None,
                "epoch": self.best_epoch,
                **(
                    {}
                    if self._best is None
                    else {"weight": self._best[0].clone(), "bias": self._best[1].clone()}
                ),
            },
            "average": {
                "count": self._count,
                **(
                    {}
                    if self._sums is None
                    else {"weight": self._sums[0].clone(), "bias": self._sums[1].clone()}
                ),
            },
            **({} if self.scaler is None else {"scaler": self.scaler.state_dict()}),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output; the next :meth:`fit` continues from it."""
        if state.get("format") != STATE_FORMAT or state.get("solver") != self.spec.name:
            raise ValueError(
                f"cannot resume a {state.get('solver')!r} run ({state.get('format')}) with "
                f"solver {self.spec.name!r}; resume with the solver that wrote the checkpoint"
            )
        lin = self._linear
        if tuple(state["weight"].shape) != tuple(lin.weight.shape):
            raise ValueError(
                f"the checkpoint holds weights of shape {tuple(state['weight'].shape)} but this "
                f"fit has {tuple(lin.weight.shape)}; resume with the data it was trained on"
            )
        with torch.no_grad():
            lin.weight.copy_(state["weight"])
            lin.bias.copy_(state["bias"])
        opt_state = state["optimizer"]
        try:
            self.optimizer.load_state_dict(
                {
                    "state": {int(k): v for k, v in opt_state["state"].items()},
                    "param_groups": opt_state["param_groups"],
                }
            )
        except ValueError as exc:
            # A checkpoint written before NOTE [centred intercept] (fit.py), whose
            # standardized fits trained the intercept, a parameter this run does not have.
            raise ModelFileError(
                f"the checkpoint's optimizer state does not fit this run ({exc}); it was "
                "written by an earlier torchlinreg: start again without resuming"
            ) from None
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self.loss_history = [float(v) for v in state["loss_history"]]
        self.stop_reason = state.get("stop_reason")
        self.converged = bool(state.get("converged", False))
        # absent from checkpoints written before they were kept: the best is then unknown
        best = state.get("best", {})
        self.best_loss = float("inf") if best.get("loss") is None else float(best["loss"])
        self.best_epoch = int(best.get("epoch", 0))
        self._best = [best["weight"].clone(), best["bias"].clone()] if "weight" in best else None
        average = state.get("average", {})
        self._count = int(average.get("count", 0))
        self._sums = (
            [average["weight"].clone(), average["bias"].clone()] if "weight" in average else None
        )


def _plain_optimizer_state(state: dict) -> dict:
    # torch keys optimizer state by parameter index (int); JSON keys must be strings.
    # deepcopy makes a snapshot: Adam updates its moment tensors in place later.
    state = copy.deepcopy(state)
    return {
        "state": {str(k): v for k, v in state["state"].items()},
        "param_groups": [
            {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
            for group in state["param_groups"]
        ],
    }


_TENSOR = "__tensor__"


def flatten_state(state: dict) -> tuple[dict[str, Tensor], dict]:
    """Split a :meth:`Trainer.state_dict` into ``{dotted.path: tensor}`` and a JSON-ready rest.

    Each tensor in the rest is replaced by ``{"__tensor__": "dotted.path"}``;
    :func:`unflatten_state` puts them back.

    Example:
        >>> tensors, meta = flatten_state({"w": torch.ones(2), "opt": {"lr": 0.1}})
        >>> list(tensors), meta
        (['w'], {'w': {'__tensor__': 'w'}, 'opt': {'lr': 0.1}})
    """
    tensors: dict[str, Tensor] = {}

    def walk(value, path: str):
        if isinstance(value, Tensor):
            tensors[path] = value.detach().contiguous()
            return {_TENSOR: path}
        if isinstance(value, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(value)]
        return value

    return tensors, walk(state, "")


def unflatten_state(tensors: dict[str, Tensor], meta: dict) -> dict:
    """The inverse of :func:`flatten_state`."""

    def walk(value):
        if isinstance(value, dict):
            if set(value) == {_TENSOR}:
                return tensors[value[_TENSOR]]
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(meta)
