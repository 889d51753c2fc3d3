"""Any in-memory source -> validated float tensors; files go through :mod:`.files.tables`.

Accepted: numpy arrays, torch tensors (kept on their device), pandas and polars DataFrames
and Series, pyarrow Tables, RecordBatches and Arrays, nested lists, anything with
``__array__``. pandas and polars are never imported here: an input is recognised by the
module its type comes from.

Errors are :class:`~torchlinreg.errors.DataError` (a ``ValueError``) with one-line messages;
where scikit-learn's estimator checks look for particular words ("0 sample(s)", "NaN",
"infinity", "Complex data not supported", "sparse") the messages contain them.

Example:
    >>> m = as_matrix([[1, 2], [3, 4]])
    >>> m.values.dtype, m.kind
    (torch.float64, 'list')
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import DataError
from .files.tables import Block, TableSource, open_table


class NonNumericDataError(DataError, TypeError):
    """An object array holds a value that is neither a number nor a numeric string.

    Also a ``TypeError``, as numpy raises for the same input (scikit-learn checks this).
    """


@dataclass
class Matrix:
    """Validated 2-D values plus what is needed to give results back in the input's kind."""

    values: Tensor
    columns: list[str] | None
    kind: str
    device: torch.device
    was_1d: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.values.shape)

    def wrap(self, out: Tensor):
        """``out`` as the input's kind: a tensor on the input's device for torch input, else
        a numpy array; 1-D again when the input was 1-D and ``out`` has one column."""
        if self.was_1d and out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if self.kind == "torch":
            return out.to(self.device)
        return out.detach().cpu().numpy()


def _module(x) -> str:
    return type(x).__module__.split(".")[0]


def _float_dtype_np(arr: np.ndarray) -> np.dtype:
    if arr.dtype in (np.float32, np.float64):
        return arr.dtype
    return np.dtype(np.float32) if arr.dtype == np.float16 else np.dtype(np.float64)


def _numeric_numpy(arr: np.ndarray, name: str, columns: list[str] | None) -> np.ndarray:
    """Check the dtype of a numpy array and turn object/string arrays into float64."""
    kind = arr.dtype.kind
    if kind == "c":
        raise DataError(
            f"Complex data not supported: {name} has dtype {arr.dtype}; pass real numbers"
        )
    if kind in "biuf":
        return arr
    if kind == "O":
        # np.datetime64 objects convert to a count of their own unit (minutes since 1970,
        # say) without a word, though a datetime64 array is refused (an inputs hunt)
        times = (np.datetime64, np.timedelta64, datetime.date, datetime.timedelta)
        flat = arr.reshape(-1)
        hit = next((i for i, v in enumerate(flat) if isinstance(v, times)), None)
        if hit is not None:
            row = hit // max(int(np.prod(arr.shape[1:])), 1)
            raise DataError(
                f"{name} holds a {type(flat[hit]).__name__} at row {row + 1}: dates and "
                "durations are not numbers; convert them (e.g. to days since a date) first"
            )
    if kind in "OUS":
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            _raise_bad_element(arr, name, columns, exc)
    raise DataError(f"{name} has non-numeric dtype {arr.dtype}; convert it to numbers first")


def _raise_bad_element(arr: np.ndarray, name: str, columns, exc: Exception):
    flat = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(-1, 1)
    for (i, j), v in np.ndenumerate(flat):
        v = v.item() if isinstance(v, np.generic) else v
        if isinstance(v, complex):
            raise DataError(f"Complex data not supported: {name} holds {v!r}; pass real numbers")
        try:
            float(v)
        except (TypeError, ValueError):
            where = f"at row {i + 1}, {_col(columns, j)}"
            if isinstance(exc, TypeError):
                raise NonNumericDataError(
                    f"{name} holds a {type(v).__name__} {where}; float() argument must be a "
                    "string or a real number: convert the data to numbers first"
                ) from None
            raise DataError(
                f"{name} holds non-numeric value {v!r} {where}; convert it to a number or drop it"
            ) from None
    raise DataError(f"{name} cannot be converted to numbers ({exc})") from None


def _col(columns: list[str] | None, j: int) -> str:
    return f"column {columns[j]!r}" if columns else f"column {j + 1}"


def _from_pandas(X, name: str) -> tuple[np.ndarray, list[str] | None]:
    frame_cols = [(X.name, X.dtype)] if X.ndim == 1 else list(X.dtypes.items())
    import pandas as pd  # only reached for pandas input

    for col, dt in frame_cols:
        if isinstance(dt, pd.CategoricalDtype) or not (
            pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt)
        ):
            raise DataError(f"{name} column {col!r} has non-numeric dtype {dt}; convert or drop it")
        if pd.api.types.is_complex_dtype(dt):
            raise DataError(f"Complex data not supported: {name} column {col!r} is {dt}")
    names = [c for c, _ in frame_cols]
    # a Series keeps its name too: a target's name, or a single feature's
    columns = [str(c) for c in names] if all(isinstance(c, str) for c in names) else None
    return X.to_numpy(dtype=np.float64, na_value=np.nan), columns


def _from_polars(X, name: str) -> tuple[np.ndarray, list[str] | None]:
    import polars as pl  # only reached for polars input

    series = [X] if isinstance(X, pl.Series) else X.get_columns()
    cols = []
    for s in series:
        if not (s.dtype.is_numeric() or s.dtype == pl.Boolean):
            raise DataError(
                f"{name} column {s.name!r} has non-numeric dtype {s.dtype}; convert or drop it"
            )
        cols.append(s.cast(pl.Float64).fill_null(float("nan")).to_numpy())
    arr = np.column_stack(cols) if cols else np.empty((X.height, 0))
    if isinstance(X, pl.Series):
        return arr[:, 0], [X.name] if X.name else None
    return arr, list(X.columns)


def _from_pyarrow(X, name: str) -> tuple[np.ndarray, list[str] | None]:
    import pyarrow as pa
    import pyarrow.compute as pc

    is_table = isinstance(X, (pa.Table, pa.RecordBatch))
    arrays = X.columns if is_table else [X]
    names = X.schema.names if is_table else [name]
    cols = []
    for col_name, a in zip(names, arrays, strict=True):
        t = pa.types
        if not (
            t.is_integer(a.type)
            or t.is_floating(a.type)
            or t.is_boolean(a.type)
            or t.is_decimal(a.type)
        ):
            raise DataError(
                f"{name} column {col_name!r} has non-numeric type {a.type}; convert or drop it"
            )
        cols.append(pc.cast(a, pa.float64()).to_numpy(zero_copy_only=False))
    if not is_table:
        return cols[0], None
    arr = np.column_stack(cols) if cols else np.empty((X.num_rows, 0))
    return arr, list(names)


def _to_numpy(X, name: str) -> tuple[np.ndarray, list[str] | None, str]:
    mod = _module(X)
    if mod == "pandas":
        return (*_from_pandas(X, name), "pandas")
    if mod == "polars":
        return (*_from_polars(X, name), "polars")
    if mod == "pyarrow":
        return (*_from_pyarrow(X, name), "pyarrow")
    if is_sparse(X):
        # the exact solvers take sparse X in dense row blocks (sparse_row_blocks); whatever
        # reaches here would be densified whole
        raise DataError(
            f"{name} is a sparse matrix; sparse input is taken by the exact solvers of the "
            "estimators (solver='qr' or 'gram'), in dense row blocks; elsewhere pass X.toarray()"
        )
    kind = "list" if isinstance(X, (list, tuple)) else "numpy"
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # ragged nested lists
        raise DataError(
            f"{name} is not a rectangular array ({exc}); every row needs the same length"
        ) from None
    return arr, None, kind


def _to_tensor(X, name: str, dtype, device) -> tuple[Tensor, list[str] | None, str, torch.device]:
    if X is None:
        raise DataError(f"{name} is None; pass an array of numbers")
    if _module(X) == "polars" and type(X).__name__ == "LazyFrame":  # AttributeError before
        raise DataError(f"{name} is a polars LazyFrame; collect() it into a DataFrame first")
    if isinstance(X, Tensor) and X.layout != torch.strided:  # torch's own error before
        raise DataError(f"{name} is a sparse tensor; pass X.to_dense() or a scipy.sparse matrix")
    if isinstance(X, Tensor):
        if X.is_complex():
            raise DataError(
                f"Complex data not supported: {name} has dtype {X.dtype}; pass real numbers"
            )
        target = dtype or (X.dtype if X.dtype in (torch.float32, torch.float64) else None)
        if target is None:
            target = torch.float32 if X.is_floating_point() else torch.float64
        return X.detach().to(device=device or X.device, dtype=target), None, "torch", X.device
    arr, columns, kind = _to_numpy(X, name)
    arr = _numeric_numpy(arr, name, columns)
    arr = np.asarray(arr, dtype=_float_dtype_np(arr))
    if not arr.dtype.isnative or any(s < 0 for s in arr.strides):
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    with warnings.catch_warnings():
        # Read-only arrays (memory maps) are only ever read here.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        t = torch.from_numpy(arr)
    # one step to the requested device and dtype (bfloat16 has no numpy twin, so not earlier)
    t = t.to(device=device, dtype=dtype)
    return t, columns, kind, torch.device("cpu")


def _all_finite(values: Tensor) -> bool:
    # A sum is finite only if every term is (NaN and inf propagate), and it costs one read;
    # torch.isfinite(values).all() is 20x slower on CPU. A sum that overflows falls back.
    return bool(torch.isfinite(values.sum())) or bool(torch.isfinite(values).all())


def _check_finite(values: Tensor, name: str, columns: list[str] | None) -> None:
    if values.numel() == 0 or _all_finite(values):
        return
    bad = (~torch.isfinite(values)).nonzero()[0]
    i, j = int(bad[0]), int(bad[1])
    v = float(values[i, j])
    if v != v:
        what, todo = "NaN", "drop or impute missing values first"
    else:
        what, todo = "infinity", "remove or clip infinite values first"
    err = DataError(
        f"{name} contains {what} at row {i + 1}, {_col(columns, j)} (counting from 1); {todo}"
    )
    err.row, err.column = i + 1, columns[j] if columns else None
    raise err


def check_finite(Xm: Matrix, Ym: Matrix) -> None:
    """Raise the :class:`DataError` that :func:`as_problem` would for NaN or infinity.

    For callers that passed ``check_finite=False`` and then saw non-finite totals.

    Example:
        >>> Xm, Ym, _ = as_problem([[1.0], [np.nan]], [1.0, 2.0], check_finite=False)
        >>> try:
        ...     check_finite(Xm, Ym)
        ... except DataError as err:
        ...     print(err.row, err.column)
        2 None
    """
    _check_finite(Xm.values, "X", Xm.columns)
    _check_finite(Ym.values, "y", Ym.columns)


def _check_size(values: Tensor, name: str, min_rows: int = 1, min_columns: int = 1) -> None:
    n, d = values.shape
    if n < min_rows:
        raise DataError(
            f"Found array with 0 sample(s) (shape={(n, d)}) while a minimum of {min_rows} is "
            f"required; {name} has no rows"
        )
    if d < min_columns:
        raise DataError(
            f"Found array with 0 feature(s) (shape={(n, d)}) while a minimum of 1 is required; "
            f"{name} needs at least one column"
        )


def as_matrix(
    X,
    *,
    name: str = "X",
    dtype: torch.dtype | None = None,
    device=None,
    min_features: int = 1,
    allow_1d: bool = False,
    check_finite: bool = True,
) -> Matrix:
    """Validate a 2-D data source and return it as a float tensor in a :class:`Matrix`.

    float32/float64 are kept, other numbers become float64 (or ``dtype``). Torch input stays
    on its device unless ``device`` is given. Raises :class:`DataError` for wrong shape, empty
    data, fewer than ``min_features`` columns, non-numeric, complex, NaN or infinite values.
    ``allow_1d`` takes a 1-D input as one column (statsmodels' convention; scikit-learn's
    estimators refuse it). ``check_finite=False`` leaves the NaN/infinity scan to the caller
    (:func:`check_finite`), for a fit whose totals show non-finite data for free.

    Example:
        >>> as_matrix(np.ones((3, 2), dtype=np.float32)).values.dtype
        torch.float32
    """
    values, columns, kind, orig_device = _to_tensor(X, name, dtype, device)
    if allow_1d and values.ndim == 1:
        values = values.reshape(-1, 1)
    if values.ndim != 2:
        if values.ndim == 1:
            raise DataError(
                f"{name} must be 2-D (n_samples, n_features), got a 1-D array of shape "
                f"{tuple(values.shape)}; Reshape your data with X.reshape(-1, 1) for a single "
                "feature or X.reshape(1, -1) for a single sample"
            )
        raise DataError(
            f"{name} must be 2-D (n_samples, n_features), got shape {tuple(values.shape)}"
        )
    _check_size(values, name, min_columns=min_features)
    if check_finite:
        _check_finite(values, name, columns)
    return Matrix(values, columns, kind, orig_device, was_1d=False)


def as_targets(
    y, n_rows: int, *, name: str = "y", dtype=None, device=None, check_finite: bool = True
) -> Matrix:
    """Validate targets: 1-D ``(n,)`` becomes ``(n, 1)`` with ``was_1d=True``; 2-D is kept.

    Example:
        >>> y = as_targets([1.0, 2.0], 2)
        >>> tuple(y.values.shape), y.was_1d
        ((2, 1), True)
    """
    if y is None:
        raise DataError(
            f"{name} is None: this estimator requires y to be passed, but the target y is None"
        )
    values, columns, kind, orig_device = _to_tensor(y, name, dtype, device)
    was_1d = values.ndim == 1
    if was_1d:
        values = values.reshape(-1, 1)
    if values.ndim != 2:
        raise DataError(
            f"{name} must be 1-D (n,) or 2-D (n, n_targets), got shape {tuple(values.shape)}"
        )
    if values.shape[0] != n_rows:
        raise DataError(
            f"{name} has {values.shape[0]} rows but X has {n_rows}; "
            "pass one target row per row of X"
        )
    _check_size(values, name)
    if check_finite:
        _check_finite(values, name, columns)
    return Matrix(values, columns, kind, orig_device, was_1d=was_1d)


def as_weights(
    w, n_rows: int, *, dtype=None, device=None, allow_all_zero: bool = False
) -> Tensor | None:
    """Validate sample weights: 1-D, one per row, finite, >= 0 and not all zero.

    ``None`` stays ``None``; a scalar gives every row that weight. ``allow_all_zero`` is for
    one block of a streamed fit, where only the whole fit needs a positive weight.

    Example:
        >>> as_weights([1, 2, 0], 3)
        tensor([1., 2., 0.], dtype=torch.float64)
    """
    if w is None:
        return None
    if isinstance(w, (int, float)) and not isinstance(w, bool):
        w = np.full(n_rows, float(w))
    elif isinstance(w, (np.generic, np.ndarray, Tensor)) and np.ndim(w) == 0:
        # np.float32(2), a 0-d array or tensor: a scalar as the docs say (refused as "not
        # 1-D" before; an inputs hunt)
        if isinstance(w, np.bool_) or (isinstance(w, Tensor) and w.dtype == torch.bool):
            raise DataError("sample_weight is a boolean; pass numbers")
        w = np.full(n_rows, float(w))
    values, _, _, _ = _to_tensor(w, "sample_weight", dtype, device)
    if values.ndim != 1:
        raise DataError(f"sample_weight must be 1-D (n_samples,), got shape {tuple(values.shape)}")
    if values.shape[0] != n_rows:
        raise DataError(
            f"sample_weight has {values.shape[0]} values but X has {n_rows} rows; pass one per row"
        )
    if n_rows and not _all_finite(values):
        i = int((~torch.isfinite(values)).nonzero()[0, 0])
        raise DataError(
            f"sample_weight contains NaN or infinity at row {i + 1}; weights must be finite"
        )
    if n_rows and bool((values < 0).any()):
        i = int((values < 0).nonzero()[0, 0])
        raise DataError(
            f"sample_weight has negative value {float(values[i])!r} at row {i + 1}; "
            "weights must be >= 0"
        )
    if n_rows and not allow_all_zero and not bool((values > 0).any()):
        raise DataError("sample_weight is zero for every row; at least one weight must be positive")
    return values


def as_problem(
    X,
    y,
    sample_weight=None,
    *,
    min_features: int = 1,
    allow_1d_x: bool = False,
    allow_all_zero: bool = False,
    check_finite: bool = True,
) -> tuple[Matrix, Matrix, Tensor | None]:
    """Validate a regression problem: X ``(n, d)``, y ``(n,)`` or ``(n, k)``, weights.

    The one validator behind the estimators and :func:`torchlinreg.ols`: shapes that agree,
    numbers only, no NaN or infinity (the message names row and column), weights finite and
    non-negative (a scalar weights every row alike). ``min_features=0`` admits an
    intercept-only model. ``check_finite=False`` defers the NaN/infinity scan of X and y to
    the caller (:func:`check_finite`); the weights are always checked.

    Example:
        >>> Xm, Ym, w = as_problem([[1.0], [2.0]], [3.0, 4.0], 2.0)
        >>> tuple(Xm.values.shape), Ym.was_1d, w.tolist()
        ((2, 1), True, [2.0, 2.0])
    """
    if y is None:
        raise DataError("y is None: a regression needs targets; pass y")
    Xm = as_matrix(
        X, name="X", min_features=min_features, allow_1d=allow_1d_x, check_finite=check_finite
    )
    n = Xm.values.shape[0]
    Ym = as_targets(y, n, name="y", check_finite=check_finite)
    w = as_weights(sample_weight, n, allow_all_zero=allow_all_zero)
    return Xm, Ym, w


def missing_labels(values: np.ndarray) -> np.ndarray:
    """Which labels are missing (NaN, None, pd.NA, NaT) in a 1-D array of group or
    cluster labels of any kind; np.unique met them first and said text with a NaN "cannot
    be ordered", and NaT made a group of its own."""
    kind = values.dtype.kind
    if kind in "fc":
        return np.isnan(values)
    if kind in "Mm":
        return np.isnat(values)
    if kind == "O":
        import pandas as pd

        return np.asarray(pd.isna(values), dtype=bool)
    return np.zeros(values.shape, dtype=bool)


def is_sparse(X) -> bool:
    """A scipy.sparse matrix or array (recognised without importing scipy)."""
    return _module(X) == "scipy" and hasattr(X, "tocsr") and hasattr(X, "nnz")


def sparse_row_blocks(
    X, y, sample_weight=None, *, max_elements: int = 1 << 22
) -> tuple[Iterator[tuple[np.ndarray, Tensor, Tensor | None]], Matrix]:
    """Dense row blocks ``(X, y, w)`` of a scipy.sparse ``X``: never the whole matrix dense.

    ``X`` is validated once over its stored values (NaN and infinity located by row and
    column), ``y`` and the weights as :func:`as_problem` does; each block holds at most
    ``max_elements`` values of X. Returns the blocks and the validated targets (their names
    and whether y was 1-D).

    Example:
        >>> import scipy.sparse as sp
        >>> blocks, Ym = sparse_row_blocks(sp.eye(5, format="csr"), np.arange(5.0), max_elements=10)
        >>> [b[0].shape for b in blocks]
        [(2, 5), (2, 5), (1, 5)]
    """
    Xc = X.tocsr()
    n, d = Xc.shape
    if n < 1 or d < 1:
        raise DataError(f"Found array with shape {(n, d)}; X needs at least one row and column")
    if Xc.dtype.kind == "c":
        raise DataError(f"Complex data not supported: X has dtype {Xc.dtype}; pass real numbers")
    if not np.isfinite(Xc.data).all():
        k = int(np.flatnonzero(~np.isfinite(Xc.data))[0])
        row = int(np.searchsorted(Xc.indptr, k, side="right")) - 1
        what = "NaN" if np.isnan(Xc.data[k]) else "infinity"
        raise DataError(
            f"X contains {what} at row {row + 1}, column {int(Xc.indices[k]) + 1} (counting "
            "from 1); drop, impute or clip it first"
        )
    Ym = as_targets(y, n, name="y")
    w = as_weights(sample_weight, n)
    rows = max(1, max_elements // d)

    def blocks():
        for i in range(0, n, rows):
            Yb = Ym.values[i : i + rows]
            yield (
                Xc[i : i + rows].toarray().astype(np.float64, copy=False),
                Yb[:, 0] if Ym.was_1d else Yb,
                None if w is None else w[i : i + rows],
            )

    return blocks(), Ym


def unpack_block(block: Any) -> tuple[Any, Any, Any]:
    """``(X, y, w)`` of a block given as a tuple or an object with X/Y/w attributes."""
    if hasattr(block, "X"):
        return block.X, getattr(block, "Y", None), getattr(block, "w", None)
    if isinstance(block, (tuple, list)) and len(block) in (2, 3):
        return block[0], block[1], block[2] if len(block) == 3 else None
    raise DataError(
        f"a block must be (X, y), (X, y, sample_weight) or have X/Y/w attributes; got "
        f"{type(block).__name__}"
    )


__all__ = [
    "Block",
    "Matrix",
    "NonNumericDataError",
    "TableSource",
    "as_matrix",
    "as_problem",
    "as_targets",
    "as_weights",
    "is_sparse",
    "open_table",
    "sparse_row_blocks",
    "unpack_block",
]
