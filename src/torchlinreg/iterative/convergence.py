"""When an iterative fit stops, what it returns and what it says: shared by in-memory, streamed
and distributed fits.

NOTE [stopping on the gap]
``tol`` is the optimality gap the fit aims at (NOTE [optimality gap] in ``optimality.py``: the
exact fit's R2 minus this fit's, for OLS). Where the gap is measured, training stops at the
first epoch whose model is within ``tol`` (:class:`GapStopping`), not on a loss plateau: a
plateau of sgd, adam or gd on ill-conditioned data can sit far from the optimum. A fit that
ends above ``tol`` (``max_iter`` reached, or a callback stopped it) warns with a
:class:`ConvergenceWarning` that gives the gap and what to do. Where the gap cannot be
measured (no Gram: ``d + k`` above ``GRAM_MAX_COLUMNS``) it is bounded when ``alpha > 0`` and
the features are centred (strong convexity), and otherwise the loss plateau rule
(:class:`EarlyStopping`) stops the fit, which then warns that its gap is unknown.
``tol="auto"`` is the solver's own target (:data:`DEFAULT_TOL`), ``tol=None`` runs every epoch
and asks for nothing (the walk-through), though the gap is still measured and reported.

The model returned is the one with the lowest training loss seen (``Trainer.best_params``),
never a worse later one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConvergenceWarning, DivergenceError
from .callbacks import Callback, DivergenceGuard, EarlyStopping, GapStopping
from .optimality import GRAM_MAX_COLUMNS, Optimum
from .scaling import Scaler
from .solvers import SolverSpec
from .trainer import Trainer

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_TOL", "IterativeResult", "builtin_callbacks", "finish"]

# The gap each solver aims at by default: what it reaches in its default epochs on
# well-conditioned data (measured on the corpus, README). Float32 training cannot resolve
# losses below about 1e-7 of their size, hence the floor.
DEFAULT_TOL = {"gd": 1e-6, "sgd": 1e-4, "adam": 1e-4, "lbfgs": 1e-12}
FLOAT32_TOL = 1e-6
# Epochs by default: gd with the step 1 / L needs about 7 x cond epochs for 1e-6, so 1000
# covers condition numbers up to ~150; an L-BFGS epoch is one iteration.
DEFAULT_EPOCHS = {"gd": 1000, "sgd": 200, "adam": 200, "lbfgs": 200}


def resolve_tol(tol: float | str | None, solver: str, dtype: torch.dtype) -> float | None:
    """``"auto"``: the solver's :data:`DEFAULT_TOL` (at least 1e-6 in float32)."""
    if tol is None:
        return None
    if isinstance(tol, str):
        if tol != "auto":
            raise ValueError(f"Invalid tol: {tol!r}; it must be a number >= 0, 'auto' or None")
        tol = DEFAULT_TOL.get(solver, 1e-4)
        return max(tol, FLOAT32_TOL) if dtype != torch.float64 else tol
    if not tol >= 0:
        raise ValueError(f"Invalid tol: {tol}; it must be a number >= 0, 'auto' or None")
    return float(tol)


def resolve_max_iter(max_iter: int | None, solver: str) -> int:
    if max_iter is None:
        return DEFAULT_EPOCHS.get(solver, 200)
    if max_iter < 0:
        raise ValueError(f"Invalid max_iter: {max_iter}; it must be >= 0")
    return int(max_iter)


@dataclass
class IterativeResult:
    """A finished iterative fit, in original units.

    ``loss_history[i]`` is the training loss after ``i`` epochs, in the space trained in
    (standardized unless ``standardize=False``), see NOTE [the training objective] in
    ``fit.py``. ``coef``/``intercept`` are the model of epoch ``best_epoch``, the lowest
    loss seen. ``optimality_gap`` is that model's gap (NOTE [optimality gap]): exact where
    ``gap_kind == "exact"``, an upper bound for ``"bound"``, NaN for ``"unknown"``.
    ``converged``: the gap is at most ``tol`` (or, where it is unknown, the loss stopped
    improving by ``tol``).
    """

    coef: Tensor  # (k, d)
    intercept: Tensor  # (k,)
    n_iter: int
    loss_history: list[float]
    converged: bool
    scaler: Scaler | None = None
    stop_reason: str | None = None
    state: dict | None = None  # Trainer.state_dict(): continue with resume_from=state
    optimality_gap: float = math.nan
    gap_kind: str = "unknown"
    best_epoch: int = 0
    tol: float | None = None


class GapMeter:
    """The gap of a trainer's current model: exact from an :class:`Optimum`, or a bound from
    ``bound(weight, bias)`` (trained space), or unknown."""

    def __init__(
        self,
        optimum: Optimum | None,
        scaler: Scaler | None,
        bound: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        self.optimum, self.scaler, self.bound = optimum, scaler, bound
        self.kind = "exact" if optimum is not None else "bound" if bound is not None else "unknown"

    def gaps(self, weight: Tensor, bias: Tensor) -> Tensor | None:
        """Per-target gaps of a model in trained space (None when unknown)."""
        if self.optimum is not None:
            if self.scaler is not None:
                weight, bias = self.scaler.to_original(weight, bias)
            return self.optimum.gaps(weight, bias)
        if self.bound is not None:
            return self.bound(weight, bias)
        return None

    def loss(self, weight: Tensor, bias: Tensor) -> float:
        """The training loss (NOTE [the training objective] in ``fit.py``) of a model in
        trained space, exactly, from the Gram: no pass over the rows."""
        opt, scaler = self.optimum, self.scaler
        y_scale = torch.ones_like(opt.y_units) if scaler is None else scaler.y_scale.to(opt.y_units)
        if scaler is not None:
            weight, bias = scaler.to_original(weight, bias)
        per_target = opt.objective(weight, bias) * (opt.y_units / y_scale).square()
        return float(per_target.sum() / (opt.sum_weights * opt.n_targets))

    def of(self, trainer: Trainer) -> float:
        gaps = self.gaps(*trainer.model_params())
        return math.nan if gaps is None else float(gaps.max())


def builtin_callbacks(
    spec: SolverSpec,
    tol: float | None,
    n_iter_no_change: int,
    meter: GapMeter,
    trainer: Callable[[], Trainer],
    *,
    standardized: bool,
) -> list[Callback]:
    """The divergence guard, then the stopping rule (NOTE [stopping on the gap])."""
    remedy = "use a smaller lr" + (
        " or standardize=True" if not standardized else " (the default lr is set from the data)"
    )
    # Full-batch gd and lbfgs lower the loss at every epoch unless the step is too large;
    # mini-batch losses wander (DivergenceGuard's noisy).
    noisy = spec.batch_size is not None or spec.name == "adam"
    guard = DivergenceGuard(remedy=remedy, solver=spec.name, noisy=noisy)
    if tol is None:
        return [guard]
    if meter.kind != "unknown":
        return [guard, GapStopping(lambda: meter.of(trainer()), tol)]
    return [guard, EarlyStopping(tol, n_iter_no_change)]


def finish(
    trainer: Trainer, scaler: Scaler | None, meter: GapMeter, tol: float | None, max_iter: int
) -> IterativeResult:
    """The result of a finished trainer: its best model in original units, its gap, the
    warnings of NOTE [stopping on the gap]; errors for a model that cannot be right."""
    weight, bias, best_epoch = trainer.best_params()
    gaps = meter.gaps(weight, bias)
    if scaler is not None:
        weight, bias = scaler.to_original(weight, bias)
    name = trainer.spec.name
    if not bool(torch.isfinite(weight).all() and torch.isfinite(bias).all()):
        raise DivergenceError(
            f"the {name} solver ended with non-finite coefficients at epoch {trainer.epoch}; "
            "use a smaller lr, or standardize=True",
            epoch=trainer.epoch,
            solver=name,
        )
    gap = math.nan if gaps is None else float(gaps.max())
    _refuse_all_zero(weight, gap, trainer, max_iter)
    # where the gap is unknown, "converged" is the plateau rule's verdict
    unknown = meter.kind == "unknown"
    converged = trainer.converged if unknown else tol is not None and gap <= tol
    if unknown and trainer.epoch > 0 and best_epoch == 0:
        # NOTE [no epoch bettered the start]: the plateau rule counted epochs against the
        # starting model, which an overshooting first step left the best: adam stopped after
        # 5 epochs with converged_=True and returned the all-zero model (R2 0 where the
        # exact fit has 1; an iterative hunt). Nothing was learned: say so.
        raise DivergenceError(
            f"the {name} solver never bettered its starting model in {trainer.epoch} epochs "
            f"(loss {trainer.loss_history[0]:.6g} at the start, at best "
            f"{min(trainer.loss_history[1:], default=math.nan):.6g} after): its steps "
            "overshoot; use a smaller lr, or the exact solver='qr'",
            epoch=trainer.epoch,
            solver=name,
        )
    if tol is not None and max_iter > 0:
        _warn(trainer, meter, gap, tol, max_iter, converged)
    return IterativeResult(
        weight,
        bias,
        trainer.epoch,
        list(trainer.loss_history),
        converged,
        scaler,
        trainer.stop_reason,
        trainer.state_dict(),
        optimality_gap=gap,
        gap_kind=meter.kind,
        best_epoch=best_epoch,
        tol=tol,
    )


def _refuse_all_zero(weight: Tensor, gap: float, trainer: Trainer, max_iter: int) -> None:
    # Every coefficient exactly 0 after training, while the exact fit's are not (its gap is
    # not small): the updates never reached the weights (a scale that underflowed).
    if max_iter == 0 or trainer.epoch == 0 or weight.numel() == 0 or bool(weight.any()):
        return
    if not gap > 1e-6:
        return
    raise DivergenceError(
        f"the {trainer.spec.name} solver left every coefficient at exactly 0 after "
        f"{trainer.epoch} epochs, {gap:.3g} below the exact fit's R2; the features' scale "
        "defeated the updates: standardize=True, or the exact solver='qr'",
        epoch=trainer.epoch,
        solver=trainer.spec.name,
    )


def _warn(
    trainer: Trainer, meter: GapMeter, gap: float, tol: float, max_iter: int, converged: bool
) -> None:
    name, epochs = trainer.spec.name, trainer.epoch
    if meter.kind == "unknown":
        how = (
            f"the loss stopped improving by tol={tol:g} (relative)"
            if converged
            else f"it ran max_iter={max_iter} epochs"
        )
        message = (
            f"the {name} solver's optimality gap is not known: with more than "
            f"{GRAM_MAX_COLUMNS} columns (features + targets) no Gram is formed, and alpha=0 "
            f"gives no bound; {how}. To be sure use the exact solver='qr' (or alpha > 0 for "
            "a bound)"
        )
    elif converged:
        return
    else:
        why = (
            f"after {epochs} epochs (max_iter={max_iter})"
            if trainer.stop_reason is None
            else f"at epoch {epochs} ({trainer.stop_reason})"
        )
        what = "an upper bound" if meter.kind == "bound" else "the exact R2 minus this fit's"
        message = (
            f"the {name} solver stopped {why} at an optimality gap of {gap:.3g} ({what}), "
            f"above tol={tol:g}; raise max_iter, or use solver='lbfgs', or the exact "
            "solver='qr'"
        )
    warnings.warn(
        ConvergenceWarning(message, gap=gap, tol=tol, epochs=epochs, solver=name),
        stacklevel=4,
    )
