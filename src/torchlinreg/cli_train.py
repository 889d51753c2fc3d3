"""`torchlinreg train`: fit a model on a CSV or Parquet file and save it."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import torch

from .callbacks import Callback, TrainState
from .checkpoint import load_checkpoint, save_checkpoint
from .cli_output import ProgressBar, console, metrics_table, print_json
from .csvfile import value_hint
from .errors import DataError
from .estimator import EXACT_SOLVERS, ITERATIVE_SOLVERS, LinearRegression
from .metrics import regression_metrics
from .modelfile import save
from .tables import TableSource, open_table

# Rows drawn for the predicted-vs-actual and residual plots: enough to see the shape.
PLOT_ROWS = 20_000


def check_writable(path: str, what: str) -> None:
    """Fail before any work when ``path`` cannot be written (a long run would be wasted).

    Creating (and removing) a file in the folder is the only test that also holds for root,
    for whom permission bits say nothing, and for read-only or virtual file systems.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise DataError(f"{what} path {path!r} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise DataError(f"cannot write {what} {path!r}: folder {folder!r} does not exist")
    if os.path.exists(path) and not os.path.isfile(path):
        return  # /dev/stdout, a named pipe: written directly, see io.atomic_write
    try:
        fd, probe = tempfile.mkstemp(prefix=".torchlinreg-probe.", dir=folder)
    except OSError as exc:
        raise DataError(
            f"cannot write {what} {path!r}: {exc.strerror or exc} in folder {folder!r}; "
            "choose a folder you can write to"
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_not_input(path: str | None, what: str, inputs: dict[str, list[str]]) -> None:
    """Refuse to write ``path`` over a file this run reads: its data, model or checkpoint."""
    if not path or not os.path.exists(path):
        return
    for role, paths in inputs.items():
        for p in paths:
            if p and os.path.exists(p) and os.path.samefile(path, p):
                raise DataError(
                    f"the {what} path {path!r} is the {role} this run reads; writing it would "
                    f"destroy the {role}: choose another name"
                )


def choose_columns(
    source: TableSource, targets: tuple[str, ...], features: str | None, weight_col: str | None
) -> tuple[list[str], list[str]]:
    """Targets as given; features as given or every other numeric column."""
    targets_l = list(dict.fromkeys(targets))
    if len(targets_l) != len(targets):
        raise DataError(f"a target is listed twice in --target {list(targets)}; list it once")
    reserved = set(targets_l) | ({weight_col} if weight_col else set())
    if features is None:
        for name, (row, text) in source.mixed_columns().items():
            if name not in reserved:
                raise DataError(
                    f"the column holds numbers but also {text!r}{value_hint(text)}, so it is not "
                    "numeric; fix the value, or choose the features with --features",
                    path=source.paths[0],
                    row=row,
                    column=name,
                )
        chosen = [c for c in source.numeric_columns() if c not in reserved]
        if not chosen:
            raise DataError(
                "no numeric feature columns besides the targets; name them with --features",
                path=source.path,
            )
    else:
        chosen = [c.strip() for c in features.split(",") if c.strip()]
        if not chosen:
            raise DataError("--features is empty; give comma-separated column names")
        dup = sorted({c for c in chosen if chosen.count(c) > 1})
        if dup:
            raise DataError(f"feature column(s) {dup} listed twice in --features; list once")
        clash = [c for c in chosen if c in reserved]
        if clash:
            raise DataError(
                f"column(s) {clash} are both features and targets/weights; a column can be only "
                "one of them: remove it from --features"
            )
    # Unknown names raise here, with close matches, before any row is read.
    source._resolve([*chosen, *targets_l, *([weight_col] if weight_col else [])])
    return chosen, targets_l


def check_enough_rows(n_rows: int, n_features: int, opts: dict[str, Any], path: str) -> None:
    """Refuse a fit with fewer rows than coefficients: its answer would be arbitrary.

    With a ridge penalty (``--alpha``) the fit is determined whatever the number of rows.
    """
    n_params = n_features + (0 if opts["no_intercept"] else 1)
    if n_rows < n_params and opts["alpha"] == 0:
        what = f"{n_features} feature(s)" + ("" if opts["no_intercept"] else " + intercept")
        rows = "row(s) with a positive weight" if opts["weight_col"] else "data row(s)"
        raise DataError(
            f"{n_rows} {rows} for {n_params} coefficients ({what}); a least-squares fit "
            "needs at least one row per coefficient: add rows, use fewer --features, or give "
            "--alpha for a ridge fit",
            path=path,
        )


class _RowCount:
    """Counts the rows streamed to an exact solver, and checks them before it solves."""

    def __init__(self, n_features: int, opts: dict[str, Any], path: str) -> None:
        self.n_features, self.opts, self.path = n_features, opts, path
        self.rows = 0
        self.used = 0

    def through(self, blocks):
        for block in blocks:
            used = block.n_rows if block.w is None else int((block.w > 0).sum())
            self.rows += block.n_rows
            self.used += used
            # A block whose weights are all zero adds nothing to the state, and the
            # estimator refuses one (it checks each block alone), so it is not passed on.
            if used:
                yield block
        check_enough_rows(self.used, self.n_features, self.opts, self.path)


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
    metrics = regression_metrics(block.Y, pred, block.w)
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
    "--alpha", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Ridge penalty."
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
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Iterative solvers: learning rate [default: per solver].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Iterative solvers: rows per mini-batch.",
)
@click.option("--seed", type=int, default=None, help="Seed for shuffling and initialisation.")
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    callback=lambda c, p, v: _device(v),
    help="cpu or cuda.",
)
@click.option("--delimiter", default=None, help="CSV delimiter [default: detected].")
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
    check_writable(opts["output"], "model")
    if opts["checkpoint"]:
        check_writable(opts["checkpoint"], "checkpoint")
    if opts["plot_dir"]:
        try:
            os.makedirs(opts["plot_dir"], exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"cannot make the plot folder {opts['plot_dir']!r}: {exc.strerror or exc}; "
                "choose a folder you can write to"
            ) from None
        check_writable(os.path.join(opts["plot_dir"], "fit.png"), "plots")
    source = open_table(data, delimiter=opts["delimiter"], block_rows=opts["block_rows"])
    # A checkpoint may be resumed from and written to the same path; nothing else overlaps.
    check_not_input(
        opts["output"],
        "model",
        {"data file": source.paths, "checkpoint": [opts["checkpoint"], opts["resume"]]},
    )
    check_not_input(opts["checkpoint"], "checkpoint", {"data file": source.paths})
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
        count = _RowCount(len(features), opts, data)
        blocks = count.through(source.read_columns(features, targets_l, weight_col))
        est.fit_blocks(blocks, feature_names=features, target_names=targets_l)
        rows = count.rows
        metrics = _metric_dict(targets_l, est.state_metrics())
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
    if opts["quiet"]:
        return
    if opts["as_json"]:
        print_json(summary)
        return
    out = console()
    out.print(
        f"trained [bold]{opts['solver']}[/bold] on {rows:,} rows of {data} "
        f"({len(features)} features -> {', '.join(targets_l)}) in {summary['seconds']:.3f} s"
        + (f", {est.n_iter_} epochs, final loss {summary['final_loss']:.6g}" if not exact else "")
    )
    out.print(metrics_table("Training fit", metrics))
    out.print(f"model saved to {opts['output']}")
    for p in summary.get("plots", []):
        out.print(f"plot saved to {p}")
