"""scikit-learn-style estimators over torchlinreg's two engines.

``solver`` picks the engine: ``"qr"`` and ``"gram"`` go to the exact engine (a mergeable
least-squares state), ``"gd"``, ``"sgd"``, ``"adam"`` and ``"lbfgs"`` to the iterative
training loop. Inputs may be numpy arrays, torch tensors on any device, pandas or polars
DataFrames, or pyarrow Tables; predictions come back as the input's type and device.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from ._params import ParamsMixin
from .data import Matrix, as_matrix, as_targets, as_weights
from .errors import DataError, not_fitted_error
from .exact import LeastSquaresState
from .inference import OLSResults
from .iterative import fit_iterative
from .metrics import r2_score
from .model import LinearModel

EXACT_SOLVERS = ("qr", "gram")
ITERATIVE_SOLVERS = ("gd", "sgd", "adam", "lbfgs")


def _nonneg_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0


def _pos_int_or_none(v: Any) -> bool:
    return v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0)


def _pos_number_or_none(v: Any) -> bool:
    return v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0)


def _resolve_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    return {"float32": torch.float32, "float64": torch.float64}[str(np.dtype(dtype))]


class LinearRegression(ParamsMixin):
    """Ordinary least squares (and ridge) fitted exactly or iteratively.

    Args:
        solver: ``"qr"`` (default: exact, accurate TSQR), ``"gram"`` (exact, fastest: centred
            normal equations), or an iterative solver ``"gd"``, ``"sgd"``, ``"adam"``,
            ``"lbfgs"``.
        fit_intercept: fit a bias per target (never penalised). Default True.
        alpha: ridge penalty ``alpha * ||coef||^2``. Default 0.
        standardize: iterative solvers train on standardized features and targets and report
            coefficients in original units. Exact solvers do not need it. Default True.
        lr, max_iter, batch_size, tol, n_iter_no_change: iterative settings; None picks the
            solver's default. ``max_iter`` counts epochs.
        random_state: seed for shuffling and random initialisation.
        init: iterative starting point: ``"zeros"`` or ``"randn"`` (the walk-through's
            ``torch.manual_seed(random_state); randn(k, d); randn(k)``).
        device: where to compute (``"cpu"``, ``"cuda"``); None uses the input's device.
        dtype: compute dtype; None means float64 for exact solvers whatever the input, and
            the input's float dtype for iterative ones.
        rcond: relative tolerance for declaring columns aliased (exact solvers).

    Example:
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0]]); y = np.array([1.0, 3.0, 5.0])
        >>> LinearRegression().fit(X, y).coef_
        array([2.])
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "solver": EXACT_SOLVERS + ITERATIVE_SOLVERS,
        "fit_intercept": (True, False),
        "alpha": (_nonneg_number, "a non-negative real number"),
        "standardize": (True, False),
        "lr": (_pos_number_or_none, "a positive real number or None"),
        "max_iter": (_pos_int_or_none, "a positive integer or None"),
        "batch_size": (_pos_int_or_none, "a positive integer or None"),
        "tol": (lambda v: v is None or _nonneg_number(v), "a non-negative real number or None"),
        "n_iter_no_change": (_pos_int_or_none, "a positive integer"),
        "rcond": (_pos_number_or_none, "a positive real number or None"),
        "init": ("zeros", "randn"),
    }

    def __init__(
        self,
        *,
        solver: str = "qr",
        fit_intercept: bool = True,
        alpha: float = 0.0,
        standardize: bool = True,
        lr: float | None = None,
        max_iter: int | None = 200,
        batch_size: int | None = None,
        tol: float | None = 1e-4,
        n_iter_no_change: int = 5,
        random_state: int | None = None,
        init: str = "zeros",
        device: str | torch.device | None = None,
        dtype: Any = None,
        rcond: float | None = None,
    ) -> None:
        self.solver = solver
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.standardize = standardize
        self.lr = lr
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.init = init
        self.device = device
        self.dtype = dtype
        self.rcond = rcond

    # ---------------------------------------------------------------- input handling
    def _compute_device(self, Xm: Matrix) -> torch.device:
        return torch.device(self.device) if self.device is not None else Xm.device

    def _compute_dtype(self, Xm: Matrix) -> torch.dtype:
        dtype = _resolve_dtype(self.dtype)
        if dtype is not None:
            return dtype
        if self.solver in EXACT_SOLVERS:
            return torch.float64
        return (
            Xm.values.dtype if Xm.values.dtype in (torch.float32, torch.float64) else torch.float64
        )

    def _prepare(self, X, y, sample_weight, *, reset: bool, block: bool = False):
        if y is None:
            raise DataError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        Xm = as_matrix(X, name="X")
        if not reset:
            self._check_features(Xm)
        device = self._compute_device(Xm)
        dtype = self._compute_dtype(Xm)
        Ym = as_targets(y, Xm.values.shape[0], name="y")
        w = as_weights(sample_weight, Xm.values.shape[0], allow_all_zero=block)
        Xt = Xm.values.to(device=device, dtype=dtype)
        Yt = Ym.values.to(device=device, dtype=dtype)
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

    def _set_input_info(self, Xm: Matrix, Ym: Matrix) -> None:
        self.n_features_in_ = Xm.values.shape[1]
        if Xm.columns is not None and all(isinstance(c, str) for c in Xm.columns):
            self.feature_names_in_ = np.asarray(Xm.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._y_was_1d = Ym.was_1d
        self._target_names = list(Ym.columns) if Ym.columns is not None else None
        self._output_kind = (Xm.kind, Xm.device)

    # ---------------------------------------------------------------- fitting
    def fit(
        self,
        X,
        y,
        sample_weight=None,
        *,
        callbacks: Sequence[Any] = (),
        resume_from: dict | None = None,
    ):
        """Fit on all rows at once and return ``self``.

        ``callbacks`` are handed to the iterative engine (progress bars, checkpoints), and
        ``resume_from`` (a trainer state from a checkpoint) continues an interrupted
        iterative fit; exact solvers need neither.
        """
        self._validate_params()
        self._forget()
        if self.solver in EXACT_SOLVERS:
            Xt, Yt, wt = self._absorb(X, y, sample_weight)
            self._solve_state()
            if self.alpha == 0:
                self._results = OLSResults.from_fit(
                    Xt,
                    Yt[:, 0] if self._y_was_1d else Yt,
                    wt,
                    self.fit_intercept,
                    self.state_,
                    self.solution_,
                    feature_names=self._feature_list(),
                    target_names=self._target_names,
                )
                self._adopt_refined(self._results)
        else:
            Xm, Ym, Xt, Yt, wt = self._prepare(X, y, sample_weight, reset=True)
            self._fit_iterative(Xt, Yt, wt, callbacks, resume_from)
            self._set_input_info(Xm, Ym)
        self._publish()
        return self

    def _forget(self) -> None:
        """Drop what an earlier fit learned, so a refit starts clean."""
        for key in (
            "state_",
            "solution_",
            "model_",
            "feature_names_in_",
            "_trainer_state",
            "_results",
            "_weighted",
        ):
            if hasattr(self, key):
                delattr(self, key)

    def _feature_list(self) -> list[str] | None:
        names = getattr(self, "feature_names_in_", None)
        return None if names is None else [str(n) for n in names]

    def _adopt_refined(self, results: OLSResults) -> None:
        """Take the refined parameters (NOTE: only where no column is aliased: the
        coefficients of a rank-deficient fit stay the minimum-norm solution)."""
        if self.solution_.aliased:
            return
        params = torch.as_tensor(results.params, dtype=torch.float64).reshape(
            -1, self.state_.n_targets
        )
        params = params.to(self.state_.device)
        c = int(self.fit_intercept)
        intercept = params[0] if c else torch.zeros_like(params[0])
        self.model_ = LinearModel(params[c:].T.contiguous(), intercept.contiguous())

    def __getstate__(self) -> dict:
        # The results object holds closures over the training rows: a pickled estimator
        # leaves it behind and rebuilds it from the state when asked (non-robust only).
        state = self.__dict__.copy()
        state.pop("_results", None)
        return state

    @property
    def results_(self) -> OLSResults:
        """statsmodels-style statistics of an exact, unpenalised fit (see :mod:`.inference`).

        In-memory fits carry refined parameters and can give robust (HC) covariances;
        streamed, partial and loaded fits are built from the least-squares state alone.
        """
        check_is_fitted(self)
        cached = getattr(self, "_results", None)
        if cached is not None:
            return cached
        if not hasattr(self, "state_") or self.alpha != 0:
            raise AttributeError(
                "results_ is available for exact solvers without a penalty (alpha=0); use "
                "solver='qr' or 'gram' and alpha=0, or torchlinreg.ols(X, y)"
            )
        self._results = OLSResults.from_state(
            self.state_,
            self.solution_,
            weighted=getattr(self, "_weighted", False),
            y_was_1d=self._y_was_1d,
            feature_names=self._feature_list(),
            target_names=self._target_names,
        )
        return self._results

    def partial_fit(self, X, y, sample_weight=None):
        """Learn from one more block of rows and return ``self``.

        Exact solvers merge the block into their least-squares state, so fitting block by
        block equals one ``fit`` on all rows. Iterative solvers run one epoch over the block,
        continuing from where the last call stopped (weights, optimizer state and the
        standardization learned from the first block), as scikit-learn's SGDRegressor does.

        Example:
            >>> import numpy as np
            >>> X = np.arange(8.0).reshape(4, 2); y = X[:, 0] * 2 + 1
            >>> m = LinearRegression().partial_fit(X[:2], y[:2]).partial_fit(X[2:], y[2:])
            >>> round(float(m.intercept_), 6)
            1.0
        """
        self._validate_params()
        if self.solver in EXACT_SOLVERS:
            n_iter = getattr(self, "n_iter_", 0)
            self._absorb(X, y, sample_weight)
            self._solve_state()
            self.n_iter_ = n_iter + 1
        else:
            first = not hasattr(self, "model_")
            Xm, Ym, Xt, Yt, wt = self._prepare(X, y, sample_weight, reset=first)
            state = getattr(self, "_trainer_state", None)
            if state is not None:
                state = {**state, "stop_reason": None}
            epochs = 1 if state is None else int(state["epoch"]) + 1
            self._fit_iterative(Xt, Yt, wt, (), state, max_iter=epochs, tol=None)
            if first:
                self._set_input_info(Xm, Ym)
        self._publish()
        return self

    def fit_blocks(
        self,
        blocks: Iterable[Any],
        *,
        feature_names: Sequence[str] | None = None,
        target_names: Sequence[str] | None = None,
        callbacks: Sequence[Any] = (),
    ):
        """Fit on an iterable of row blocks and return ``self``.

        Each block is ``(X, y)``, ``(X, y, sample_weight)`` or an object with ``X``, ``Y``
        and ``w`` attributes (as :mod:`torchlinreg.tables` yields). Exact solvers absorb the
        blocks one at a time into their state, so memory stays at one block plus a
        ``(d + k)^2`` summary whatever the number of rows; the result equals one ``fit`` on
        all rows. Iterative solvers gather the blocks in memory first.

        Example:
            >>> import numpy as np
            >>> rng = np.random.default_rng(0)
            >>> blocks = [(rng.normal(size=(50, 2)), rng.normal(size=50)) for _ in range(4)]
            >>> LinearRegression().fit_blocks(blocks).n_features_in_
            2
        """
        self._validate_params()
        parts = (_unpack_block(b) for b in blocks)
        if self.solver not in EXACT_SOLVERS:
            gathered = list(parts)
            if not gathered:
                raise DataError("no blocks to fit; the data source yielded no rows")
            X, y, w = (_concat([p[i] for p in gathered]) for i in range(3))
            return self._fit_named(X, y, w, feature_names, target_names, callbacks)
        self._forget()
        for X, y, w in parts:
            self._absorb(X, y, w)
        if not hasattr(self, "state_"):
            raise DataError("no blocks to fit; the data source yielded no rows")
        self._name_columns(feature_names, target_names)
        self._solve_state()
        self._publish()
        return self

    def _fit_named(self, X, y, w, feature_names, target_names, callbacks):
        self.fit(X, y, w, callbacks=callbacks)
        self._name_columns(feature_names, target_names)
        return self

    def _name_columns(self, feature_names, target_names) -> None:
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

    def _absorb(self, X, y, sample_weight) -> tuple[Tensor, Tensor, Tensor | None]:
        """Absorb one block into the exact state, creating it from the first block."""
        first = not hasattr(self, "state_")
        Xm, Ym, Xt, Yt, wt = self._prepare(X, y, sample_weight, reset=first, block=True)
        if first:
            self.state_ = LeastSquaresState(
                Xt.shape[1],
                Yt.shape[1],
                fit_intercept=self.fit_intercept,
                method=self.solver,
                dtype=Xt.dtype,
                device=Xt.device,
            )
            self._set_input_info(Xm, Ym)
        elif Yt.shape[1] != self.state_.n_targets:
            raise DataError(
                f"y has {Yt.shape[1]} targets, but earlier blocks had {self.state_.n_targets}."
            )
        self.state_.absorb(Xt, Yt, wt)
        self._weighted = getattr(self, "_weighted", False) or wt is not None
        self._results = None
        return Xt, Yt, wt

    def _solve_state(self) -> None:
        if not self.state_.sum_weights > 0:
            raise DataError(
                "sample_weight is zero for every row absorbed; at least one weight must be "
                "positive"
            )
        names = getattr(self, "feature_names_in_", None)
        names = None if names is None else list(names)
        self.solution_ = self.state_.solve(
            alpha=float(self.alpha), rcond=self.rcond, feature_names=names
        )
        self.rank_ = self.solution_.rank
        self.model_ = LinearModel(self.solution_.coef, self.solution_.intercept)
        self.n_iter_ = 1
        self.loss_history_ = []

    def _fit_iterative(
        self,
        Xt: Tensor,
        Yt: Tensor,
        wt: Tensor | None,
        callbacks,
        resume_from=None,
        *,
        max_iter: int | None = None,
        tol: Any = "default",
    ) -> None:
        result = fit_iterative(
            Xt,
            Yt,
            sample_weight=wt,
            solver=self.solver,
            fit_intercept=self.fit_intercept,
            alpha=float(self.alpha),
            standardize=self.standardize,
            lr=self.lr,
            max_iter=max_iter or (self.max_iter if self.max_iter is not None else 200),
            batch_size=self.batch_size,
            tol=self.tol if tol == "default" else tol,
            n_iter_no_change=self.n_iter_no_change,
            random_state=self.random_state,
            init=self.init,
            callbacks=callbacks,
            resume_from=resume_from,
            device=Xt.device,
            dtype=Xt.dtype,
        )
        self.model_ = LinearModel(result.coef, result.intercept)
        self.n_iter_ = result.n_iter
        self.loss_history_ = list(result.loss_history)
        self._trainer_state = result.state
        self.rank_ = None

    def _publish(self) -> None:
        """Expose coef_/intercept_ as the input's type: numpy, or tensors on its device."""
        kind, device = self._output_kind
        coef, intercept = self.model_.weight, self.model_.bias
        if kind == "torch":
            coef, intercept = coef.to(device), intercept.to(device)
            if self._y_was_1d:
                coef, intercept = coef[0], intercept[0]
        else:
            coef, intercept = coef.cpu().numpy(), intercept.cpu().numpy()
            if self._y_was_1d:
                coef, intercept = coef[0], float(intercept[0])
        self.coef_, self.intercept_ = coef, intercept

    # ---------------------------------------------------------------- using the model
    def predict(self, X):
        """Predictions, shape ``(n,)`` for a 1-D fitted target else ``(n, k)``, as X's type."""
        check_is_fitted(self)
        Xm = as_matrix(X, name="X")
        self._check_features(Xm)
        device = self._compute_device(Xm)
        Xt = Xm.values.to(device=device)
        out = self.model_.predict(Xt)
        if self._y_was_1d:
            out = out[:, 0]
        # float32 in, float32 out (as scikit-learn); everything else comes back float64.
        out = out.to(torch.float32 if Xm.values.dtype == torch.float32 else torch.float64)
        return Xm.wrap(out)

    def score(self, X, y, sample_weight=None) -> float:
        """R2 of the predictions, averaged uniformly over targets."""
        pred = self.predict(X)
        Xm = as_matrix(X, name="X")
        Ym = as_targets(y, Xm.values.shape[0], name="y")
        pt = torch.as_tensor(np.asarray(pred)) if not isinstance(pred, Tensor) else pred
        w = as_weights(sample_weight, Xm.values.shape[0])
        return r2_score(Ym.values, pt.reshape(Ym.values.shape[0], -1), w)

    def state_metrics(self) -> dict[str, Tensor]:
        """MSE, RMSE and R2 per target on the rows absorbed, from the exact state alone.

        No second pass over the data: for any coefficients the residual sum of squares is
        ``||R [-coef; I]||^2`` with ``R`` the state's factor. Without an intercept the R2 is
        the uncentred one (``r2_uncentered``), as statsmodels reports it.
        """
        check_is_fitted(self)
        summary = self.state_.centred_summary()
        r, d = summary.r, self.state_.n_features
        coef = self.model_.weight.to(device=r.device, dtype=r.dtype)
        sse = ((r[:, :d] @ coef.T - r[:, d:]) ** 2).sum(dim=0)
        tss = (r[:, d:] ** 2).sum(dim=0)
        mse = sse / summary.sum_weights
        r2 = torch.where(tss > 0, 1.0 - sse / torch.where(tss > 0, tss, 1.0), 0.0)
        key = "r2" if self.fit_intercept else "r2_uncentered"
        return {"mse": mse, "rmse": mse.sqrt(), key: r2}

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    @property
    def linear_model_(self) -> LinearModel:
        """The fitted :class:`LinearModel` with feature and target names."""
        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        return LinearModel(
            self.model_.weight,
            self.model_.bias,
            None if names is None else list(names),
            self._target_names,
        )


class Ridge(LinearRegression):
    """:class:`LinearRegression` with ``alpha=1.0`` by default: ridge regression.

    Example:
        >>> import numpy as np
        >>> Ridge(alpha=0.5).fit(np.eye(3), np.arange(3.0)).coef_.shape
        (3,)
    """

    def __init__(
        self,
        *,
        solver: str = "qr",
        fit_intercept: bool = True,
        alpha: float = 1.0,
        standardize: bool = True,
        lr: float | None = None,
        max_iter: int | None = 200,
        batch_size: int | None = None,
        tol: float | None = 1e-4,
        n_iter_no_change: int = 5,
        random_state: int | None = None,
        init: str = "zeros",
        device: str | torch.device | None = None,
        dtype: Any = None,
        rcond: float | None = None,
    ) -> None:
        super().__init__(
            solver=solver,
            fit_intercept=fit_intercept,
            alpha=alpha,
            standardize=standardize,
            lr=lr,
            max_iter=max_iter,
            batch_size=batch_size,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            random_state=random_state,
            init=init,
            device=device,
            dtype=dtype,
            rcond=rcond,
        )


def _unpack_block(block: Any) -> tuple[Any, Any, Any]:
    if hasattr(block, "X"):
        return block.X, getattr(block, "Y", None), getattr(block, "w", None)
    if isinstance(block, (tuple, list)) and len(block) in (2, 3):
        return block[0], block[1], block[2] if len(block) == 3 else None
    raise DataError(
        f"a block must be (X, y), (X, y, sample_weight) or have X/Y/w attributes; got "
        f"{type(block).__name__}"
    )


def _concat(parts: list[Any]) -> Any:
    if parts[0] is None:
        return None
    if isinstance(parts[0], Tensor):
        return torch.cat([torch.as_tensor(p) for p in parts])
    return np.concatenate([np.asarray(p) for p in parts])


def check_is_fitted(estimator: LinearRegression) -> None:
    if not hasattr(estimator, "model_"):
        raise not_fitted_error(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )
