"""The iterative-solver half of the estimators: in-memory and streamed training."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from ..iterative.fit import fit_iterative
from ..model import LinearModel
from .inputs import resolve_dtype

ITERATIVE_SOLVERS = ("gd", "sgd", "adam", "lbfgs")


def _one_alpha(alpha: Any) -> float:
    if np.ndim(alpha) == 0:
        return float(alpha)
    values = np.asarray(alpha, dtype=np.float64).reshape(-1)
    if values.size == 1 or bool((values == values[0]).all()):
        return float(values[0])
    raise ValueError(
        f"one alpha per target needs an exact solver: got alpha={values.tolist()}; use "
        "solver='qr' or 'gram', or one alpha for all targets"
    )


class IterativeFitMixin:
    """Training of :class:`~torchlinreg.LinearRegression` for gd, sgd, adam and lbfgs."""

    def _training_settings(self, callbacks, resume_from) -> dict[str, Any]:
        """The engine's keyword arguments from the hyper-parameters (one place for both)."""
        return {
            "solver": self.solver,
            "fit_intercept": self.fit_intercept,
            "alpha": _one_alpha(self.alpha),
            "standardize": self.standardize,
            "lr": self.lr,
            "max_iter": self.max_iter,
            "batch_size": self.batch_size,
            "tol": self.tol,
            "n_iter_no_change": self.n_iter_no_change,
            "random_state": self.random_state,
            "init": self.init,
            "callbacks": callbacks,
            "resume_from": resume_from,
        }

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
        partial: bool = False,
    ) -> None:
        settings = self._training_settings(callbacks, resume_from)
        if max_iter is not None:
            settings["max_iter"] = max_iter
        if tol != "default":
            settings["tol"] = tol
        result = fit_iterative(
            Xt, Yt, sample_weight=wt, device=Xt.device, dtype=Xt.dtype, **settings
        )
        self._take_result(result, partial=partial)

    def _fit_stream(self, factory, callbacks, resume_from, buffer_rows) -> None:
        """An iterative fit over a block factory (:func:`streaming.fit_iterative_stream`)."""
        from ..iterative.streaming import DEFAULT_BUFFER_ROWS, fit_iterative_stream

        self._forget()
        result = fit_iterative_stream(
            factory,
            device=self.device,
            dtype=resolve_dtype(self.dtype),
            buffer_rows=buffer_rows or DEFAULT_BUFFER_ROWS,
            **self._training_settings(callbacks, resume_from),
        )
        self._take_result(result)
        self._moments = result.moments
        self._set_input_info(result.first_X, result.first_Y)

    def _take_result(self, result, *, partial: bool = False) -> None:
        self.model_ = LinearModel(result.coef, result.intercept)
        self.n_iter_ = result.n_iter
        self.loss_history_ = list(result.loss_history)
        self._trainer_state = result.state
        self.rank_ = None
        # NOTE [optimality gap] in iterative/optimality.py. partial_fit sees one block at a
        # time: that block's optimum is not the model's, so no gap is claimed.
        self.optimality_gap_ = float("nan") if partial else result.optimality_gap
        self.optimality_gap_kind_ = "unknown" if partial else result.gap_kind
        self.converged_ = False if partial else bool(result.converged)
