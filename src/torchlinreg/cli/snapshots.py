"""Checkpoints of `torchlinreg train`: snapshots every N epochs, Ctrl-C, --resume."""

from __future__ import annotations

from typing import Any

import click

from ..errors import DataError
from ..iterative.callbacks import Callback, TrainState
from ..iterative.checkpoint import load_checkpoint, save_checkpoint
from .output import ProgressBar


class Snapshots(Callback):
    """Keep the state after the last finished epoch; write it every ``every`` epochs.

    On Ctrl-C the last finished epoch's state is written, never a half-done epoch, so
    resuming gives the same model as an uninterrupted run.
    """

    def __init__(self, path: str | None, every: int, config: dict[str, Any]) -> None:
        self.path, self.every, self.config = path, every, config
        self.latest: dict[str, Any] | None = None
        self.epoch = 0

    def _keep(self, state: TrainState) -> None:
        if state.trainer is not None:
            self.latest = state.trainer.state_dict()
            self.epoch = state.epoch

    def on_train_begin(self, state: TrainState) -> None:
        self._keep(state)

    def on_epoch_end(self, state: TrainState) -> bool | None:
        self._keep(state)
        if self.path and state.epoch % self.every == 0:
            self.write()
        return None

    def on_train_end(self, state: TrainState) -> None:
        self._keep(state)
        if self.path:
            self.write()

    def write(self) -> None:
        if self.path and self.latest is not None:
            save_checkpoint(self.path, self.latest, self.config)


def resume_state(path: str, config: dict[str, Any]) -> dict[str, Any]:
    state, saved = load_checkpoint(path)
    # the row count catches a checkpoint resumed on other data (the scaling and the shuffled
    # batches depend on the rows)
    for key in ("solver", "features", "targets", "weights", "fit_intercept", "alpha", "rows"):
        if saved.get(key) != config.get(key):
            raise DataError(
                f"{path}: the checkpoint was written with {key}={saved.get(key)!r}, this run has "
                f"{config.get(key)!r}; resume with the same settings"
            )
    return state


def run_config(est, features, targets, weight_col, rows: int | None) -> dict[str, Any]:
    return {
        "solver": est.solver,
        "features": features,
        "targets": targets,
        "weights": weight_col,
        "fit_intercept": est.fit_intercept,
        "alpha": est.alpha,
        "seed": est.random_state,
        "rows": rows,
    }


def run_with_snapshots(fit, config: dict[str, Any], opts: dict[str, Any], extra=()) -> None:
    """``fit(callbacks, resume_from)`` with checkpoints, a progress bar and Ctrl-C handling."""
    resume = resume_state(opts["resume"], config) if opts["resume"] else None
    snapshots = Snapshots(opts["checkpoint"], opts["checkpoint_every"], config)
    bar = ProgressBar(enabled=None if not opts["quiet"] else False)
    try:
        fit([*extra, snapshots, bar], resume)
    except KeyboardInterrupt:
        bar.close()
        if opts["checkpoint"]:
            snapshots.write()
            click.echo(
                f"torchlinreg: interrupted after epoch {snapshots.epoch}; checkpoint saved to "
                f"{opts['checkpoint']}; continue with --resume {opts['checkpoint']}",
                err=True,
            )
        else:
            click.echo("torchlinreg: interrupted; nothing was saved", err=True)
        raise click.exceptions.Exit(130) from None
    finally:
        bar.close()


class RowsInto(Callback):
    """Puts the row count of a streamed fit, known after its first pass, into ``config``."""

    def __init__(self, config: dict[str, Any], blocks: Any) -> None:
        self.config, self.blocks = config, blocks

    def on_train_begin(self, state: TrainState) -> None:
        self.config["rows"] = self.blocks.n_rows
