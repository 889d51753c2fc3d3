"""`train --by` / `--window`, and predict, evaluate and summary of grouped model files.

A grouped model file holds one least-squares summary per group (``models/groupstate.py``:
weights sum, means, centred co-moments) and each group's solution, in a safetensors file
of its own format (``torchlinreg-grouped-model``), so the single-model loader never takes
it for one of its own. Training streams: a group's rows may be anywhere in DATA. Group
labels are numbers (a store id) or text (a store name, coded as first met; the record
keeps the text of each code); ``--window W --order-by COL`` writes coefficient
paths (one row per window end) to a CSV or Parquet file instead, ordered by numbers or
times (``files/keys.py``); rows that tie on it keep their file order, with a warning.
``predict --missing keep`` and ``evaluate --missing drop`` read the file as written
(:class:`RawRows`): a row with a missing value or of a group not in the model is predicted
empty or left out, and :class:`LeftOut` counts such rows by why.
"""

from __future__ import annotations

import json
import struct
import sys
import time
import warnings
from typing import Any

import click
import numpy as np
import pyarrow as pa
import torch

from ..errors import DataError, ModelFileError
from ..files.io import write_table, write_table_blocks
from ..files.keys import (
    KeyStream,
    block_lines,
    check_numeric_keys,
    file_row,
    is_numeric,
    order_keys,
    text_labels,
)
from ..files.rawblocks import raw_blocks
from ..files.tables import open_table
from ..files.tensorfile import load_tensors, save_tensors
from ..models.groupstate import GroupedMoments
from ..stats.metrics import StreamingMetrics
from .checks import (
    check_not_input,
    check_train_paths,
    check_writable,
    choose_columns,
    distinct_output_columns,
    refuse_reserved_features,
)
from .output import console, esc, metrics_table, metrics_title, print_json
from .tableformula import kept_column, output_column, pd_numbers, to_frame
from .text import safe

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
    # --by is constant within a group: never a feature. The order column is one only where
    # --features names it (a time trend; it was dropped from an explicit list, silently)
    given = opts["features"] is not None
    features = [f for f in features if f != opts.get("by") and (given or f not in extra)]
    # NOTE [output columns]: the paths' and the summary's own columns
    own = {"nobs", "rsquared", "const", "intercept", "se_const", *(f"se_{f}" for f in features)}
    refuse_reserved_features(features, own, "a grouped or rolling fit's output")
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
        seen: set = set()
        try:
            for block in source.read_columns([*features, by], targets, weight_col):
                keys = block.X[:, -1].numpy()
                check_numeric_keys(source, by, keys, seen)
                block.X = block.X[:, :-1]
                yield block, keys
        except DataError as exc:
            if exc.column != by or "non-numeric" not in str(exc):
                raise
            # the keys read as numbers in the first block and hold text later: "numeric
            # columns need numbers" would send the user the wrong way (--by takes text)
            raise DataError(
                f"--by column {by!r} holds numbers in its first rows and text here; group "
                "keys may be numbers or text, but one kind: prefix the numeric ids with a letter "
                "(e.g. s1, s2), or fix the row",
                path=exc.path,
                row=exc.row,
                column=by,
            ) from None
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
    if by in read:
        check_numeric_keys(source, by, read[by], set())
    key, shown_key = _order_column(source, order_by, block, read)
    groups = shown_groups = None
    if by:
        shown_groups = read[by] if by in read else _text_column(source, by, block)
        groups = np.unique(shown_groups, return_inverse=True)[1].astype(np.float64)
    order = np.lexsort((key, groups) if by else (key,))  # stable: ties keep file order
    _warn_ties(key[order], None if by is None else groups[order], order_by, by,
               shown_key[order], None if by is None else shown_groups[order])  # fmt: skip
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


def _warn_ties(key, groups, order_by, by, shown_key, shown_groups) -> None:
    """Warn when rows (of one group) share their ``--order-by`` value: which window holds
    each is then decided by the file's order alone, and the paths repeat that value."""
    tied = key[1:] == key[:-1]
    if groups is not None:
        tied &= groups[1:] == groups[:-1]
    if not tied.any():
        return
    i = int(np.flatnonzero(tied)[0]) + 1
    value = shown_key[i]
    value = _label(value) if isinstance(value, float | np.floating) else repr(str(value))
    where = f"{order_by} {value}"
    if by is not None:
        g = shown_groups[i]
        where = f"{by} {_label(g) if isinstance(g, float | np.floating) else repr(str(g))}, {where}"
    n = int(tied.sum())
    verb = "row repeats" if n == 1 else "rows repeat"
    warnings.warn(
        f"{n:,} {verb} the --order-by {order_by!r} value of an earlier row"
        f"{'' if by is None else ' of the same --by group'} (first: {where}); tied rows keep "
        "their file order, so that order decides which windows hold them, and the output "
        f"repeats the value: drop duplicate rows, or order by a column without ties",
        UserWarning,
        stacklevel=3,
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
    stream = KeyStream(source, column)
    values = stream.all()
    _check_length(values, block, column)
    keys = order_keys(values, column, stream.place)
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

    def quoted(self, g: int) -> str:
        """Group ``g``'s label for a message: text quoted, numbers as they are."""
        return repr(self.text[g]) if self.text is not None else _label(self.labels[g])

    def blocks(self, source, targets=None, weight_col=None, hint=""):
        """``(block of the features, each row's group index)`` over ``source``; an unknown
        group is an error naming its row, ``hint`` its last words (what else to do)."""
        if self.text is not None:  # numbers in the column are matched as their text
            stream = KeyStream(source, self.by)
            for block in source.read_columns(self.features, targets, weight_col):
                raw = stream.take(block.n_rows)
                if not (pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)):
                    self._refuse_ambiguous_numbers(source, block)
                values = text_labels(raw)
                idx = self._text_index(values)
                self._refuse_unknown(idx, lambda i, v=values: repr(v[i]), source, block, hint)
                yield block, torch.as_tensor(idx)
            return
        for block in source.read_columns([*self.features, self.by], targets, weight_col):
            keys = block.X[:, -1].numpy()
            block.X = block.X[:, :-1]
            idx = self._number_index(keys)
            self._refuse_unknown(idx, lambda i, k=keys: _label(k[i]), source, block, hint)
            yield block, torch.as_tensor(idx)

    def _refuse_ambiguous_numbers(self, source, block) -> None:
        """A column of numbers matched to text labels by their text ("1.0" reads as "1"):
        where two labels are one number ("1" and "1.0", "01" and "1") the match is a guess,
        and rows went to the first silently (a CLI hunt); refuse it."""
        same: dict[float, list[str]] = {}
        for t in self.text:
            try:
                same.setdefault(float(t), []).append(t)
            except ValueError:
                continue
        clash = next((texts for texts in same.values() if len(texts) > 1), None)
        if clash is not None:
            raise DataError(
                f"column {self.by!r} holds numbers, but the model's groups {clash[0]!r} and "
                f"{clash[1]!r} are the same number: a number cannot tell them apart; give the "
                "column as text, written as in training",
                path=block.path,
            )

    def _text_index(self, values: np.ndarray) -> np.ndarray:
        """Each text label's group index, ``UNKNOWN`` for a label not in the model."""
        get = self.codes.get
        return np.fromiter((get(v, UNKNOWN) for v in values), np.int64, len(values))

    def _number_index(self, keys: np.ndarray) -> np.ndarray:
        """Each numeric label's group index, ``UNKNOWN`` for a label not in the model."""
        idx = np.searchsorted(self.labels, keys).clip(max=len(self.labels) - 1)
        return np.where(self.labels[idx] == keys, idx, UNKNOWN)

    def _refuse_unknown(self, idx, shown, source, block, hint: str) -> None:
        unknown = np.flatnonzero(idx == UNKNOWN)
        if len(unknown):
            i = int(unknown[0])
            self.unknown(shown(i), source, block.path, block.first_row + i, hint)

    def unknown(self, shown: str, source, path: str, row: int, hint: str = "") -> None:
        raise DataError(
            f"group {shown} of column {self.by!r} is not in the model "
            f"{self.path} ({len(self.labels)} groups); train with its rows or drop them" + hint,
            path=path,
            row=file_row(source, path, row),
        )

    def raw_rows(self, source, numbers=(), keep=(), block_rows=None):
        """:class:`RawRows` of the file as written, for ``--missing`` and ``--keep``.

        ``numbers`` (a target, a weight) are read as numbers beside the features, ``keep``
        as they are. Nothing missing or unknown is refused here: the rows say what they lack.
        """
        cols = list(dict.fromkeys([*self.features, self.by, *numbers, *keep]))
        kinds = dict.fromkeys([*self.features, *numbers], "number")
        if self.text is None:
            kinds[self.by] = "number"
        for batch, first_row, path in raw_blocks(source, cols, block_rows):
            frame = to_frame(batch, kinds, path, block_lines(source, path, first_row))
            X = frame[self.features].to_numpy(dtype=np.float64, na_value=np.nan)
            if self.text is None:
                keys = frame[self.by].to_numpy(dtype=np.float64, na_value=np.nan)
                idx, no_key = self._number_index(keys), np.isnan(keys)
            else:
                column = batch.column(self.by)
                idx = self._text_index(text_labels(column))
                no_key = column.is_null().to_numpy(zero_copy_only=False)
            idx[no_key] = NO_KEY
            yield RawRows(self, frame, X, idx, path, first_row)

    def predict(self, X: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return self.bias[idx] + (X.double() * self.weight[idx]).sum(1)


UNKNOWN, NO_KEY = -1, -2  # group indices of a label not in the model, and of no label


class RawRows:
    """One block read as written: features with NaN where missing, each row's group."""

    def __init__(self, model, frame, X, idx, path, first_row) -> None:
        self.model, self.frame, self.X, self.idx = model, frame, X, idx
        self.path, self.first_row = path, first_row

    def predict(self) -> np.ndarray:
        """Predictions, NaN where a feature or the group is missing or the group unknown."""
        pred = np.full(len(self.X), np.nan)
        ok = (self.idx >= 0) & np.isfinite(self.X).all(1)
        if ok.any():
            X, idx = torch.from_numpy(self.X[ok]), torch.from_numpy(self.idx[ok])
            pred[ok] = self.model.predict(X, idx).numpy()
        return pred

    def numbers(self, column: str) -> np.ndarray:
        return self.frame[column].to_numpy(dtype=np.float64, na_value=np.nan)

    def refuse(self, source, hint: str) -> None:
        """The first row with a missing feature, no group or an unknown group: an error."""
        bad_x = ~np.isfinite(self.X)
        bad = bad_x.any(1) | (self.idx < 0)
        if not bad.any():
            return
        i = int(np.flatnonzero(bad)[0])
        model, row = self.model, self.first_row + i
        if self.idx[i] == UNKNOWN:
            shown = self.frame[model.by].iloc[i]
            shown = repr(str(shown)) if model.text is not None else _label(float(shown))
            model.unknown(shown, source, self.path, row, hint)
        if self.idx[i] == NO_KEY:
            column, what = model.by, "a missing group label; fill it"
        else:
            j = int(np.flatnonzero(bad_x[i])[0])
            column, v = model.features[j], float(self.X[i, j])
            what = "a missing value; fill it" if np.isnan(v) else f"value {v!r}; fix it"
        raise DataError(
            f"{what}{hint}",
            path=self.path,
            row=file_row(source, self.path, row),
            column=column,
        )


_WHY = {
    "missing_values": "with missing or non-finite values",
    "unknown_group": "of groups not in the model",
    "group_without_fit": "of groups without a fit at training",
}


class LeftOut:
    """Rows without a prediction or left out of the metrics, counted by why; the first of
    each kind named by its file and row."""

    def __init__(self, model, source) -> None:
        self.model, self.source = model, source
        self.counts = dict.fromkeys(_WHY, 0)
        self.first: dict[str, tuple[str, int, str]] = {}

    def add(self, why: str, rows: np.ndarray, path: str, first_row: int, shown) -> None:
        """Rows ``rows`` (indices in their block) left out for ``why``; ``shown(i)`` is
        the group label of row ``i`` as written."""
        if not len(rows):
            return
        self.counts[why] += len(rows)
        if why not in self.first:
            i = int(rows[0])
            self.first[why] = (path, first_row + i, shown(i))

    def add_block(self, rows: RawRows, pred: np.ndarray, also_missing=None) -> np.ndarray:
        """Count a block's rows without a prediction; the mask of the rows with one."""
        missing = (rows.idx == NO_KEY) | ~np.isfinite(rows.X).all(1)
        if also_missing is not None:
            missing |= also_missing
        unknown = (rows.idx == UNKNOWN) & ~missing
        no_fit = ~np.isfinite(pred) & ~missing & ~unknown
        by = rows.frame[self.model.by]
        label = self.model.text is not None
        shown = lambda i: repr(str(by.iloc[i])) if label else _label(float(by.iloc[i]))  # noqa: E731
        for why, mask in (("missing_values", missing), ("unknown_group", unknown),
                          ("group_without_fit", no_fit)):  # fmt: skip
            self.add(why, np.flatnonzero(mask), rows.path, rows.first_row, shown)
        return ~(missing | unknown | no_fit)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def words(self) -> str:
        """``5 with missing values (first: d.csv, row 3), 2 of groups not in ...``."""
        parts = []
        for why, count in self.counts.items():
            if not count:
                continue
            path, row, shown = self.first[why]
            group = "" if why == "missing_values" else f"group {shown}, "
            where = f"{group}{path}, row {file_row(self.source, path, row)}"
            parts.append(f"{count:,} {_WHY[why]} (first: {where})")
        return "; ".join(parts)


def predict(
    model_path: str, data: str, output, delimiter, block_rows: int,
    missing: str = "raise", interval: float | None = None, keep: str | None = None,
) -> None:  # fmt: skip
    """`predict` with a grouped model: each row by its group's coefficients.

    ``missing="keep"`` predicts rows with a missing feature or group label, or a group not
    in the model, as empty (NaN), rows in order; one warning counts the empty rows by why.
    """
    if interval is not None:
        raise click.UsageError(
            "--interval is for single models; a grouped model (train --by) has no intervals: "
            "predict without it"
        )
    if output:
        check_writable(output, "output")
    model = GroupedModel(model_path)
    source = open_table(data, delimiter=delimiter, block_rows=block_rows)
    check_not_input(output, "output", {"data file": source.paths, "model": [model_path]})
    keep_cols = [c.strip() for c in keep.split(",") if c.strip()] if keep else []
    source._resolve(keep_cols)
    names = [*keep_cols, model.target]
    distinct_output_columns(names, "the predictions")  # NOTE [output columns]
    shown = [safe(n) for n in names] if not output and sys.stdout.isatty() else names
    left, rows_read = LeftOut(model, source), 0
    hint = ", or pass --missing keep to predict such rows as empty"

    def blocks():
        nonlocal rows_read
        if missing == "raise" and not keep_cols:  # the numeric reader: no pandas
            for block, idx in model.blocks(source, hint=hint):
                pred = model.predict(block.X, idx).numpy()
                no_fit = np.flatnonzero(np.isnan(pred))
                if len(no_fit):
                    label = lambda i, idx=idx: model.quoted(int(idx[i]))  # noqa: E731
                    left.add("group_without_fit", no_fit, block.path, block.first_row, label)
                rows_read += len(pred)
                yield {shown[-1]: pred}
            return
        for rows in model.raw_rows(source, keep=keep_cols, block_rows=block_rows):
            if missing == "raise":
                rows.refuse(source, hint)
            pred = rows.predict()
            left.add_block(rows, pred)
            rows_read += len(pred)
            out = [kept_column(rows.frame[c]) for c in keep_cols] + [pred]
            yield {n: output_column(v) for n, v in zip(shown, out, strict=True)}

    write_table_blocks(output or "-", shown, blocks())
    if left.total:
        warnings.warn(
            f"{left.total:,} of {rows_read:,} rows predicted empty: {left.words()}",
            UserWarning,
            stacklevel=2,
        )


def evaluate(
    model_path, data, as_json, delimiter, block_rows, weight_col=None, missing="raise"
) -> None:
    """`evaluate` with a grouped model: metrics of the routed predictions.

    ``missing="drop"`` leaves out rows with a missing value (feature, target, weight or
    group label), of a group not in the model, or of a group without a fit, and counts
    them by why; otherwise any of these is an error naming its row.
    """
    model = GroupedModel(model_path)
    source = open_table(data, delimiter=delimiter, block_rows=block_rows)
    if weight_col is not None and weight_col in (*model.features, model.target, model.by):
        raise DataError(
            f"column {weight_col!r} is a column of the model {model_path} and the --weights "
            "column; use another column"
        )
    acc = StreamingMetrics(uncentered=not model.fit_intercept)
    left = LeftOut(model, source)
    hint = ", or pass --missing drop to leave such rows out"
    if missing == "raise":
        for block, idx in model.blocks(source, [model.target], weight_col, hint=hint):
            pred = model.predict(block.X, idx)
            if bool(torch.isnan(pred).any()):
                i = int(torch.nonzero(torch.isnan(pred))[0, 0])
                raise DataError(
                    f"group {model.shown(int(idx[i]))} has no fit in {model_path} (too few rows "
                    f"or collinear columns at training); drop its rows{hint}",
                    path=block.path,
                    row=file_row(source, block.path, block.first_row + i),
                )
            acc.update(block.Y, pred[:, None], block.w)
    else:
        numbers = [model.target]
        for rows in model.raw_rows(source, numbers, [weight_col] if weight_col else []):
            y = rows.numbers(model.target)
            w = None
            if weight_col:
                line = block_lines(source, rows.path, rows.first_row)
                w = pd_numbers(rows.frame[weight_col], weight_col, rows.path, line)
            lacking = ~np.isfinite(y) | (False if w is None else ~np.isfinite(w))
            pred = rows.predict()
            ok = left.add_block(rows, pred, lacking)
            if ok.any():
                wt = None if w is None else torch.from_numpy(w[ok])
                acc.update(
                    torch.from_numpy(y[ok])[:, None], torch.from_numpy(pred[ok])[:, None], wt
                )
    if not acc.n and left.total:
        raise DataError(
            f"every row was left out, nothing to evaluate: {left.words()}", path=source.path
        )
    if acc.n and not acc.sum_w > 0:
        raise DataError(
            f"every row has weight 0 in column {weight_col!r}: nothing to evaluate; "
            "give some rows a positive weight",
            path=source.path,
        )
    values = {k: float(v[0]) for k, v in acc.result().items()}
    if as_json:
        report = {"targets": {model.target: values}, "rows": acc.n}
        if missing != "raise":
            report["rows_dropped"] = left.total
            report["rows_dropped_why"] = dict(left.counts)
        print_json({**report, "weighted": weight_col is not None, "weights": weight_col})
        return
    out = console()
    out.print(f"evaluated {esc(model_path)} on {acc.n:,} rows of {esc(data)}")
    if left.total:
        out.print(esc(f"{left.total:,} rows dropped: {left.words()}"))
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
