"""`torchlinreg train`: fit a model on a CSV or Parquet file and save it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click
import torch

from .callbacks import Callback, TrainState
from .checkpoint import load_checkpoint, save_checkpoint
from .cli_checks import (
    Delimiter,
    FiniteFloat,
    RowCount,
    check_enough_rows,
    check_outputs,
    check_train_paths,
    choose_columns,
)
from .cli_output import ProgressBar, console, metrics_table, print_json
from .errors import DataError
from .estimator import EXACT_SOLVERS, ITERATIVE_SOLVERS, LinearRegression
from .metrics import regression_metrics
from .modelfile import save
from .tables import open_table

# Rows drawn for the predicted-vs-actual and residual plots: enough to see the shape.
PLOT_ROWS = 20_000


class _Snapshots(Callback):
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


def _resume_state(path: str, config: dict[str, Any]) -> dict[str, Any]:
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


def _metric_dict(names: list[str], metrics: dict[str, torch.Tensor]) -> dict[str, dict]:
    return {
        name: {key: float(values[j]) for key, values in metrics.items()}
        for j, name in enumerate(names)
    }


def _fit_exact(est, source, features, targets, weight_col, opts) -> tuple[int, dict]:
    count = RowCount(len(features), opts, source.path)
    blocks = count.through(source.read_columns(features, targets, weight_col))
    est.fit_blocks(blocks, feature_names=features, target_names=targets)
    return count.rows, _metric_dict(targets, est.state_metrics())


def _fit_iterative(est, source, features, targets, weight_col, opts) -> tuple[int, dict]:
    block = source.read_all(features, targets, weight_col)
    n_used = block.n_rows if block.w is None else int((block.w > 0).sum())
    check_enough_rows(n_used, len(features), opts, source.path)
    config = {
        "solver": est.solver,
        "features": features,
        "targets": targets,
        "weights": weight_col,
        "fit_intercept": est.fit_intercept,
        "alpha": est.alpha,
        "seed": est.random_state,
        "rows": block.n_rows,
    }
    resume = _resume_state(opts["resume"], config) if opts["resume"] else None
    snapshots = _Snapshots(opts["checkpoint"], opts["checkpoint_every"], config)
    bar = ProgressBar(enabled=None if not opts["quiet"] else False)
    try:
        est.fit(block.X, block.Y, block.w, callbacks=[snapshots, bar], resume_from=resume)
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
    est._name_columns(features, targets)
    pred = est.model_.predict(block.X.to(est.model_.weight.device))
    metrics = regression_metrics(block.Y, pred.cpu(), block.w)  # block.Y is on the CPU
    return block.n_rows, _metric_dict(targets, metrics)


def _plots(est, source, features, targets, plot_dir: str, weight_col) -> list[str]:
    from . import plots

    os.makedirs(plot_dir, exist_ok=True)
    saved = []
    if est.loss_history_:
        saved.append(plots.loss_curve(est.loss_history_, Path(plot_dir, "loss.png")))
    Xs, Ys, n = [], [], 0
    for block in source.read_columns(features, targets, weight_col):
        Xs.append(block.X)
        Ys.append(block.Y)
        n += block.n_rows
        if n >= PLOT_ROWS:
            break
    X, Y = torch.cat(Xs)[:PLOT_ROWS], torch.cat(Ys)[:PLOT_ROWS]
    pred = est.model_.predict(X.to(est.model_.weight.device)).cpu().numpy()
    saved.append(plots.predicted_vs_actual(Y.numpy(), pred, targets, Path(plot_dir, "fit.png")))
    saved.append(plots.residuals(Y.numpy(), pred, targets, Path(plot_dir, "residuals.png")))
    return [str(p) for p in saved]


def _device(value: str) -> str:
    try:
        dev = torch.device(value)
    except RuntimeError:
        raise click.BadParameter(f"{value!r} is not a device; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise click.BadParameter(f"{value!r}: use cpu or cuda")
    return value


@click.command("train")
@click.argument("data")
@click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    required=True,
    help="Target column (repeat for several targets).",
)
@click.option(
    "--features",
    default=None,
    help="Comma-separated feature columns [default: every other numeric column].",
)
@click.option(
    "--solver",
    type=click.Choice(EXACT_SOLVERS + ITERATIVE_SOLVERS),
    default="qr",
    show_default=True,
)
@click.option(
    "--alpha", type=FiniteFloat(min=0), default=0.0, show_default=True, help="Ridge penalty."
)
@click.option("--no-intercept", is_flag=True, help="Fit without an intercept.")
@click.option("--weights", "weight_col", default=None, help="Column of sample weights.")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Iterative solvers: epochs at most [default: 200].",
)
@click.option(
    "--lr",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Iterative solvers: learning rate [default: per solver].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Iterative solvers: rows per mini-batch.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**63 - 1),
    default=None,
    help="Seed for shuffling and initialisation.",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    callback=lambda c, p, v: _device(v),
    help="cpu or cuda.",
)
@click.option(
    "--delimiter", type=Delimiter(), default=None, help="CSV delimiter [default: detected]."
)
@click.option(
    "--block-rows",
    type=click.IntRange(min=1),
    default=65536,
    show_default=True,
    help="Rows read at a time; exact solvers hold one block in memory.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Model file to write (.safetensors).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "-q", "--quiet", is_flag=True, help="Print no report (warnings and errors still go to stderr)."
)
@click.option(
    "--plot",
    "plot_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for loss, fit and residual plots (PNG).",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    default=None,
    help="Iterative solvers: save training state here.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Epochs between checkpoints.",
)
@click.option(
    "--resume",
    type=click.Path(dir_okay=False),
    default=None,
    help="Iterative solvers: continue from this checkpoint.",
)
def train(data: str, targets: tuple[str, ...], **opts: Any) -> None:
    """Fit a linear model to DATA (CSV, CSV.gz, Parquet, a folder or a glob) and save it."""
    started = time.perf_counter()
    exact = opts["solver"] in EXACT_SOLVERS
    if exact and (opts["checkpoint"] or opts["resume"]):
        raise click.UsageError("--checkpoint and --resume are for iterative solvers")
    check_outputs(opts)
    source = open_table(data, delimiter=opts["delimiter"], block_rows=opts["block_rows"])
    check_train_paths(opts, source.paths)
    weight_col = opts["weight_col"]
    features, targets_l = choose_columns(source, targets, opts["features"], weight_col)
    est = LinearRegression(
        solver=opts["solver"],
        fit_intercept=not opts["no_intercept"],
        alpha=opts["alpha"],
        lr=opts["lr"],
        max_iter=opts["epochs"] or 200,
        batch_size=opts["batch_size"],
        random_state=opts["seed"],
        device=opts["device"],
    )
    if exact:
        rows, metrics = _fit_exact(est, source, features, targets_l, weight_col, opts)
    else:
        rows, metrics = _fit_iterative(est, source, features, targets_l, weight_col, opts)
    summary = {
        "data": data,
        "rows": rows,
        "features": features,
        "targets": targets_l,
        "weights": weight_col,
        "solver": opts["solver"],
        "seconds": round(time.perf_counter() - started, 4),
        "epochs": est.n_iter_ if not exact else None,
        "final_loss": est.loss_history_[-1] if est.loss_history_ else None,
        "metrics": metrics,
    }
    save(est, opts["output"], training=summary)
    if opts["plot_dir"]:
        summary["plots"] = _plots(est, source, features, targets_l, opts["plot_dir"], weight_col)
    summary["model"] = opts["output"]
    if opts["as_json"] and not opts["quiet"]:
        print_json(summary)
    elif not opts["quiet"]:
        _print_report(summary)


def _print_report(summary: dict[str, Any]) -> None:
    out = console()
    iterative = summary["epochs"] is not None
    out.print(
        f"trained [bold]{summary['solver']}[/bold] on {summary['rows']:,} rows of "
        f"{summary['data']} ({len(summary['features'])} features -> "
        f"{', '.join(summary['targets'])}) in {summary['seconds']:.3f} s"
        + (
            f", {summary['epochs']} epochs, final loss {summary['final_loss']:.6g}"
            if iterative
            else ""
        )
    )
    out.print(metrics_table("Training fit", summary["metrics"]))
    out.print(f"model saved to {summary['model']}")
    for p in summary.get("plots", []):
        out.print(f"plot saved to {p}")
