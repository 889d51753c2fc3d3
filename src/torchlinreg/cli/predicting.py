"""`predict` and `evaluate` with a formula's encoding, missing rows, intervals and ids.

A model trained through a formula carries its encoding: each block of the new file is
encoded with it (levels checked, the training columns whatever levels the block shows).
``predict --missing keep`` writes empty predictions for incomplete rows (and unseen
levels) instead of stopping; ``--interval 0.95`` adds the mean and observation intervals
of exact models, computed from the state in the model file alone; ``--keep id,date``
copies columns through. Memory stays at one block.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import torch

from ..errors import DataError, ModelFileError
from ..estimator.modelfile import load
from ..files.io import write_table_blocks
from ..files.keys import block_lines
from ..files.rawblocks import raw_blocks
from ..files.tables import open_table
from ..stats.metrics import StreamingMetrics
from . import grouped
from .checks import check_not_input, check_writable, distinct_output_columns
from .grouped import is_grouped_model
from .output import console, esc, metrics_table, metrics_title, print_json
from .tableformula import encoded_blocks, kept_column, output_column, to_frame
from .text import safe

_INTERVALS = ("mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper")


def _targets(model) -> list[str]:
    return model._target_names or [f"target_{j}" for j in range(model.model_.n_targets)]


def _plain_rows(model, source, keep: list[str], missing: str, block_rows: int):
    """Blocks ``(X with NaN rows, frame)`` of a model fitted on named numeric columns."""
    features = getattr(model, "feature_names_in_", None)
    if features is None:
        raise ModelFileError(
            "the model has no feature names, so columns cannot be matched by name; train it "
            "with `torchlinreg train` or fit it on a DataFrame"
        )
    features = [str(f) for f in features]
    kinds = dict.fromkeys(features, "number")
    extra = [c for c in keep if c not in features]
    for batch, first_row, path in raw_blocks(source, [*features, *extra], block_rows):
        line = block_lines(source, path, first_row)
        frame = to_frame(batch, kinds, path, line)
        X = frame[features].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(X)
        if missing == "raise" and bad.any():
            i, j = np.argwhere(bad)[0]
            raise DataError(
                "a missing value; fill it, or pass --missing keep to predict such rows as empty",
                path=path,
                row=line(int(i)),
                column=features[j],
            )
        yield X, frame


def _rows(model, source, keep, missing, block_rows):
    enc = getattr(model, "formula_encoding_", None)
    if enc is None:
        yield from _plain_rows(model, source, keep, missing, block_rows)
        return
    for b in encoded_blocks(
        source, enc, targets=False, weight_col=None, missing=missing, keep=keep,
        block_rows=block_rows,
    ):  # fmt: skip
        yield b.design.X, b.frame


def _interval_results(model):
    if not hasattr(model, "state_") or np.any(np.asarray(model.alpha) != 0):
        raise DataError(
            "--interval needs an exact model without a penalty (solver qr or gram, alpha 0)"
        )
    printed = getattr(model, "training_", {}).get("cov_type")
    if printed in ("HAC", "cluster") and model.results_.cov_type == "nonrobust":
        # NOTE [covariances printed, not kept] in train.py
        warnings.warn(
            f"the model was trained with {printed} standard errors, which its file does not "
            "keep: these intervals are from the nonrobust (OLS) covariance",
            UserWarning,
            stacklevel=2,
        )
    return model.results_


def predict_more(model_path, data, output, delimiter, block_rows, missing, interval, keep):
    """`torchlinreg predict` with --missing, --interval or --keep, or a formula model."""
    if is_grouped_model(model_path):
        return grouped.predict(
            model_path, data, output, delimiter, block_rows, missing, interval, keep
        )
    if output:
        check_writable(output, "output")
    model = load(model_path)
    source = open_table(data, delimiter=delimiter, block_rows=block_rows)
    check_not_input(output, "output", {"data file": source.paths, "model": [model_path]})
    keep_cols = [c.strip() for c in keep.split(",") if c.strip()] if keep else []
    source._resolve(keep_cols)
    res = _interval_results(model) if interval is not None else None
    targets = _targets(model)
    names = [*keep_cols, *targets]
    if res is not None:
        names += [f"{t}_{c}" for t in targets for c in _INTERVALS]
    distinct_output_columns(names, "the predictions")  # NOTE [output columns]
    shown = [safe(n) for n in names] if not output and sys.stdout.isatty() else names
    weight = model.model_.weight

    def blocks():
        for X, frame in _rows(model, source, keep_cols, missing, block_rows):
            # a frame's array may be read-only: torch warned to the user on every run
            Xt = torch.as_tensor(np.array(X, copy=not X.flags.writeable))
            Xt = Xt.to(device=weight.device, dtype=weight.dtype)
            pred = model.model_.predict(Xt).cpu().numpy()
            out = [kept_column(frame[c]) for c in keep_cols]
            out += [pred[:, j] for j in range(len(targets))]
            if res is not None:
                out += _interval_columns(res, X, targets, interval)
            yield {name: output_column(v) for name, v in zip(shown, out, strict=True)}

    write_table_blocks(output or "-", shown, blocks())


def _interval_columns(res, X: np.ndarray, targets: list[str], level: float) -> list:
    """Mean and observation intervals of the complete rows; NaN for the others."""
    complete = np.isfinite(X).all(1)
    cols = {(t, c): np.full(len(X), np.nan) for t in targets for c in _INTERVALS}
    if complete.any():
        frame = res.get_prediction(X[complete]).summary_frame(alpha=1 - level)
        for t in targets:
            for c in _INTERVALS:
                values = frame[c] if len(targets) == 1 else frame[(c, t)]
                cols[(t, c)][complete] = np.asarray(values, dtype=np.float64)
    return [cols[(t, c)] for t in targets for c in _INTERVALS]


def columns_encoding(model, source, block_rows: int):
    """A model of named numeric columns as a formula encoding (``y ~ `a` + `b```), so that
    ``evaluate --missing drop`` leaves out incomplete rows as a formula model does."""
    from ..formula.encoding import Encoding

    features, targets = getattr(model, "feature_names_in_", None), model._target_names
    if features is None or not targets:
        raise ModelFileError("--missing drop needs a model with feature and target names")
    names = [*map(str, features), *targets]
    if any("`" in n for n in names):
        raise DataError("--missing drop cannot name a column with a backtick (`) in its name")
    source._resolve(names)
    quote = lambda cols: " + ".join(f"`{c}`" for c in cols)  # noqa: E731
    formula = f"{quote(targets)} ~ {quote(map(str, features)) or '1'}"
    formula += "" if model.fit_intercept else " - 1"
    batch, first_row, path = next(iter(raw_blocks(source, names, block_rows)))
    kinds = dict.fromkeys(names, "number")
    frame = to_frame(batch, kinds, path, block_lines(source, path, first_row))
    enc, _ = Encoding.fit(formula, frame, missing="drop")
    enc.kinds = kinds
    return enc


def nothing_to_evaluate(acc, weight_col: str | None, path, dropped: int = 0) -> None:
    """A DataError where no row is left to score (the metrics would be 0 / 0)."""
    if acc.n == 0:
        why = (
            f"all {dropped:,} rows were dropped for missing values or unseen levels"
            if dropped
            else "the data has no rows"
        )
        raise DataError(f"{why}: nothing to evaluate", path=path)
    if not acc.sum_w > 0:
        raise DataError(
            f"every row has weight 0 in column {weight_col!r}: nothing to evaluate; "
            "give some rows a positive weight",
            path=path,
        )


def evaluate_formula(model, model_path, data, as_json, delimiter, block_rows, weight_col, missing):
    """`torchlinreg evaluate` of a formula model: targets from the formula's left side."""
    source = open_table(data, delimiter=delimiter, block_rows=block_rows)
    enc = getattr(model, "formula_encoding_", None)
    if enc is None:
        enc = columns_encoding(model, source, block_rows)
    acc = StreamingMetrics(uncentered=not model.fit_intercept)
    dropped = 0
    weight = model.model_.weight
    for b in encoded_blocks(
        source, enc, targets=True, weight_col=weight_col, missing=missing, block_rows=block_rows
    ):
        dropped += b.design.dropped
        if not len(b.design.rows):
            continue
        X = torch.from_numpy(b.design.X).to(device=weight.device, dtype=weight.dtype)
        w = None if b.w is None else torch.from_numpy(b.w)
        acc.update(torch.from_numpy(b.design.Y), model.model_.predict(X).cpu(), w)
    nothing_to_evaluate(acc, weight_col, source.path, dropped)
    values = acc.result()
    per_target = {
        name: {key: float(v[j]) for key, v in values.items()} for j, name in enumerate(enc.targets)
    }
    if as_json:
        print_json(
            {
                "targets": per_target,
                "rows": acc.n,
                "rows_dropped": dropped,
                "weighted": weight_col is not None,
                "weights": weight_col,
            }
        )
        return
    out = console()
    out.print(f"evaluated {esc(model_path)} on {acc.n:,} rows of {esc(data)}")
    if dropped:
        out.print(f"{dropped:,} rows with missing values dropped")
    out.print(metrics_table(metrics_title("Metrics", weight_col), per_target))
