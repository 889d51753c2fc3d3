"""What the CLI shows: JSON, rich tables, and a progress bar for long training.

# NOTE [text from files]
# Column names, model records and file names come from files anyone may have written. Such
# text is shown with its control characters escaped (:func:`safe`: ESC, BEL, C1 codes,
# bidirectional overrides become ``\x1b``-style escapes, so no window title, hyperlink or
# cursor movement reaches the terminal) and never as rich markup (:func:`esc` for markup
# lines, :class:`rich.text.Text` for table cells), so ``[link=...]`` or ``a[/]`` is text.
# JSON output needs neither: ``json.dumps`` escapes control characters itself.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ..iterative.callbacks import Callback, TrainState
from .text import safe


def _clean(obj: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def esc(text: object) -> str:
    """Text from a file, safe inside a rich markup string: controls escaped, markup quoted.

    Example:
        >>> print(esc("a[/]"))
        a\\[/]
    """
    return escape(safe(text))


def cell(text: object) -> Text:
    """A table cell or header that is shown as it is (never parsed as markup)."""
    return Text(safe(text))


def print_json(obj: Any) -> None:
    click.echo(json.dumps(_clean(obj), indent=2))


def console() -> Console:
    # soft_wrap: a report line is never broken (a path cut in two cannot be copied or
    # grepped); tables still fit the width.
    return Console(highlight=False, soft_wrap=True)


_ORDER = ("mse", "rmse", "mae", "r2", "r2_uncentered")


def metrics_title(what: str, weight_col: str | None) -> str:
    """A metrics table's title says whether the rows were weighted, and by which column."""
    return f"{what} (weighted by {weight_col})" if weight_col else f"{what} (unweighted)"


def metrics_table(title: str, metrics: dict[str, dict[str, float]]) -> Table:
    names = list(next(iter(metrics.values())).keys()) if metrics else []
    names.sort(key=lambda n: _ORDER.index(n) if n in _ORDER else len(_ORDER))
    table = Table(title=esc(title), title_justify="left")
    table.add_column("target")
    for name in names:
        table.add_column(cell(name), justify="right")
    for target, values in metrics.items():
        table.add_row(cell(target), *(_number(values[n]) for n in names))
    return table


def _number(value: Any) -> str:
    # a model file's record may hold anything: show numbers as numbers, anything else as text
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.6g}"
    return "?" if value is None else cell(value)


class _SpeedColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.speed
        return Text("" if speed is None else f"{speed:,.1f} epochs/s")


class ProgressBar(Callback):
    """A rich progress bar over epochs: current loss, speed, time left.

    Shown only on a terminal (by default, when stdout is one); otherwise it does nothing.
    ``console`` is where it draws (default: rich's console on stdout).
    """

    def __init__(self, enabled: bool | None = None, console: Console | None = None) -> None:
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self.console = console
        self._progress: Progress | None = None
        self._task = None

    def on_train_begin(self, state: TrainState) -> None:
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs  loss {task.fields[loss]}"),
            _SpeedColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            transient=True,
            console=self.console,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=state.max_iter, completed=state.epoch, loss=f"{state.loss:.6g}"
        )

    def on_epoch_end(self, state: TrainState) -> bool | None:
        if self._progress is not None:
            self._progress.update(self._task, completed=state.epoch, loss=f"{state.loss:.6g}")
        return None

    def on_train_end(self, state: TrainState) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
