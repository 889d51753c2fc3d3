"""`torchlinreg demo`: the crop-yield walk-through, told step by step."""

from __future__ import annotations

import json
from pathlib import Path

import click
import torch
from rich.console import Console
from rich.table import Table

from .. import tutorial
from ..datasets import CROP_FEATURES, CROP_TARGETS


def _round(values) -> list:
    return torch.as_tensor(values).tolist()


def _single_step_loss() -> float:
    """What the article's first update gives when done correctly, with one gradient."""
    x, y = tutorial.crop_tensors()
    w = torch.tensor(tutorial.ARTICLE_W, requires_grad=True)
    b = torch.tensor(tutorial.ARTICLE_B, requires_grad=True)
    return tutorial.train(x, y, w, b, epochs=1)[-1]


def _article_steps(run: tutorial.TutorialRun) -> list[dict]:
    return [
        {
            "label": f.label,
            "epochs": f.epochs,
            "article_loss": f.article_loss,
            "loss": run.loss_history[f.epochs],
        }
        for f in tutorial.ARTICLE_FIGURES
    ]


def _checkpoints(epochs: int) -> list[int]:
    marks = {0, 1, epochs}
    step = 1
    while step < epochs:
        marks.add(step)
        step *= 10
    return sorted(m for m in marks if m <= epochs)


def _print_predictions(console: Console, run: tutorial.TutorialRun) -> None:
    table = Table(title="Predictions after training (targets in brackets)")
    table.add_column("region", justify="right")
    for name in CROP_FEATURES:
        table.add_column(name, justify="right")
    for name in CROP_TARGETS:
        table.add_column(name, justify="right")
    preds = run.predictions
    for i in range(run.inputs.shape[0]):
        cells = [str(i + 1)] + [f"{v:g}" for v in run.inputs[i].tolist()]
        cells += [
            f"{p:8.2f} [{t:g}]"
            for p, t in zip(preds[i].tolist(), run.targets[i].tolist(), strict=True)
        ]
        table.add_row(*cells)
    console.print(table)


def _print_article(console: Console, run: tutorial.TutorialRun, steps: list[dict]) -> None:
    console.print("[bold]The crop-yield walk-through[/bold], as the article ran it")
    console.print(
        f"inputs {', '.join(CROP_FEATURES)} -> targets {', '.join(CROP_TARGETS)}; "
        "model x @ w.t() + b, loss = mean squared error, step w -= w.grad * 1e-5"
    )
    console.print(
        "Starting from the article's printed weights. They are rounded to 4 decimals, so our "
        "losses agree with the article's to about 5 significant digits, not exactly."
    )
    table = Table()
    for name in ("step", "updates", "article", "ours", "difference"):
        table.add_column(name, justify="left" if name == "step" else "right")
    for s in steps:
        rel = (s["loss"] - s["article_loss"]) / s["article_loss"]
        table.add_row(
            s["label"],
            str(s["epochs"]),
            f"{s['article_loss']:.4f}",
            f"{s['loss']:.4f}",
            f"{rel:+.4%}",
        )
    console.print(table)
    console.print(
        "Why the first update is special: the article called loss.backward() twice before "
        "its first step, and PyTorch adds gradients up until they are zeroed, so that step "
        f"used twice the gradient. With one gradient the loss would be {_single_step_loss():.4f},"
        f" not {steps[1]['article_loss']}. Every later figure is plain training: the article's "
        "'20/200/500 epochs' rows are 30, 400 and 900 epochs after that first update."
    )
    _print_predictions(console, run)


def _print_seeded(console: Console, run: tutorial.TutorialRun, seed: int, epochs: int) -> None:
    console.print(
        f"[bold]The crop-yield walk-through[/bold] from torch.manual_seed({seed}): "
        f"w = torch.randn(2, 3), b = torch.randn(2), {epochs} epochs at lr 1e-5"
    )
    table = Table()
    table.add_column("epoch", justify="right")
    table.add_column("loss", justify="right")
    for e in _checkpoints(epochs):
        table.add_row(str(e), f"{run.loss_history[e]:.4f}")
    console.print(table)
    _print_predictions(console, run)


def demo(seed: int | None, epochs: int, plot_path: str, no_plot: bool, as_json: bool) -> None:
    """`torchlinreg demo` (options in commands.py): the article's run, or a seeded one."""
    if seed is None:
        run = tutorial.run_article()
        steps = _article_steps(run)
        marks = [(s["epochs"], s["loss"], s["label"]) for s in steps]
    else:
        run = tutorial.run_seeded(seed, epochs)
        steps, marks = None, []

    saved = None
    if not no_plot:
        from ..plots import loss_curve

        title = (
            "Walk-through loss (article run)"
            if seed is None
            else f"Walk-through loss (seed {seed})"
        )
        saved = str(loss_curve(run.loss_history, plot_path, title=title, marks=marks))

    if as_json:
        out = {
            "mode": "article" if seed is None else "seed",
            "seed": seed,
            "loss_history": run.loss_history,
            "weight": _round(run.w),
            "bias": _round(run.b),
            "predictions": _round(run.predictions),
            "targets": _round(run.targets),
            "plot": saved,
        }
        if steps is not None:
            out["steps"] = steps
        click.echo(json.dumps(out))
        return

    console = Console()
    if seed is None:
        _print_article(console, run, steps)
    else:
        _print_seeded(console, run, seed, epochs)
    if saved:
        console.print(f"Loss curve saved to {Path(saved)}")
