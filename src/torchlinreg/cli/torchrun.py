"""`torchlinreg train` under torchrun: one process group per command, rank 0 speaks.

``torchrun --nproc_per_node=N [--nnodes ...] -m torchlinreg train DATA ...`` sets
``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each
process's environment. When ``WORLD_SIZE > 1`` (and no process group exists yet), the
command joins one: gloo for ``--device cpu``, nccl on ``cuda:LOCAL_RANK`` for
``--device cuda``. Each rank then reads its own share of DATA
(:mod:`torchlinreg.distributed.shards`) and the engines merge the ranks
(:mod:`torchlinreg.distributed.collectives`). Rank 0 alone prints, plots and writes the model; other
ranks run with ``--quiet`` and report nothing, since every error is raised on all ranks
(NOTE [errors on one rank]) and rank 0 prints it once.

Errors are one line, printed once: rank 0 prints those every rank raised (a bad row,
NOTE [errors on one rank]); a rank that failed alone leaves its line in the launcher's
error file (torchrun shows it; ``train --nproc`` prints it, :mod:`.launch`); a collective
that failed because another worker died is "lost contact with another worker", never "this
is a bug"; warnings and interruptions are printed by rank 0 alone (NOTE [signals] in
``interrupts.py``).

Limitations: only ``train`` is distributed (other commands would run once per process);
every node must see DATA and the output folder at the same path; ``--checkpoint`` and
``--resume`` are refused; plots are drawn from rank 0's share of the rows; an exact fit
by several processes keeps the state's results (no refinement against the rows, no
robust covariances), as a streamed fit does.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click
import torch
import torch.distributed as dist

from ..distributed.collectives import agree_on_errors, is_shared_error, world
from ..errors import DataError, ModelFileError, TorchLinRegError
from .checks import check_enough_rows
from .interrupts import LAUNCHED_BY_US, PEER_LOST
from .text import safe

__all__ = [
    "distributed_command",
    "fit_exact_on_ranks",
    "init_from_env",
    "is_peer_lost",
    "launched_world_size",
]


def launched_world_size() -> int:
    """``WORLD_SIZE`` as a launcher (torchrun) set it; 1 when run plainly."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device: str) -> str:
    """Join the process group torchrun describes; return the device this rank computes on."""
    dev = torch.device(device)
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", init_method="env://")
    return device


def _exit_code(exc: BaseException) -> int:
    # The codes app.py gives (2 bad usage or data, 1 other failures).
    if isinstance(exc, click.ClickException):
        return exc.exit_code
    return 2 if isinstance(exc, DataError | ModelFileError) else 1


def distributed_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a click command body inside a process group when launched by torchrun.

    Put it under the click decorators. Plain runs call ``fn`` unchanged. A process group
    the caller already joined is used as it is (and left open).
    """

    @functools.wraps(fn)
    def wrapper(**opts: Any) -> Any:
        joined = dist.is_available() and dist.is_initialized()
        if not joined and launched_world_size() <= 1:
            return fn(**opts)
        if not joined:
            opts["device"] = init_from_env(opts.get("device") or "cpu")
        rank = world()[0]
        if rank > 0:
            opts.update(quiet=True, plot_dir=None)
        try:
            if opts.get("checkpoint") or opts.get("resume"):
                raise click.UsageError(
                    "--checkpoint and --resume are not supported under torchrun yet; "
                    "train with one process to checkpoint"
                )
            result = fn(**opts)
        except (TorchLinRegError, click.ClickException, OSError) as exc:
            code = _exit_code(exc)
            if not joined and is_shared_error(exc):
                # Every rank raised it in step, so the group is idle: rank 0 reports it
                # while the others wait, so that none exits (and torchrun stops rank 0)
                # before the report is out.
                if rank == 0:
                    click.echo(f"torchlinreg: error: {_one_line(exc)}", err=True)
                dist.barrier()
                dist.destroy_process_group()
                raise click.exceptions.Exit(code) from None
            # Not known to be shared: leave the group alone (a rank that failed alone
            # would block in destroy_process_group while the others wait in a
            # collective; torchrun ends them when this process exits). Rank 0 prints it;
            # another rank (most such errors, a bad column say, rank 0 raised too) leaves
            # it in the launcher's error file, which torchrun and `train --nproc` show
            # when that rank failed first.
            if rank == 0:
                raise
            _error_file(f"worker {rank}: {_one_line(exc)}")
            raise click.exceptions.Exit(code) from None
        except Exception as exc:
            if not is_peer_lost(exc):
                raise
            # A collective failed because another worker is gone (killed, out of memory,
            # failed alone): say that, once, and not "this is a bug".
            if rank == 0 and not os.environ.get(LAUNCHED_BY_US):
                click.echo(
                    f"torchlinreg: error: lost contact with another worker: it stopped "
                    f"(killed, out of memory, or failed: see its message) "
                    f"[{_one_line(exc)[:200]}]",
                    err=True,
                )
            # Out now, past the interpreter's teardown: the group cannot be destroyed with a
            # peer gone, and gloo's threads left joinable made the C++ runtime abort at exit
            # ("terminate called without an active exception", SIGABRT), which the launcher
            # then reported as this worker's failure instead of the killed one's.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(PEER_LOST if os.environ.get(LAUNCHED_BY_US) else 1)
        if not joined:
            # Every rank past its last collective before the group goes (gloo's worker
            # threads may otherwise still hold work at interpreter exit), and no DDP
            # wrapper left for the interpreter's final collection to free after it.
            gc.collect()
            dist.barrier()
            dist.destroy_process_group()
        return result

    return wrapper


def is_peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because another process went away."""
    dist_error = getattr(dist, "DistError", ())
    if isinstance(exc, dist_error):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        marker in text
        for marker in ("gloo", "Gloo", "NCCL", "Connection closed by peer", "Connection reset")
    )


def _error_file(message: str) -> None:
    """The message of this worker's failure, where the launcher reads it."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    try:
        with open(path, "w") as f:
            json.dump({"message": message, "timestamp": int(time.time())}, f)
    except OSError:
        pass


def _one_line(exc: BaseException) -> str:
    return safe(" ".join(str(exc).split()))


def fit_exact_on_ranks(est, source, features, targets, weight_col, opts, tap=None) -> int:
    """The exact fit of `train` on this rank's share; returns the row count of all ranks.

    The rows-per-coefficient check (:func:`~torchlinreg.cli.checks.check_enough_rows`) is
    made on the merged state, so a rank with a small share (or none) is not refused.
    ``tap`` (blocks -> blocks) sees every block absorbed.
    """
    # every block, those of weight zero too: their rows count in nobs and df_resid, as one
    # process counts them (dropping them made the standard errors depend on --nproc: 22%
    # larger on 2 ranks, and --cluster refused the fit for a row count it had changed)
    blocks = source.read_columns(features, targets, weight_col)
    if tap is not None:
        blocks = tap(blocks)
    est.fit_blocks(
        blocks, feature_names=features, target_names=targets[0] if len(targets) == 1 else targets
    )
    with agree_on_errors():  # every rank fails alike; mark it shared so rank 0 reports
        check_enough_rows(est.state_.n_nonzero, len(features), opts, source.path)
    return est.state_.n_samples
