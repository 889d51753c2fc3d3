"""How the estimators take data in and give results back.

Any source becomes validated tensors on the compute device and dtype; the features are
checked against what the fit saw; coefficients and predictions go back as the input's
kind (numpy, or tensors on the input's device).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data import Matrix, as_problem
from ..errors import DataError, not_fitted_error
from ..stats.frames import _is_pandas


def resolve_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    return {"float32": torch.float32, "float64": torch.float64}[str(np.dtype(dtype))]


def concat(parts: list[Any]) -> Any:
    """Row-concatenate blocks of one kind (tensors or array-likes); None stays None.

    pandas blocks stay pandas, their columns checked to be the first block's (gathered as
    arrays before, a block of DataFrame columns in another order was fitted by position:
    coefficients [0.137, 0.080, 4.46] for [0.115, 0.218, 0.780], reported converged; and
    the names were lost, so predict took reordered columns too; an iterative hunt)."""
    if parts[0] is None:
        return None
    if all(_is_pandas(p) for p in parts):
        import pandas as pd

        if hasattr(parts[0], "columns"):  # DataFrames: the same columns, in order
            first = list(parts[0].columns)
            for i, part in enumerate(parts[1:], start=2):
                if list(part.columns) != first:
                    raise DataError(
                        f"block {i} has the columns {list(part.columns)}, the first block "
                        f"{first}; give every block the same columns in the same order"
                    )
        return pd.concat(parts, ignore_index=True)
    if isinstance(parts[0], Tensor):
        return torch.cat([torch.as_tensor(p) for p in parts])
    return np.concatenate([np.asarray(p) for p in parts])


def check_is_fitted(estimator: Any) -> None:
    if not hasattr(estimator, "model_"):
        raise not_fitted_error(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )


class InputMixin:
    """Input conversion and checks, and output in the input's kind, for the estimators."""

    def _compute_device(self, Xm: Matrix) -> torch.device:
        return torch.device(self.device) if self.device is not None else Xm.device

    def _compute_dtype(self, Xm: Matrix) -> torch.dtype:
        dtype = resolve_dtype(self.dtype)
        if dtype is not None:
            return dtype
        if self._is_exact:
            return torch.float64
        return (
            Xm.values.dtype if Xm.values.dtype in (torch.float32, torch.float64) else torch.float64
        )

    def _prepare(
        self,
        X,
        y,
        sample_weight,
        *,
        reset: bool,
        block: bool = False,
        check_finite: bool = True,
        upcast: bool = True,
    ):
        """Validated inputs and their tensors on the compute device and dtype.

        ``upcast=False`` leaves float32 input as it is where the compute dtype is float64:
        the exact state converts each row block on the fly (exactly), so no float64 copy of
        X (twice its size) is made up front. ``check_finite=False`` leaves the NaN/infinity
        scan of X and y to the caller (``data.check_finite``).
        """
        if y is None:
            raise DataError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        Xm, Ym, w = as_problem(X, y, sample_weight, allow_all_zero=block, check_finite=check_finite)
        if not reset:
            self._check_features(Xm)
            self._check_targets_named(Ym)
        device = self._compute_device(Xm)
        dtype = self._compute_dtype(Xm)
        Xt = Xm.values.to(device=device, dtype=_input_dtype(Xm.values, dtype, upcast))
        Yt = Ym.values.to(device=device, dtype=_input_dtype(Ym.values, dtype, upcast))
        wt = None if w is None else w.to(device=device, dtype=dtype)
        return Xm, Ym, Xt, Yt, wt

    def _check_features(self, Xm: Matrix) -> None:
        names = getattr(self, "feature_names_in_", None)
        if names is not None and Xm.columns is not None and list(Xm.columns) != list(names):
            raise DataError(
                "The feature names should match those that were passed during fit: expected "
                f"{list(names)}, got {list(Xm.columns)}; select and order the columns as in fit."
            )
        d = Xm.values.shape[1]
        if d != self.n_features_in_:
            raise DataError(
                f"X has {d} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )

    def _check_targets_named(self, Ym: Matrix) -> None:
        """Named targets of a later block (or of ``score``) as the fit's: a block whose y
        columns came in another order was added to the other target's sums, silently
        (coefficients 464 off; a several-targets hunt), where reordered X is refused."""
        names = getattr(self, "_target_names", None)
        if names is None or Ym.columns is None or len(names) < 2:
            return
        got = [str(c) for c in Ym.columns]
        if got != [str(n) for n in names]:
            raise DataError(
                f"the target names should match those of the fit: expected {list(names)}, got "
                f"{got}; select and order the target columns as in fit"
            )

    def _set_input_info(self, Xm: Matrix, Ym: Matrix) -> None:
        self.n_features_in_ = Xm.values.shape[1]
        if Xm.columns is not None and all(isinstance(c, str) for c in Xm.columns):
            self.feature_names_in_ = np.asarray(Xm.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._y_was_1d = Ym.was_1d
        self._target_names = list(Ym.columns) if Ym.columns is not None else None
        self._output_kind = (Xm.kind, Xm.device)
        # scikit-learn's convention: coef_ and intercept_ in X's float dtype
        self._output_dtype = torch.float32 if Xm.values.dtype == torch.float32 else torch.float64

    def _feature_list(self) -> list[str] | None:
        names = getattr(self, "feature_names_in_", None)
        return None if names is None else [str(n) for n in names]

    def _name_columns(self, feature_names, target_names) -> None:
        """Name the columns of a fit whose blocks carried no names (files, iterables).

        One target name given as a string (not a list) declares a 1-D target, as a pandas
        Series would: ``coef_`` is ``(d,)`` and predictions ``(n,)``.
        """
        if isinstance(target_names, str):
            k = self.state_.n_targets if hasattr(self, "state_") else self.model_.n_targets
            if k != 1:
                raise DataError(f"one target name ({target_names!r}) for {k} targets")
            self._y_was_1d = True
            target_names = [target_names]
        if feature_names is not None:
            if len(feature_names) != self.n_features_in_:
                raise DataError(
                    f"{len(feature_names)} feature names for {self.n_features_in_} features"
                )
            self.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
        if target_names is not None:
            k = self.state_.n_targets if hasattr(self, "state_") else self.model_.n_targets
            if len(target_names) != k:
                raise DataError(f"{len(target_names)} target names for {k} targets")
            self._target_names = list(target_names)
        if hasattr(self, "model_"):
            self._publish()  # the shapes may have changed

    # NOTE [scikit-learn's shapes]
    # coef_ is (d,) for a 1-D y and (k, d) otherwise, except that scikit-learn's Ridge also
    # ravels it for a y of shape (n, 1) (and then predicts (n,)); intercept_ is a numpy
    # scalar for a 1-D y, (k,) otherwise, and the float 0.0 without an intercept. Both come
    # in X's float dtype. Checked against scikit-learn for every combination in the tests.
    _ravel_one_target = False
    # y (n, 1) taken as (n,) altogether, intercept_ a scalar too (scikit-learn's LassoCV,
    # ElasticNetCV and HuberRegressor ravel y; its Ridge and Lasso keep intercept_ (1,))
    _ravel_y = False

    def _one_d_output(self) -> bool:
        return self._y_was_1d or (self._ravel_one_target and self.model_.n_targets == 1)

    def _publish(self) -> None:
        """Expose coef_/intercept_ as the input's type (numpy, or tensors on its device) in
        scikit-learn's shapes and X's float dtype (NOTE [scikit-learn's shapes])."""
        kind, device = self._output_kind
        dtype = getattr(self, "_output_dtype", torch.float64)
        coef, intercept = self.model_.weight.to(dtype), self.model_.bias.to(dtype)
        if kind == "torch":
            coef, intercept = coef.to(device), intercept.to(device)
        else:
            coef, intercept = coef.cpu().numpy(), intercept.cpu().numpy()
        if self._one_d_output():
            coef = coef[0]
        if self._y_was_1d or (self._ravel_y and self.model_.n_targets == 1):
            intercept = intercept[0]  # a numpy scalar (or 0-d tensor), as scikit-learn's
        if not self.fit_intercept:
            intercept = 0.0
        self.coef_, self.intercept_ = coef, intercept
        # what partial_fit must find unchanged to continue this fit
        self._fitted_with = {
            "fit_intercept": self.fit_intercept,
            "solver": getattr(self, "solver", None),
        }


def _input_dtype(values, dtype: torch.dtype, upcast: bool) -> torch.dtype:
    """``dtype``, or float32 kept as it is when only an exact upcast to float64 would follow."""
    if not upcast and values.dtype == torch.float32 and dtype == torch.float64:
        return torch.float32
    return dtype
