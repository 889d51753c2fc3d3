"""Results as tables: formulas, missing rows, and statistics labelled by name (pandas).

:func:`ols` sends here a formula (``ols("y ~ x + C(g)", data=df)``), ``missing="drop"``,
and pandas input. :class:`LabelledResults` is an :class:`OLSResults` whose ``params``,
``bse``, ``tvalues`` and ``pvalues`` are pandas Series indexed by the parameter names
(DataFrames with one column per target for several targets), ``conf_int()`` and
``cov_params()`` DataFrames, and whose row statistics (``fittedvalues``, ``resid``) and
``summary_frame`` keep the data's row index, as statsmodels gives them. Everything is
computed by :class:`OLSResults` on plain arrays; only what is handed out is labelled.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"y": [1, 3.1, 4.9, 7.2, 8.8, 11], "x": range(6), "g": list("ababab")})
    >>> from torchlinreg.stats.results import ols
    >>> res = ols("y ~ x + C(g)", data=df)
    >>> list(res.params.index), res.params.name
    (['Intercept', 'x', 'C(g)[T.b]'], None)
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..errors import DataError, DegenerateWarning
from ..exact.solve import ACCURACY_WARNING

MISSING = ("raise", "drop")
_CLASSES: dict[type, type] = {}


def label(res, *, row_index=None, encoding=None):
    """Label ``res`` (an OLSResults) in place: its class becomes a LabelledResults of it.

    The class is made here from ``type(res)`` (results.py imports this module, so this
    module cannot import results.py back): isinstance(res, OLSResults) still holds.
    """
    base = type(res)
    if not issubclass(base, LabelledResults):
        if base not in _CLASSES:
            _CLASSES[base] = type("LabelledResults", (LabelledResults, base), {})
        res.__class__ = _CLASSES[base]
    res._row_index = row_index
    res.encoding = encoding
    return res


class LabelledResults:
    """Mixed into OLSResults by :func:`label`: pandas objects labelled by parameter and row
    names; the computing class comes next in the MRO."""

    _raw_depth = 0
    _row_index: Any = None
    encoding: Any = None  # the formula's Encoding (torchlinreg.formula), or None

    @contextlib.contextmanager
    def _raw(self) -> Iterator[None]:
        """Plain arrays inside: OLSResults' own formulas and the text summary use them."""
        self._raw_depth += 1
        try:
            yield
        finally:
            self._raw_depth -= 1

    def _by_param(self, value: np.ndarray):
        import pandas as pd

        if value.ndim == 1:
            return pd.Series(value, index=list(self.param_names))
        return pd.DataFrame(value, index=list(self.param_names), columns=self.target_names)

    def _by_row(self, value: np.ndarray):
        import pandas as pd

        index = self._row_index if self._row_index is not None else None
        if value.ndim == 1:
            return pd.Series(value, index=index)
        return pd.DataFrame(value, index=index, columns=self.target_names)

    def conf_int(self, alpha: float = 0.05):
        """Intervals as a DataFrame (columns 0 and 1; ``(target, 0|1)`` for several)."""
        import pandas as pd

        with self._raw():
            value = np.asarray(super().conf_int(alpha))
        if self._raw_depth:
            return value
        names = list(self.param_names)
        if value.ndim == 2:
            return pd.DataFrame(value, index=names, columns=[0, 1])
        columns = pd.MultiIndex.from_product([self.target_names, [0, 1]])
        flat = value.transpose(0, 2, 1).reshape(value.shape[0], -1)
        return pd.DataFrame(flat, index=names, columns=columns)

    def cov_params(self):
        """A DataFrame indexed by parameter names (an array for several targets)."""
        import pandas as pd

        with self._raw():
            value = np.asarray(super().cov_params())
        if self._raw_depth or value.ndim != 2:
            return value
        names = list(self.param_names)
        return pd.DataFrame(value, index=names, columns=names)

    def get_prediction(self, exog=None, weights=None):
        """As :meth:`OLSResults.get_prediction`; with a formula ``exog`` is a table that the
        training encoding turns into the model's columns (levels checked)."""
        if exog is not None and self.encoding is not None and _is_table(exog):
            import pandas as pd

            design = self.encoding.design(exog, missing="raise")
            exog = pd.DataFrame(design.X, columns=self._exog_names, index=design.index)
        with self._raw():
            pred = super().get_prediction(exog, weights)
        if exog is None and self._row_index is not None:
            pred.row_labels = self._row_index
        return pred

    def summary(self, alpha: float = 0.05) -> str:
        with self._raw():
            return super().summary(alpha)

    def to_dict(self) -> dict:
        with self._raw():
            return super().to_dict()


def _labelled(name: str, by: str) -> property:
    def get(self: LabelledResults):
        with self._raw():
            value = getattr(super(LabelledResults, self), name)
        if self._raw_depth:
            return value
        value = np.asarray(value)
        return self._by_param(value) if by == "param" else self._by_row(value)

    get.__doc__ = f"OLSResults.{name}, labelled by {'parameter' if by == 'param' else 'row'}."
    return property(get)


for _name in ("params", "bse", "tvalues", "pvalues"):
    setattr(LabelledResults, _name, _labelled(_name, "param"))
for _name in ("fittedvalues", "resid", "wresid", "resid_pearson"):
    setattr(LabelledResults, _name, _labelled(_name, "row"))


def _is_table(a) -> bool:
    """A table of named columns (not rows already encoded as the model's columns)."""
    module = type(a).__module__.partition(".")[0]
    if module in ("polars", "pyarrow"):  # their tables have no ndim (an AttributeError)
        return hasattr(a, "columns") or hasattr(a, "column_names")
    return isinstance(a, dict) or (module == "pandas" and a.ndim == 2)


def _is_pandas(a) -> bool:
    # a Series or DataFrame: pandas' arrays (ArrowStringArray, from .values of a text
    # column in pandas 3) have no index and take rows as numpy does
    return type(a).__module__.partition(".")[0] == "pandas" and hasattr(a, "iloc")


def complete_rows(X, y, sample_weight) -> np.ndarray | None:
    """The rows without NaN in X, y or the weights (a mask); None where lengths differ."""
    parts = [a for a in (X, y, sample_weight) if a is not None and np.ndim(a) > 0]
    n = len(parts[0])
    keep = np.ones(n, dtype=bool)
    for a in parts:
        if len(a) != n:
            return None  # the validator names the mismatch
        keep &= ~_nan_rows(a)
    return keep


def drop_incomplete(X, y, sample_weight) -> tuple[Any, Any, Any, int]:
    """Leave out the rows with NaN in X, y or the weights (statsmodels' missing='drop')."""
    keep = complete_rows(X, y, sample_weight)
    dropped = 0 if keep is None else int(len(keep) - keep.sum())
    if not dropped:
        return X, y, sample_weight, 0
    return (*(_take(a, keep) for a in (X, y, sample_weight)), dropped)


# NOTE [cluster labels of the rows kept]
# cov_kwds={"groups": ...} holds one label per row of the table the caller has; with a
# formula the fit's rows are the complete ones only. The formula path passed no cov_kwds
# at all: HAC's maxlags fell back to the default (standard errors 2x statsmodels' on
# macrodata with maxlags=0, silently) and cluster refused labels it was given. Labels of
# the whole table (its length) are taken at the rows kept; labels already of the rows
# kept are used as they are.
def rows_of_cov_kwds(cov_kwds: dict | None, kept, table_rows: int) -> dict | None:
    """``cov_kwds`` with its per-row ``groups`` at the rows ``kept`` (positions or a mask)
    of a table of ``table_rows`` rows (NOTE [cluster labels of the rows kept])."""
    if not cov_kwds or cov_kwds.get("groups") is None:
        return cov_kwds
    groups = cov_kwds["groups"]
    n_kept = int(np.sum(kept)) if np.asarray(kept).dtype == bool else len(kept)
    if n_kept == table_rows:
        return cov_kwds
    if isinstance(groups, (tuple, list)) and len(groups) in (1, 2) and np.ndim(groups[0]) >= 1:
        if all(len(g) == table_rows for g in groups):
            groups = type(groups)(_take(g, kept) for g in groups)
    elif np.ndim(groups) >= 1 and len(groups) == table_rows:
        groups = _take(groups, kept)
    return {**cov_kwds, "groups": groups}


def _nan_rows(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return torch.isnan(a.reshape(a.shape[0], -1)).any(1).cpu().numpy()
    if _is_pandas(a):
        frame = a.to_frame() if a.ndim == 1 else a
        return frame.isna().any(axis=1).to_numpy()
    if hasattr(a, "to_pandas"):  # polars, pyarrow
        return _nan_rows(a.to_pandas())
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        return np.zeros(len(a), dtype=bool)  # text: the validator names it
    return np.isnan(arr.reshape(arr.shape[0], -1)).any(1)


def _take(a, keep: np.ndarray):
    if a is None or np.ndim(a) == 0:
        return a
    if isinstance(a, torch.Tensor):
        return a[torch.as_tensor(keep, device=a.device)]
    if _is_pandas(a):
        return a.iloc[keep]
    if hasattr(a, "to_pandas"):
        return a.to_pandas().iloc[keep]
    return np.asarray(a)[keep]


def row_index(X, y):
    """The pandas row index of the input (X's, else y's), or None."""
    for a in (X, y):
        if _is_pandas(a):
            return a.index
    return None


def check_aligned(X, **others) -> None:
    """Pandas inputs of one fit must share X's row index, as statsmodels requires.

    NOTE [rows matched by index]
    ``ols`` paired a y Series with X by position whatever their indexes said: y shuffled
    against X (``y.sample(frac=1)``) was fitted as given, [0.68, 0.09] for [1.13, 1.49],
    and its residuals labelled with X's index, silently (an inputs hunt). statsmodels raises
    for it; so does ``ols``, naming the input. (The estimators pair rows by position, as
    scikit-learn's do.)
    """
    if not _is_pandas(X):
        return
    for name, value in others.items():
        # another length is the shape check's to say (one target row per row of X)
        if _is_pandas(value) and len(value) == len(X) and not value.index.equals(X.index):
            raise DataError(
                f"the row index of {name} is not X's: ols pairs rows by index, as statsmodels "
                f"does; align them first (e.g. {name} = {name}.loc[X.index]) or pass arrays"
            )


class FormulaProblem:
    """A formula's table encoded for :func:`ols`: arrays, names, and what was dropped."""

    def __init__(self, formula: str, data, sample_weight, missing: str, given: dict) -> None:
        from ..formula.encoding import Encoding

        for key, value in given.items():
            if value is not None:
                raise DataError(f"{key}= cannot be given with a formula: the formula decides it")
        if missing not in MISSING:
            raise ValueError(f"missing must be one of {MISSING}; got {missing!r}")
        if data is None:
            raise DataError("a formula needs data=: a table whose columns the formula names")
        check_aligned(data, sample_weight=sample_weight)  # NOTE [rows matched by index]
        enc, design = Encoding.fit(formula, data, missing=missing)
        self.sample_weight, rows = _formula_weights(sample_weight, design, missing)
        self.X = design.X[rows]
        Y = design.Y[rows]
        self.y = Y[:, 0] if Y.shape[1] == 1 else Y
        self.encoding = enc
        self.index = design.index[rows]
        self.positions = np.asarray(design.rows)[rows]  # of the kept rows, in the table
        self.table_rows = len(design.complete)
        self.dropped = design.dropped + int(len(design.rows) - rows.sum())

    def kwargs(self) -> dict:
        """``ols`` keywords the formula decides."""
        enc = self.encoding
        return {
            "fit_intercept": enc.fit_intercept,
            "sample_weight": self.sample_weight,
            "feature_names": enc.features,
            "target_names": enc.targets,
        }

    def finish(self, res):
        """The fitted results, named and labelled as statsmodels' formula results."""
        if self.encoding.fit_intercept:  # statsmodels' (patsy's) name for the constant
            res.param_names[0] = "Intercept"
        res.nobs_dropped = self.dropped
        if not self.encoding.fit_intercept and _implicit_constant(self.X):
            count_the_constant(res)
        return label(res, row_index=self.index, encoding=self.encoding)


# NOTE [a constant in the columns]
# ols(X, y, fit_intercept=False) with a column of ones in X (statsmodels' add_constant
# habit) or dummies that sum to one reported the uncentred R2 (0.113 for 0.011 on fair),
# its F and df_model: statsmodels detects such a constant (k_constant = 1, centred R2,
# robust F NaN), and scikit-learn's score is always centred. So does ols now: a constant
# the columns hold (one of them, or several together) by statsmodels' rank test where a
# screen (the constant's residual on the columns, from one product)
# cannot rule it out, up to n (p + 1)^2 = _RANK_TEST_SIZE; beyond, the screen decides.
_RANK_TEST_SIZE = 2e8


def spans_the_constant(X) -> bool:
    """Whether the columns of X hold the constant: a constant non-zero column, or columns
    that sum to it (NOTE [a constant in the columns])."""
    import torch

    A = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X, np.float64)
    if A.ndim != 2 or A.shape[1] == 0 or A.shape[0] < 2:
        return False
    A = A.astype(np.float64, copy=False)
    # a screen first, one product: the least-squares residual of the constant on X from
    # the normal equations of columns scaled to one size (the rank test's two SVDs cost
    # 1.1 s at 1M x 12, against 0.13 s for the whole fit); only what it cannot rule out
    # goes to the rank test
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        G = A.T @ A
    diag = np.diag(G)
    if not (np.isfinite(G).all() and (diag > 1e-250).all()):
        # squares beyond float64's range (columns near 1e160 or 1e-200): scaled first
        top = np.abs(A).max(axis=0)
        A = A / np.where(top > 0, top, 1.0)
        G = A.T @ A
    size = np.sqrt(np.diag(G))
    size = np.where(size > 0, size, 1.0)
    s = (np.ones(A.shape[0]) @ A) / size  # a product: numpy's reductions are slower
    b = np.linalg.lstsq(G / np.outer(size, size), s, rcond=None)[0]
    residual = (A.shape[0] - s @ b) / A.shape[0]  # 1 - the constant's R2 on the columns
    if residual > 1e-6:
        return False
    if A.shape[0] * (A.shape[1] + 1) ** 2 > _RANK_TEST_SIZE:
        return residual <= 1e-10
    return _implicit_constant(A)


def _implicit_constant(X: np.ndarray) -> bool:
    """The columns span the constant (``C(g) - 1``: every level's dummy): statsmodels' test,
    the rank of ``[1 | X]`` equal to the rank of ``X``."""
    if X.shape[1] == 0 or X.shape[0] <= X.shape[1]:
        return False
    return np.linalg.matrix_rank(np.c_[np.ones(len(X)), X]) == np.linalg.matrix_rank(X)


def count_the_constant(res, columns: list[str] | None = None) -> None:
    """Statistics of a model whose columns hold a constant without naming it, as
    statsmodels gives them: centred R-squared, df_model = rank - 1, ess = tss - ssr, and a
    robust Wald F that is NaN (statsmodels' #2444: no constant column to leave out).

    A fit from a state alone (streamed, loaded) has no centred tss: ``columns``, the
    parameters whose columns sum to one (NOTE [an implicit constant] in
    formula/encoding.py), give it from the factor: with ``X c = 1``, ``sum w = |R c|^2`` and
    ``sum w y = (R c)' (R b)`` (``R'R b = X'Wy`` at the least-squares solution)."""
    tss = np.asarray(res._sums["centered_tss"], dtype=np.float64)
    if np.isnan(tss).any():
        tss = _centred_tss_from_factor(res, columns or [])
        if tss is None:
            return  # no way to centre: the uncentred statistics stay, as before
        res._sums["centered_tss"] = tss
    res.k_constant = 1
    res._implicit_constant = True  # counted, not a parameter: see OLSResults._has_intercept
    res._sums["ess"] = res._sums["centered_tss"] - res._sums["rss"]
    if res.cov_type != "nonrobust":
        nan = np.full_like(res._sums["rss"], np.nan)
        res.__dict__["_f"] = (nan, nan)


def _centred_tss_from_factor(res, columns: list[str]) -> np.ndarray | None:
    """``y'Wy - (1'Wy)^2 / 1'W1`` per target from the design factor (see
    :func:`count_the_constant`), with a warning where it cancels past ACCURACY_WARNING;
    None where the columns are unknown or aliased."""
    import torch

    names = list(res.param_names)
    if not columns or res.aliased or not set(columns) <= set(names):
        return None
    R = res._r
    c = torch.zeros(R.shape[0], dtype=R.dtype, device=R.device)
    c[[names.index(n) for n in columns]] = 1.0
    Rc = R @ c
    b = torch.as_tensor(np.asarray(res._params), dtype=R.dtype, device=R.device)
    Rb = R @ b.reshape(R.shape[0], -1)
    sw, swy = (Rc @ Rc).item(), (Rc @ Rb).cpu().numpy()
    utss = np.asarray(res._sums["uncentered_tss"], dtype=np.float64)
    tss = utss - swy * swy / sw
    eps = float(np.finfo(np.float64).eps)
    risk = 8 * R.shape[0] * eps * utss / np.where(tss > 0, tss, np.nan)
    worst = float(np.nanmax(np.r_[risk, 0.0]))
    if not worst <= ACCURACY_WARNING:
        warnings.warn(
            f"the centred total sum of squares of this fit without an intercept column (its "
            f"columns {columns[0]}... sum to one) is taken from the state's factor, where y's "
            f"offset cancels: R-squared, ess and F may be off by up to {min(worst, 1.0):.1e} "
            "(relative); fit in memory, or centre y, for all their digits",
            DegenerateWarning,
            stacklevel=2,
        )
    return tss


def _formula_weights(sample_weight, design, missing: str):
    """The weights of the rows the formula kept, and which of those rows stay."""
    keep = np.ones(len(design.rows), dtype=bool)
    if sample_weight is None or np.ndim(sample_weight) == 0:
        return sample_weight, keep
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if len(w) != len(design.complete):
        raise DataError(
            f"sample_weight has {len(w)} values but data has {len(design.complete)} rows"
        )
    w = w[design.rows]
    if missing == "drop":
        keep = ~np.isnan(w)
    return w[keep], keep
