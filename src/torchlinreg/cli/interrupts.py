"""Signals the command handles like Ctrl-C, and which process of a launched job speaks.

# NOTE [signals]
# SIGTERM (what schedulers, ``kill`` and ``docker stop`` send) and SIGHUP (a closed terminal)
# raise :class:`Terminated`, a KeyboardInterrupt: every path that handles Ctrl-C handles
# them too (the last finished epoch is checkpointed, temp files are removed, an existing
# output is left as it was), and the exit code is 128 + the signal (143, 129). A second
# signal (Ctrl-C included) while the first is handled is ignored, so the cleanup runs to its
# end, and so is any that comes while the process exits after one (a launcher forwards the
# Ctrl-C it got to workers that are already stopping). SIGKILL
# cannot be handled: the temp file it leaves is removed by the next write to the same path
# (NOTE [atomic writes]). Under a launcher (torchrun, ``train --nproc``) rank 0 alone
# prints, and a signal the launcher sends to stop the workers prints nothing: the launcher
# reports what happened.

Nothing heavy is imported here: the group in ``app.py`` uses it before any command runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

_HANDLED = ("SIGTERM", "SIGHUP")
LAUNCHED_BY_US = "TORCHLINREG_LAUNCHED"  # set for the workers `train --nproc` starts
# A worker of `train --nproc` that failed only because another one was gone exits with this
# (EX_TEMPFAIL): the launcher then names the worker that stopped first (cli/launch.py).
PEER_LOST = 75


class Terminated(KeyboardInterrupt):
    """A SIGTERM or SIGHUP, raised where the program was, like Ctrl-C's KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C, 128 + N for signal N."""
    return 128 + exc.signum if isinstance(exc, Terminated) else 130


def what_happened(exc: BaseException) -> str:
    """``interrupted`` for Ctrl-C, ``terminated (SIGTERM)`` for a signal."""
    return f"terminated ({exc.name})" if isinstance(exc, Terminated) else "interrupted"


_RECEIVED: list[int] = []  # the signal signals_as_interrupts got, if any


def received() -> KeyboardInterrupt | None:
    """The interruption this run got (signals_as_interrupts), even if the exception it
    raised was lost on the way (raised inside a library that swallowed it): an error that
    follows it is its consequence, not a failure of its own."""
    if not _RECEIVED:
        return None
    signum = _RECEIVED[0]
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def ignore_signals() -> None:
    """Ignore Ctrl-C, SIGTERM and SIGHUP from now on: the process is exiting after one."""
    for name in ("SIGINT", *_HANDLED):
        sig = getattr(signal, name, None)
        if sig is not None:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_IGN)


def launched_world() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` a launcher set for this process; ``(0, 1)`` when run plainly."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0")) if size > 1 else 0
    except ValueError:
        return 0, 1
    return rank, size


def speaks(exc: BaseException | None = None) -> bool:
    """Whether this process reports ``exc`` (an interruption, when given) on stderr.

    Rank 0 of a launched job speaks for all; a signal a launcher sent to stop the workers
    is reported by the launcher, not by them (NOTE [signals]).
    """
    rank, size = launched_world()
    if size > 1 and isinstance(exc, Terminated):
        return False
    if os.environ.get(LAUNCHED_BY_US) and isinstance(exc, KeyboardInterrupt):
        return False  # `train --nproc`: the launcher says it was interrupted
    return rank == 0


@contextlib.contextmanager
def signals_as_interrupts(exiting: bool = False) -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` and Ctrl-C a
    KeyboardInterrupt, once (NOTE [signals]).

    Only the main thread can set handlers; elsewhere (a command run from a worker thread)
    the block changes nothing. The previous handlers are restored at its end, unless the
    process is ``exiting`` after a signal it handled: then signals stay ignored, so one a
    launcher forwards late cannot raise past the handling (a torchrun worker printed a
    traceback from ``main`` when the forwarded Ctrl-C came after the first one's).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = _RECEIVED
    fired.clear()

    def handler(signum, frame):
        if fired:
            return  # already stopping: let the cleanup finish
        fired.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    previous = {}
    for name in ("SIGINT", *_HANDLED):
        sig = getattr(signal, name, None)
        if sig is not None:
            with contextlib.suppress(OSError, ValueError):
                previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        if exiting and fired:
            ignore_signals()
        else:
            for sig, old in previous.items():
                with contextlib.suppress(OSError, ValueError, TypeError):
                    signal.signal(sig, old)
