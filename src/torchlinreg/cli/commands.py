"""What the user types: every command with its arguments, options and help.

Nothing heavy is imported here: ``torchlinreg --help``, ``--version`` and
``torchlinreg COMMAND --help`` need only click, so they answer at once. Each command's body
imports the module that does the work (torch, pyarrow and the engines come with it) only when
the command runs. The solver names are spelled out here for the same reason; a test keeps
them equal to the estimator's.
"""

from __future__ import annotations

import math
import sys
from typing import Any, ClassVar

import click

SOLVERS = ("qr", "gram", "gd", "sgd", "adam", "lbfgs")
PENALIZED_SOLVERS = ("lasso", "elasticnet")  # cli/penalized.py


class FiniteFloat(click.FloatRange):
    """A :class:`click.FloatRange` that also refuses nan and inf (click lets both through)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


class Delimiter(click.ParamType):
    """One character, or a name for one: tab, comma, semicolon, pipe, space."""

    name = "delimiter"
    _NAMES: ClassVar[dict[str, str]] = {
        "tab": "\t",
        "\\t": "\t",
        "comma": ",",
        "semicolon": ";",
        "pipe": "|",
        "space": " ",
    }

    def convert(self, value, param, ctx):
        char = self._NAMES.get(value.lower(), value)
        if len(char) != 1 or char in '\r\n"':
            self.fail(
                f"{value!r} is not one character; give one, e.g. ',' ';' '|' or tab", param, ctx
            )
        return char


def _device(value: str) -> str:
    import torch

    try:
        dev = torch.device(value)
    except RuntimeError:
        raise click.BadParameter(f"{value!r} is not a device; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise click.BadParameter(f"{value!r}: use cpu or cuda")
    return value


BLOCK_ROWS = click.option(
    "--block-rows",
    type=click.IntRange(min=1),
    default=65536,
    show_default=True,
    help="Rows read at a time.",
)


@click.command("demo")
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Start from torch.manual_seed(SEED) instead of the article's weights.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=0),
    default=500,
    show_default=True,
    help="Epochs with --seed.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default="demo-loss.png",
    show_default=True,
    help="Where to save the loss curve.",
)
@click.option("--no-plot", is_flag=True, help="Do not save a loss-curve PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def demo(seed: int | None, epochs: int, plot_path: str, no_plot: bool, as_json: bool) -> None:
    """Run the crop-yield walk-through: linear regression from scratch in PyTorch.

    Without --seed it reproduces the article's run and its six printed losses; with --seed it
    runs the plain loop from random weights for --epochs epochs.
    """
    from .demo import demo as run

    return run(seed=seed, epochs=epochs, plot_path=plot_path, no_plot=no_plot, as_json=as_json)


@click.command("train")
@click.argument("data")
@click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    help="Target column (repeat for several targets); required unless --update.",
)
@click.option(
    "--features",
    default=None,
    help="Comma-separated feature columns [default: every other numeric column].",
)
@click.option(
    "--solver",
    type=click.Choice(SOLVERS + PENALIZED_SOLVERS),
    default="qr",
    show_default=True,
)
@click.option(
    "--alpha",
    type=FiniteFloat(min=0),
    default=0.0,
    show_default=True,
    help="Ridge penalty; for lasso and elasticnet, scikit-learn's alpha.",
)
@click.option(
    "--l1-ratio",
    type=FiniteFloat(min=0, max=1),
    default=0.5,
    show_default=True,
    help="elasticnet: the L1 share of the penalty.",
)
@click.option(
    "--cv",
    type=click.IntRange(min=2),
    default=None,
    help="lasso and elasticnet: choose alpha by K-fold cross-validation (same single pass).",
)
@click.option(
    "--alphas",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="With --cv: alphas on the grid.",
)
@click.option("--no-intercept", is_flag=True, help="Fit without an intercept.")
@click.option("--weights", "weight_col", default=None, help="Column of sample weights.")
@click.option(
    "--by",
    default=None,
    help="Fit one OLS model per value of this column (numbers or text), saved in one file; "
    "rows of a group may be anywhere.",
)
@click.option(
    "--window",
    type=click.IntRange(min=2),
    default=None,
    help="Rolling OLS over windows of W rows (ordered by --order-by, per --by group): writes "
    "the coefficient paths to -o as CSV or Parquet.",
)
@click.option(
    "--order-by",
    default=None,
    help="With --window: the column ordering rows (numbers or ISO 8601 times); tied rows keep "
    "their file order, with a warning.",
)
@click.option("--expanding", is_flag=True, help="With --window: windows grow from the first row.")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Iterative solvers: epochs at most; training stops earlier once the fit is within "
    "its target of the exact one [default: gd 1000, sgd, adam and lbfgs 200].",
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
    type=click.Path(dir_okay=False),
    default=None,
    help="Model file to write (.safetensors); required unless --update.",
)
@click.option(
    "--update",
    type=click.Path(dir_okay=False),
    default=None,
    help="Exact models: add DATA's rows to this saved model and re-solve (written to -o, "
    "else over it).",
)
@click.option(
    "--stream/--no-stream",
    default=None,
    help="Iterative solvers sgd and adam: read DATA in blocks each epoch through a shuffle "
    "buffer instead of loading it [default: when the files total more than 1 GiB].",
)
@click.option(
    "--buffer-rows",
    type=click.IntRange(min=1),
    default=262_144,
    show_default=True,
    help="Streamed iterative fits: rows in the shuffle buffer.",
)
@click.option(
    "--cov-type",
    type=click.Choice(["nonrobust", "HC0", "HC1", "HC2", "HC3", "HAC"]),
    default=None,
    help="Exact solvers: print the coefficient tests with this covariance; robust ones read "
    "DATA a second time, and HC0-HC3 are also stored in the model for `summary` (HAC takes "
    "the rows in file order).",
)
@click.option(
    "--maxlags",
    type=click.IntRange(min=0),
    default=None,
    help="--cov-type HAC: lags of the Newey-West window [default: floor(4 (n/100)^(2/9))].",
)
@click.option(
    "--cluster",
    "cluster_cols",
    multiple=True,
    help="Exact solvers: cluster-robust tests clustered on this column (repeat once for "
    "two-way clustering); reads DATA a second time.",
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
    help="Folder for loss, fit and residual plots (PNG); exact fits add R's four "
    "diagnostic panels (diagnostics.png).",
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
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=None,
    help="Train with N processes on this machine, each on its share of DATA (as torchrun "
    "--nproc_per_node=N does, without its launcher's messages).",
)
@click.option(
    "--formula",
    default=None,
    help='Exact solvers: the model as a formula, e.g. "y ~ x1 + C(region) + np.log(x2)" '
    "(text columns become treatment-coded categories; the encoding is saved with the model).",
)
@click.option(
    "--missing",
    type=click.Choice(["raise", "drop"]),
    default="raise",
    show_default=True,
    help="Exact solvers: refuse rows with missing values, or leave them out (counted).",
)
def train(data: str, targets: tuple[str, ...], nproc: int | None, **opts: Any) -> int | None:
    """Fit a linear model to DATA (CSV, CSV.gz, Parquet, a folder or a glob) and save it."""
    if opts.get("update") and (opts.get("formula") is not None or opts["missing"] != "raise"):
        raise click.UsageError(
            "--update takes no --formula or --missing drop (it adds plain columns' rows to an "
            "exact model); retrain on all rows instead"
        )
    if opts.get("formula") is not None:
        from .formulatrain import train_formula

        return train_formula(data, targets, {**opts, "nproc": nproc})
    if opts["missing"] != "raise":  # exact fits of the chosen columns as a formula
        from .formulatrain import train_columns

        return train_columns(data, targets, {**opts, "nproc": nproc})
    if nproc is not None and nproc > 1:
        from .interrupts import launched_world

        if launched_world()[1] > 1:
            raise click.UsageError("--nproc starts its own processes; under torchrun leave it out")
        from .launch import launch

        ctx = click.get_current_context()
        argv = ctx.meta.get("torchlinreg.argv")
        return launch(nproc, list(argv) if argv is not None else sys.argv[1:])
    from .train import train as run

    return run(data=data, targets=targets, **opts)


@click.command("predict")
@click.argument("model_path", metavar="MODEL")
@click.argument("data")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write predictions to OUT.csv or OUT.parquet [default: CSV to stdout].",
)
@click.option(
    "--delimiter", type=Delimiter(), default=None, help="CSV delimiter [default: detected]."
)
@BLOCK_ROWS
@click.option(
    "--missing",
    type=click.Choice(["raise", "keep"]),
    default="raise",
    show_default=True,
    help="Refuse rows with missing values (or unseen levels; with a grouped model, groups not "
    "in it), or keep them with no prediction: NaN ('nan' in CSV; a grouped model writes an "
    "empty cell, and one warning counts them).",
)
@click.option(
    "--interval",
    type=FiniteFloat(min=0, max=1, min_open=True, max_open=True),
    default=None,
    help="Exact models: add mean and observation intervals at this level, e.g. 0.95.",
)
@click.option("--keep", default=None, help="Comma-separated columns to copy to the output.")
def predict(
    model_path: str,
    data: str,
    output: str | None,
    delimiter: str | None,
    block_rows: int,
    missing: str = "raise",
    interval: float | None = None,
    keep: str | None = None,
) -> None:
    """Predict every row of DATA with MODEL: one column per target, rows in order."""
    if missing != "raise" or interval is not None or keep:
        from .predicting import predict_more

        return predict_more(
            model_path, data, output, delimiter, block_rows, missing, interval, keep
        )
    from .use import predict as run

    return run(model_path, data, output, delimiter, block_rows)


@click.command("evaluate")
@click.argument("model_path", metavar="MODEL")
@click.argument("data")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option(
    "--weights",
    "weight_col",
    default=None,
    help="Column of sample weights: weighted metrics, as train reports them.",
)
@click.option(
    "--delimiter", type=Delimiter(), default=None, help="CSV delimiter [default: detected]."
)
@BLOCK_ROWS
@click.option(
    "--missing",
    type=click.Choice(["raise", "drop"]),
    default="raise",
    show_default=True,
    help="Refuse rows with missing values, or leave them out (counted); with a grouped model "
    "also rows of groups not in it or without a fit (counted by why).",
)
def evaluate(
    model_path: str,
    data: str,
    as_json: bool,
    weight_col: str | None,
    delimiter: str | None,
    block_rows: int,
    missing: str = "raise",
) -> None:
    """Score MODEL on DATA, which must hold the target columns: MSE, RMSE, MAE, R2.

    Without an intercept the uncentred R2 too (r2_uncentered); with --weights every
    metric is weighted. The same definitions as train's report.
    """
    from .use import evaluate as run

    return run(model_path, data, as_json, delimiter, block_rows, weight_col, missing)


@click.command("summary")
@click.argument("model_path", metavar="MODEL")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def summary(model_path: str, as_json: bool) -> None:
    """Show what MODEL is: features, targets, coefficients, solver, training data and fit."""
    from .use import summary as run

    return run(model_path, as_json)


COMMANDS = (demo, train, predict, evaluate, summary)
