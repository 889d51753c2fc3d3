"""Callbacks of the iterative engine: a small protocol and the built-in ones.

A callback sees a :class:`TrainState` three times: ``on_train_begin`` (the loss before any
update is known), ``on_epoch_end`` after every epoch (``state.loss`` is the training loss
after that epoch's updates; returning ``True`` stops training) and ``on_train_end``.
The loop never prints: a progress bar, a logger or a checkpoint writer is a callback the
caller hands in.

Callbacks keep no state that a resumed run would need: whatever they decide is a function
of ``state.loss_history``, which is part of every checkpoint, so a run resumed from a
checkpoint stops at the same epoch as an uninterrupted one.

Example:
    >>> class Print(Callback):
    ...     def on_epoch_end(self, state):
    ...         print(state.epoch, round(state.loss, 3))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from torch import Tensor

from ..errors import DivergenceError

if TYPE_CHECKING:
    import torch

# A trainer.Trainer, typed loosely: the trainer imports this module, so importing it back
# would make a cycle.
Trainer = Any


@dataclass
class TrainState:
    """What the loop shows its callbacks.

    ``epoch`` counts the epochs done (0 in ``on_train_begin``); ``loss_history[i]`` is the
    training loss after ``i`` epochs, so ``loss_history[-1] == loss``. ``max_iter`` is the
    epoch budget (a progress bar's total).
    """

    epoch: int
    loss: float
    loss_history: list[float]
    max_iter: int
    params: dict[str, Tensor] = field(default_factory=dict)
    optimizer: torch.optim.Optimizer | None = None
    trainer: Trainer | None = None
    stop_reason: str | None = None
    gap: float | None = None  # the optimality gap after this epoch, where it is measured


class Callback:
    """Base class: override any of the three hooks; the defaults do nothing."""

    def on_train_begin(self, state: TrainState) -> None:
        """Called once, after the initial loss, before the first (or resumed) epoch."""

    def on_epoch_end(self, state: TrainState) -> bool | None:
        """Called after every epoch; return ``True`` to stop training."""
        return None

    def on_train_end(self, state: TrainState) -> None:
        """Called once when training stops, for any reason but an exception."""


class EarlyStopping(Callback):
    """Stop when the loss has not improved by ``tol`` for ``n_iter_no_change`` epochs in a row.

    scikit-learn's rule, with a relative tolerance: an epoch "improves" when its loss is
    below ``best - tol * |best|``, where ``best`` is the lowest loss so far. Sets
    ``state.stop_reason`` when it stops.

    Example:
        >>> from torchlinreg import fit_iterative
        >>> g = torch.Generator().manual_seed(0)  # the same data every run
        >>> X = torch.randn(500, 3, dtype=torch.float64, generator=g); y = X.sum(1)
        >>> res = fit_iterative(X, y, solver="gd", tol=None, max_iter=500,
        ...                     callbacks=[EarlyStopping(tol=1e-6, n_iter_no_change=3)])
        >>> res.n_iter < 500
        True
    """

    converges = True  # the trainer reports a fit it stopped as converged

    def __init__(self, tol: float = 1e-4, n_iter_no_change: int = 5) -> None:
        if not tol >= 0:
            raise ValueError(f"EarlyStopping tol must be >= 0, got {tol}")
        if n_iter_no_change < 1:
            raise ValueError(f"EarlyStopping n_iter_no_change must be >= 1, got {n_iter_no_change}")
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change

    def __repr__(self) -> str:
        return f"EarlyStopping(tol={self.tol}, n_iter_no_change={self.n_iter_no_change})"

    def on_train_begin(self, state: TrainState) -> None:
        # Replaying the history makes a resumed run count exactly as an uninterrupted one.
        self._best = state.loss_history[0]
        self._count = 0
        for loss in state.loss_history[1:]:
            self._observe(loss)

    def _observe(self, loss: float) -> None:
        if loss < self._best - self.tol * abs(self._best):
            self._count = 0
        else:
            self._count += 1
        self._best = min(self._best, loss)

    def on_epoch_end(self, state: TrainState) -> bool | None:
        self._observe(state.loss)
        if self._count >= self.n_iter_no_change:
            state.stop_reason = (
                f"loss improved by less than tol={self.tol} (relative) "
                f"for {self.n_iter_no_change} epochs"
            )
            return True
        return None


_EPS = 2.0**-52  # float64 eps: losses are float64


class DivergenceGuard(Callback):
    """Raise :class:`DivergenceError` at the first sustained rise of the loss.

    A sustained rise: the loss went up in each of the last ``patience`` epochs and ends more
    than ``rise`` (relative) above the lowest loss so far. Full-batch gradient descent with
    a fixed step rises only when the step is too large for the curvature, and then for
    ever (each direction of the quadratic grows or shrinks geometrically), so three rises
    in a row are divergence, caught within a few epochs instead of at a million times the
    initial loss. Mini-batch losses wander, and Adam's iterates oscillate without
    diverging: with ``noisy`` a sustained rise counts only once the loss is above where it
    started. A non-finite loss, or one ``factor`` x the initial, is divergence at once.
    ``remedy`` ends the message (what to change, in the caller's words). Every fit has one
    built in.

    Example:
        >>> from torchlinreg import DivergenceError, fit_iterative
        >>> g = torch.Generator().manual_seed(0)  # the same data every run
        >>> X = torch.randn(100, 2, dtype=torch.float64, generator=g) * 100; y = X.sum(1)
        >>> try:
        ...     fit_iterative(X, y, solver="gd", standardize=False, lr=1.0)
        ... except DivergenceError as e:
        ...     print("diverged at epoch", e.epoch)  # doctest: +ELLIPSIS
        diverged at epoch ...
    """

    def __init__(
        self,
        patience: int = 3,
        rise: float = 1e-3,
        factor: float = 1e6,
        remedy: str = "use a smaller lr",
        solver: str | None = None,
        noisy: bool = False,
    ) -> None:
        if patience < 1 or not rise >= 0:
            raise ValueError(
                f"DivergenceGuard needs patience >= 1 and rise >= 0, got {patience}, {rise}"
            )
        self.patience, self.rise, self.factor = patience, rise, factor
        self.remedy, self.solver, self.noisy = remedy, solver, noisy

    def __repr__(self) -> str:
        return f"DivergenceGuard(patience={self.patience}, rise={self.rise}, factor={self.factor})"

    def on_train_begin(self, state: TrainState) -> None:
        # this call's losses only: partial_fit trains each block in a call of its own, and
        # its losses do not compare with another block's (gd stopped with "divergence" on
        # i.i.d. blocks at call 72, lbfgs at 38; an iterative hunt)
        self._start = max(len(state.loss_history) - 1, 0)
        self._check(state)

    def on_epoch_end(self, state: TrainState) -> bool | None:
        self._check(state)
        return None

    def _check(self, state: TrainState) -> None:
        history, loss = state.loss_history[getattr(self, "_start", 0) :], state.loss
        if not history:
            return
        initial = history[0]
        if not math.isfinite(loss):
            self._fail(state, f"the loss is not finite ({loss}, initial {initial:.6g})")
        if initial > 0 and loss > self.factor * initial:
            self._fail(
                state, f"the loss grew {loss / initial:.3g}x ({loss:.6g}, initial {initial:.6g})"
            )
        recent = history[-self.patience - 1 :]
        if len(recent) <= self.patience or any(b <= a for a, b in pairwise(recent)):
            return
        best = min(history)
        if self.noisy and not loss > initial:
            return
        # rises within the rounding of the loss itself (eps of where it started) are no
        # rises: an interpolating fit at 1e-32 "diverged" to 1.2e-32 (an iterative hunt)
        floor = 64 * _EPS * abs(initial)
        if loss > best + max(self.rise * abs(best), floor):
            at = history.index(best)
            self._fail(
                state,
                f"the loss rose {self.patience} epochs in a row, to {loss:.6g} from its lowest "
                f"{best:.6g} (epoch {at})",
            )

    def _fail(self, state: TrainState, what: str) -> None:
        raise DivergenceError(
            f"training diverged at epoch {state.epoch}: {what}; {self.remedy}",
            epoch=state.epoch,
            solver=self.solver,
        )


class GapStopping(Callback):
    """Stop as soon as the model's optimality gap is at most ``tol``.

    ``measure()`` returns the gap of the model the fit would return now (see NOTE
    [optimality gap] in ``optimality.py``); it is also recorded in ``state.gap``. The
    decision depends on the weights only, so a resumed run stops where the uninterrupted
    one does.

    Example:
        >>> stop = GapStopping(lambda: 1e-9, tol=1e-6)
        >>> stop.on_epoch_end(TrainState(1, 0.5, [1.0, 0.5], 10))
        True
    """

    converges = True

    def __init__(self, measure: Callable[[], float], tol: float) -> None:
        if not tol >= 0:
            raise ValueError(f"GapStopping tol must be >= 0, got {tol}")
        self.measure, self.tol = measure, tol

    def __repr__(self) -> str:
        return f"GapStopping(tol={self.tol})"

    def on_epoch_end(self, state: TrainState) -> bool | None:
        state.gap = gap = self.measure()
        if gap <= self.tol:
            state.stop_reason = f"optimality gap {gap:.3g} <= tol={self.tol:g}"
            return True
        return None


class Checkpoint(Callback):
    """Every ``every`` epochs and at the end, hand the trainer's full state to ``save``.

    ``save`` receives ``trainer.state_dict()``: tensors and plain values only, which
    ``io.py`` writes atomically. Resuming from it gives the same final model, bit for bit,
    as the uninterrupted run.

    Example:
        >>> from torchlinreg import fit_iterative
        >>> saved = []
        >>> g = torch.Generator().manual_seed(0)  # the same data every run
        >>> X = torch.randn(200, 2, dtype=torch.float64, generator=g); y = X.sum(1)
        >>> run = fit_iterative(X, y, solver="sgd", max_iter=4, tol=None, random_state=0,
        ...                     callbacks=[Checkpoint(saved.append, every=2)])
        >>> [s["epoch"] for s in saved]
        [2, 4, 4]
        >>> again = fit_iterative(X, y, solver="sgd", max_iter=4, tol=None, random_state=0,
        ...                       resume_from=saved[0])
        >>> torch.equal(again.coef, run.coef)
        True
    """

    def __init__(self, save: Callable[[dict[str, Any]], None], every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"Checkpoint every must be >= 1, got {every}")
        self.save = save
        self.every = every

    def on_epoch_end(self, state: TrainState) -> bool | None:
        if state.epoch % self.every == 0 and state.trainer is not None:
            self.save(state.trainer.state_dict())
        return None

    def on_train_end(self, state: TrainState) -> None:
        # Always: the final state records why training stopped, so resuming it is a no-op.
        if state.trainer is not None:
            self.save(state.trainer.state_dict())


class LambdaCallback(Callback):
    """A callback from a plain function ``fn(state)`` called after every epoch.

    Example:
        >>> losses = []
        >>> cb = LambdaCallback(lambda s: losses.append(s.loss))
    """

    def __init__(self, on_epoch_end: Callable[[TrainState], bool | None]) -> None:
        self._fn = on_epoch_end

    def on_epoch_end(self, state: TrainState) -> bool | None:
        return self._fn(state)
