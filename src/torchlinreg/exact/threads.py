"""How many intra-op threads a fit uses: as many as there are idle cores, at least one.

NOTE [threads on shared cores]
torch runs each kernel over its intra-op threads and waits for all of them at the end. When
another process keeps a core busy, one of those threads waits for the scheduler at every
kernel (a time slice, milliseconds), and the engines issue thousands of small kernels: a
fit of 200,000 x 100 x 3 took 9.9 s with two threads beside a busy process and 0.18 s with
one. So a fit counts the cores that are busy right now (the kernel's count of runnable
tasks, minus this process's own), and runs with at most the idle ones; on an idle machine
that is every core torch would use anyway. ``TORCHLINREG_THREADS=N`` fixes the count
instead (``auto``, the default, decides per fit). The count is set for the duration of the
fit and restored after it.

The exact engine is the lowest wing that every fit passes through, so this lives here; the
estimators, ``ols`` and the iterative engine use it too.

Example:
    >>> with fit_threads():
    ...     torch.get_num_threads() >= 1
    True
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _own_running() -> int:
    """Threads of this process that are running or runnable now."""
    count = 0
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                # the state follows the command name, which is in parentheses
                state = f.read().rpartition(b")")[2].split()[0]
            count += state == b"R"
    except OSError:
        return 1
    return max(count, 1)


def busy_cores() -> int:
    """Cores other processes keep busy right now (0 where the system cannot tell)."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(running - _own_running(), 0)


def threads_for_a_fit() -> int:
    """The intra-op thread count for a fit starting now (NOTE [threads on shared cores])."""
    setting = os.environ.get("TORCHLINREG_THREADS", "auto").strip().lower()
    if setting not in ("", "auto"):
        try:
            return max(1, int(setting))
        except ValueError:
            pass
    idle = _cores() - busy_cores()
    return max(1, min(torch.get_num_threads(), idle))


@contextmanager
def fit_threads() -> Iterator[int]:
    """Run the body with :func:`threads_for_a_fit` intra-op threads, then restore."""
    before = torch.get_num_threads()
    wanted = threads_for_a_fit()
    if wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def with_fit_threads(fn: F) -> F:
    """Decorate a fitting function or method with :func:`fit_threads`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with fit_threads():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
