"""HuberRegressor: scikit-learn's robust regression with a joint scale (models/huber.py).

The Huber loss is not quadratic, so the fit needs the rows: ``fit`` works in memory and
``fit_blocks`` gathers its blocks first. Predictions, scores and inputs work as for
:class:`~torchlinreg.LinearRegression`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ..data import is_sparse, unpack_block
from ..distributed.collectives import is_distributed
from ..errors import DataError
from ..exact.threads import with_fit_threads
from ..model import LinearModel
from ..models.huber import fit_huber
from .inputs import concat
from .linear import LinearRegression
from .penalized import _pos_int, _real_in
from .penalized_cv import _warn_column_vector


class HuberRegressor(LinearRegression):
    """Linear regression robust to outliers: Huber loss with a jointly fitted scale.

    Minimises scikit-learn's objective ``sum_i w_i (scale + H(r_i / scale) scale) +
    alpha ||coef||^2`` (``H`` quadratic up to ``epsilon``, linear beyond) by L-BFGS-B, then
    polishes on the inlier/outlier partition (NOTE [huber polish]). Fitted: ``coef_``,
    ``intercept_``, ``scale_``, ``outliers_``, ``n_iter_``, ``loss_`` (the objective).

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 2))
        >>> y = X @ [1.0, -2.0] + 0.1 * rng.normal(size=100); y[:5] = 100.0
        >>> m = HuberRegressor().fit(X, y)
        >>> np.round(m.coef_, 1).tolist(), int(m.outliers_.sum()) >= 5
        ([1.0, -2.0], True)
    """

    _ravel_one_target = True
    _ravel_y = True  # as scikit-learn's: intercept_ a scalar for y (n, 1)
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "epsilon": (_real_in(1.0, np.inf), "a real number >= 1.0"),
        "max_iter": (_pos_int, "a positive integer"),
        "alpha": (_real_in(0, np.inf), "a non-negative real number"),
        "warm_start": (True, False),
        "fit_intercept": (True, False),
        "tol": (_real_in(0, np.inf), "a non-negative real number"),
    }

    def __init__(
        self,
        *,
        epsilon: float = 1.35,
        max_iter: int = 100,
        alpha: float = 1e-4,
        warm_start: bool = False,
        fit_intercept: bool = True,
        tol: float = 1e-5,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.epsilon = epsilon
        self.max_iter = max_iter
        self.alpha = alpha
        self.warm_start = warm_start
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.device = device
        self.dtype = dtype

    solver = "qr"  # inputs are converted as for an exact fit: float64
    rcond = None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False
        return tags

    @property
    def partial_fit(self):
        raise AttributeError("HuberRegressor has no partial_fit: the Huber loss needs all rows")

    partial_fit_blocks = partial_fit

    @with_fit_threads
    def fit(self, X, y, sample_weight=None):
        """Fit on the rows in memory and return ``self``."""
        self._validate_params()
        if is_distributed():
            # the Huber loss needs every row in one place; it fitted this rank's alone
            raise DataError(
                "HuberRegressor inside a process group would fit this rank's rows only (its "
                "loss needs every row in one process): gather the rows on one rank"
            )
        if is_sparse(X):
            X = X.toarray()  # the loss needs every row anyway
        init = self._warm_params()
        self._forget()
        Xm, Ym, Xt, Yt, wt = self._prepare(X, y, sample_weight, reset=True)
        if Yt.shape[1] != 1:
            raise DataError(f"HuberRegressor fits one target, y has {Yt.shape[1]}")
        self._set_input_info(Xm, Ym)
        if not Ym.was_1d:
            _warn_column_vector()
        A = Xt.detach().cpu().double().numpy()
        b = Yt[:, 0].detach().cpu().double().numpy()
        w = None if wt is None else wt.detach().cpu().double().numpy()
        fit = fit_huber(
            A,
            b,
            w,
            epsilon=float(self.epsilon),
            alpha=float(self.alpha),
            fit_intercept=self.fit_intercept,
            max_iter=int(self.max_iter),
            tol=float(self.tol),
            init=init
            if init is not None and len(init) == A.shape[1] + 1 + int(self.fit_intercept)
            else None,
        )
        device = Xt.device
        self.model_ = LinearModel(
            torch.as_tensor(fit.coef[None, :], device=device),
            torch.as_tensor([fit.intercept], dtype=torch.float64, device=device),
        )
        self.scale_, self.n_iter_, self.loss_ = fit.scale, fit.n_iter, fit.loss
        self.outliers_ = np.abs(b - A @ fit.coef - fit.intercept) > fit.scale * self.epsilon
        self.loss_history_ = []
        self._publish()
        return self

    def _warm_params(self) -> np.ndarray | None:
        if not (self.warm_start and hasattr(self, "model_")):
            return None
        coef = self.model_.weight[0].detach().cpu().double().numpy()
        bias = [float(self.model_.bias[0])] if self.fit_intercept else []
        return np.concatenate([coef, bias, [self.scale_]])

    def fit_blocks(self, blocks, *, feature_names=None, target_names=None, **_: Any):
        """Gather the blocks (an iterable or a factory) in memory and :meth:`fit`."""
        blocks = blocks() if callable(blocks) else blocks
        parts = [unpack_block(b) for b in blocks]
        if not parts:
            raise DataError("no blocks to fit; the data source yielded no rows")
        X, y, w = (concat([p[i] for p in parts]) for i in range(3))
        self.fit(X, y, w)
        self._name_columns(feature_names, target_names)
        return self

    def _name_columns(self, feature_names, target_names) -> None:
        if isinstance(target_names, str) or (target_names is not None and len(target_names) == 1):
            target_names = [target_names] if isinstance(target_names, str) else target_names
        super()._name_columns(feature_names, target_names)
