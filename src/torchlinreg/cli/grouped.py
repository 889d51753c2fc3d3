"""`train --by` / `--window`, and predict, evaluate and summary of grouped model files.

A grouped model file holds one least-squares summary per group (``models/groupstate.py``:
weights sum, means, centred co-moments) and each group's solution, in a safetensors file
of its own format (``torchlinreg-grouped-model``), so the single-model loader never takes
it for one of its own. Training streams: a group's rows may be anywhere in DATA. Group
labels are numbers (a store id) or text (a store name, coded as first met; the record
keeps the text of each code); ``--window W --order-by COL`` writes coefficient
paths (one row per window end) to a CSV or Parquet file instead, ordered by numbers or
times (``files/keys.py``).
"""

from __future__ import annotations

import json
import struct
import time
from typing import Any

import click
import numpy as np
import torch

from ..errors import DataError, ModelFileError
from ..files.io import write_table, write_table_blocks
from ..files.keys import KeyStream, is_numeric, order_keys, text_labels
from ..files.tables import open_table
from ..files.tensorfile import load_tensors, save_tensors
from ..models.groupstate import GroupedMoments
from ..stats.metrics import StreamingMetrics
from .checks import check_train_paths, check_writable, choose_columns
from .output import console, esc, metrics_table, metrics_title, print_json

FORMAT = "torchlinreg-grouped-model"
_SHOWN = 20  # groups in the text summary


def is_grouped_model(path: str) -> bool:
    """Whether ``path`` is a grouped model file (its header says so; anything else: no)."""
    try:
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            if size > 16 << 20:
                return False
            header = json.loads(f.read(size))
        return header.get("__metadata__", {}).get("format") == FORMAT
    except (OSError, ValueError, struct.error, AttributeError):
        return False


def _label(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _columns(source, targets, opts) -> tuple[list[str], list[str]]:
    if len(targets) != 1:
        raise click.UsageError("--by and --window fit one target; give one -t")
    if opts["solver"] not in ("qr", "gram") or opts["alpha"]:
        raise click.UsageError("--by and --window fit OLS exactly: leave --solver and --alpha")
    features, targets_l = choose_columns(source, targets, opts["features"], opts["weight_col"])
    extra = [c for c in (opts.get("by"), opts.get("order_by")) if c]
    source._resolve(extra)  # unknown names: close matches
    features = [f for f in features if f not in extra]
    if not features:
        raise DataError("no feature columns besides --by/--order-by; name them with --features")
    return features, targets_l


def train_grouped(data: str, targets: tuple[str, ...], opts: dict[str, Any]) -> None:
    """`train --by COL` (one model per group) or `train --window W --order-by COL`."""
    started = time.perf_counter()
    if opts["update"] or opts.get("nproc"):
        raise click.UsageError("--by and --window cannot be combined with --update or --nproc")
    if not opts["output"]:
        raise click.UsageError("Missing option '-o' / '--output'.")
    check_writable(opts["output"], "output")
    source = open_table(data, delimiter=opts["delimiter"], block_rows=opts["block_rows"])
    check_train_paths(opts, source.paths)
    features, targets_l = _columns(source, targets, opts)
    if opts.get("window") is not None:
        return _rolling(source, features, targets_l, opts, data)
    by, intercept = opts["by"], not opts["no_intercept"]
    acc, rows = GroupedMoments(len(features)), 0
    codes = None if is_numeric(source, by) else {}  # text label -> its code, as met
    for block, labels in _keyed_blocks(source, features, targets_l, opts["weight_col"], by, codes):
        acc.absorb(block.X, block.Y[:, 0], block.w, labels)
        rows += block.n_rows
    fit = acc.solve(intercept)
    d = len(features)
    params = torch.as_tensor(fit["params"])
    m = acc.moments
    tensors = {
        "labels": torch.as_tensor(acc.labels, dtype=torch.float64),
        "bias": params[:, 0] if intercept else torch.zeros(len(acc.labels), dtype=torch.float64),
        "weight": params[:, 1:] if intercept else params,
        "nobs": m.count, "sum_w": m.w, "mean": m.mean, "comoments": m.M, "amax": acc.amax,
    }  # fmt: skip
    no_fit = int(fit["bad"].sum())
    training = {
        "data": data, "rows": rows, "groups": len(acc.labels), "groups_without_fit": no_fit,
        "seconds": round(time.perf_counter() - started, 4), "weights": opts["weight_col"],
    }  # fmt: skip
    record = {"by": by, "features": features, "target": targets_l[0], "fit_intercept": intercept}
    record["training"] = training
    if codes is not None:  # text labels: the tensor holds their codes, the record the text
        names = list(codes)  # in code order
        record["label_text"] = [names[int(c)] for c in acc.labels]
    assert tensors["weight"].shape[1] == d
    save_tensors(opts["output"], tensors, record, file_format=FORMAT)
    if opts["quiet"]:
        return
    if opts["as_json"]:
        print_json({**training, "model": opts["output"], "by": by, "features": features})
        return
    console().print(
        f"fitted {len(acc.labels):,} groups by {esc(by)} on {rows:,} rows of {esc(data)} "
        f"({no_fit} without a fit) -> {esc(opts['output'])}"
    )


def _keyed_blocks(source, features, targets, weight_col, by, codes):
    """``(numeric block of the features, its rows' group keys as float64)`` in file order.

    Numeric labels come with the block. Text labels come from a :class:`KeyStream` lined up
    row for row, each keyed by a code given the first time it is met (``codes`` grows: group
    moments are keyed by numbers, and the model file stores the text of each code).
    """
    if codes is None:
        for block in source.read_columns([*features, by], targets, weight_col):
            keys = block.X[:, -1].numpy()
            block.X = block.X[:, :-1]
            yield block, keys
        return
    stream = KeyStream(source, by)
    for block in source.read_columns(features, targets, weight_col):
        where = stream.where()
        if where is not None and where[0] != block.path:  # both read the same files in order
            raise RuntimeError(f"--by {by}: key rows out of step with {block.path}; a bug")
        labels = text_labels(stream.take(block.n_rows))
        if len(labels) != block.n_rows:
            raise RuntimeError(f"--by {by}: fewer keys than rows in {block.path}; a bug")
        yield (
            block,
            np.fromiter(
                (codes.setdefault(v, float(len(codes))) for v in labels), np.float64, len(labels)
            ),
        )


def _rolling(source, features, targets_l, opts, data) -> None:
    """Coefficient paths of rolling (or expanding) windows, ordered by --order-by."""
    from ..models.rolling import rolling_ols

    order_by, by = opts.get("order_by"), opts.get("by")
    if not order_by:
        raise click.UsageError("--window needs --order-by COL: the column that orders the rows")
    numeric = [c for c in (order_by, by) if c and is_numeric(source, c)]
    block = source.read_all([*features, *numeric], targets_l, opts["weight_col"])
    X = block.X.numpy()
    k = len(features)
    read = {c: X[:, k + i] for i, c in enumerate(numeric)}  # numeric keys, read with X
    key, shown_key = _order_column(source, order_by, block, read)
    groups = shown_groups = None
    if by:
        shown_groups = read[by] if by in read else _text_column(source, by, block)
        groups = np.unique(shown_groups, return_inverse=True)[1].astype(np.float64)
    order = np.lexsort((key, groups) if by else (key,))
    res = rolling_ols(
        X[order, :k], block.Y[order, 0].numpy(), window=opts["window"],
        expanding=bool(opts.get("expanding")), groups=None if by is None else groups[order],
        fit_intercept=not opts["no_intercept"], feature_names=features,
        sample_weight=None if block.w is None else block.w.numpy()[order],
    )  # fmt: skip
    cols = {} if by is None else {by: shown_groups[order]}
    cols[order_by] = shown_key[order]
    write_table(opts["output"], {**cols, **res.path_columns()})
    if not opts["quiet"]:
        fitted = int(np.isfinite(res.params[:, 0]).sum())
        summary = {"data": data, "rows": len(order), "windows": fitted, "output": opts["output"]}
        if opts["as_json"]:
            print_json(summary)
        else:
            console().print(
                f"{fitted:,} windows of {opts['window']} rows over {len(order):,} rows of "
                f"{esc(data)} -> {esc(opts['output'])}"
            )


def _text_column(source, column: str, block) -> np.ndarray:
    """A text key column of all rows, as Python strings."""
    values = KeyStream(source, column).all()
    _check_length(values, block, column)
    return text_labels(values)


def _order_column(source, column: str, block, read: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(sort keys, the values as written)`` of ``--order-by`` (numbers or times)."""
    if column in read:
        return read[column], read[column]
    values = KeyStream(source, column).all()
    _check_length(values, block, column)
    keys = order_keys(values, column, block.path, block.first_row)
    return keys, values.to_numpy(zero_copy_only=False)


def _check_length(values, block, column: str) -> None:
    if len(values) != block.n_rows:
        raise RuntimeError(f"column {column!r}: {len(values)} keys for {block.n_rows} rows; a bug")


class GroupedModel:
    """A grouped model file, checked: labels sorted, shapes consistent."""

    def __init__(self, path: str) -> None:
        tensors, meta = load_tensors(path, expected_format=FORMAT)
        try:
            self.features = [str(f) for f in meta["features"]]
            self.target, self.by = str(meta["target"]), str(meta["by"])
            self.fit_intercept = bool(meta["fit_intercept"])
            self.training = dict(meta.get("training", {}))
            self.labels = tensors["labels"].numpy()
            self.weight, self.bias = tensors["weight"], tensors["bias"]
            self.nobs = tensors["nobs"]
            text = meta.get("label_text")
            self.text = None if text is None else [str(t) for t in text]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: the grouped model record is invalid ({exc})") from None
        G, d = len(self.labels), len(self.features)
        if (
            self.weight.shape != (G, d) or self.bias.shape != (G,)
            or not np.all(np.diff(self.labels) > 0)
            or (self.text is not None and len(self.text) != G)
        ):  # fmt: skip
            raise ModelFileError(f"{path}: the grouped model's tensors do not match its record")
        self.codes = None if self.text is None else {t: i for i, t in enumerate(self.text)}
        self.path = path

    def display_order(self) -> list[int]:
        """Groups by label: numbers are stored sorted, text labels in the order first met."""
        if self.text is None:
            return list(range(len(self.labels)))
        return sorted(range(len(self.text)), key=self.text.__getitem__)

    def shown(self, g: int) -> str:
        """Group ``g``'s label as the data wrote it."""
        return self.text[g] if self.text is not None else _label(self.labels[g])

    def blocks(self, source, targets=None, weight_col=None):
        """``(block of the features, each row's group index)`` over ``source``."""
        if self.text is not None:  # numbers in the column are matched as their text
            stream = KeyStream(source, self.by)
            for block in source.read_columns(self.features, targets, weight_col):
                yield block, self._route_text(text_labels(stream.take(block.n_rows)), block)
            return
        for block in source.read_columns([*self.features, self.by], targets, weight_col):
            keys = block.X[:, -1].numpy()
            block.X = block.X[:, :-1]
            yield block, self.route(keys, block)

    def _route_text(self, values: np.ndarray, block) -> torch.Tensor:
        idx = np.fromiter((self.codes.get(v, -1) for v in values), np.int64, len(values))
        if (idx < 0).any():
            i = int(np.flatnonzero(idx < 0)[0])
            self._unknown(repr(values[i]), block, i)
        return torch.as_tensor(idx)

    def _unknown(self, shown: str, block, i: int) -> None:
        raise DataError(
            f"group {shown} of column {self.by!r} is not in the model "
            f"{self.path} ({len(self.labels)} groups); train with its rows or drop them",
            path=block.path,
            row=block.first_row + i,
        )

    def route(self, values: np.ndarray, block) -> torch.Tensor:
        """Each row's group index; an unknown label is an error naming its row."""
        idx = np.searchsorted(self.labels, values).clip(max=len(self.labels) - 1)
        unknown = self.labels[idx] != values
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            self._unknown(_label(values[i]), block, i)
        return torch.as_tensor(idx, dtype=torch.int64)

    def predict(self, X: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return self.bias[idx] + (X.double() * self.weight[idx]).sum(1)


def predict(model_path: str, data: str, output, delimiter, block_rows: int) -> None:
    """`predict` with a grouped model: each row by its group's coefficients."""
    model = GroupedModel(model_path)
    source = open_table(data, delimiter=delimiter, block_rows=block_rows)

    def blocks():
        for block, idx in model.blocks(source):
            yield {model.target: model.predict(block.X, idx).numpy()}

    write_table_blocks(output or "-", [model.target], blocks())


def evaluate(model_path, data, as_json, delimiter, block_rows, weight_col=None) -> None:
    """`evaluate` with a grouped model: metrics of the routed predictions."""
    model = GroupedModel(model_path)
    source = open_table(data, delimiter=delimiter, block_rows=block_rows)
    acc = StreamingMetrics(uncentered=not model.fit_intercept)
    for block, idx in model.blocks(source, [model.target], weight_col):
        pred = model.predict(block.X, idx)
        if bool(torch.isnan(pred).any()):
            i = int(torch.nonzero(torch.isnan(pred))[0, 0])
            raise DataError(
                f"group {model.shown(int(idx[i]))} has no fit in {model_path} (too few rows or "
                "collinear columns at training); drop its rows",
                path=block.path,
                row=block.first_row + i,
            )
        acc.update(block.Y, pred[:, None], block.w)
    values = {k: float(v[0]) for k, v in acc.result().items()}
    if as_json:
        print_json({"targets": {model.target: values}, "rows": acc.n, "weights": weight_col})
        return
    out = console()
    out.print(f"evaluated {esc(model_path)} on {acc.n:,} rows of {esc(data)}")
    out.print(metrics_table(metrics_title("Metrics", weight_col), {model.target: values}))


def summary(model_path: str, as_json: bool) -> None:
    """`summary` of a grouped model: per-group coefficients."""
    model = GroupedModel(model_path)
    names = (["intercept"] if model.fit_intercept else []) + model.features
    coef = (
        torch.cat([model.bias[:, None], model.weight], 1) if model.fit_intercept else model.weight
    )
    groups = {
        model.shown(g): {
            "nobs": int(model.nobs[g]),
            **dict(zip(names, map(_num, coef[g]), strict=True)),
        }
        for g in model.display_order()
    }
    record = {
        "estimator": "GroupedOLS", "by": model.by, "features": model.features,
        "target": model.target, "fit_intercept": model.fit_intercept,
        "coefficients": groups, "training": model.training,
    }  # fmt: skip
    if as_json:
        print_json(record)
        return
    from rich.table import Table

    out = console()
    out.print(
        f"[bold]GroupedOLS[/bold] by {esc(model.by)}: {len(groups):,} groups, {esc(model_path)}"
    )
    table = Table(title=f"Coefficients (first {min(_SHOWN, len(groups))})", title_justify="left")
    for name in [model.by, "nobs", *names]:
        table.add_column(esc(name), justify="right")
    for label, row in list(groups.items())[:_SHOWN]:
        table.add_row(label, *(f"{v:.10g}" if v is not None else "NaN" for v in row.values()))
    out.print(table)


def _num(v) -> float | None:
    v = float(v)
    return None if np.isnan(v) else v
