"""Formulas over files: kinds and levels from a light first pass, then encoded row blocks.

A file larger than memory is never held: the first pass reads only the formula's columns
and keeps, per column, its kind (number, bool, text: every value of the whole file
decides) and the distinct values of the categorical ones; the encoding is learned from the
first block with those columns made categorical over every level the file holds (so a
level that first appears in the last block still gets its column). Later passes encode
block by block with that encoding, exactly as ``fit_formula`` encodes a DataFrame.

Stateful transforms (``center``, ``scale``, ``poly``...) need every row when they are
learned: a formula with one is refused here (fit it in Python with ``fit_formula``).

A message names a row by its file line (NOTE [CSV row numbers] in ``files/csvfile.py``):
the functions that read a block take ``line``, row ``i`` of the block -> its file line
(:func:`~torchlinreg.files.keys.block_lines`), and their callers pass the message on as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..files.keys import block_lines
from ..files.rawblocks import raw_blocks
from ..formula.columns import used_names
from ..formula.encoding import Design, Encoding

MAX_LEVELS = 100_000
_TRUE, _FALSE = {"true", "t", "yes"}, {"false", "f", "no"}
_ZERO_ONE = ("0", "1")
_TRUE_1, _FALSE_0 = _TRUE | {"1"}, _FALSE | {"0"}  # a bool column's values (see below)

# NOTE [booleans spelled two ways]
# One file of a folder wrote a flag as True/False, another as 1/0 (a CSV export and a
# database dump): each block's kind was right, and merged they made a text column of four
# levels, "0", "1", "False" and "True", fitted as three dummies where one was meant. A
# column whose blocks are words of truth and numbers that are all 0 or 1 is read as
# booleans, as pyarrow reads such a column within one file; 1/0 alone stays a number.
# C(name) or C(name, ...): a bare column made categorical (C(age // 10) is a number's)
_C_ARG = re.compile(r"\bC\(\s*(?:`([^`]+)`|([A-Za-z_][\w.]*))\s*[,)]")


@dataclass
class EncodedBlock:
    design: Design
    w: np.ndarray | None
    first_row: int
    path: str
    frame: object  # the block as a DataFrame (for --keep columns)


def formula_columns(formula: str, source) -> list[str]:
    """The file's columns the formula reads (its unknown names are refused later)."""
    from formulaic import Formula

    from ..formula.safety import check_formula

    check_formula(formula)
    names = used_names(Formula(formula))
    lacking = [n for n in names if n not in source.column_names]
    if lacking:
        source._resolve(lacking[:1])  # unknown column: names close matches
    return names


def _kind_of(values) -> str:
    """number, bool or text for one block's non-null text values."""
    import pandas as pd

    if len(values) == 0:
        return "number"
    lowered = values.str.lower()
    if lowered.isin(_TRUE | _FALSE).all():
        return "bool"
    return "number" if pd.to_numeric(values, errors="coerce").notna().all() else "text"


def _plain_categories(frame):
    """A Parquet dictionary column (pandas Categorical) as the values it holds: it was
    taken for a number column ("unexpected ValueError" under C(), "'hi' is not a number"
    without), and its levels are taken as a CSV's are, from every value of the file."""
    import pandas as pd

    for c in frame.columns:
        if isinstance(frame[c].dtype, pd.CategoricalDtype):
            col = frame[c]
            frame[c] = col.astype(col.cat.categories.dtype)
    return frame


def _merge_kind(a: str | None, b: str) -> str:
    if a is None or a == b:
        return b
    return "text"  # numbers in one block and words in another: text, as pandas reads it


def learn(source, formula: str, weight_col: str | None, block_rows: int):
    """First pass: the kind of each formula column and the levels of categorical ones."""
    import pandas as pd

    columns = formula_columns(formula, source)
    categorical = {m.group(1) or m.group(2) for m in _C_ARG.finditer(formula)}
    typed: dict[str, str] = {}
    kinds: dict[str, str | None] = dict.fromkeys(columns)
    levels: dict[str, set] = {c: set() for c in columns}
    seen: dict[str, set[str]] = {c: set() for c in columns}  # kinds of text blocks
    zero_one = dict.fromkeys(columns, True)  # every number seen as text is 0 or 1
    for batch, _, _ in raw_blocks(source, columns, block_rows):
        frame = _plain_categories(batch.to_pandas())
        for c in columns:
            col = frame[c].dropna()
            if pd.api.types.is_string_dtype(col.dtype) or col.dtype == object:
                text = col.astype(str)
                kind = _kind_of(text)
                if kind == "number":
                    zero_one[c] = zero_one[c] and bool(text.str.strip().isin(_ZERO_ONE).all())
                seen[c].add(kind)
                kinds[c] = _merge_kind(kinds[c], kind)
            else:
                typed[c] = "bool" if pd.api.types.is_bool_dtype(col.dtype) else "number"
                kinds[c] = typed[c]
            if len(levels[c]) <= MAX_LEVELS:
                levels[c].update(col.unique().tolist())
    kinds = {c: k or "number" for c, k in kinds.items()}
    for c in columns:  # NOTE [booleans spelled two ways]
        if kinds[c] == "text" and seen[c] == {"bool", "number"} and zero_one[c]:
            kinds[c] = "bool"
            levels[c] = {False, True}
    for c in columns:
        if kinds[c] == "text" and len(levels[c]) > MAX_LEVELS:
            raise DataError(
                f"column {c!r} has more than {MAX_LEVELS} distinct values; a categorical "
                "column with so many levels is not a model column: leave it out",
                path=source.path,
            )
    wanted = {c for c in columns if kinds[c] != "number" or c in categorical}
    return columns, kinds, {c: _typed_levels(levels[c], kinds[c]) for c in wanted}


def _typed_levels(values: set, kind: str) -> list:
    """Levels as the blocks will hold them (CSV text made numbers), sorted as pandas sorts."""
    import pandas as pd

    if kind == "bool":
        return [False, True]
    if kind == "number":
        values = set(pd.to_numeric(pd.Series(sorted(map(str, values)))).tolist())
    return sorted(values, key=lambda v: (str(type(v)), v))


def to_frame(batch, kinds: dict[str, str], path: str, line: Callable[[int], int]):
    """A raw block as a DataFrame of the training kinds (a value of the wrong kind is a
    one-line error naming file, line ``line(i)`` of its row ``i`` and column)."""
    import pandas as pd

    frame = _plain_categories(batch.to_pandas())
    _exact_kept_integers(batch, kinds, frame)
    for c, kind in kinds.items():
        if c not in frame.columns:
            continue
        col = frame[c]
        if kind == "text":
            frame[c] = col.astype(object).where(col.notna(), None)
            continue
        if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            continue  # Parquet: typed already
        if kind == "number":
            num = pd.to_numeric(col, errors="coerce")
        else:
            low = col.str.lower()
            num = low.str.strip().map(
                lambda v: True if v in _TRUE_1 else False if v in _FALSE_0 else None
            )
        bad = (num.isna() & col.notna()).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{col.iloc[i]!r} is not a {kind} value, as this column held in training; "
                "fix the value or the column",
                path=path,
                row=line(i),
                column=c,
            )
        frame[c] = num if kind == "number" else num.astype(object)
    return frame


# NOTE [kept integers with gaps]
# pandas reads an integer column with a missing value as float64: a kept id of 2^60 + 1
# came out of `predict --keep id` as 1.152921504606847e+18 (every id past 2^53 rounded,
# silently) and a Parquet file got a float column for an integer one. Columns that are
# only kept (not the model's) keep Arrow's own type, nulls and all, up to the writer.


def _exact_kept_integers(batch, kinds: dict[str, str], frame) -> None:
    import pandas as pd
    import pyarrow as pa

    for c in frame.columns:
        if c in kinds:
            continue
        column = batch.column(c)
        if pa.types.is_integer(column.type) and column.null_count:
            frame[c] = pd.Series(column.to_pandas(types_mapper=pd.ArrowDtype), index=frame.index)


def kept_column(col):
    """A ``--keep`` column for the writer: missing values of text as None (pyarrow reads
    an object array that starts with NaN as numbers, and then fails on the text); Arrow's
    integers with gaps as an Arrow array (NOTE [kept integers with gaps])."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(col.dtype, pd.ArrowDtype):
        return pa.array(col)
    if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy()
    return col.astype(object).where(col.notna(), None).to_numpy()


def output_column(values):
    """A column for the writer: contiguous numpy, or an Arrow array as it is."""
    import pyarrow as pa

    return values if isinstance(values, pa.Array) else np.ascontiguousarray(values)


def learn_encoding(
    source, formula: str, weight_col: str | None, block_rows: int, numbers: list[str] = ()
):
    """Kinds and levels from the first pass, then the encoding from the first block;
    ``numbers``: columns named as numeric (-t, --features), which text may not make
    categorical."""
    import pandas as pd

    columns, kinds, levels = learn(source, formula, weight_col, block_rows)
    for c in numbers:
        if kinds.get(c) == "text":
            words = sorted(str(v) for v in levels[c] if _kind_of(pd.Series([str(v)])) == "text")
            example = f" (e.g. {words[0]!r})" if words else ""
            raise DataError(
                f"column {c!r} holds text beside numbers{example}; "
                "--missing drop leaves out missing values, not words: fix or drop those rows, "
                f"or write a formula with C({c}) for a categorical column",
                path=source.path,
            )
    batch, first_row, path = next(iter(raw_blocks(source, columns, block_rows)))
    proto = to_frame(batch, kinds, path, block_lines(source, path, first_row))
    for c, cats in levels.items():
        proto[c] = pd.Categorical(proto[c], categories=cats)
    enc, _ = Encoding.fit(formula, proto, missing="drop")
    if enc.rhs.transform_state or enc.lhs.transform_state:
        raise DataError(
            f"formula {formula!r} uses a stateful transform (center, scale, standardize, "
            "poly, bs...), which needs every row at once; transform the column in the file, "
            "or fit in Python with LinearRegression().fit_formula(...) and torchlinreg.save"
        )
    enc.kinds = {c: kinds[c] for c in columns}
    return enc


def encoded_blocks(
    source,
    enc: Encoding,
    *,
    targets: bool,
    weight_col: str | None,
    missing: str,
    keep: list[str] = (),
    block_rows: int | None = None,
) -> Iterator[EncodedBlock]:
    """Each block of the file encoded with ``enc``; errors name the file's line."""
    columns = [c for c in enc.kinds if c in source.column_names]
    if not targets:
        from formulaic import Formula

        rhs_only = set(used_names(Formula(enc.formula).rhs))
        columns = [c for c in columns if c in rhs_only]
    extra = [c for c in [*keep, weight_col] if c and c not in columns]
    for batch, first_row, path in raw_blocks(source, [*columns, *extra], block_rows):
        line = block_lines(source, path, first_row)
        frame = to_frame(batch, enc.kinds, path, line)
        try:
            design = enc.design(frame, missing=missing, targets=targets)
        except DataError as exc:
            row = getattr(exc, "row", None)
            if row is None:
                hint = ""
                if targets and "outside a categorical term's levels" in str(exc):
                    # a bare C(column) has every level of the file (the first pass);
                    # C(age // 10) has the first block's
                    hint = (
                        "; C() of an expression takes its levels from the first block: "
                        "list them (C(expr, levels=[...])) or raise --block-rows"
                    )
                raise DataError(str(exc) + hint, path=path) from None
            message = re.sub(r" at row \d+ \(counting from 1\)", "", str(exc))
            column = getattr(exc, "column", None)
            raise DataError(message, path=path, row=line(row - 1), column=column) from None
        w = None
        if weight_col:
            w = pd_numbers(frame[weight_col], weight_col, path, line)[design.rows]
            if missing == "drop" and np.isnan(w).any():
                design = _without(design, ~np.isnan(w))
                w = w[~np.isnan(w)]
        yield EncodedBlock(design, w, first_row, path, frame)


def _without(design: Design, keep: np.ndarray) -> Design:
    complete = design.complete.copy()
    complete[design.rows[~keep]] = False
    return Design(
        design.X[keep],
        None if design.Y is None else design.Y[keep],
        design.rows[keep],
        design.index[keep],
        design.dropped + int((~keep).sum()),
        complete,
    )


def pd_numbers(col, name: str, path: str, line: Callable[[int], int]) -> np.ndarray:
    """A column as float64 numbers (missing: NaN); a non-number or a negative value (a
    weight) is an error naming line ``line(i)`` of its row ``i``."""
    import pandas as pd

    num = np.array(pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64))
    bad = np.isnan(num) & col.notna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{col.iloc[i]!r} is not a number", path=path, row=line(i), column=name)
    if (num < 0).any():
        i = int(np.flatnonzero(num < 0)[0])
        raise DataError(
            # float(): numpy 2 writes a numpy scalar's repr as np.float64(-2.0)
            f"negative weight {float(num[i])!r}; sample weights must be >= 0",
            path=path,
            row=line(i),
            column=name,
        )
    return num
