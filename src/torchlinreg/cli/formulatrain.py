"""`torchlinreg train DATA --formula "y ~ x1 + C(region)"`: an exact fit through a formula.

Passes over the file: the light first pass of :mod:`.tableformula` (the formula's columns
only: kinds and levels), the fit (each block encoded and absorbed into the exact state),
and, with ``--cov-type HC0..HC3``, one more for the robust covariance
(:mod:`torchlinreg.stats.streamhc`), stored in the model file. ``--missing drop`` leaves
incomplete rows out and the report counts them.
"""

from __future__ import annotations

import time
from typing import Any

import click
import torch

from ..errors import DataError
from ..estimator.linear import EXACT_SOLVERS, LinearRegression
from ..estimator.modelfile import save
from ..files.tables import Block, open_table
from .checks import check_outputs, check_train_paths
from .fitwords import convergence_in_cli_words
from .output import console, esc, print_json
from .tableformula import encoded_blocks, learn_encoding
from .train import TargetMoments, _metric_dict, _print_report, _target_arg


def _refuse(targets, opts: dict[str, Any]) -> None:
    # a grouped or rolling fit is another model: taken here it became one pooled OLS, saved
    # as such, and predict applied it to every group, silently (a CLI hunt)
    grouped = [
        flag
        for flag, key in (("--by", "by"), ("--window", "window"), ("--order-by", "order_by"))
        if opts.get(key) is not None
    ] + (["--expanding"] if opts.get("expanding") else [])
    if grouped:
        what = "--missing drop" if opts.get("missing", "raise") != "raise" else "--formula"
        raise click.UsageError(
            f"{grouped[0]} takes no {what} yet (grouped and rolling fits read the columns "
            "themselves, and refuse a missing value naming its row): leave out incomplete "
            "rows first, or give the columns with --features"
        )
    if targets or opts["features"]:
        raise click.UsageError(
            "--formula names the target and the features; leave out -t and --features"
        )
    from .interrupts import launched_world

    if opts["update"] or opts["checkpoint"] or opts["resume"] or opts.get("nproc"):
        raise click.UsageError(
            "--formula and --missing drop take no --update, --checkpoint, --resume or --nproc"
        )
    if launched_world()[1] > 1:
        raise click.UsageError(
            "--formula and --missing drop train in one process; not under torchrun"
        )
    if opts["solver"] not in EXACT_SOLVERS:
        raise click.UsageError("--formula trains exact models: use --solver qr or gram")
    if opts["no_intercept"]:
        raise click.UsageError("with --formula write '- 1' in the formula for no intercept")
    if opts.get("cluster_cols") or opts.get("cov_type") == "HAC":
        raise click.UsageError(
            "--formula and --missing drop take --cov-type HC0..HC3 only (no --cluster or HAC "
            "yet): fit in Python with torchlinreg.ols(formula, data, cov_type=...)"
        )
    if not opts["output"]:
        raise click.UsageError("Missing option '-o' / '--output'.")


def train_formula(data: str, targets: tuple[str, ...], opts: dict[str, Any]) -> None:
    """Fit the formula's model on DATA block by block and save it with its encoding."""
    started = time.perf_counter()
    _refuse(targets, opts)
    check_outputs(opts)
    source = open_table(data, delimiter=opts["delimiter"], block_rows=opts["block_rows"])
    check_train_paths(opts, source.paths)
    weight_col, missing = opts["weight_col"], opts.get("missing") or "raise"
    enc = learn_encoding(
        source, opts["formula"], weight_col, opts["block_rows"], opts.get("numeric_columns", ())
    )
    est = LinearRegression(
        solver=opts["solver"],
        fit_intercept=enc.fit_intercept,
        alpha=opts["alpha"],
        device=opts["device"],
    )
    counts = {"rows": 0, "dropped": 0}

    def blocks():
        for b in encoded_blocks(source, enc, targets=True, weight_col=weight_col, missing=missing):
            counts["dropped"] += b.design.dropped
            counts["rows"] += len(b.design.rows)
            if len(b.design.rows):
                w = None if b.w is None else torch.from_numpy(b.w)
                X, Y = torch.from_numpy(b.design.X), torch.from_numpy(b.design.Y)
                yield Block(X, Y, w, b.first_row, b.path)

    moments = TargetMoments(wanted=not est.fit_intercept)
    with convergence_in_cli_words():  # an accuracy warning in the command's words
        est.fit_blocks(
            moments.tap(blocks()),
            feature_names=enc.features,
            target_names=_target_arg(enc.targets),
        )
    est.formula_encoding_, est.nobs_dropped_ = enc, counts["dropped"]
    metrics = _metric_dict(enc.targets, est.state_metrics(target_moments=moments.merged()))
    cov_type = opts.get("cov_type") or "nonrobust"
    if cov_type != "nonrobust":
        store_robust(est, source, enc, weight_col, missing, cov_type)
    summary = {
        "data": data,
        "rows": counts["rows"],
        "formula": enc.formula,
        "features": enc.features,
        "targets": enc.targets,
        "weights": weight_col,
        "solver": opts["solver"],
        "seconds": round(time.perf_counter() - started, 4),
        "epochs": None,
        "final_loss": None,
        "weighted": weight_col is not None,
        "metrics": metrics,
        "missing": missing,
        "rows_dropped": counts["dropped"],
        "cov_type": cov_type,
    }
    save(est, opts["output"], training=summary)
    summary["model"] = opts["output"]
    if opts["as_json"] and not opts["quiet"]:
        print_json(summary)
    elif not opts["quiet"]:
        console().print(f"formula: {esc(enc.formula)}")
        _print_report(summary)
        if counts["dropped"]:
            console().print(f"{counts['dropped']:,} rows with missing values dropped")


def train_columns(data: str, targets: tuple[str, ...], opts: dict[str, Any]) -> None:
    """``train -t y --missing drop``: the columns chosen as a formula (``y ~ `a` + `b```),
    so incomplete rows are left out block by block as with ``--formula``."""
    from .checks import choose_columns

    if not targets:
        raise click.UsageError("Missing option '-t' / '--target'.")
    source = open_table(data, delimiter=opts["delimiter"], block_rows=opts["block_rows"])
    features, targets_l = choose_columns(source, targets, opts["features"], opts["weight_col"])
    names = [*features, *targets_l]
    if any("`" in n for n in names):
        raise DataError("--missing drop cannot name a column with a backtick (`) in its name")
    quote = lambda names: " + ".join(f"`{n}`" for n in names)  # noqa: E731
    formula = f"{quote(targets_l)} ~ {quote(features) or '1'}"
    formula += " - 1" if opts["no_intercept"] else ""
    opts = {**opts, "formula": formula, "features": None, "no_intercept": False}
    opts["numeric_columns"] = names  # chosen as numbers: text in them is refused
    return train_formula(data, (), opts)


def store_robust(est, source, enc, weight_col, missing: str, cov_type: str) -> None:
    """The second pass: HC covariance of the streamed fit, kept with the estimator."""
    from .robustpass import Reread
    from .robustpass import store_robust as store

    def rows():
        for b in encoded_blocks(source, enc, targets=True, weight_col=weight_col, missing=missing):
            if len(b.design.rows):
                w = None if b.w is None else torch.from_numpy(b.w)
                yield torch.from_numpy(b.design.X), torch.from_numpy(b.design.Y), w

    store(est, Reread(rows), cov_type)
