"""In-memory sources -> validated tensors (torchlinreg.data)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import scipy.sparse
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import estimator_checks as ec

from torchlinreg.data import Matrix, NonNumericDataError, as_matrix, as_targets, as_weights
from torchlinreg.errors import DataError

RNG = np.random.default_rng(0)
X_NP = RNG.normal(size=(6, 3))


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a,
        lambda a: torch.from_numpy(a),
        lambda a: a.tolist(),
        lambda a: pd.DataFrame(a, columns=["t", "r", "h"]),
        lambda a: pl.DataFrame(a, schema=["t", "r", "h"], orient="row"),
        lambda a: pa.table({"t": a[:, 0], "r": a[:, 1], "h": a[:, 2]}),
    ],
    ids=["numpy", "torch", "list", "pandas", "polars", "pyarrow"],
)
def test_every_source_gives_the_same_float64_values(make):
    m = as_matrix(make(X_NP))
    assert m.values.dtype == torch.float64
    np.testing.assert_array_equal(m.values.numpy(), X_NP)


def test_kind_and_column_names_are_remembered():
    df = pd.DataFrame(X_NP, columns=["temp", "rain", "hum"])
    assert as_matrix(df).columns == ["temp", "rain", "hum"]
    assert as_matrix(df).kind == "pandas"
    assert as_matrix(pl.from_pandas(df)).columns == ["temp", "rain", "hum"]
    assert as_matrix(pa.Table.from_pandas(df, preserve_index=False)).columns == [
        "temp",
        "rain",
        "hum",
    ]
    # 1) non-string pandas column labels are not feature names (as in scikit-learn)
    assert as_matrix(pd.DataFrame(X_NP)).columns is None
    assert as_matrix(X_NP.tolist()).kind == "list"
    assert as_matrix(X_NP).columns is None


def test_float32_is_kept_and_integers_become_float64():
    assert as_matrix(X_NP.astype(np.float32)).values.dtype == torch.float32
    assert as_matrix(np.arange(6).reshape(3, 2)).values.dtype == torch.float64
    assert as_matrix(np.ones((2, 2), dtype=bool)).values.dtype == torch.float64
    assert as_matrix(torch.arange(6).reshape(3, 2)).values.dtype == torch.float64
    assert as_matrix(X_NP, dtype=torch.float32).values.dtype == torch.float32
    assert as_matrix(torch.ones(2, 2, dtype=torch.float16)).values.dtype == torch.float32
    assert as_matrix([[1, 2]], dtype=torch.bfloat16).values.dtype == torch.bfloat16


def test_float64_numpy_and_torch_input_are_not_copied():
    t = torch.from_numpy(X_NP)
    assert as_matrix(t).values.data_ptr() == t.data_ptr()
    assert as_matrix(X_NP).values.data_ptr() == X_NP.ctypes.data


def test_read_only_and_big_endian_arrays_are_accepted_without_warnings():
    ro = X_NP.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(as_matrix(ro).values.numpy(), X_NP)
    be = X_NP.astype(">f8")
    np.testing.assert_array_equal(as_matrix(be).values.numpy(), X_NP)
    np.testing.assert_array_equal(as_matrix(X_NP[::-1]).values.numpy(), X_NP[::-1])


def test_torch_input_stays_on_its_device_and_wrap_returns_it_there():
    t = torch.from_numpy(X_NP)
    m = as_matrix(t)
    assert m.kind == "torch" and m.device == t.device
    out = m.wrap(torch.ones(6, 1, dtype=torch.float64))
    assert isinstance(out, torch.Tensor) and out.device == t.device


def test_wrap_gives_numpy_for_other_kinds_and_restores_1d_targets():
    y = as_targets(pd.Series(np.arange(6.0)), 6)
    assert y.was_1d and y.values.shape == (6, 1)
    out = y.wrap(torch.arange(6.0).reshape(6, 1))
    assert isinstance(out, np.ndarray) and out.shape == (6,)
    y2 = as_targets(np.ones((6, 2)), 6)
    assert not y2.was_1d and y2.wrap(torch.ones(6, 2)).shape == (6, 2)


def test_nan_message_names_row_and_column():
    df = pd.DataFrame(X_NP, columns=["temp", "rainfall", "hum"])
    df.iloc[2, 1] = np.nan
    with pytest.raises(DataError, match=r"X contains NaN at row 3, column 'rainfall'") as info:
        as_matrix(df)
    assert info.value.row == 3 and info.value.column == "rainfall"
    assert "impute" in str(info.value) and "\n" not in str(info.value)


def test_inf_message_names_row_and_column_number():
    a = X_NP.copy()
    a[4, 0] = -np.inf
    with pytest.raises(DataError, match=r"X contains infinity at row 5, column 1 "):
        as_matrix(a)
    with pytest.raises(DataError, match="infinity at row 5"):
        as_matrix(torch.from_numpy(a))


def test_pandas_missing_values_in_nullable_columns_are_reported():
    df = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match=r"NaN at row 2, column 'a'"):
        as_matrix(df)
    with pytest.raises(DataError, match=r"NaN at row 2, column 'a'"):
        as_matrix(pl.from_pandas(df))


@pytest.mark.parametrize(
    "bad",
    [
        pd.DataFrame({"a": [1.0, 2.0], "city": ["x", "y"]}),
        pl.DataFrame({"a": [1.0, 2.0], "city": ["x", "y"]}),
        pa.table({"a": [1.0, 2.0], "city": ["x", "y"]}),
        pd.DataFrame({"a": [1.0, 2.0], "city": pd.Categorical(["x", "y"])}),
    ],
    ids=["pandas", "polars", "pyarrow", "categorical"],
)
def test_non_numeric_columns_are_named_with_their_dtype(bad):
    with pytest.raises(DataError, match=r"column 'city' has non-numeric"):
        as_matrix(bad)


def test_strings_in_arrays_are_located():
    a = np.array([[1.0, 2.0], [3.0, "abc"]], dtype=object)
    with pytest.raises(DataError, match=r"non-numeric value 'abc' at row 2, column 2"):
        as_matrix(a)
    with pytest.raises(DataError, match="non-numeric value 'x'"):
        as_matrix([["1", "2"], ["x", "4"]])


def test_object_arrays_of_numbers_are_accepted():
    np.testing.assert_array_equal(as_matrix(X_NP.astype(object)).values.numpy(), X_NP)


def test_object_array_with_a_dict_raises_type_error_like_numpy():
    a = X_NP.astype(object)
    a[0, 0] = {"foo": "bar"}
    with pytest.raises(NonNumericDataError, match=r"argument must be .* string.* number") as info:
        as_matrix(a)
    assert isinstance(info.value, TypeError) and isinstance(info.value, DataError)


@pytest.mark.parametrize(
    "X, pattern",
    [
        (
            np.arange(5.0),
            r"X must be 2-D .* Reshape your data with X\.reshape\(-1, 1\) for a single feature",
        ),
        (np.ones((2, 2, 2)), r"X must be 2-D .*got shape \(2, 2, 2\)"),
        (np.empty((0, 3)), r"0 sample\(s\) \(shape=\(0, 3\)\) while a minimum of 1 is required"),
        (
            np.empty((12, 0)),
            r"0 feature\(s\) \(shape=\(\d*, 0\)\) while a minimum of \d* is required.",
        ),
        (np.ones((3, 1)) * 1j, "Complex data not supported"),
        (torch.ones(3, 1, dtype=torch.complex64), "Complex data not supported"),
        (np.array([[1, 1j]], dtype=object), "Complex data not supported"),
        (scipy.sparse.csr_matrix(np.eye(3)), "sparse"),
        (None, "X is None"),
        ([[1.0, 2.0], [3.0]], "not a rectangular array"),
        (np.array([["2024-01-01"]], dtype="datetime64[D]"), "non-numeric dtype"),
    ],
)
def test_bad_shapes_and_types_raise_data_error(X, pattern):
    with pytest.raises(DataError, match=pattern) as info:
        as_matrix(X)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "empty",
    [
        pd.DataFrame(index=range(12)),
        pl.DataFrame({"a": range(12)}).drop("a"),
        pa.table({"a": range(12)}).drop_columns(["a"]),
    ],
    ids=["pandas", "polars", "pyarrow"],
)
def test_frames_without_columns_report_zero_features(empty):
    with pytest.raises(DataError, match=r"0 feature\(s\) \(shape=\(12, 0\)\)"):
        as_matrix(empty)


def test_one_sample_is_fine():
    assert as_matrix(np.ones((1, 10))).values.shape == (1, 10)


def test_targets_length_and_none():
    with pytest.raises(DataError, match="y has 5 rows but X has 6"):
        as_targets(np.ones(5), 6)
    with pytest.raises(DataError, match="requires y to be passed, but the target y is None"):
        as_targets(None, 6)
    with pytest.raises(DataError, match="Complex data not supported"):
        as_targets(np.ones(6) + 1j, 6)
    with pytest.raises(DataError, match=r"y contains NaN at row 2"):
        as_targets([1.0, np.nan], 2)


def test_weights_are_validated():
    # 1) None stays None; a scalar weights every row; lists become float64 tensors
    assert as_weights(None, 3) is None
    torch.testing.assert_close(as_weights(2, 3), torch.full((3,), 2.0, dtype=torch.float64))
    torch.testing.assert_close(
        as_weights([1, 0, 2], 3), torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    )
    # 2) wrong length, shape, sign, non-finite or all-zero weights are refused
    for w, pattern in [
        (np.ones(4), "4 values but X has 3 rows"),
        (np.ones((3, 1)), "must be 1-D"),
        ([1, -1, 1], "negative value -1.0 at row 2"),
        ([1, np.nan, 1], "NaN or infinity at row 2"),
        ([0, 0, 0], "zero for every row"),
    ]:
        with pytest.raises(DataError, match=re.escape(pattern) if "(" in pattern else pattern):
            as_weights(w, 3)


def test_matrix_is_a_plain_dataclass():
    m = as_matrix(X_NP)
    assert isinstance(m, Matrix) and m.shape == (6, 3) and not m.was_1d


class _Lstsq(RegressorMixin, BaseEstimator):
    """The smallest estimator built on as_matrix/as_targets/as_weights, for sklearn's checks."""

    def fit(self, X, y, sample_weight=None):
        Xm = as_matrix(X)
        Y = as_targets(y, Xm.shape[0])
        w = as_weights(sample_weight, Xm.shape[0])
        A = np.hstack([np.ones((Xm.shape[0], 1)), Xm.values.double().numpy()])
        Yn = Y.values.double().numpy()
        if w is not None:
            A, Yn = A * np.sqrt(w.numpy())[:, None], Yn * np.sqrt(w.numpy())[:, None]
        self.coef_ = np.linalg.lstsq(A, Yn, rcond=None)[0]
        self.n_features_in_ = Xm.shape[1]
        self._was_1d = Y.was_1d
        return self

    def predict(self, X):
        Xm = as_matrix(X)
        if Xm.shape[1] != self.n_features_in_:
            raise ValueError("wrong number of features")
        out = self.coef_[0] + Xm.values.double().numpy() @ self.coef_[1:]
        return out[:, 0] if self._was_1d else out


@pytest.mark.parametrize(
    "check",
    [
        ec.check_estimators_empty_data_messages,
        ec.check_complex_data,
        ec.check_estimators_nan_inf,
        ec.check_fit1d,
        ec.check_fit2d_1sample,
        ec.check_fit2d_1feature,
        ec.check_dtype_object,
        ec.check_estimators_dtypes,
        ec.check_sample_weights_not_an_array,
        ec.check_sample_weights_list,
        ec.check_sample_weights_shape,
        ec.check_fit2d_predict1d,
        ec.check_requires_y_none,
    ],
    ids=lambda c: c.__name__,
)
def test_scikit_learn_input_checks_pass(check):
    check("_Lstsq", _Lstsq())


def test_pandas_and_polars_are_not_imported_by_the_package():
    code = (
        "import sys, torchlinreg.data, torchlinreg.files.io; "
        "assert 'pandas' not in sys.modules and 'polars' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def _modules() -> list[str]:
    import pkgutil

    import torchlinreg

    names = (m.name for m in pkgutil.walk_packages(torchlinreg.__path__, "torchlinreg."))
    return sorted(n.removeprefix("torchlinreg.") for n in names if not n.endswith("__main__"))


@pytest.mark.parametrize("module", _modules())
def test_docstring_examples_run(module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    import doctest
    import importlib

    mod = importlib.import_module(f"torchlinreg.{module}")
    result = doctest.testmod(mod, extraglobs={"np": np, "torch": torch}, verbose=False)
    assert result.failed == 0


def test_huge_finite_values_whose_sum_overflows_are_accepted():
    # the fast finiteness check sums the values; an overflowing sum must not be a false alarm
    big = np.full((4, 2), np.finfo(np.float64).max)
    np.testing.assert_array_equal(as_matrix(big).values.numpy(), big)
    with pytest.raises(DataError, match="infinity at row 3, column 2"):
        as_matrix(np.where(np.arange(8).reshape(4, 2) == 5, np.inf, big))
