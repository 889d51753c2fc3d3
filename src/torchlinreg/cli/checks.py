"""What the CLI checks before it works: output paths, column choices, row counts.

Each check fails fast with a one-line :class:`DataError` that says what to do, before a
long fit is wasted or a file is damaged.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from typing import Any

from ..errors import DataError
from ..files.csvfile import value_hint
from ..files.tables import TableSource


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
        return  # /dev/stdout, a named pipe: written directly, see files.io.atomic_write
    try:
        fd, probe = tempfile.mkstemp(prefix=".torchlinreg-probe.", dir=folder)
    except OSError as exc:
        raise DataError(
            f"cannot write {what} {path!r}: {exc.strerror or exc} in folder {folder!r}; "
            "choose a folder you can write to"
        ) from None
    try:
        os.close(fd)
    finally:
        os.unlink(probe)  # even on Ctrl-C: no probe file is left behind


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
    if weight_col in targets_l:
        raise DataError(
            f"column {weight_col!r} is both a target and the --weights column; use another column"
        )
    _warn_numeric_header(source)
    # Unknown targets first: with a wrong delimiter, that is the message that helps.
    source._resolve([*targets_l, *([weight_col] if weight_col else [])])
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
        index = [c for c in chosen if saved_index(source, c)]
        if index:  # NOTE [a saved index is not a feature]
            chosen = [c for c in chosen if c not in index]
            warnings.warn(
                f"column(s) {', '.join(repr(c) for c in index)} look like a saved row index "
                "(pandas' to_parquet or to_csv), left out of the features; name them in "
                "--features to fit on them",
                UserWarning,
                stacklevel=2,
            )
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


def _warn_numeric_header(source: TableSource) -> None:
    """A file without a header line has its first row of data read as the names, and that
    row is then lost silently (an input hunt: 5 of 6 rows fitted); names that are all
    numbers say so."""
    names = source.column_names
    if len(names) < 2 or not all(_is_number(n) for n in names):
        return
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    warnings.warn(
        f"{source.path}: every column name is a number ({shown}): is its first line data? "
        "The first line is read as the header, and its values are not fitted; add a header "
        "line naming the columns",
        UserWarning,
        stacklevel=3,
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# NOTE [a saved index is not a feature]
# A frame saved by pandas keeps its row index: to_parquet as a column named in its
# metadata (``__index_level_0__`` when unnamed), to_csv as a first column with an empty
# name (``Unnamed: 0`` once pandas reads it back). Taken as every other numeric column,
# it became a feature: a shuffled frame's index got a coefficient, and predictions for new
# rows moved with their index (-29.9 for 1.0), silently. Such columns are left out of the
# default features with a warning; --features still takes them.
_INDEX_NAME = re.compile(r"__index_level_\d+__")
_FIRST_INDEX_NAME = re.compile(r"Unnamed: 0|")  # to_csv's: the first column only


def saved_index(source: TableSource, name: str) -> bool:
    """Whether column ``name`` looks like a saved pandas index (NOTE [a saved index is not
    a feature])."""
    first = getattr(source, "_first", None)
    if _INDEX_NAME.fullmatch(name) or name in getattr(first, "saved_index", ()):
        return True
    return bool(_FIRST_INDEX_NAME.fullmatch(name)) and source.column_names[:1] == [name]


def check_enough_rows(
    n_rows: int, n_features: int, opts: dict[str, Any], path: str, *, at_most: bool = False
) -> None:
    """Refuse a fit with fewer rows than coefficients: its answer would be arbitrary.

    With a ridge penalty (``--alpha``) the fit is determined whatever the number of rows.
    ``at_most``: ``n_rows`` is an upper bound (see :func:`check_rows_before_reading`).
    """
    n_params = n_features + (0 if opts["no_intercept"] else 1)
    if n_rows < n_params and opts["alpha"] == 0:
        what = f"{n_features} feature(s)" + ("" if opts["no_intercept"] else " + intercept")
        rows = "row(s) with a positive weight" if opts["weight_col"] else "data row(s)"
        raise DataError(
            f"{'at most ' if at_most else ''}{n_rows:,} {rows} for {n_params:,} coefficients "
            f"({what}); a least-squares fit needs at least one row per coefficient: add rows, "
            "use fewer --features, or give --alpha for a ridge fit",
            path=path,
        )


def check_rows_before_reading(source: TableSource, n_features: int, opts: dict[str, Any]):
    """Refuse n < p from the files alone, before a row is parsed or a state allocated.

    Ten thousand columns and fifty rows would otherwise allocate the (d + k)^2 state and
    read every row first. :meth:`TableSource.rows_at_most` bounds the rows from Parquet
    footers, .npy shapes and CSV line counts; under torchrun the merged count is
    checked after the fit instead.
    """
    if opts["alpha"] > 0 or getattr(source, "world_size", 1) > 1:
        return
    n_params = n_features + (0 if opts["no_intercept"] else 1)
    bound = source.rows_at_most(n_params)
    if bound < n_params:
        check_enough_rows(bound, n_features, opts, source.path, at_most=True)


class RowCount:
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
            yield block
        check_enough_rows(self.used, self.n_features, self.opts, self.path)


def check_outputs(opts: dict[str, Any]) -> None:
    """The model, checkpoint and plot folder of ``train`` can all be written."""
    check_writable(opts["output"], "model")
    if opts["checkpoint"]:
        check_writable(opts["checkpoint"], "checkpoint")
    if opts["plot_dir"]:
        check_folder_creatable(opts["plot_dir"], "plot folder")


def check_folder_creatable(folder: str, what: str) -> None:
    """``folder`` exists or can be made; nothing is created yet (a failed run leaves none)."""
    path = os.path.abspath(folder)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise DataError(
            f"cannot make the {what} {folder!r}: {path!r} is a file; choose another folder"
        )
    check_writable(os.path.join(path, "probe"), what)


def _same_path(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def check_train_paths(opts: dict[str, Any], data_paths: list[str]) -> None:
    """No output of ``train`` overwrites its input or another output; a checkpoint may be
    resumed in place."""
    if _same_path(opts["output"], opts["checkpoint"]):
        raise DataError(
            f"-o and --checkpoint name the same file: the model path {opts['output']!r} is the "
            "checkpoint of this run, and each would overwrite the other: choose another name"
        )
    check_not_input(
        opts["output"],
        "model",
        {"data file": data_paths, "checkpoint": [opts["checkpoint"], opts["resume"]]},
    )
    check_not_input(opts["checkpoint"], "checkpoint", {"data file": data_paths})


def distinct_output_columns(names: list[str], what: str) -> None:
    """Refuse an output table whose columns repeat a name (NOTE [output columns]).

    NOTE [output columns]
    Outputs are tables of named columns, built as name -> values: a repeated name kept one
    column's values under two headers. `predict --keep y` (y a target) printed the header
    y,x,y,y2 over three values a row, the kept y replaced by the prediction; a feature named
    nobs or rsquared overwrote a rolling path's count or R2, and one named intercept the
    summary's intercept, silently (an outputs hunt). Such names are refused, saying which.
    """
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise DataError(
                f"{what} would hold two columns named {n!r}; rename the column, or leave "
                "it out of --keep"
            )
        seen.add(n)


def refuse_reserved_features(features: list[str], reserved: set[str], what: str) -> None:
    """Features whose names an output keeps for its own columns (NOTE [output columns])."""
    clash = [f for f in features if f in reserved]
    if clash:
        raise DataError(
            f"feature {clash[0]!r} has a name that {what} keeps for one of its own columns; rename "
            "the column (or leave it out of --features)"
        )
