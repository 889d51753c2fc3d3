"""A formula's encoding: learned once from the training table, applied to any later table.

:meth:`Encoding.fit` turns a formula and a table into design and target matrices with
formulaic (treatment coding of text, categorical and boolean columns, interactions,
``I()``, ``np.log()``, ``center``/``scale``, ``- 1``) and keeps what it learned: levels,
reference levels, contrasts and stateful transforms' parameters. :meth:`Encoding.design`
applies exactly that to new rows, so the columns are the training columns whatever levels
the new rows show; a level unseen in training is a one-line DataError naming column,
value and row (or, with ``missing="keep"``, an incomplete row). :meth:`to_json` and
:meth:`from_json` give the encoding as plain JSON (no pickle; reading validates it).

Columns are named as statsmodels (patsy) names them: ``Intercept``, ``C(g)[T.b]``,
``x1:x2``, ``np.log(x)``, ``I(x ** 2)``. Boolean columns are categorical
(``flag[T.True]``), as in patsy. The order can differ: formulaic sorts terms by degree
and keeps the formula's order within one, where patsy puts terms of categorical factors
only first (``invest ~ value + C(firm)``: ours value, then the firms; statsmodels' the
firms first), so compare results by name (``res.params[theirs.params.index]``).
Formulas see the table's columns, numpy as ``np`` and formulaic's transforms, and nothing
of the caller's variables (:mod:`.safety` checks every term).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"y": [1.0, 2, 3, 5], "x": [0.0, 1, 2, 3], "g": list("abab")})
    >>> enc, d = Encoding.fit("y ~ x + C(g)", df)
    >>> enc.columns, d.X.shape
    (['Intercept', 'x', 'C(g)[T.b]'], (4, 2))
    >>> enc.design(pd.DataFrame({"x": [1.0], "g": ["b"]})).X.tolist()
    [[1.0, 1.0]]
"""

from __future__ import annotations

import copy
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError
from . import jsonstate
from .columns import _complete_rows, _located, _raise_missing, _variables, used_names
from .safety import check_formula

FORMAT = "torchlinreg.formula"
VERSION = 1
MISSING_FIT = ("raise", "drop")
MISSING_USE = ("raise", "drop", "keep")
INTERCEPT = "Intercept"
KINDS = ("number", "bool", "text")
_ABSENT = re.compile(r"`([^`]+)` is not present in the dataset")


@dataclass
class Design:
    """Rows of a table encoded: ``X`` ``(m, d)`` float64 without the intercept column,
    ``Y`` ``(m, k)`` or None, ``rows`` the positions in the table they came from (all rows
    with ``missing="keep"``: incomplete ones are NaN), ``index`` the table's labels of those
    rows, ``dropped`` how many rows were left out, ``complete`` which rows have values."""

    X: np.ndarray
    Y: np.ndarray | None
    rows: np.ndarray
    index: Any
    dropped: int
    complete: np.ndarray


def as_frame(data) -> Any:
    """A pandas DataFrame from a DataFrame, a dict of columns, polars or pyarrow tables."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):  # polars, pyarrow
        return data.to_pandas()
    if isinstance(data, dict):
        return pd.DataFrame(data)
    raise DataError(
        f"data for a formula is a table (pandas, polars, pyarrow or a dict of columns); "
        f"got {type(data).__name__}"
    )


def _booleans_as_categories(df):
    """patsy codes booleans as categories (``flag[T.True]``); formulaic as 0/1 numbers."""
    import pandas as pd

    flags = [c for c in df.columns if pd.api.types.is_bool_dtype(df[c].dtype)]
    if not flags:
        return df
    df = df.copy()
    for c in flags:
        df[c] = pd.Categorical(df[c], categories=[False, True])
    return df


# NOTE [an implicit constant]
# "y ~ C(q) - 1 + x" has no intercept column, but the dummies of every level of q sum to
# one: the constant is in the design's span, and statsmodels then reports the centred R2,
# df_model = rank - 1 and ess = tss - ssr. ``ols(formula)`` tested the rows for it (as
# statsmodels does: rank of [1 | X] against X), but a fit_formula estimator, a saved model
# and `train --formula` (streamed, no rows kept) reported the uncentred R2 of a model
# without a constant: 0.9927 against 0.9559 on macrodata by quarter, F 5416 against 1074,
# silently. The encoding now knows it from the formula's structure: a term whose factors
# are all categorical and coded with every level (formulaic's full-rank coding, which it
# gives the first categorical term of a formula without an intercept) spans the constant,
# and its columns sum to it. Model files keep their names; files written before read none.


def constant_columns(spec) -> list[str]:
    """The columns of the first term of the formulaic ModelSpec ``spec`` coded with every
    level of categorical factors only: they sum to one (NOTE [an implicit constant]);
    empty where there is none."""
    kinds = {str(k): str(getattr(v[0], "value", v[0])) for k, v in spec.encoder_state.items()}

    def every_level(term) -> bool:
        factors = list(term.factors)
        return bool(factors) and all(
            kinds.get(str(f.factor.expr)) == "categorical" and not f.reduced for f in factors
        )

    for structure in spec.structure or ():
        terms = list(structure.scoped_terms)
        if len(terms) == 1 and every_level(terms[0]):
            return [str(c) for c in structure.columns]
    return []


class Encoding:
    """The formula, its two sides' formulaic ModelSpecs and the design's column names."""

    def __init__(
        self,
        formula: str,
        rhs,
        lhs,
        columns: list[str],
        targets: list[str],
        kinds=None,
        constant_columns: list[str] | None = None,
    ) -> None:
        self.formula = formula
        self.rhs = rhs
        self.lhs = lhs
        self.columns = list(columns)
        self.targets = list(targets)
        # what each table column read was in training: "number", "bool" or "text" (a CSV
        # read later turns its text into the same kinds: files.rawblocks)
        self.kinds: dict[str, str] = dict(kinds or {})
        # NOTE [an implicit constant]: no intercept, but these columns sum to one
        self.constant_columns: list[str] = list(constant_columns or [])

    @property
    def fit_intercept(self) -> bool:
        return INTERCEPT in self.columns

    @property
    def features(self) -> list[str]:
        """The design's columns without the intercept: the model's feature names."""
        return [c for c in self.columns if c != INTERCEPT]

    # ---- learning ---------------------------------------------------------------------
    @classmethod
    def fit(cls, formula: str, data, *, missing: str = "raise") -> tuple[Encoding, Design]:
        """Learn the encoding from ``data`` and encode it; ``missing`` is raise or drop."""
        from formulaic import model_matrix

        if missing not in MISSING_FIT:
            raise ValueError(f"missing must be one of {MISSING_FIT}; got {missing!r}")
        check_formula(formula)
        if "~" not in formula:
            raise DataError(f"formula {formula!r} has no '~'; write it as 'y ~ x1 + x2'")
        df = _booleans_as_categories(as_frame(data))
        table = df.reset_index(drop=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # pandas inside formulaic
                mm = model_matrix(formula, table, na_action="drop", context={}, output="pandas")
        except Exception as exc:
            absent = _ABSENT.search(str(exc))
            if absent:
                raise DataError(
                    f"the data has no column {absent.group(1)!r}, which formula {formula!r} "
                    f"uses; columns: {[str(c) for c in table.columns][:12]}"
                ) from None
            # formulaic takes a bare Treatment as C()'s levels (patsy takes it as the class)
            hint = (
                "; write the contrast as Treatment() (with parentheses)"
                if re.search(r",\s*Treatment\s*\)", formula)
                else ""
            )
            raise DataError(
                f"cannot encode formula {formula!r}: {_first_line(exc)}{hint}"
            ) from None
        rows = np.asarray(mm.rhs.index, dtype=np.int64)
        dropped = len(table) - len(rows)
        if dropped and missing == "raise":
            _raise_missing(table, rows, mm.rhs.model_spec, mm.lhs.model_spec)
        # NOTE [values outside the levels given]: C(g, levels=[...]) coded a value not in
        # the list as the reference level and kept its row (formulaic warns that it "casts
        # to nan", and does not drop it): 600 rows where statsmodels refuses, or fits the
        # 441 valid ones with another intercept (a formula hunt)
        outside = ~_complete_rows(table, mm.rhs.model_spec, raise_=False)[rows]
        keep = None
        if outside.any():
            i = int(rows[np.flatnonzero(outside)[0]])
            if missing == "raise":
                raise DataError(
                    f"row {i + 1} (counting from 1) holds a value outside the levels the "
                    "formula gives C(); pass missing='drop' to leave such rows out, or add "
                    "the level"
                )
            keep = ~outside
            rows = rows[keep]
            dropped = len(table) - len(rows)
        enc = cls(
            formula,
            mm.rhs.model_spec,
            mm.lhs.model_spec,
            list(mm.rhs.columns),
            [str(c) for c in mm.lhs.columns],
            _kinds(table, [mm.rhs.model_spec, mm.lhs.model_spec]),
            [] if INTERCEPT in mm.rhs.columns else constant_columns(mm.rhs.model_spec),
        )
        enc._check_savable()
        X = _matrix(mm.rhs, enc.features)
        Y = _matrix(mm.lhs, enc.targets)
        if keep is not None:
            X, Y = X[keep], Y[keep]
        complete = np.zeros(len(table), dtype=bool)
        complete[rows] = True
        return enc, Design(X, Y, rows, df.index[rows], dropped, complete)

    def _check_savable(self) -> None:
        try:
            self.to_json()
        except jsonstate.StateError as exc:
            raise DataError(
                f"formula {self.formula!r}: its encoding holds {exc}, which a model file cannot "
                "keep as plain JSON; use treatment, sum, Helmert, diff or poly contrasts"
            ) from None

    # ---- applying ---------------------------------------------------------------------
    def design(self, data, *, missing: str = "raise", targets: bool = False) -> Design:
        """Encode new rows exactly as the training rows were encoded.

        ``missing``: ``"raise"`` (a missing value or an unseen level is a DataError naming
        column, value and row), ``"drop"`` (such rows are left out) or ``"keep"`` (such
        rows stay, as NaN rows of ``X``). ``targets=True`` encodes the left side too.
        """
        if missing not in MISSING_USE:
            raise ValueError(f"missing must be one of {MISSING_USE}; got {missing!r}")
        df = _booleans_as_categories(as_frame(data))
        table = df.reset_index(drop=True)
        specs = [self.rhs] + ([self.lhs] if targets else [])
        _check_columns(table, specs)
        complete = np.ones(len(table), dtype=bool)
        for spec in specs:
            complete &= _complete_rows(table, spec, raise_=missing == "raise")
        rows = np.flatnonzero(complete)
        part = table.iloc[rows] if len(rows) < len(table) else table
        X = self._encode(self.rhs, part, self.columns, self.features)
        Y = self._encode(self.lhs, part, self.targets, self.targets) if targets else None
        # NOTE [terms that are not finite]: np.log of a value <= 0 in new rows gave NaN and
        # inf predictions under numpy's warnings only, and evaluate nulls for every metric
        # with exit 0 (a formula hunt): such rows count as missing
        bad = ~np.isfinite(X).all(axis=1)
        if Y is not None:
            bad |= ~np.isfinite(Y).all(axis=1)
        if bad.any():
            if missing == "raise":
                i = int(rows[np.flatnonzero(bad)[0]])
                raise _located(
                    f"a term of the formula is NaN or infinite at row {i + 1} (counting from "
                    "1; e.g. the log of a value <= 0); leave such rows out (the CLI: --missing "
                    "drop), or predict them as NaN (the CLI's predict --missing keep)",
                    i + 1,
                )
            complete[rows[bad]] = False
            rows, X = rows[~bad], X[~bad]
            Y = None if Y is None else Y[~bad]
        if missing == "keep":
            X = _spread(X, rows, len(table))
            Y = None if Y is None else _spread(Y, rows, len(table))
            rows = np.arange(len(table))
        return Design(X, Y, rows, df.index[rows], len(table) - int(complete.sum()), complete)

    def _encode(self, spec, part, expected: list[str], keep: list[str]) -> np.ndarray:
        from formulaic.errors import DataMismatchWarning

        if len(part) == 0:
            return np.empty((0, len(keep)))
        try:
            # numpy's "invalid value in log" is said better by design() (NOTE [terms that
            # are not finite]): the row, and what to do
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("error", DataMismatchWarning)
                warnings.simplefilter("ignore", FutureWarning)
                # formulaic writes what it meets into the spec's states (a text column's
                # levels over a number's): on copies, a refused batch cannot change the model
                # (after one, valid rows were refused as "unseen in training", and saved so)
                mm = spec.update(
                    na_action="ignore",
                    encoder_state=copy.deepcopy(spec.encoder_state),
                    transform_state=copy.deepcopy(spec.transform_state),
                ).get_model_matrix(part, context={})
        except DataMismatchWarning as exc:
            # formulaic's text says the values "are being cast to nan": they are not, the
            # rows are refused; say which values instead
            found = re.search(r"\{(.*)\}", str(exc))
            values = re.sub(r"np\.\w+\((.*?)\)", r"\1", found.group(1)) if found else "?"
            raise DataError(
                f"new rows do not fit the encoding: values {{{values}}} are outside a "
                "categorical term's levels"
            ) from None
        except Exception as exc:
            raise DataError(f"cannot encode the new rows: {_first_line(exc)}") from None
        if list(mm.columns) != expected:
            got = list(mm.columns)
            # the first that differ (two lists cut at 8 could look the same; a formula hunt)
            pairs = enumerate(zip(got, expected, strict=False))
            at = next((i for i, (a, b) in pairs if a != b),
                      min(len(got), len(expected)))  # fmt: skip
            raise DataError(
                f"the encoding gave columns {got[at : at + 8]} where the model has "
                f"{expected[at : at + 8]} (from column {at + 1} on; {len(got)} against "
                f"{len(expected)}); the encoding does not match the model"
            )
        return _matrix(mm, keep)

    # ---- plain JSON -------------------------------------------------------------------
    def to_json(self) -> dict:
        """The encoding as plain JSON (str, numbers, lists, dicts)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "formula": self.formula,
            "columns": list(self.columns),
            "targets": list(self.targets),
            "rhs": _spec_json(self.rhs),
            "lhs": _spec_json(self.lhs),
            "kinds": dict(self.kinds),
            "constant_columns": list(self.constant_columns),
        }

    @classmethod
    def from_json(cls, record: Any) -> Encoding:
        """Rebuild an encoding from :meth:`to_json`'s record; DataError if it is not one."""
        from .specjson import spec_from_json

        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise DataError("the formula encoding is not a torchlinreg formula record")
        if record.get("version") != VERSION:
            raise DataError(f"formula encoding version {record.get('version')!r} is unknown")
        formula, columns, targets = (record.get(k) for k in ("formula", "columns", "targets"))
        if not isinstance(formula, str):
            raise DataError("the formula encoding has no formula string")
        check_formula(formula)
        for what, names in (("columns", columns), ("targets", targets)):
            if not (
                isinstance(names, list)
                and names
                and all(isinstance(n, str) for n in names)
                and len(set(names)) == len(names)
            ):
                raise DataError(f"the formula encoding's {what} are not distinct names")
        rhs = spec_from_json(record.get("rhs"), "rhs")
        lhs = spec_from_json(record.get("lhs"), "lhs")
        kinds = record.get("kinds", {})
        if not (
            isinstance(kinds, dict)
            and len(kinds) <= 100_000
            and all(isinstance(k, str) and v in KINDS for k, v in kinds.items())
        ):
            raise DataError("the formula encoding's column kinds are malformed")
        constant = record.get("constant_columns", [])  # files before it: none
        if not (isinstance(constant, list) and set(constant) <= set(columns)):
            raise DataError("the formula encoding's constant_columns are not its columns")
        return cls(formula, rhs, lhs, columns, targets, kinds, constant)


def _kinds(table, specs) -> dict[str, str]:
    import pandas as pd

    out = {}
    for spec in specs:
        for col in _variables(table, spec):
            dtype = table[col].dtype
            if isinstance(dtype, pd.CategoricalDtype):
                cats = dtype.categories
                is_bool = len(cats) and all(isinstance(v, (bool, np.bool_)) for v in cats)
                dtype = cats.dtype if not is_bool else np.dtype(bool)
            if pd.api.types.is_bool_dtype(dtype):
                out[col] = "bool"
            elif pd.api.types.is_numeric_dtype(dtype):
                out[col] = "number"
            else:
                out[col] = "text"
    return out


def _spec_json(spec) -> dict:
    from .specjson import spec_to_json

    return spec_to_json(spec)


def _matrix(mm, keep: list[str]) -> np.ndarray:
    """The named columns of a model matrix as float64 (0/1 dummies included)."""
    if not keep:
        return np.empty((len(mm), 0))
    # a writable copy (pandas' copy-on-write hands out read-only views; torch wants to write)
    return np.array(mm[keep].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _spread(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    out = np.full((n, values.shape[1]), np.nan)
    out[rows] = values
    return out


def _check_columns(table, specs) -> None:
    for spec in specs:
        used = used_names(spec.formula)
        # formulaic reads `capital.stock` as the attribute of a variable `capital`: such a
        # prefix of a quoted name is not a column (prediction refused the table it was fitted on)
        required = [
            str(v) for v in spec.required_variables
            if getattr(v, "source", "data") == "data"
            and not any(u.startswith(f"{v}.") for u in used)
        ]  # fmt: skip
        wanted = required + [v for v in used if v not in required]
        lacking = [v for v in wanted if v not in table.columns]
        if lacking:
            raise DataError(
                f"the data has no column {lacking[0]!r}, which the formula uses; columns: "
                f"{[str(c) for c in table.columns][:12]}"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
