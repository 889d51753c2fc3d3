"""`torchlinreg predict`, `evaluate` and `summary`: use a saved model."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch

from ..errors import DataError, ModelFileError
from ..estimator.modelfile import load
from ..files.io import write_table_blocks
from ..files.tables import name_list, open_table
from ..stats.metrics import StreamingMetrics
from . import grouped
from .checks import check_not_input, check_writable
from .grouped import is_grouped_model
from .output import cell, console, esc, metrics_table, metrics_title, print_json
from .predicting import nothing_to_evaluate
from .text import safe


def _names(model, *, positional: bool = False) -> tuple[list[str], list[str]]:
    """Feature and target names; ``positional`` names unnamed features x0, x1, ... (for show)."""
    features = getattr(model, "feature_names_in_", None)
    if features is None and positional:
        features = [f"x{i}" for i in range(model.n_features_in_)]
    if features is None:
        raise ModelFileError(
            "the model has no feature names, so columns cannot be matched by name; train it "
            "with `torchlinreg train` or fit it on a DataFrame"
        )
    targets = model._target_names or [f"target_{j}" for j in range(model.model_.n_targets)]
    return [str(f) for f in features], list(targets)


def _missing_features(source, features: list[str], model_path: str) -> None:
    missing = [f for f in features if f not in source.column_names]
    if missing:
        raise DataError(
            f"the model {model_path} needs feature column(s) {missing}, which the data lacks; "
            f"it has {name_list(source.column_names, as_list=True)}",
            path=source.path,
        )


def predict(
    model_path: str, data: str, output: str | None, delimiter: str | None, block_rows: int
) -> None:
    """`torchlinreg predict` (options in commands.py): one column per target, rows in order."""
    if is_grouped_model(model_path):
        return grouped.predict(model_path, data, output, delimiter, block_rows)
    if output:
        check_writable(output, "output")
    model = load(model_path)
    if getattr(model, "formula_encoding_", None) is not None:  # its encoding: predicting.py
        from .predicting import predict_more

        return predict_more(model_path, data, output, delimiter, block_rows, "raise", None, None)
    features, targets = _names(model)
    source = open_table(data, delimiter=delimiter, block_rows=block_rows)
    check_not_input(output, "output", {"data file": source.paths, "model": [model_path]})
    _missing_features(source, features, model_path)

    # a terminal shows the header: names from the model file, escaped (NOTE [text from
    # files] in output.py); a file or a pipe gets them as they are
    names = [safe(t) for t in targets] if not output and sys.stdout.isatty() else targets

    def blocks():
        # one block of predictions in memory at a time, written as it comes
        # (files.io.write_table_blocks): 1G rows need no more memory than 1,000
        for block in source.read_columns(features):
            pred = model.model_.predict(block.X).cpu().numpy()
            yield {name: np.ascontiguousarray(pred[:, j]) for j, name in enumerate(names)}

    write_table_blocks(output or "-", names, blocks())


def _check_weight_col(weight_col: str | None, features, targets, source, model_path: str):
    """The --weights column exists and is neither a feature nor a target of the model."""
    if weight_col is None:
        return
    role = "feature" if weight_col in features else "target" if weight_col in targets else None
    if role:
        raise DataError(
            f"column {weight_col!r} is both a {role} of the model {model_path} and the "
            "--weights column; use another column"
        )
    source._resolve([weight_col])  # unknown: names close matches


def evaluate(
    model_path: str,
    data: str,
    as_json: bool,
    delimiter: str | None,
    block_rows: int,
    weight_col: str | None = None,
    missing: str = "raise",
) -> None:
    """`torchlinreg evaluate` (options in commands.py): MSE, RMSE, MAE, R2 per target.

    Weighted by ``weight_col`` when given; without an intercept ``r2_uncentered`` too
    (NOTE [metric definitions] in ``stats/metrics.py``: the same numbers as ``train``).
    """
    if is_grouped_model(model_path):
        return grouped.evaluate(
            model_path, data, as_json, delimiter, block_rows, weight_col, missing
        )
    model = load(model_path)
    if getattr(model, "formula_encoding_", None) is not None or missing != "raise":
        from .predicting import evaluate_formula  # an encoding, or rows to drop

        return evaluate_formula(
            model, model_path, data, as_json, delimiter, block_rows, weight_col, missing
        )
    features, targets = _names(model)
    source = open_table(data, delimiter=delimiter, block_rows=block_rows)
    _missing_features(source, features, model_path)
    missing = [t for t in targets if t not in source.column_names]
    if missing:
        raise DataError(
            f"target column(s) {missing} are not in the data; evaluate needs the true values",
            path=source.path,
        )
    _check_weight_col(weight_col, features, targets, source, model_path)
    acc = StreamingMetrics(uncentered=not model.fit_intercept)
    for block in source.read_columns(features, targets, weight_col):
        acc.update(block.Y, model.model_.predict(block.X), block.w)
    nothing_to_evaluate(acc, weight_col, source.path)
    values = acc.result()
    per_target = {
        name: {key: float(v[j]) for key, v in values.items()} for j, name in enumerate(targets)
    }
    if as_json:
        report = {"targets": per_target, "rows": acc.n, "weighted": weight_col is not None}
        print_json({**report, "weights": weight_col})
        return
    out = console()
    out.print(f"evaluated {esc(model_path)} on {acc.n:,} rows of {esc(data)}")
    out.print(metrics_table(metrics_title("Metrics", weight_col), per_target))


def _coef_table(model, features: list[str], targets: list[str]):
    from rich.table import Table

    table = Table(title="Coefficients", title_justify="left")
    table.add_column("")
    for t in targets:
        table.add_column(cell(t), justify="right")
    w, b = model.model_.weight.cpu(), model.model_.bias.cpu()
    table.add_row("intercept", *(f"{float(v):.10g}" for v in b))
    for i, f in enumerate(features):
        table.add_row(cell(f), *(f"{float(w[j, i]):.10g}" for j in range(len(targets))))
    return table


def summary_record(model) -> dict[str, Any]:
    """What ``summary --json`` prints: names, coefficients, parameters and training record."""
    features, targets = _names(model, positional=True)
    w, b = model.model_.weight.cpu(), model.model_.bias.cpu()
    if "intercept" in features:  # NOTE [output columns] in checks.py
        raise DataError(
            "the model has a feature named 'intercept', the key summary --json gives the "
            "intercept; read its coefficients in Python (torchlinreg.load(...).coef_)"
        )
    return {
        "estimator": type(model).__name__,
        "solver": model.solver,
        "params": {
            k: str(v)
            if isinstance(v, torch.device | torch.dtype)
            else v.tolist()  # alpha per target
            if isinstance(v, np.ndarray)
            else v
            for k, v in model.get_params().items()
        },
        "features": features,
        "targets": targets,
        "coefficients": {
            t: {"intercept": float(b[j]), **{f: float(w[j, i]) for i, f in enumerate(features)}}
            for j, t in enumerate(targets)
        },
        # scikit-learn's rank_, of the features (about their means with an intercept); the
        # statistics' "rank" is statsmodels', the constant counted: two numbers under one
        # name read as a contradiction (2 and 1 for one line through the data)
        "feature_rank": model.rank_,
        "training": getattr(model, "training_", {}),
    }


def _statistics(model):
    """OLS statistics for exact, unpenalised models (from the state kept in the file)."""
    if not hasattr(model, "state_") or np.any(np.asarray(model.alpha) != 0):
        return None
    return model.results_


def summary(model_path: str, as_json: bool) -> None:
    """`torchlinreg summary` (options in commands.py): names, coefficients, statistics."""
    if is_grouped_model(model_path):
        return grouped.summary(model_path, as_json)
    model = load(model_path)
    record = summary_record(model)
    stats = _statistics(model)
    if stats is not None:
        record["statistics"] = stats.to_dict()
    if as_json:
        print_json(record)
        return
    out = console()
    train = record["training"]
    out.print(
        f"[bold]{record['estimator']}[/bold] ({esc(record['solver'])} solver), {esc(model_path)}"
    )
    if train:  # the record's types are checked by modelcheck; the names may be anything
        rows = train.get("rows")
        out.print(
            f"trained on {'?' if rows is None else f'{rows:,}'} rows of "
            f"{esc(train.get('data', '?'))} in {train.get('seconds', float('nan')):.3f} s"
        )
    out.print(_coef_table(model, record["features"], record["targets"]))
    if train.get("metrics"):
        title = metrics_title("Fit at training time", train.get("weights"))
        out.print(metrics_table(title, train["metrics"]))
    if stats is not None:
        out.print(safe(stats.summary(), keep_newlines=True), markup=False, highlight=False)
