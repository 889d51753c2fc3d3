"""scikit-learn-style estimators over torchlinreg's two engines.

``solver`` picks the engine: ``"qr"`` and ``"gram"`` go to the exact engine (a mergeable
least-squares state), ``"gd"``, ``"sgd"``, ``"adam"`` and ``"lbfgs"`` to the iterative
training loop. Inputs may be numpy arrays, torch tensors on any device, pandas or polars
DataFrames, or pyarrow Tables; predictions come back as the input's type and device.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from ..data import (
    as_matrix,
    as_targets,
    as_weights,
    is_sparse,
    sparse_row_blocks,
    unpack_block,
)
from ..distributed.collectives import (
    agree_on_errors,
    allgather,
    check_same_columns,
    count_all_ranks,
    is_distributed,
)
from ..errors import ConvergenceWarning, DataError
from ..exact.threads import with_fit_threads
from ..model import LinearModel
from ..stats.frames import count_the_constant, spans_the_constant
from ..stats.metrics import r2_score
from ..stats.results import OLSResults
from .exact_fit import EXACT_SOLVERS, ExactFitMixin
from .formula_fit import FormulaMixin
from .inputs import InputMixin, check_is_fitted, concat
from .iterative_fit import ITERATIVE_SOLVERS, IterativeFitMixin
from .params import ParamsMixin

__all__ = ["EXACT_SOLVERS", "ITERATIVE_SOLVERS", "LinearRegression", "Ridge", "check_is_fitted"]


def _nonneg_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0


def _alpha_value(v: Any) -> bool:
    """One non-negative number, or one per target (a 1-D array-like), all finite."""
    if _nonneg_number(v):
        return True
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
        return False
    a = np.asarray(v)
    return (
        a.ndim == 1
        and a.size > 0
        and a.dtype.kind in "iuf"
        and bool(np.isfinite(a).all() and (a >= 0).all())
    )


def _pos_int_or_none(v: Any) -> bool:
    return v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0)


def _pos_number_or_none(v: Any) -> bool:
    return v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0)


# NOTE [blocks far from the first]
# An iterative partial_fit keeps the standardization the first block taught it. A block
# whose columns lie far outside it (the first near 0, later ones near 1e6) is then taken
# with steps scaled for other data: adam and lbfgs stopped with a DivergenceError that
# blamed the lr, and gd returned coefficients 40% off with nothing but converged_=False
# (an iterative hunt). Where a block's column means lie over DRIFT_SDS of the first block's
# standard deviations away, a ConvergenceWarning says so and what to do.
DRIFT_SDS = 30.0


def _warn_drift(X: Tensor, scaler_state) -> None:
    from ..stats.covariance import user_stacklevel

    if scaler_state is None or X.shape[0] == 0:
        return
    mean = scaler_state["x_mean"].to(X.device, torch.float64)
    scale = scaler_state["x_scale"].to(X.device, torch.float64)
    far = ((X.to(torch.float64).mean(0) - mean).abs() / scale).nan_to_num(nan=0.0)
    worst = float(far.max()) if far.numel() else 0.0
    if worst > DRIFT_SDS:
        warnings.warn(
            ConvergenceWarning(
                f"this block's column {int(far.argmax())} lies {worst:.3g} standard deviations "
                "from the first block's mean: partial_fit keeps the first block's "
                "standardization, so its steps suit other data and the fit may diverge or "
                "stay far off; fit on all rows at once, or use an exact solver (qr, gram), "
                "whose partial_fit equals a fit on all rows"
            ),
            stacklevel=user_stacklevel(),
        )


class LinearRegression(ExactFitMixin, FormulaMixin, IterativeFitMixin, InputMixin, ParamsMixin):
    """Ordinary least squares (and ridge) fitted exactly or iteratively.

    Args:
        solver: ``"qr"`` (default: exact, accurate TSQR), ``"gram"`` (exact, fastest: centred
            normal equations), or an iterative solver ``"gd"``, ``"sgd"``, ``"adam"``,
            ``"lbfgs"``.
        fit_intercept: fit a bias per target (never penalised). Default True.
        alpha: ridge penalty ``alpha * ||coef||^2``. Default 0. Exact solvers also take one
            penalty per target, an array of shape ``(n_targets,)``, as scikit-learn's Ridge.
        standardize: iterative solvers train on standardized features and targets and report
            coefficients in original units. Exact solvers do not need it. Default True.
        lr, max_iter, batch_size: iterative settings; None picks the solver's default.
            ``max_iter`` counts epochs.
        tol: the optimality gap an iterative fit must reach (for OLS the exact fit's R2
            minus this fit's): ``"auto"`` (default) is the solver's own (1e-12 lbfgs, 1e-6
            gd, 1e-4 sgd and adam), None runs all ``max_iter`` epochs. A fit that ends above
            it warns (:class:`ConvergenceWarning`). After fitting, ``optimality_gap_``,
            ``converged_`` and ``n_iter_`` say how it went.
        n_iter_no_change: epochs without improvement of the loss that stop a fit whose gap
            cannot be measured (more than 2048 features and targets, ``alpha=0``).
        random_state: seed for shuffling and random initialisation.
        init: iterative starting point: ``"zeros"`` or ``"randn"`` (the walk-through's
            ``torch.manual_seed(random_state); randn(k, d); randn(k)``).
        device: where to compute (``"cpu"``, ``"cuda"``); None uses the input's device.
        dtype: compute dtype; None means float64 for exact solvers whatever the input, and
            the input's float dtype for iterative ones.
        rcond: relative tolerance for declaring columns aliased (exact solvers).
        positive: constrain the coefficients to be >= 0 (exact solvers): non-negative least
            squares (or ridge) by Lawson-Hanson from the state (``models/nonneg.py``).

    Example:
        >>> import numpy as np
        >>> X = np.array([[0.0], [1.0], [2.0]]); y = np.array([1.0, 3.0, 5.0])
        >>> LinearRegression().fit(X, y).coef_
        array([2.])
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "solver": EXACT_SOLVERS + ITERATIVE_SOLVERS,
        "fit_intercept": (True, False),
        "alpha": (
            _alpha_value,
            "a non-negative real number, or an array of shape (n_targets,) of them",
        ),
        "standardize": (True, False),
        "lr": (_pos_number_or_none, "a positive real number or None"),
        "max_iter": (_pos_int_or_none, "a positive integer or None"),
        "batch_size": (_pos_int_or_none, "a positive integer or None"),
        "tol": (
            lambda v: v is None or v == "auto" or _nonneg_number(v),
            "a non-negative real number, 'auto' or None",
        ),
        "n_iter_no_change": (_pos_int_or_none, "a positive integer"),
        "rcond": (_pos_number_or_none, "a positive real number or None"),
        "init": ("zeros", "randn"),
        "positive": (True, False),
    }

    def __init__(
        self,
        *,
        solver: str = "qr",
        fit_intercept: bool = True,
        alpha: float = 0.0,
        standardize: bool = True,
        lr: float | None = None,
        max_iter: int | None = None,
        batch_size: int | None = None,
        tol: float | str | None = "auto",
        n_iter_no_change: int = 5,
        random_state: int | None = None,
        init: str = "zeros",
        device: str | torch.device | None = None,
        dtype: Any = None,
        rcond: float | None = None,
        positive: bool = False,
    ) -> None:
        self.positive = positive
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

    # ---------------------------------------------------------------- fitting
    def _validate_params(self) -> None:
        super()._validate_params()
        if getattr(self, "positive", False) and self.solver not in EXACT_SOLVERS:
            raise ValueError(
                f"positive=True needs an exact solver ('qr' or 'gram'), got {self.solver!r}"
            )

    @property
    def _is_exact(self) -> bool:
        return self.solver in EXACT_SOLVERS

    @with_fit_threads
    def fit(
        self,
        X,
        y,
        sample_weight=None,
        *,
        callbacks: Sequence[Any] = (),
        resume_from: dict | None = None,
        missing: str = "raise",
    ):
        """Fit on all rows at once and return ``self``.

        ``callbacks`` are handed to the iterative engine (progress bars, checkpoints), and
        ``resume_from`` (a trainer state from a checkpoint) continues an interrupted
        iterative fit; exact solvers need neither. ``missing="drop"`` leaves out rows with
        NaN in X, y or the weights (``nobs_dropped_`` counts them); ``"raise"`` refuses them.
        A formula: :meth:`fit_formula`.
        """
        self._validate_params()
        dropped = 0
        if missing != "raise":
            X, y, sample_weight, dropped = _drop_missing(X, y, sample_weight, missing)
        if is_sparse(X):
            return self._fit_sparse(X, y, sample_weight, partial=False)
        self._forget()
        self.nobs_dropped_ = dropped
        self._row_index = _row_index(X, y)  # pandas input: results_ labelled by name
        if self.solver in EXACT_SOLVERS:
            with agree_on_errors():
                Xt, Yt, wt = self._absorb(X, y, sample_weight, whole_fit=True)
            self._merge_ranks()
            self._solve_state()
            # Refinement and robust covariances need all rows: a distributed fit has only
            # this rank's, so it keeps the state's results, as a streamed fit does.
            if self._unpenalised and not is_distributed():
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
                if not self.fit_intercept and spans_the_constant(Xt):
                    count_the_constant(self._results)  # NOTE [a constant in the columns]
                self._results = self._label_results(self._results)
            else:
                self._warn_unrefined("a distributed")
        else:
            with agree_on_errors():
                # a rank whose rows all weigh 0 is a part of the data, as for the exact
                # solvers (it refused the fit on every rank); all ranks' weights are checked
                distributed = is_distributed()
                Xm, Ym, Xt, Yt, wt = self._prepare(X, y, sample_weight, reset=True,
                                                   block=distributed)  # fmt: skip
            if distributed:
                _check_some_weight(wt)
                Xt, Yt, wt = _widest_dtype_of_ranks(Xt, Yt, wt)
            check_same_columns(_named(Xm))  # NOTE [columns by name across ranks]
            self._fit_iterative(Xt, Yt, wt, callbacks, resume_from)
            self._set_input_info(Xm, Ym)
        self._publish()
        return self

    def _check_continues(self) -> None:
        """partial_fit continues the fit it finds: parameters that shape the fitted state
        must not have changed since (``set_params(fit_intercept=False)`` then partial_fit
        mixed a state with an intercept into a model without one: intercept_ 0 while
        predict added the old bias, coefficients 899 off; a scikit-learn hunt)."""
        state = getattr(self, "state_", None)
        before = getattr(self, "_fitted_with", None)
        if before is None and state is not None:  # a loaded model: what its state says
            before = {"fit_intercept": bool(state.fit_intercept)}
        if before is None or not hasattr(self, "model_"):
            return
        now = {key: getattr(self, key) for key in before}
        changed = [f"{k}={before[k]!r} -> {now[k]!r}" for k in before if before[k] != now[k]]
        if changed:
            raise ValueError(
                f"{', '.join(changed)} since the model was fitted: partial_fit continues that "
                "fit; call fit to start over with the new parameters"
            )

    def _stale_covariance(self) -> None:
        """New rows make a robust covariance of the old ones stale: an update kept it and
        showed the new coefficients with the old rows' HC3 standard errors under "HC3" (an
        update hunt). It is dropped; the results are nonrobust until one is taken again."""
        for key in ("robust_cov_", "_robust_offsets", "_results"):
            self.__dict__.pop(key, None)

    def _forget(self) -> None:
        """Drop what an earlier fit learned, so a refit starts clean."""
        for key in (
            "state_",
            "solution_",
            "model_",
            "feature_names_in_",
            "_trainer_state",
            "_local_state",
            "_moments",
            "_results",
            "_weighted",
            "optimality_gap_",
            "optimality_gap_kind_",
            "converged_",
            "formula_encoding_",
            "_row_index",
            "robust_cov_",
            "_robust_offsets",  # the robust covariance about the offsets (formula_fit.py)
            "_unrefined_warned",
            "_unrefined_sums_warned",
            "_range_warned",
        ):
            if hasattr(self, key):
                delattr(self, key)
        # and every fitted attribute (scikit-learn's trailing underscore): a RidgeCV refit
        # with cv=None kept the r2_path_ of an earlier cv=3 fit, stale beside its new
        # mse_path_
        params = set(self._param_names())
        for key in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            if key not in params:
                delattr(self, key)

    @with_fit_threads
    def partial_fit(self, X, y, sample_weight=None):
        """Learn from one more block of rows and return ``self``.

        Exact solvers merge the block into their least-squares state, so fitting block by
        block equals one ``fit`` on all rows. Iterative solvers run one epoch over the block,
        continuing from where the last call stopped (weights, optimizer state and the
        standardization learned from the first block), as scikit-learn's SGDRegressor does.

        Example:
            >>> import numpy as np
            >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = X[:, 0] * 2 + 1
            >>> m = LinearRegression().partial_fit(X[:2], y[:2]).partial_fit(X[2:], y[2:])
            >>> round(float(m.intercept_), 6)
            1.0
        """
        self._validate_params()
        self._check_continues()
        self._stale_covariance()
        if is_sparse(X):
            return self._fit_sparse(X, y, sample_weight, partial=True)
        if self.solver in EXACT_SOLVERS:
            n_iter = getattr(self, "n_iter_", 0)
            with agree_on_errors():
                self._absorb(X, y, sample_weight)
            self._merge_ranks()
            if not self.state_.sum_weights > 0:
                # a first block of weight zero only: kept, as a later block may bring weight
                # (the error said the block was refused, while it had been absorbed)
                warnings.warn(
                    "partial_fit: no row so far has a positive sample_weight; the rows are "
                    "kept, and the model is solved once a block brings weight",
                    UserWarning,
                    stacklevel=3,
                )
                return self
            self._solve_state()
            self._warn_unrefined("an updated (partial_fit)")
            self.n_iter_ = n_iter + 1
        else:
            first = not hasattr(self, "model_")
            with agree_on_errors():
                Xm, Ym, Xt, Yt, wt = self._prepare(X, y, sample_weight, reset=first)
            check_same_columns(_named(Xm))  # NOTE [columns by name across ranks]
            if is_distributed():
                Xt, Yt, wt = _widest_dtype_of_ranks(Xt, Yt, wt)
            state = getattr(self, "_trainer_state", None)
            if state is not None:
                # Each call sees a new block: its losses do not compare with the last
                # block's, so the fit returns this epoch's model, not an older "best" one.
                state = {**state, "stop_reason": None, "best": {}}
                _warn_drift(Xt, state.get("scaler"))
            epochs = 1 if state is None else int(state["epoch"]) + 1
            self._fit_iterative(Xt, Yt, wt, (), state, max_iter=epochs, tol=None, partial=True)
            if first:
                self._set_input_info(Xm, Ym)
        self._publish()
        return self

    @with_fit_threads
    def fit_blocks(
        self,
        blocks: Iterable[Any] | Callable[..., Iterable[Any]],
        *,
        feature_names: Sequence[str] | None = None,
        target_names: Sequence[str] | None = None,
        callbacks: Sequence[Any] = (),
        resume_from: dict | None = None,
        buffer_rows: int | None = None,
    ):
        """Fit on row blocks and return ``self``; memory stays at about one block.

        Each block is ``(X, y)``, ``(X, y, sample_weight)`` or an object with ``X``, ``Y``
        and ``w`` attributes (as :mod:`torchlinreg.files.tables` yields), X and y of any kind
        ``fit`` takes (numpy, torch, pandas, ...). ``blocks`` is an iterable (a list, a
        generator, a database cursor wrapped in one) or a *factory*: a callable that returns
        a new iterator of blocks on every call.

        Exact solvers absorb the blocks one at a time into their state, so memory stays at
        one block plus a ``(d + k)^2`` summary whatever the number of rows, and the result
        equals one ``fit`` on all rows. Iterative solvers given a factory stream too: one
        pass for the standardization, then each epoch reads the blocks again through a
        shuffle buffer of ``buffer_rows`` rows (see :mod:`torchlinreg.iterative.streaming`);
        ``resume_from`` continues from a checkpoint's trainer state. Given a plain
        iterable, iterative solvers gather the blocks in memory first. ``target_names`` as
        one string (not a list) declares a single 1-D target, as a pandas Series would:
        ``coef_`` ``(d,)``, predictions ``(n,)``.

        Example:
            >>> import numpy as np
            >>> rng = np.random.default_rng(0)
            >>> blocks = [(rng.normal(size=(50, 2)), rng.normal(size=50)) for _ in range(4)]
            >>> LinearRegression().fit_blocks(blocks).n_features_in_
            2
            >>> sgd = LinearRegression(solver="sgd", random_state=0, max_iter=5, tol=None)
            >>> sgd.fit_blocks(lambda: iter(blocks)).n_iter_
            5
        """
        self._validate_params()
        if callable(blocks):
            if self.solver not in EXACT_SOLVERS:
                self._fit_stream(blocks, callbacks, resume_from, buffer_rows)
                self._name_columns(feature_names, target_names)
                self._publish()
                return self
            blocks = blocks()
        parts = (unpack_block(b) for b in blocks)
        if self.solver not in EXACT_SOLVERS:
            with agree_on_errors():
                gathered = list(parts)
                if not gathered:
                    raise DataError("no blocks to fit; the data source yielded no rows")
            X, y, w = (concat([p[i] for p in gathered]) for i in range(3))
            return self._fit_named(X, y, w, feature_names, target_names, callbacks)
        self._forget()
        with agree_on_errors():
            for X, y, w in parts:
                self._absorb(X, y, w)
        if not hasattr(self, "state_") and not is_distributed():
            raise DataError("no blocks to fit; the data source yielded no rows")
        self._merge_ranks()
        self._name_columns(feature_names, target_names)
        self._solve_state()
        self._warn_unrefined("a streamed")
        self._publish()
        return self

    @with_fit_threads
    def partial_fit_blocks(self, blocks: Iterable[Any]):
        """:meth:`partial_fit` over an iterable of row blocks; returns ``self``.

        Exact solvers merge every block into the fitted state and solve once at the end, so
        a fitted (or loaded) model updated with new rows equals one fit on all rows.
        Iterative solvers run one epoch per block, as ``partial_fit`` does.

        Example:
            >>> import numpy as np
            >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = X[:, 0] * 2 + 1
            >>> m = LinearRegression().fit(X[:2], y[:2])
            >>> round(float(m.partial_fit_blocks([(X[2:], y[2:])]).intercept_), 6)
            1.0
        """
        self._validate_params()
        self._check_continues()
        self._stale_covariance()
        if self.solver not in EXACT_SOLVERS:
            for b in blocks:
                self.partial_fit(*unpack_block(b))
            return self
        n_iter = getattr(self, "n_iter_", 0)
        for X, y, w in (unpack_block(b) for b in blocks):
            self._absorb(X, y, w)
        if not hasattr(self, "state_"):
            raise DataError("no blocks to fit; the data source yielded no rows")
        self._solve_state()
        self._warn_unrefined("an updated (partial_fit_blocks)")
        self.n_iter_ = n_iter + 1
        self._publish()
        return self

    def _fit_sparse(self, X, y, sample_weight, *, partial: bool):
        """scipy.sparse X: the exact state absorbs it in dense row blocks, so memory is a
        block, never X made dense; statistics then come from the state (as for a streamed
        fit: no refinement against the rows, no HC covariances)."""
        if self.solver not in EXACT_SOLVERS:
            raise DataError(
                f"X is sparse: solver={self.solver!r} needs dense X; pass X.toarray(), or use "
                "solver='qr' or 'gram', which take sparse X in dense row blocks"
            )
        blocks, Ym = sparse_row_blocks(X, y, sample_weight)
        if partial:
            return self.partial_fit_blocks(blocks)
        names = Ym.columns
        return self.fit_blocks(blocks, target_names=names[0] if names and Ym.was_1d else names)

    def _fit_named(self, X, y, w, feature_names, target_names, callbacks):
        self.fit(X, y, w, callbacks=callbacks)
        self._name_columns(feature_names, target_names)
        return self

    # ---------------------------------------------------------------- using the model
    def predict(self, X):
        """Predictions, shape ``(n,)`` for a 1-D fitted target else ``(n, k)``, as X's type."""
        check_is_fitted(self)
        self._take_published()
        if is_sparse(X):
            return self._predict_sparse(X)
        X = self._formula_rows(X)  # a table for a formula fit: the training encoding
        Xm = as_matrix(X, name="X")
        self._check_features(Xm)
        device = self._compute_device(Xm)
        Xt = Xm.values.to(device=device)
        out = self.model_.predict(Xt)
        if self._one_d_output():
            out = out[:, 0]
        # float32 in, float32 out (as scikit-learn); everything else comes back float64.
        out = out.to(torch.float32 if Xm.values.dtype == torch.float32 else torch.float64)
        return Xm.wrap(out)

    def _take_published(self) -> None:
        """``coef_`` and ``intercept_`` as the user left them, as scikit-learn predicts.

        NOTE [assigned coefficients]
        predict read the model it kept, so ``est.coef_ = new`` (or an in-place edit of a
        float32 fit's copy) changed nothing: [182.7, 91.0] where scikit-learn predicts
        [1, 1] (a scikit-learn hunt). Where the published values differ from the kept
        model's, rounded to their dtype, the model takes them.
        """
        coef, icpt = getattr(self, "coef_", None), getattr(self, "intercept_", None)
        if coef is None or icpt is None or not hasattr(self, "model_"):
            return
        W, b = self.model_.weight, self.model_.bias
        c = torch.as_tensor(coef.detach() if isinstance(coef, Tensor) else np.asarray(coef))
        i = torch.as_tensor(icpt.detach() if isinstance(icpt, Tensor) else np.asarray(icpt))
        if c.numel() != W.numel() or i.numel() not in (1, b.numel()):
            raise DataError(
                f"coef_ has {c.numel()} values and intercept_ {i.numel()}, but the model has "
                f"{W.numel()} coefficients and {b.numel()} intercepts; assign arrays of "
                "those shapes"
            )
        c, i = c.to("cpu").reshape(W.shape), i.to("cpu").reshape(-1).expand(b.shape)
        if not self.fit_intercept and not bool((i == 0).all()):
            raise DataError("intercept_ is not 0, but the model was fitted without one")
        same = torch.equal(W.detach().cpu().to(c.dtype), c) and (
            not self.fit_intercept or torch.equal(b.detach().cpu().to(i.dtype), i)
        )
        if not same:
            dtype, device = W.dtype, W.device
            bias = i.to(device, dtype) if self.fit_intercept else b
            self.model_ = LinearModel(c.to(device, dtype), bias)

    def _predict_sparse(self, X) -> np.ndarray:
        """``X @ coef.T + intercept`` by scipy's sparse product (X is never made dense)."""
        if X.shape[1] != self.n_features_in_:
            raise DataError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        w = self.model_.weight.detach().cpu().numpy()
        b = self.model_.bias.detach().cpu().numpy()
        out = np.asarray(X.tocsr() @ w.T) + b
        out = out.astype(np.float32 if X.dtype == np.float32 else np.float64, copy=False)
        return out[:, 0] if self._one_d_output() else out

    def score(self, X, y, sample_weight=None) -> float:
        """R2 of the predictions, averaged uniformly over targets."""
        pred = self.predict(X)  # validates and converts X once
        pt = torch.as_tensor(np.asarray(pred)) if not isinstance(pred, Tensor) else pred
        n = pt.shape[0]
        Ym = as_targets(y, n, name="y")
        w = as_weights(sample_weight, n)
        k = pt.reshape(n, -1).shape[1]
        if Ym.values.shape[1] != k:  # broadcast before: R2 0.28 for 0.86 (an inputs hunt)
            raise DataError(
                f"y has {Ym.values.shape[1]} target(s), but the model predicts {k}; score "
                "with the targets it was fitted on"
            )
        self._check_targets_named(Ym)  # reordered columns scored -3,986,968.8 for 0.5941
        return r2_score(Ym.values, pt.reshape(n, -1), w)

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


def _row_index(X, y):
    from ..stats.frames import row_index

    return row_index(X, y)


def _drop_missing(X, y, sample_weight, missing: str):
    from ..stats.frames import MISSING, drop_incomplete

    if missing not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}; got {missing!r}")
    return drop_incomplete(X, y, sample_weight)


class Ridge(LinearRegression):
    """:class:`LinearRegression` with ``alpha=1.0`` by default: ridge regression.

    Example:
        >>> import numpy as np
        >>> Ridge(alpha=0.5).fit(np.eye(3), np.arange(3.0)).coef_.shape
        (3,)
    """

    _ravel_one_target = True  # NOTE [scikit-learn's shapes]

    def __init__(
        self,
        *,
        solver: str = "qr",
        fit_intercept: bool = True,
        alpha: float = 1.0,
        standardize: bool = True,
        lr: float | None = None,
        max_iter: int | None = None,
        batch_size: int | None = None,
        tol: float | str | None = "auto",
        n_iter_no_change: int = 5,
        random_state: int | None = None,
        init: str = "zeros",
        device: str | torch.device | None = None,
        dtype: Any = None,
        rcond: float | None = None,
        positive: bool = False,
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
            positive=positive,
        )


def _named(Xm) -> list[str] | None:
    """A matrix's column names where it has string ones (a DataFrame's)."""
    columns = Xm.columns
    return (
        list(columns) if columns is not None and all(isinstance(c, str) for c in columns) else None
    )


def _check_some_weight(wt: Tensor | None) -> None:
    """Every rank's rows together hold a positive weight (each rank calls it)."""
    positive = 1 if wt is None else int((wt > 0).sum())
    if count_all_ranks(positive) == 0:
        raise DataError("sample_weight is zero for every row; at least one weight must be positive")


_FLOAT_ORDER = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _widest_dtype_of_ranks(Xt: Tensor, Yt: Tensor, wt: Tensor | None):
    """The rows in the widest float dtype any rank has (each rank calls it): a float32
    rank beside a float64 one sent its collectives in float32, and gloo aborted the
    process ("collective mismatch", SIGABRT) where the exact solvers fit."""
    code = _FLOAT_ORDER.index(Xt.dtype) if Xt.dtype in _FLOAT_ORDER else len(_FLOAT_ORDER) - 1
    widest = _FLOAT_ORDER[int(max(allgather(torch.tensor([code])))[0])]
    return Xt.to(widest), Yt.to(widest), None if wt is None else wt.to(widest)
