"""`torchlinreg train --update MODEL DATA`: add new rows to a saved exact model.

An exact model file keeps its least-squares state (:mod:`torchlinreg.estimator.modelfile`),
so the new rows are absorbed into it and the small system is solved again: the result equals
one fit on the old and the new rows together, without the old rows. The columns, solver,
penalty and intercept are the model's; the file is rewritten atomically (``-o`` or over
MODEL), and its training summary keeps a list of the updates.

Iterative models keep no such state (their weights depend on the order and number of epochs
seen), so ``--update`` refuses them with the reason; retrain them on all rows instead.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from typing import Any

import click

from ..errors import DataError
from ..estimator.modelfile import load, save
from ..files.io import locked
from ..files.tables import open_table
from .checks import check_not_input
from .fitwords import convergence_in_cli_words

# Options that --update takes from the model; given on the command line they must agree.
_FROM_MODEL = ("solver", "alpha", "no_intercept")


def _explicit(name: str) -> bool:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _model_columns(est, path: str) -> tuple[list[str], list[str], str | None]:
    names = getattr(est, "feature_names_in_", None)
    targets = est._target_names
    if names is None or targets is None:
        raise DataError(
            f"{path}: the model records no column names; --update needs a model trained from "
            "a file with torchlinreg train"
        )
    return [str(n) for n in names], list(targets), est.training_.get("weights")


def _check_agrees(est, columns, targets: tuple[str, ...], opts: dict[str, Any], path: str):
    features, model_targets, weight_col = columns
    given = {
        "--target": (list(targets) or None, model_targets),
        "--features": (
            None if opts["features"] is None else [c.strip() for c in opts["features"].split(",")],
            features,
        ),
        "--weights": (opts["weight_col"], weight_col),
    }
    params = {
        "solver": est.solver,
        "alpha": [float(a) for a in est.alpha]
        if hasattr(est.alpha, "__len__")
        else float(est.alpha),
        "no_intercept": not est.fit_intercept,
    }
    for name in _FROM_MODEL:
        if _explicit(name):
            given[f"--{name.replace('_', '-')}"] = (opts[name], params[name])
    for flag, (value, recorded) in given.items():
        if value is not None and value != recorded:
            raise DataError(
                f"{path}: the model was trained with {flag} {recorded!r}, not {value!r}; "
                f"--update keeps the model's settings: leave {flag} out"
            )


def update_model(data: str, targets: tuple[str, ...], opts: dict[str, Any]) -> dict[str, Any]:
    """Absorb DATA's rows into the model file ``opts['update']``; return the new summary.

    The model file is locked from reading to writing (files.io.locked): two updates of one
    model at once run one after the other, and neither is lost.
    """
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(OSError):  # a missing or unreadable model: load() says so
            stack.enter_context(locked(opts["update"]))
        return _update_locked(data, targets, opts)


def _update_locked(data: str, targets: tuple[str, ...], opts: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    path = opts["update"]
    from .grouped import is_grouped_model

    if is_grouped_model(path):  # load() would say its format is not a model's
        raise DataError(
            f"{path}: a grouped (--by) model cannot be updated yet; retrain it with --by on "
            "all rows"
        )
    est = load(path)
    if getattr(est, "formula_encoding_", None) is not None:
        raise DataError(
            f"{path}: a --formula model cannot be updated yet (--update reads plain columns, "
            "not the formula's); retrain with --formula on all rows"
        )
    if not hasattr(est, "state_"):
        raise DataError(
            f"{path}: the model was trained with the iterative solver {est.solver!r}, which "
            "keeps no least-squares state to add rows to; --update needs a model from an exact "
            "solver (qr, gram): retrain on all rows instead"
        )
    columns = _model_columns(est, path)
    _check_agrees(est, columns, targets, opts, path)
    features, model_targets, weight_col = columns
    rows = {"block_rows": opts["block_rows"]} if opts.get("block_rows") else {}
    source = open_table(data, delimiter=opts["delimiter"], **rows)
    out = opts["output"] or path
    check_not_input(out, "model", {"data file": source.paths})
    needed = [*features, *model_targets, *([weight_col] if weight_col else [])]
    missing = [c for c in needed if c not in source.column_names]
    if missing:
        raise DataError(
            f"lacks column(s) {missing} that the model {path} was trained on; --update needs "
            "the same feature, target and weight columns",
            path=data,
        )
    new_rows = 0

    def counted():
        nonlocal new_rows
        for block in source.read_columns(features, model_targets, weight_col):
            new_rows += block.n_rows
            yield block  # rows of weight zero count in nobs, as a fit on all rows counts them

    with convergence_in_cli_words():  # an accuracy warning in the command's words
        est.partial_fit_blocks(counted())
    metrics = est.state_metrics()
    seconds = round(time.perf_counter() - started, 4)
    old = dict(est.training_)
    # the update drops a robust covariance (its residuals are gone): the record said HC2 of
    # a model now nonrobust (a several-targets hunt)
    old.pop("cov_type", None)
    old.pop("cov_type_kept", None)
    penalty = old.get("penalty")
    if isinstance(penalty, dict) and "cv_folds" in penalty:
        # alpha was chosen on the first rows: kept, not chosen again, while the record went
        # on quoting the old rows' best CV error as this model's (a leftover)
        first = penalty.get("cv_rows", old.get("rows"))
        old["penalty"] = {k: v for k, v in penalty.items() if k != "cv_best_mse"}
        old["penalty"]["cv_rows"] = first
        warnings.warn(
            f"alpha {penalty.get('alpha')} was chosen by {penalty['cv_folds']}-fold "
            f"cross-validation on the first {first} rows and is kept for the new ones, not "
            "chosen again; train on all rows with --cv to choose it again",
            UserWarning,
            stacklevel=2,
        )
    summary = {
        **old,
        "rows": int(old.get("rows") or 0) + new_rows,
        "weighted": weight_col is not None,
        "metrics": {
            name: {key: float(values[j]) for key, values in metrics.items()}
            for j, name in enumerate(model_targets)
        },
        "updates": [*old.get("updates", []), {"data": data, "rows": new_rows, "seconds": seconds}],
    }
    save(est, out, training=summary)
    return {**summary, "model": out, "new_rows": new_rows, "seconds": seconds}
