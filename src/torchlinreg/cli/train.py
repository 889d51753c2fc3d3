"""`torchlinreg train`: fit a model on a CSV or Parquet file and save it."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import click
import torch

from ..distributed.collectives import (
    agree_on_errors,
    count_all_ranks,
    is_distributed,
    merge_across_ranks,
    rank_zero_only,
    regression_metrics_all_ranks,
)
from ..distributed.shards import shard_for_rank
from ..estimator.linear import EXACT_SOLVERS, LinearRegression
from ..estimator.modelfile import save
from ..exact.state import LeastSquaresState
from ..files.blocksources import TableBlocks, prefetch
from ..files.tables import TableSource, open_table
from .checks import (
    RowCount,
    check_enough_rows,
    check_outputs,
    check_rows_before_reading,
    check_train_paths,
    choose_columns,
    refuse_reserved_features,
    saved_index,
)
from .fitwords import convergence_in_cli_words
from .output import console, esc, metrics_table, metrics_title, print_json
from .penalized import PENALIZED_SOLVERS, penalty_plots, penalty_summary, to_save
from .penalized import estimator as penalized_estimator
from .snapshots import Fingerprint, RowsInto, fingerprint_of, run_config, run_with_snapshots
from .text import safe
from .torchrun import distributed_command, fit_exact_on_ranks

# Robust covariances a model file keeps (HAC needs the rows in order: printed, not stored).
STORED_COV_TYPES = ("HC0", "HC1", "HC2", "HC3")

# Rows drawn for the predicted-vs-actual and residual plots: enough to see the shape.
PLOT_ROWS = 20_000
# Iterative fits stream from files larger than this (--stream/--no-stream decide otherwise).
STREAM_AUTO_BYTES = 1 << 30
# The command always standardizes: the training loss is the mean squared error of the
# standardized targets (per target, 1 - R2 at the fitted model, averaged over targets),
# not of the targets in their units (the metrics table has that MSE).
LOSS_UNITS = "standardized"
LOSS_LABEL = "training loss, standardized (MSE of the standardized targets)"


def _metric_dict(names: list[str], metrics: dict[str, torch.Tensor]) -> dict[str, dict]:
    return {
        name: {key: float(values[j]) for key, values in metrics.items()}
        for j, name in enumerate(names)
    }


def _target_arg(targets: list[str]) -> str | list[str]:
    """One target is a 1-D target (coef_ (d,), predictions (n,)), as scikit-learn has it."""
    return targets[0] if len(targets) == 1 else targets


class TargetMoments:
    """The targets' weighted means and centred sums of squares, gathered as the rows pass.

    The state of a model without an intercept cannot give the centred R2 (NOTE [metric
    definitions] in ``stats/metrics.py``); these moments can, at the cost of absorbing the
    target columns into a small Gram state. With an intercept nothing is gathered.
    """

    def __init__(self, wanted: bool) -> None:
        self.wanted = wanted
        self.state: LeastSquaresState | None = None

    def tap(self, blocks):
        for block in blocks:
            if self.wanted:
                if self.state is None:
                    self.state = LeastSquaresState(0, block.Y.shape[1], method="gram")
                self.state.absorb(block.X[:, :0], block.Y, block.w)
            yield block

    def merged(self) -> LeastSquaresState | None:
        """The moments of every rank's rows (a collective under torchrun)."""
        if not self.wanted:
            return None
        return merge_across_ranks(self.state, fit_intercept=True, method="gram")


def _fit_exact(est, source, features, targets, weight_col, opts) -> tuple[int, dict]:
    moments = TargetMoments(wanted=not est.fit_intercept)
    if is_distributed():
        rows = fit_exact_on_ranks(est, source, features, targets, weight_col, opts, tap=moments.tap)
    else:
        count = RowCount(len(features), opts, source.path)
        # prefetch: the next block is read while this one is absorbed (blocksources.prefetch)
        blocks = prefetch(source.read_columns(features, targets, weight_col))
        with convergence_in_cli_words():  # an accuracy warning in the command's words
            est.fit_blocks(
                moments.tap(count.through(blocks)),
                feature_names=features,
                target_names=_target_arg(targets),
            )
        rows = count.rows
    metrics = est.state_metrics(target_moments=moments.merged())
    return rows, _metric_dict(targets, metrics)


def _stream_wanted(source: TableSource, opts: dict[str, Any]) -> bool:
    if is_distributed():
        # Each rank holds only its share in memory; the shuffle buffer is one process's.
        if opts["stream"]:
            raise click.UsageError("--stream is for one process; under torchrun drop --stream")
        return False
    if opts["stream"] is not None:
        return opts["stream"]
    # gd and lbfgs take every row in each step: they load the data unless told to stream
    # (and then refuse, naming the solvers that can).
    if opts["solver"] in ("gd", "lbfgs"):
        return False
    return sum(os.path.getsize(p) for p in source.paths) > STREAM_AUTO_BYTES


def _fit_iterative(est, source, features, targets, weight_col, opts) -> tuple[int, dict]:
    if _stream_wanted(source, opts):
        return _fit_streamed(est, source, features, targets, weight_col, opts)
    block = source.read_all(features, targets, weight_col)
    n_used = block.n_rows if block.w is None else int((block.w > 0).sum())
    with agree_on_errors():  # under torchrun: the rows of every rank, and every rank fails
        check_enough_rows(count_all_ranks(n_used), len(features), opts, source.path)
    config = run_config(est, features, targets, weight_col, block.n_rows)
    if opts["checkpoint"] or opts["resume"]:  # what --resume checks the data against
        config["fingerprint"] = fingerprint_of(block)

    def fit(callbacks, resume):
        est.fit(block.X, block.Y, block.w, callbacks=callbacks, resume_from=resume)

    with convergence_in_cli_words():
        run_with_snapshots(fit, config, opts)
    est._name_columns(features, _target_arg(targets))
    pred = est.model_.predict(block.X.to(est.model_.weight.device))
    metrics = regression_metrics_all_ranks(  # block.Y: CPU
        block.Y, pred.cpu(), block.w, uncentered=not est.fit_intercept
    )
    return count_all_ranks(block.n_rows), _metric_dict(targets, metrics)


def _fit_streamed(est, source, features, targets, weight_col, opts) -> tuple[int, dict]:
    """An iterative fit that reads the file each epoch (streaming.fit_iterative_stream)."""
    blocks = _TappedBlocks(
        TableBlocks(source, features, targets, weight_col),
        wanted=not est.fit_intercept,
        fingerprint=bool(opts["checkpoint"] or opts["resume"]),
    )
    # A checkpoint records the row count; a resumed run checks it first (free for Parquet).
    rows = blocks.count_rows() if opts["resume"] else None
    config = run_config(est, features, targets, weight_col, rows)

    def fit(callbacks, resume):
        est.fit_blocks(
            blocks, callbacks=callbacks, resume_from=resume, buffer_rows=opts["buffer_rows"]
        )

    with convergence_in_cli_words():
        run_with_snapshots(fit, config, opts, extra=[RowsInto(config, blocks)])
    est._name_columns(features, _target_arg(targets))
    metrics = est.state_metrics(target_moments=blocks.moments.state)
    return blocks.n_rows, _metric_dict(targets, metrics)


class _TappedBlocks:
    """A :class:`TableBlocks` whose passes in file order also gather the target moments
    (the streamed fit's first pass is one; each full pass gives the same moments)."""

    def __init__(self, blocks: TableBlocks, wanted: bool, fingerprint: bool = False) -> None:
        self._blocks = blocks
        self.moments = TargetMoments(wanted)
        self._want_fingerprint = fingerprint
        self.fingerprint: str | None = None  # of a complete pass (snapshots.Fingerprint)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blocks, name)

    def __call__(self, generator: torch.Generator | None = None):
        if generator is not None:
            return self._blocks(generator)
        return self._gathered()

    def _gathered(self):
        fresh = TargetMoments(self.moments.wanted)
        seen = Fingerprint() if self._want_fingerprint else None
        for block in fresh.tap(self._blocks()):
            if seen is not None:
                seen.add(block.X, block.Y, block.w)
            yield block
        self.moments = fresh  # only a complete pass
        if seen is not None:
            self.fingerprint = seen.value()


def _plots(est, source, features, targets, plot_dir: str, weight_col) -> list[str]:
    from .. import plots

    os.makedirs(plot_dir, exist_ok=True)
    saved = []
    if est.loss_history_:
        path = Path(plot_dir, "loss.png")
        saved.append(plots.loss_curve(est.loss_history_, path, ylabel=LOSS_LABEL))
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
    if getattr(est, "solver", None) in EXACT_SOLVERS and not getattr(est, "alpha", 1):  # plot(lm)
        saved.append(_diagnostic_plot(est, source, features, targets, plot_dir, weight_col))
    return [str(p) for p in saved]


def _diagnostic_plot(est, source, features, targets, plot_dir, weight_col) -> Path:
    from .. import plots
    from ..stats.influence import influence_of_rows

    blocks, n = [], 0
    for block in source.read_columns(features, targets, weight_col):
        blocks.append(block)
        n += block.n_rows
        if n >= PLOT_ROWS:
            break
    cat = lambda xs: None if xs[0] is None else torch.cat(xs)[:PLOT_ROWS]  # noqa: E731
    X, Y, w = (cat([getattr(b, a) for b in blocks]) for a in ("X", "Y", "w"))
    res = est.results_
    diag = influence_of_rows(res, X, Y, w)
    return plots.regression_diagnostics(diag, res.rank, targets, Path(plot_dir, "diagnostics.png"))


@distributed_command
def train(data: str, targets: tuple[str, ...], **opts: Any) -> None:
    """`torchlinreg train` (options in commands.py): fit on DATA and save the model."""
    started = time.perf_counter()
    if opts.get("by") or opts.get("window") is not None:  # many fits: cli/grouped.py
        from .grouped import train_grouped

        return train_grouped(data, targets, opts)
    if opts["update"]:
        return _update(data, targets, opts)
    if not targets:
        raise click.UsageError("Missing option '-t' / '--target'.")
    if not opts["output"]:
        raise click.UsageError("Missing option '-o' / '--output'.")
    penalized = opts["solver"] in PENALIZED_SOLVERS
    exact = opts["solver"] in EXACT_SOLVERS or penalized
    if (opts["cv"] or opts["l1_ratio"] != 0.5) and not penalized:
        raise click.UsageError("--cv and --l1-ratio are for --solver lasso or elasticnet")
    if exact and (opts["checkpoint"] or opts["resume"]):
        raise click.UsageError("--checkpoint and --resume are for iterative solvers")
    check_outputs(opts)
    source = open_table(data, delimiter=opts["delimiter"], block_rows=opts["block_rows"])
    check_train_paths(opts, source.paths)
    source = shard_for_rank(source)
    weight_col = opts["weight_col"]
    features, targets_l = choose_columns(source, targets, opts["features"], weight_col)
    # NOTE [output columns]: summary --json keys the intercept "intercept"
    refuse_reserved_features(features, {"intercept"}, "summary --json")
    from . import inference  # train --cluster / --cov-type (robust coefficient tests)

    inference.check_options(opts, exact and not penalized, is_distributed(), source)
    if opts["features"] is None:  # a cluster column is not a feature unless named one
        features = [f for f in features if f not in opts["cluster_cols"]]
    check_rows_before_reading(source, len(features), opts)
    est = LinearRegression(
        solver=opts["solver"],
        fit_intercept=not opts["no_intercept"],
        alpha=opts["alpha"],
        lr=opts["lr"],
        max_iter=opts["epochs"],  # None: the solver's default
        batch_size=opts["batch_size"],
        random_state=opts["seed"],
        device=opts["device"],
    )
    if penalized:
        est = penalized_estimator(opts)
    if exact:
        rows, metrics = _fit_exact(est, source, features, targets_l, weight_col, opts)
        if opts.get("cov_type") in STORED_COV_TYPES:  # a second pass (robustpass.py)
            from .robustpass import store_robust_columns

            store_robust_columns(est, source, features, targets_l, weight_col, opts["cov_type"])
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
        "loss_units": LOSS_UNITS if not exact else None,
        # NOTE [optimality gap] in iterative/optimality.py: exact R2 minus this fit's R2
        "converged": bool(est.converged_) if not exact else None,
        "optimality_gap": est.optimality_gap_ if not exact else None,
        "optimality_gap_kind": est.optimality_gap_kind_ if not exact else None,
        "weighted": weight_col is not None,  # the metrics: NOTE [metric definitions]
        "metrics": metrics,
    }
    printed = opts.get("cov_type") or ("cluster" if opts.get("cluster_cols") else None)
    if printed not in (None, "nonrobust"):
        summary["cov_type"] = printed
    if exact and printed in ("HAC", "cluster"):
        # NOTE [covariances printed, not kept]: the file's results are nonrobust, and
        # `predict --interval` of it gave OLS intervals 66-79% narrow or wide of the HAC
        # or clustered ones, without a word (a predictions hunt)
        summary["cov_type_kept"] = "nonrobust"
        warnings.warn(
            f"the {printed} standard errors are printed here, not kept: the model file's "
            "statistics (summary, predict --interval) are nonrobust; --cov-type HC0..HC3 is "
            "kept",
            UserWarning,
            stacklevel=2,
        )
    if penalized:
        summary["penalty"] = penalty_summary(est)
    if opts["features"] is None:  # say which columns the default left out, and why
        used = {*features, *targets_l, weight_col, *opts["cluster_cols"]}
        left = [c for c in source.column_names if c not in used]
        summary["skipped_columns"] = [c for c in left if not saved_index(source, c)]
        summary["index_columns"] = [c for c in left if saved_index(source, c)]
    rank_zero_only(save)(to_save(est) if penalized else est, opts["output"], training=summary)
    inference_text = None
    if inference.wanted(opts):
        results = inference.robust_results(est, source, features, targets_l, weight_col, opts)
        summary["inference"] = results.to_dict()
        inference_text = results.summary()
    if opts["plot_dir"]:
        summary["plots"] = _plots(est, source, features, targets_l, opts["plot_dir"], weight_col)
        if penalized:
            summary["plots"] += penalty_plots(est, features, opts["plot_dir"])
    summary["model"] = opts["output"]
    if opts["as_json"] and not opts["quiet"]:
        print_json(summary)
    elif not opts["quiet"]:
        _print_report(summary, inference_text)


def _print_report(summary: dict[str, Any], inference_text: str | None = None) -> None:
    out = console()
    iterative = summary["epochs"] is not None
    out.print(  # names and paths through esc: NOTE [text from files] in output.py
        f"trained [bold]{summary['solver']}[/bold] on {summary['rows']:,} rows of "
        f"{esc(summary['data'])} ({len(summary['features'])} features -> "
        f"{esc(', '.join(summary['targets']))}) in {summary['seconds']:.3f} s"
        + (f", {summary['epochs']} epochs" if iterative else "")
    )
    if iterative:
        out.print(_convergence_line(summary))
    shown = ", ".join(summary["features"][:12]) + (" ..." if len(summary["features"]) > 12 else "")
    skipped = summary.get("skipped_columns")
    index = summary.get("index_columns")
    out.print(
        f"features: {esc(shown)}"
        + (f" (not numeric, left out: {esc(', '.join(skipped))})" if skipped else "")
        + (f" (a saved index, left out: {esc(', '.join(map(repr, index)))})" if index else "")
    )
    if "penalty" in summary:
        p = summary["penalty"]
        out.print(
            f"alpha {p['alpha']:.6g}, l1_ratio {p['l1_ratio']:.3g}"
            + (f" (chosen by {p['cv_folds']}-fold cross-validation)" if "cv_folds" in p else "")
            + f", {p['nonzero_coefficients']} nonzero coefficient(s)"
        )
    out.print(metrics_table(metrics_title("Training fit", summary["weights"]), summary["metrics"]))
    if inference_text is not None:  # names from the file: NOTE [text from files]
        out.print(safe(inference_text, keep_newlines=True), markup=False)
    out.print(f"model saved to {esc(summary['model'])}")
    for p in summary.get("plots", []):
        out.print(f"plot saved to {esc(p)}")


def _convergence_line(summary: dict[str, Any]) -> str:
    """Where an iterative fit ended: its optimality gap, whether that met the target, and the
    final loss labelled for what it is."""
    gap, kind = summary["optimality_gap"], summary["optimality_gap_kind"]
    if gap is None or gap != gap:  # NaN: unknown
        where = "optimality gap unknown (see the warning)"
    else:
        bound = "at most " if kind == "bound" else ""
        verdict = "converged" if summary["converged"] else "NOT converged, see the warning"
        where = f"optimality gap {bound}{gap:.3g} (exact R2 minus this fit's): {verdict}"
    loss = summary["final_loss"]
    final = "" if loss is None else f"; final training loss {loss:.6g} ({LOSS_UNITS})"
    return where + final


def _update(data: str, targets: tuple[str, ...], opts: dict[str, Any]) -> None:
    """``train --update MODEL DATA``: see :mod:`torchlinreg.cli.update`."""
    from .checks import check_writable
    from .update import update_model

    if opts["checkpoint"] or opts["resume"] or opts["plot_dir"]:
        raise click.UsageError("--update takes no --checkpoint, --resume or --plot")
    if opts.get("cov_type") not in (None, "nonrobust") or opts.get("cluster_cols"):
        # taken silently before, and the model saved nonrobust: a robust covariance needs
        # the residuals of every row, and the model file keeps none of the old ones
        raise click.UsageError(
            "--update adds rows to a model whose old rows are gone: --cov-type and --cluster "
            "need the residuals of every row; train on all rows with them instead"
        )
    check_writable(opts["output"] or opts["update"], "model")
    summary = update_model(data, targets, opts)
    if opts["quiet"]:
        return
    if opts["as_json"]:
        print_json(summary)
        return
    out = console()
    out.print(
        f"updated {esc(opts['update'])} with {summary['new_rows']:,} rows of {esc(data)} "
        f"({summary['rows']:,} rows in all) in {summary['seconds']:.3f} s"
    )
    title = metrics_title("Training fit, all rows", summary.get("weights"))
    out.print(metrics_table(title, summary["metrics"]))
    out.print(f"model saved to {esc(summary['model'])}")
