"""`torchlinreg train --nproc N`: start N worker processes here, without torchrun.

torch.distributed's own launcher (``torch.distributed.launcher.api.elastic_launch``, what
torchrun runs) is started in this process on 127.0.0.1 with a free port, and each worker runs
``python -m torchlinreg train ...`` with the same arguments but ``--nproc`` (so it joins the
group exactly as under torchrun: :mod:`torchlinreg.cli.torchrun`). What the user sees is
torchlinreg's, not the launcher's: its logging is silenced and its exceptions become one line
and an exit code here:

- a worker's error was printed by the worker (rank 0 for errors every rank shares, the rank
  itself otherwise); its exit code is this command's (2 for bad usage or data);
- a worker killed by a signal is named: ``worker 1 stopped: killed by SIGKILL (out of
  memory?)``, exit 1; the other workers, which lost contact with it, say nothing;
- Ctrl-C, SIGTERM or SIGHUP to this command stop the workers and end with one line and 130,
  143 or 129 (NOTE [signals] in ``interrupts.py``).

The launcher's temporary folder (worker logs and error files) is removed at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator

import click

from .interrupts import LAUNCHED_BY_US, PEER_LOST, Terminated

# Exit codes of a worker that say "not the root cause": stopped by the launcher, or failed
# only because another worker was gone (PEER_LOST, see torchrun.py).
_FOLLOWERS = {PEER_LOST, 128 + signal.SIGTERM, -signal.SIGTERM, 130, -signal.SIGINT}


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``.

    Example:
        >>> without_nproc(["train", "d.csv", "--nproc", "2", "-t", "y"])
        ['train', 'd.csv', '-t', 'y']
    """
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``torchlinreg ARGV`` (without ``--nproc``) in ``nproc`` processes; its exit code."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    folder = tempfile.mkdtemp(prefix="torchlinreg-launch-")
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"torchlinreg-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        rdzv_configs={"timeout": 120},
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
        logs_specs=DefaultLogsSpecs(log_dir=folder),
        shutdown_timeout=10,
    )
    threads = str(max(1, (os.cpu_count() or 1) // nproc))
    env = {LAUNCHED_BY_US: "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", threads)}
    try:
        with _environment(env), _quiet_launcher(), _restored_signals():
            elastic_launch(config, sys.executable)("-m", "torchlinreg", *without_nproc(argv))
        return 0
    except ChildFailedError as exc:
        return _report(exc.failures)
    except SignalException as exc:
        # Ctrl-C or a signal to this command: the workers are stopped; say it like Ctrl-C
        if exc.sigval == signal.SIGINT:
            raise KeyboardInterrupt from None
        raise Terminated(int(exc.sigval)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(failures: dict) -> int:
    """One line for a worker that was killed; the exit code of the root cause."""
    # A worker killed from outside (SIGKILL: the OOM killer, a user) is the cause of the
    # others' failures, whatever order they were noticed in.
    ranked = sorted(failures.items(), key=lambda i: (i[1].exitcode != -signal.SIGKILL, i[0]))
    for rank, failure in ranked:
        if failure.exitcode < 0 and failure.exitcode not in _FOLLOWERS:
            name = failure.signal_name()
            hint = " (out of memory?)" if failure.exitcode == -signal.SIGKILL else ""
            click.echo(
                f"torchlinreg: error: worker {rank} stopped: killed by {name}{hint}", err=True
            )
            return 1
    causes = [(rank, f) for rank, f in ranked if f.exitcode not in _FOLLOWERS]
    if causes:
        rank, failure = causes[0]
        # Rank 0 printed an error every rank shared (the others may exit before it); a rank
        # that failed alone left its line in its error file (torchrun.py): print that one.
        said = failure.message if isinstance(failure.message, str) else ""
        if said.startswith(f"worker {rank}: "):
            click.echo(f"torchlinreg: error: {said}", err=True)
        return failure.exitcode
    interrupted = [f for _, f in ranked if f.exitcode in (130, -signal.SIGINT)]
    if interrupted:
        click.echo("torchlinreg: interrupted", err=True)
        return 130
    rank, failure = ranked[0]
    click.echo(
        f"torchlinreg: error: worker {rank} stopped (exit code {failure.exitcode})", err=True
    )
    return 1


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The workers inherit this process's environment: set ``values`` for them, then put
    back what was there (the launcher sets its own variables too)."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _quiet_launcher() -> Iterator[None]:
    """No launcher log lines: what happened is said here, in torchlinreg's words."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


@contextlib.contextmanager
def _restored_signals() -> Iterator[None]:
    """The launcher installs its own signal handlers in this process; put ours back."""
    names = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
    saved = {}
    for name in names:
        sig = getattr(signal, name, None)
        if sig is not None:
            with contextlib.suppress(ValueError, OSError):
                saved[sig] = signal.getsignal(sig)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)
