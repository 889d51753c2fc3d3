"""LassoCV, ElasticNetCV and RidgeCV: alpha chosen by k-fold cross-validation in one pass.

The rows are dealt to one least-squares state per fold as they arrive (NOTE [one-pass
cross-validation] in ``models/crossval.py``), so ``fit_blocks`` over a file larger than
memory reads it once; every alpha of every fold is then solved and scored from the states.
``cv`` is an int (hashed folds, seeded by ``random_state``: in memory the rows ordered by
their hash are cut into equal folds, streamed rows take the hash modulo ``cv``; ``groups``
in ``fit`` keep a group in one fold) or, for in-memory fits, scikit-learn's splitter or an
iterable of ``(train, test)`` index arrays, which gives scikit-learn's ``alpha_`` and
``mse_path_`` given the same folds.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, ClassVar

import numpy as np
import torch

from ..data import unpack_block
from ..distributed.collectives import check_same_columns, is_distributed, merge_across_ranks
from ..errors import DataError
from ..exact.state import LeastSquaresState
from ..exact.threads import with_fit_threads
from ..model import LinearModel
from ..models.crossval import (
    FoldStates,
    enet_cv_mse,
    heldout_kwargs,
    ridge_cv_scores,
    ridge_loo_mse,
    split_pairs,
)
from ..models.moments import moments
from ..models.paths import alpha_grid
from .linear import LinearRegression
from .penalized import ElasticNet, _pos_int, _real_in


def _cv_value(v: Any) -> bool:
    if v is None or hasattr(v, "split") or (hasattr(v, "__iter__") and not isinstance(v, str)):
        return True
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 2


def _warn_column_vector() -> None:
    """scikit-learn's warning for a single-target estimator given y of shape (n, 1)."""
    try:
        from sklearn.exceptions import DataConversionWarning as category
    except ImportError:  # scikit-learn is not a dependency
        category = UserWarning
    warnings.warn(
        "A column-vector y was passed when a 1d array was expected; y is raveled to (n,)",
        category,
        stacklevel=3,
    )


class _FoldFit:
    """fit / partial_fit / fit_blocks into fold states, then ``_select(pairs)``."""

    def _state_kwargs(self, dtype: torch.dtype) -> dict[str, Any]:
        return {"fit_intercept": self.fit_intercept, "method": self.solver, "dtype": dtype}

    def _n_folds(self) -> int:
        return 5 if self.cv is None else int(self.cv)

    @with_fit_threads
    def fit(self, X, y, sample_weight=None, groups=None):
        """Cross-validate every alpha, choose ``alpha_``, refit on all rows; return self."""
        self._validate_params()
        self._forget()
        Xm, Ym, Xt, Yt, wt = self._prepare(X, y, sample_weight, reset=True)
        self._set_input_info(Xm, Ym)
        self._check_targets(Yt.shape[1])
        if not Ym.was_1d and not self._multi_target:
            _warn_column_vector()
        if self.cv is None or isinstance(self.cv, numbers.Integral):
            self._folds = FoldStates(
                self._n_folds(), seed=self._seed(), **self._state_kwargs(Xt.dtype)
            )
            self._folds.absorb(Xt, Yt, wt, groups, balanced=True)
            self._merge_fold_ranks()
            self._finish_folds()
        elif is_distributed():
            raise DataError(
                f"{type(self).__name__} with cv as splits inside a process group: the "
                "indexes would be each rank's own; pass cv as an int (K folds, merged "
                "across ranks)"
            )
        else:
            splits = self.cv.split(X, y, groups) if hasattr(self.cv, "split") else self.cv
            kwargs = self._state_kwargs(Xt.dtype)
            self.state_ = LeastSquaresState(Xt.shape[1], Yt.shape[1], device=Xt.device, **kwargs)
            self.state_.absorb(Xt, Yt, wt)
            self._select(split_pairs(Xt, Yt, wt, splits, **kwargs))
        self._publish()
        return self

    @property
    def partial_fit(self):
        raise AttributeError(
            f"{type(self).__name__} has no partial_fit (alpha is chosen once, from all rows); "
            "use fit_blocks for data in blocks"
        )

    partial_fit_blocks = partial_fit

    @with_fit_threads
    def fit_blocks(self, blocks, *, feature_names=None, target_names=None):
        """Fit on row blocks (an iterable or a factory of them) in one pass; return self.

        Rows are dealt to hashed folds (``cv`` must be an int here), so memory stays at one
        block plus ``cv`` summaries. Under torchrun every rank's folds are merged.
        """
        self._validate_params()
        if not (self.cv is None or isinstance(self.cv, numbers.Integral)):
            raise DataError("fit_blocks needs cv as an int (hashed folds); given splits need fit")
        self._forget()
        blocks = blocks() if callable(blocks) else blocks
        for block in blocks:
            X, y, w = unpack_block(block)
            first = not hasattr(self, "_folds")
            Xm, Ym, Xt, Yt, wt = self._prepare(X, y, w, reset=first, block=True)
            if first:
                self._set_input_info(Xm, Ym)
                self._check_targets(Yt.shape[1])
                kwargs = self._state_kwargs(Xt.dtype)
                self._folds = FoldStates(self._n_folds(), seed=self._seed(), **kwargs)
            self._folds.absorb(Xt, Yt, wt)
        if not hasattr(self, "_folds"):
            raise DataError("no blocks to fit; the data source yielded no rows")
        self._merge_fold_ranks()
        self._finish_folds()
        self._name_columns(feature_names, target_names)
        self._publish()
        return self

    def _merge_fold_ranks(self) -> None:
        """Inside a process group, every fold of every rank's rows: a fold's state is the
        merge of the ranks' parts of it. ``fit`` fitted this rank's rows alone before (a
        distributed hunt: alpha_ 10 on one rank, 0.1 on the other and in one process)."""
        if not is_distributed():
            return
        check_same_columns(self._feature_list())  # NOTE [columns by name across ranks]
        kw = self._state_kwargs(self._folds.states[0].dtype)
        self._folds.states = [merge_across_ranks(s, **kw) for s in self._folds.states]
        if self._folds.heldout is not None:
            kw = heldout_kwargs(kw)
            self._folds.heldout = [merge_across_ranks(s, **kw) for s in self._folds.heldout]

    def _finish_folds(self) -> None:
        self.state_ = self._folds.merged()
        self._select(self._folds.pairs())

    def _forget(self) -> None:
        super()._forget()
        if hasattr(self, "_folds"):
            del self._folds

    def _seed(self) -> int:
        rs = getattr(self, "random_state", None)
        return int(rs) if isinstance(rs, numbers.Integral) else 0

    def _check_targets(self, k: int) -> None:
        if k != 1 and not self._multi_target:
            raise DataError(
                f"{type(self).__name__} fits one target, y has {k}; fit one target at a time"
            )

    _multi_target = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # folds are dealt from dense rows
        tags.target_tags.multi_output = self._multi_target
        return tags


class ElasticNetCV(_FoldFit, ElasticNet):
    """Elastic net with alpha (and l1_ratio, given a list) chosen by cross-validation.

    Parameters as scikit-learn's ElasticNetCV; ``cv`` int folds are hashed (see the
    module). Fitted: ``alpha_``, ``l1_ratio_``, ``alphas_``, ``mse_path_`` ((n_alphas,
    n_folds), or (n_l1_ratio, n_alphas, n_folds) for a list of ratios), ``coef_``,
    ``intercept_``, ``dual_gap_``, ``n_iter_``.

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 3))
        >>> y = X @ [1.0, 0.0, 2.0] + 0.1 * rng.normal(size=200)
        >>> m = ElasticNetCV(l1_ratio=0.9, alphas=20).fit(X, y)
        >>> m.mse_path_.shape, bool(m.alpha_ < 0.1)
        ((20, 5), True)
    """

    _ravel_y = True  # as scikit-learn's: intercept_ a scalar for y (n, 1)
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "eps": (_real_in(1e-300, np.inf), "a positive real number"),
        "alphas": (
            # negative alphas were taken (alpha_ -0.1: a negative L1 penalty) where
            # Lasso(alpha=-1) is refused (a scikit-learn port)
            lambda v: _pos_int(v) or _nonneg_grid(v),
            "a positive integer or a non-empty array of non-negative alphas",
        ),
        "fit_intercept": (True, False),
        "max_iter": (_pos_int, "a positive integer"),
        "tol": (_real_in(0, np.inf), "a non-negative real number"),
        "cv": (_cv_value, "None, an int >= 2, a splitter or an iterable of splits"),
        "positive": (True, False),
        "solver": ("gram", "qr"),
    }

    def __init__(
        self,
        *,
        l1_ratio: Any = 0.5,
        eps: float = 1e-3,
        alphas: Any = 100,
        fit_intercept: bool = True,
        precompute: Any = "auto",
        max_iter: int = 1000,
        tol: float = 1e-4,
        cv: Any = None,
        copy_X: bool = True,
        verbose: Any = 0,
        n_jobs: Any = None,
        positive: bool = False,
        random_state: Any = None,
        selection: str = "cyclic",
        solver: str = "gram",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.copy_X = copy_X
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.positive = positive
        self.random_state = random_state
        self.selection = selection
        self.solver = solver
        self.device = device
        self.dtype = dtype

    warm_start = False

    def _select(self, pairs) -> None:
        ratios = np.atleast_1d(np.asarray(self.l1_ratio, dtype=np.float64))
        full = moments(self.state_)
        grids, paths = [], []
        for ratio in ratios:
            if _pos_int(self.alphas):
                grid = alpha_grid(full, ratio, int(self.alphas), self.eps, positive=self.positive)
            else:
                grid = np.sort(np.asarray(self.alphas, dtype=np.float64).ravel())[::-1]
            kw = {"tol": self.tol, "max_iter": self.max_iter, "positive": self.positive}
            paths.append(enet_cv_mse(pairs, grid, ratio, fit_intercept=self.fit_intercept, **kw))
            grids.append(grid)
        means = [p.mean(axis=1) for p in paths]
        best = min(range(len(ratios)), key=lambda i: means[i].min())  # first on ties
        i_alpha = int(np.argmin(means[best]))
        self.l1_ratio_, self.alpha_ = float(ratios[best]), float(grids[best][i_alpha])
        one = np.ndim(self.l1_ratio) == 0
        # a given grid is every ratio's: scikit-learn keeps it 1-D (its (n_ratios,
        # n_alphas) is for grids of its own making)
        self.alphas_ = grids[0] if one or not _pos_int(self.alphas) else np.array(grids)
        self.mse_path_ = paths[0] if one else np.array(paths)
        self._solve_enet(self.alpha_, self.l1_ratio_)


class LassoCV(ElasticNetCV):
    """Lasso with alpha chosen by cross-validation (scikit-learn's LassoCV; one pass).

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 3))
        >>> y = X @ [1.0, 0.0, 2.0] + 0.1 * rng.normal(size=200)
        >>> m = LassoCV(alphas=[1.0, 0.1, 0.01], cv=4).fit(X, y)
        >>> m.alpha_, m.mse_path_.shape
        (0.01, (3, 4))
    """

    def __init__(
        self,
        *,
        eps: float = 1e-3,
        alphas: Any = 100,
        fit_intercept: bool = True,
        precompute: Any = "auto",
        max_iter: int = 1000,
        tol: float = 1e-4,
        copy_X: bool = True,
        cv: Any = None,
        verbose: Any = False,
        n_jobs: Any = None,
        positive: bool = False,
        random_state: Any = None,
        selection: str = "cyclic",
        solver: str = "gram",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            eps=eps,
            alphas=alphas,
            fit_intercept=fit_intercept,
            precompute=precompute,
            max_iter=max_iter,
            tol=tol,
            cv=cv,
            copy_X=copy_X,
            verbose=verbose,
            n_jobs=n_jobs,
            positive=positive,
            random_state=random_state,
            selection=selection,
            solver=solver,
            device=device,
            dtype=dtype,
        )
        del self.l1_ratio

    l1_ratio = 1.0


class RidgeCV(_FoldFit, LinearRegression):
    """Ridge with alpha chosen by cross-validation, as scikit-learn's RidgeCV with ``cv``.

    ``cv=None`` (default) in ``fit``: leave-one-out from the rows in memory (one SVD), the
    alpha with the smallest mean squared LOO error, ``best_score_`` its negative and
    ``mse_path_`` (n_alphas,) the errors, as scikit-learn's. With ``cv`` (or in
    ``fit_blocks``, where ``cv=None`` means 5 hashed folds): the best mean over folds of the
    held-out R2 (scikit-learn's default scoring with ``cv``), ``r2_path_`` and ``mse_path_``
    (n_alphas, n_folds). Several targets share one alpha. Fitted: ``alpha_``,
    ``best_score_``, ``alphas_``, ``mse_path_``, ``coef_``, ``intercept_``.

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 2))
        >>> y = X @ [1.0, 2.0] + rng.normal(size=100)
        >>> RidgeCV(alphas=[0.1, 1.0, 1e4]).fit(X, y).alpha_ < 1e4
        True
    """

    _ravel_one_target = True
    _multi_target = True
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "alphas": (
            lambda v: hasattr(v, "__len__") and len(v) > 0 and bool(np.all(np.asarray(v) > 0)),
            "a non-empty array of positive alphas",
        ),
        "fit_intercept": (True, False),
        "cv": (_cv_value, "None, an int >= 2, a splitter or an iterable of splits"),
        "solver": ("gram", "qr"),
    }

    def __init__(
        self,
        alphas: Any = (0.1, 1.0, 10.0),
        *,
        fit_intercept: bool = True,
        cv: Any = None,
        solver: str = "qr",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.solver = solver
        self.device = device
        self.dtype = dtype

    rcond = None

    @property
    def _unpenalised(self) -> bool:
        return False

    @with_fit_threads
    def fit(self, X, y, sample_weight=None, groups=None):
        """Choose alpha (``cv=None``: leave-one-out, as scikit-learn) and refit; return self."""
        if self.cv is not None or groups is not None:
            return super().fit(X, y, sample_weight, groups)
        if is_distributed():
            # leave-one-out takes each row's leverage from all rows; it fitted this rank's
            raise DataError(
                "RidgeCV with cv=None (leave-one-out) inside a process group: pass cv=5 (K "
                "folds, merged across ranks)"
            )
        self._validate_params()
        self._forget()
        Xm, Ym, Xt, Yt, wt = self._prepare(X, y, sample_weight, reset=True)
        self._set_input_info(Xm, Ym)
        kwargs = self._state_kwargs(Xt.dtype)
        self.state_ = LeastSquaresState(Xt.shape[1], Yt.shape[1], device=Xt.device, **kwargs)
        self.state_.absorb(Xt, Yt, wt)
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        self.mse_path_ = ridge_loo_mse(Xt, Yt, wt, alphas, self.fit_intercept)
        best = int(np.argmin(self.mse_path_))  # the first of equal errors, as scikit-learn
        self.alphas_, self.alpha_ = alphas, float(alphas[best])
        self.best_score_ = -float(self.mse_path_[best])
        self._refit()
        self._publish()
        return self

    def _select(self, pairs) -> None:
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        self.mse_path_, self.r2_path_ = ridge_cv_scores(pairs, alphas)
        scores = self.r2_path_.mean(axis=1)
        best = int(np.argmax(scores))  # the first of equal scores, as GridSearchCV
        self.alphas_, self.alpha_ = alphas, float(alphas[best])
        self.best_score_ = float(scores[best])
        self._refit()

    def _refit(self) -> None:
        self.solution_ = self.state_.solve(alpha=self.alpha_, feature_names=self._feature_list())
        self.rank_ = self.solution_.rank
        self.model_ = LinearModel(self.solution_.coef.clone(), self.solution_.intercept.clone())
        self.n_iter_ = 1
        self.loss_history_ = []


def _nonneg_grid(v) -> bool:
    """A non-empty array of finite, non-negative alphas."""
    if not hasattr(v, "__len__") or len(v) == 0:
        return False
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(a).all() and (a >= 0).all())
