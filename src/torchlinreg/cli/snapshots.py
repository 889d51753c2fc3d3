"""Checkpoints of `torchlinreg train`: snapshots every N epochs, Ctrl-C, --resume.

A resumed run must be the run that wrote the checkpoint: the same settings, and the same
data, which the checkpoint records as a fingerprint (:class:`Fingerprint`: the row count and
a few sums of random projections of every row, so other values of the same shape are told
apart; the order of the rows does not matter). ``--seed`` on resume is ignored (the random
state is the checkpoint's), and a warning says so when it differs from the saved one.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import click
import torch

from ..errors import DataError, ModelFileError, TorchLinRegError
from ..iterative.callbacks import Callback, TrainState
from ..iterative.checkpoint import load_checkpoint, save_checkpoint
from .interrupts import exit_code, speaks, what_happened
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


def _shown(value) -> str:
    return "the default" if value is None else repr(value)


def resume_state(path: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint's trainer state and its run config, checked against this run's."""
    state, saved = load_checkpoint(path)
    # the row count catches a checkpoint resumed on other data (the scaling and the shuffled
    # batches depend on the rows); the fingerprint, other values of the same shape
    for key in ("solver", "features", "targets", "weights", "fit_intercept", "alpha", "rows"):
        if saved.get(key) != config.get(key):
            raise DataError(
                f"{path}: the checkpoint was written with {key}={saved.get(key)!r}, this run has "
                f"{config.get(key)!r}; resume with the same settings"
            )
    # NOTE [settings a resumed run changes]: a new --lr or --batch-size is taken from the
    # resumed epoch on (the schedule sets the rate each epoch), which is a way to go on
    # more gently; but the model file then records one value for a run that used two, and
    # an unchanged model cannot be expected. Said, as a new --seed is (checkpoints written
    # before these were kept have neither)
    for key in ("lr", "batch_size"):
        if key in saved and saved[key] != config.get(key):
            flag = "--" + key.replace("_", "-")
            warnings.warn(
                f"{flag} {_shown(config.get(key))} is not what the checkpoint {path} was "
                f"written with ({_shown(saved[key])}): the epochs from {state.get('epoch')} on "
                "take the new value, so the model is not the one an uninterrupted run gives",
                UserWarning,
                stacklevel=2,
            )
    check_fingerprint(path, saved.get("fingerprint"), config.get("fingerprint"))
    if config.get("seed") is not None and config["seed"] != saved.get("seed"):
        warnings.warn(
            f"--seed {config['seed']} is ignored on resume: the run continues with the random "
            f"state saved in {path} (seed {saved.get('seed')!r})",
            UserWarning,
            stacklevel=2,
        )
    config["seed"] = saved.get("seed")  # the checkpoints this run writes say what it used
    return state, saved


class Fingerprint:
    """A fingerprint of the rows of a fit, the same whatever their order or block sizes.

    For every row ``z = asinh([x | y | w])``: sums of ``z @ v1``, ``(z @ v2)**2`` and
    ``cos(z @ v3)`` for fixed random ``v`` (seeded), and the row count. Two tables of the
    same shape with different values differ in it (almost surely); it is not a checksum
    against forgery, only against resuming on the wrong data by mistake.
    """

    def __init__(self) -> None:
        self.rows = 0
        self.sums: torch.Tensor | None = None

    def add(self, X: torch.Tensor, Y: torch.Tensor, w: torch.Tensor | None = None) -> None:
        parts = [X, Y] + ([] if w is None else [w.reshape(-1, 1)])
        Z = torch.cat([p.to(torch.float64).cpu() for p in parts], dim=1)
        gen = torch.Generator().manual_seed(20240611)
        V = torch.randn(Z.shape[1], 3, generator=gen, dtype=torch.float64)
        P = torch.asinh(Z) @ V  # asinh: one-to-one, and no overflow on huge values
        sums = torch.stack([P[:, 0].sum(), P[:, 1].square().sum(), P[:, 2].cos().sum()])
        self.sums = sums if self.sums is None else self.sums + sums
        self.rows += Z.shape[0]

    def value(self) -> str | None:
        if self.sums is None:
            return None
        return " ".join([str(self.rows), *(repr(float(v)) for v in self.sums)])


def check_fingerprint(path: str, saved: str | None, now: str | None) -> None:
    """Refuse a resume on other data of the same shape (older checkpoints have none)."""
    if not saved or not now:
        return
    a, b = saved.split(), now.split()
    try:
        same = a[0] == b[0] and all(
            math.isclose(float(x), float(y), rel_tol=1e-11, abs_tol=1e-11 * float(b[0]))
            for x, y in zip(a[1:], b[1:], strict=True)
        )
    except (ValueError, IndexError):
        same = False
    if not same:
        raise DataError(
            f"{path}: the checkpoint was written for other data (this data has the same "
            "columns and rows, but other values); resume with the data it was trained on, or "
            "start again without --resume"
        )


def fingerprint_of(block) -> str | None:
    """The :class:`Fingerprint` of a block of rows (``block.X``, ``block.Y``, ``block.w``)."""
    f = Fingerprint()
    f.add(block.X, block.Y, block.w)
    return f.value()


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
        "lr": est.lr,
        "batch_size": est.batch_size,
    }


class _Started(Callback):
    """Whether training began: an error before that, on a resumed run, is the checkpoint's."""

    started = False

    def on_train_begin(self, state: TrainState) -> None:
        self.started = True


def run_with_snapshots(fit, config: dict[str, Any], opts: dict[str, Any], extra=()) -> None:
    """``fit(callbacks, resume_from)`` with checkpoints, a progress bar and Ctrl-C handling.

    Ctrl-C, SIGTERM and SIGHUP (NOTE [signals] in ``interrupts.py``) write the state after
    the last finished epoch to the checkpoint and end with one line and 130, 143 or 129.
    """
    resume, saved = resume_state(opts["resume"], config) if opts["resume"] else (None, {})
    for callback in extra:  # a streamed fit's fingerprint is known after its first pass
        if isinstance(callback, RowsInto) and resume is not None:
            callback.resume = (opts["resume"], saved)
    snapshots = Snapshots(opts["checkpoint"], opts["checkpoint_every"], config)
    bar = ProgressBar(enabled=None if not opts["quiet"] else False)
    started = _Started()
    try:
        fit([started, *extra, snapshots, bar], resume)
    except KeyboardInterrupt as exc:
        bar.close()
        _interrupted(exc, snapshots, opts)
    except Exception as exc:
        if resume is None or started.started or isinstance(exc, TorchLinRegError):
            raise
        # restoring the trainer from a checked checkpoint failed: the checkpoint's fault
        what = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ModelFileError(
            f"{opts['resume']}: the checkpoint cannot be restored ({type(exc).__name__}: "
            f"{what}); it is damaged or from another version: start again without --resume"
        ) from None
    finally:
        bar.close()


def _interrupted(exc: KeyboardInterrupt, snapshots: Snapshots, opts: dict[str, Any]) -> None:
    what = what_happened(exc)
    if opts["checkpoint"]:
        snapshots.write()
        message = (
            f"torchlinreg: {what} after epoch {snapshots.epoch}; checkpoint saved to "
            f"{opts['checkpoint']}; continue with --resume {opts['checkpoint']}"
        )
    else:
        message = f"torchlinreg: {what}; nothing was saved"
    if speaks(exc):
        click.echo(message, err=True)
    raise click.exceptions.Exit(exit_code(exc)) from None


class RowsInto(Callback):
    """Puts the row count of a streamed fit, known after its first pass, into ``config``,
    and its data fingerprint (``blocks.fingerprint``, when it keeps one), which a resumed
    run checks against the checkpoint's (``resume``: the checkpoint's path and config)."""

    def __init__(self, config: dict[str, Any], blocks: Any, resume=None) -> None:
        self.config, self.blocks, self.resume = config, blocks, resume

    def on_train_begin(self, state: TrainState) -> None:
        self.config["rows"] = self.blocks.n_rows
        fingerprint = getattr(self.blocks, "fingerprint", None)
        if fingerprint is not None:
            self.config["fingerprint"] = fingerprint
            if self.resume is not None:
                path, saved = self.resume
                check_fingerprint(path, saved.get("fingerprint"), fingerprint)
