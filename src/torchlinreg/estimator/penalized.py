"""Lasso and elastic net with scikit-learn's names, parameters and objective.

They are :class:`~torchlinreg.LinearRegression` with another solve: the rows go into the
same mergeable least-squares state (so ``fit``, ``partial_fit``, ``fit_blocks`` over files
and torchrun all work), and the coefficients come from coordinate descent on the state's
centred Gram (:mod:`torchlinreg.models.coordinate`). The objective is scikit-learn's,
``1/(2 W) ||y - Xw - b||_W^2 + alpha * l1_ratio * |w|_1 + alpha * (1 - l1_ratio)/2 ||w||^2``
with ``W`` the sum of the sample weights (the number of rows when unweighted).
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import DataError
from ..model import LinearModel
from ..models.moments import moments
from ..models.paths import path_from_moments
from .linear import LinearRegression


def _real_in(lo: float, hi: float):
    def check(v: Any) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and lo <= v <= hi

    return check


def _pos_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0


class ElasticNet(LinearRegression):
    """Linear regression with combined L1 and L2 penalties (scikit-learn's ElasticNet).

    Args:
        alpha: penalty strength (>= 0). Default 1.0.
        l1_ratio: the L1 share of the penalty, in [0, 1]. Default 0.5.
        fit_intercept: fit an unpenalised intercept. Default True.
        max_iter: coordinate-descent sweeps per fit. Default 1000.
        tol: stop when the duality gap is at most ``tol * var(y)``. Default 1e-4.
        warm_start: start from the previous fit's coefficients.
        positive: constrain the coefficients to be >= 0.
        precompute, copy_X, random_state, selection: accepted for scikit-learn
            compatibility; the Gram is always used and the sweep is cyclic.
        solver: the state's method, ``"gram"`` (default) or ``"qr"``.
        device, dtype: where and in what dtype the state is accumulated.

    Fitted: ``coef_``, ``intercept_``, ``n_iter_`` (sweeps), ``dual_gap_`` (in the
    objective's units, as scikit-learn's), ``state_``. A fit whose gap stays above
    ``tol * var(y)`` warns with a ConvergenceWarning stating the gap.

    Example:
        >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
        >>> y = np.array([0.0, 1.0, 2.0, 3.0])
        >>> np.round(ElasticNet(alpha=0.1, l1_ratio=0.5).fit(X, y).coef_, 4).tolist()
        [0.9231, 0.0]
    """

    _ravel_one_target = True  # NOTE [scikit-learn's shapes]: as scikit-learn's ElasticNet
    _default_l1_ratio = 0.5

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "alpha": (_real_in(0, np.inf), "a non-negative real number"),
        "l1_ratio": (_real_in(0, 1), "a real number in [0, 1]"),
        "fit_intercept": (True, False),
        "max_iter": (_pos_int, "a positive integer"),
        "tol": (_real_in(0, np.inf), "a non-negative real number"),
        "warm_start": (True, False),
        "positive": (True, False),
        "selection": ("cyclic", "random"),
        "solver": ("gram", "qr"),
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        l1_ratio: float = 0.5,
        fit_intercept: bool = True,
        precompute: Any = False,
        max_iter: int = 1000,
        copy_X: bool = True,
        tol: float = 1e-4,
        warm_start: bool = False,
        positive: bool = False,
        random_state: Any = None,
        selection: str = "cyclic",
        solver: str = "gram",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.copy_X = copy_X
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.random_state = random_state
        self.selection = selection
        self.solver = solver
        self.device = device
        self.dtype = dtype

    rcond = None  # the exact engine's settings that the penalised solve does not use

    @property
    def _unpenalised(self) -> bool:
        return False  # never OLS statistics or refinement: the solution is penalised

    def _forget(self) -> None:
        keep = None
        if self.warm_start:
            keep = getattr(self, "model_", None)
            coef = getattr(self, "coef_", None)
            if coef is not None:  # as scikit-learn: coef_ as it is, assigned or fitted
                c = coef.detach().cpu() if isinstance(coef, torch.Tensor) else np.asarray(coef)
                c = torch.atleast_2d(torch.as_tensor(c, dtype=torch.float64))
                keep = LinearModel(c, torch.zeros(c.shape[0], dtype=torch.float64))
        super()._forget()
        self._warm = keep

    def _solve_state(self) -> None:
        self._solve_enet(float(self.alpha), float(self.l1_ratio))

    def _solve_enet(self, alpha: float, l1_ratio: float) -> None:
        m = moments(self.state_)
        d, k = m.xy.shape
        init = getattr(self, "_warm", None)
        init = None if init is None or init.weight.shape != (k, d) else init.weight
        if init is not None:
            init = init.detach().cpu().double().numpy()
        coefs, gaps, iters = path_from_moments(
            m,
            np.array([alpha]),
            l1_ratio,
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            positive=bool(self.positive),
            coef_init=init,
        )
        coef = coefs[:, :, 0]
        intercept = m.y_mean - coef @ m.x_mean if self.fit_intercept else np.zeros(k)
        if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
            # X near float64's largest (1.8e308) made its squares inf: NaN coefficients
            # came back under a ConvergenceWarning about a "gap nan" (a scikit-learn port)
            raise DataError(
                f"{type(self).__name__}: the fit's sums of squares leave float64 (values "
                "near 1e154 or beyond), so its coefficients are not finite; rescale X and y "
                "(e.g. by a power of ten) and fit again"
            )
        device = self.state_.device
        self.model_ = LinearModel(
            torch.as_tensor(coef, device=device), torch.as_tensor(intercept, device=device)
        )
        one = k == 1
        self.dual_gap_ = float(gaps[0, 0]) if one else gaps[:, 0].copy()
        self.n_iter_ = int(iters[0, 0]) if one else iters[:, 0].copy()
        self.loss_history_ = []

    def weights_fit_state(self, weight: torch.Tensor, bias: torch.Tensor) -> bool:
        """True when ``(weight, bias)`` fit ``state_`` as well as this model's own solve does,
        as a model file's weights must.

        The state is solved again with the model's settings (deterministic, so a saved fit
        is reproduced) and the objectives compared to 1e-10 of the targets' variance: an
        edit that moves the objective by more is refused; the intercept must be the one the
        coefficients imply.
        """
        from ..models.coordinate import objective

        m = moments(self.state_)
        W = weight.detach().cpu().double().numpy()
        b = bias.detach().cpu().double().numpy()
        l1, l2 = self.alpha * self.l1_ratio, self.alpha * (1 - self.l1_ratio)
        coefs = path_from_moments(
            m,
            np.array([float(self.alpha)]),
            float(self.l1_ratio),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            positive=bool(self.positive),
            warn=False,
        )[0][:, :, 0]
        for t in range(W.shape[0]):
            yy = float(m.yy[t])
            want_b = m.y_mean[t] - W[t] @ m.x_mean if self.fit_intercept else 0.0
            if abs(b[t] - want_b) > 1e-9 * (abs(want_b) + np.sqrt(yy)) + 1e-300:
                return False
            mine = objective(m.xx, m.xy[:, t], yy, W[t], l1, l2)
            ref = objective(m.xx, m.xy[:, t], yy, coefs[t], l1, l2)
            if not mine - ref <= 1e-10 * yy + 1e-12 * abs(ref):
                return False
            if self.positive and (W[t] < 0).any():
                return False
        return True


class Lasso(ElasticNet):
    """Linear regression with an L1 penalty (scikit-learn's Lasso): ElasticNet, l1_ratio 1.

    Example:
        >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0.0, 1.0, 2.0, 3.0])
        >>> round(float(Lasso(alpha=0.1).fit(X, y).coef_[0]), 6)
        0.92
    """

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        precompute: Any = False,
        copy_X: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
        positive: bool = False,
        random_state: Any = None,
        selection: str = "cyclic",
        solver: str = "gram",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            alpha,
            l1_ratio=1.0,
            fit_intercept=fit_intercept,
            precompute=precompute,
            max_iter=max_iter,
            copy_X=copy_X,
            tol=tol,
            warm_start=warm_start,
            positive=positive,
            random_state=random_state,
            selection=selection,
            solver=solver,
            device=device,
            dtype=dtype,
        )
        del self.l1_ratio  # not a parameter of Lasso: a class attribute instead

    l1_ratio = 1.0
