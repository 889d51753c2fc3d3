"""The training loop of the iterative engine: :class:`Trainer` and :class:`LinearModule`.

See NOTE [the training objective] and NOTE [gd is the walk-through] in ``fit.py``.
The loop knows nothing of files, progress bars or the estimator: it pulls batches from a
source (:mod:`.batches`), steps one solver (:mod:`.solvers`) and lets callbacks
(:mod:`.callbacks`) watch and stop it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import DivergenceError
from .batches import BatchSource
from .callbacks import Callback, TrainState
from .scaling import Scaler
from .solvers import SolverSpec
from .trainstate import STATE_FORMAT, TrainerState, flatten_state, unflatten_state

__all__ = ["STATE_FORMAT", "LinearModule", "Trainer", "flatten_state", "unflatten_state"]

LBFGS_LOSS_SCALE = 2.0**32  # NOTE [lbfgs curvature test]


class LinearModule(nn.Module):
    """``x @ weight.t() + bias``; without an intercept the bias is a zero buffer, not learnt."""

    def __init__(self, weight: Tensor, bias: Tensor, *, fit_intercept: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        if fit_intercept:
            self.bias = nn.Parameter(bias)
        else:
            self.register_buffer("bias", torch.zeros_like(bias))

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight.t() + self.bias


def _objective(pred: Tensor, Y: Tensor, w: Tensor | None) -> Tensor:
    diff = pred - Y
    if w is None:
        return torch.sum(diff * diff) / diff.numel()
    return torch.sum(w[:, None] * (diff * diff)) / diff.numel()


# NOTE [small steps on a GPU]
# adam's batches are small (n / 16 rows, at most 128), so a million rows make 7,812 steps
# an epoch, and a step's cost is its operations, not their arithmetic. On an H200 an eager
# operation costs 15-20 us of launch and dispatch: adam took 13.9 s for two epochs of
# 1M x 50 there (0.9 ms a step, about 40 operations), more than the 5.8 s of a 2-core CPU.
# The step now takes the loss's gradient written out (no autograd graph: a dozen
# operations fewer, as sgd's closed-form step already did) and, on a GPU, torch's foreach
# form of Adam (one launch per operation for both parameters, as torch.optim.Adam runs
# there by default). The arithmetic per element is unchanged. On the 2-core CPU the
# same fit went from 5.1 s to 2.8 s. Fewer, larger steps on large data: NOTE [steps per
# epoch] in solvers.py.


class Trainer(TrainerState):
    """Runs epochs of one solver over a batch source, with callbacks and resumable state.

    ``penalty`` is ``(coefficient, per-feature scale)``: the loss adds
    ``coefficient * sum(weight**2 * scale)``. ``generator`` shuffles the batches; its state
    is part of :meth:`state_dict`, so a resumed run draws the same batches.

    Example:
        >>> from torchlinreg.iterative.batches import FullBatch
        >>> from torchlinreg.iterative.solvers import resolve_solver
        >>> X, Y = torch.randn(100, 3), torch.randn(100, 1)
        >>> module = LinearModule(torch.zeros(1, 3), torch.zeros(1))
        >>> spec = resolve_solver("gd", n_targets=1, n_rows=100)
        >>> trainer = Trainer(module, FullBatch(X, Y), spec, max_iter=10)
        >>> len(trainer.fit().loss_history)
        11
    """

    def __init__(
        self,
        module: nn.Module,
        source: BatchSource,
        spec: SolverSpec,
        *,
        max_iter: int = 200,
        penalty: tuple[float, Tensor] | None = None,
        callbacks: Sequence[Callback] = (),
        generator: torch.Generator | None = None,
        scaler: Scaler | None = None,
        all_sum: Callable[[Tensor], Tensor] | None = None,
        objective: Callable[[Tensor, Tensor], float] | None = None,
    ) -> None:
        self.module = module
        self.source = source
        self.spec = spec
        self.max_iter = max_iter
        self.penalty = penalty
        self.callbacks = list(callbacks)
        self.generator = generator if generator is not None else torch.Generator()
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.optimizer = spec.make_optimizer(self.params)
        self.epoch = 0
        self.loss_history: list[float] = []
        self.stop_reason: str | None = None
        self.converged = False
        self.scaler = scaler
        self._train_state: TrainState | None = None
        # The lowest loss seen and its epoch: the fit returns that model, never a worse one
        # (a noisy mini-batch epoch, or the last epochs of a run that hit max_iter).
        self.best_loss = float("inf")
        self.best_epoch = 0
        self._best: list[Tensor] | None = None
        # Polyak averaging (spec.average_from): running sums of the iterates from that epoch.
        self._sums: list[Tensor] | None = None
        self._count = 0
        # Distributed: the sum over ranks (torchlinreg.distributed.collectives.allreduce_sum); the
        # loss seen by callbacks and line searches is then the global one on every rank.
        self.all_sum = all_sum
        # The exact training loss of any (weight, bias) from the Gram, where it is known.
        self.objective = objective

    @property
    def _linear(self) -> nn.Module:
        # A DistributedDataParallel wrap keeps the real module in .module.
        return getattr(self.module, "module", self.module)

    def _loss(self, X: Tensor, Y: Tensor, w: Tensor | None) -> Tensor:
        loss = _objective(self.module(X), Y, w)
        if self.penalty is not None:
            coef, scale = self.penalty
            loss = loss + coef * torch.sum(self._linear.weight.square() * scale)
        return loss

    def full_loss(self) -> float:
        """The training loss over every row, of the model the fit would return now.

        From ``objective`` (the Gram's exact objective, NOTE [optimality gap]) where given:
        no pass over the rows, which for mini-batch solvers saves a third of an epoch (and
        a read of the file when streaming).
        """
        weight, bias = self.model_params()
        if self.objective is not None:
            return self.objective(weight, bias)
        total = None
        averaged = self._sums is not None and self._count > 0
        with torch.no_grad():
            for X, Y, w in self.source.eval_batches():
                # In place, and a norm rather than square-then-sum: at a million rows each
                # temporary costs a pass over memory.
                pred = torch.addmm(bias, X, weight.t()) if averaged else self.module(X)
                diff = pred.sub_(Y)
                if w is None:
                    ssr = torch.linalg.vector_norm(diff).square()
                else:
                    ssr = torch.sum(diff.square_().mul_(w[:, None]))
                part = ssr / (self.source.n_rows * Y.shape[1])
                total = part if total is None else total + part
            if self.all_sum is not None:
                total = self.all_sum(total)
            if self.penalty is not None:
                coef, scale = self.penalty
                total = total + coef * torch.sum(weight.square() * scale)
        return total.item()

    def _state(self) -> TrainState:
        # One TrainState per run, updated in place: building one per epoch costs more than
        # a whole epoch of the 5 x 3 walk-through.
        state = self._train_state
        if state is None:
            state = self._train_state = TrainState(
                epoch=self.epoch,
                loss=self.loss_history[-1],
                loss_history=self.loss_history,
                max_iter=self.max_iter,
                params=dict(self._linear.named_parameters()),
                optimizer=self.optimizer,
                trainer=self,
            )
        state.epoch = self.epoch
        state.loss = self.loss_history[-1]
        state.loss_history = self.loss_history
        state.stop_reason = self.stop_reason
        return state

    def _end_epoch(self, loss: float) -> bool:
        self.loss_history.append(loss)
        self._keep_best(loss)
        state = self._state()
        for cb in self.callbacks:
            if cb.on_epoch_end(state) and self.stop_reason is None:
                # Recorded at once, so that a checkpoint written by a later callback in
                # this same epoch already knows the run is over.
                self.stop_reason = state.stop_reason or f"stopped by {type(cb).__name__}"
                self.converged = bool(getattr(cb, "converges", False))
        return self.stop_reason is not None

    def model_params(self) -> tuple[Tensor, Tensor]:
        """The weight and bias the fit would return now: the running average of the iterates
        once averaging has started (``spec.average_from``), else the live parameters.

        Where the exact ``objective`` is known, the better of the two: with few batches per
        epoch (a small data set) the iterates hardly wander, and their geometric convergence
        beats the average's ``1 / t``.
        """
        lin = self._linear
        live = lin.weight.detach(), lin.bias.detach()
        if self._sums is None or self._count == 0:
            return live
        average = self._sums[0] / self._count, self._sums[1] / self._count
        if self.objective is not None and self.objective(*live) < self.objective(*average):
            return live
        return average

    def best_params(self) -> tuple[Tensor, Tensor, int]:
        """What the fit returns: the model with the lowest loss seen, and its epoch.

        The final model when its loss is the lowest up to rounding (64 ulps): near the
        optimum the loss is flat to its last bits while the coefficients still improve, and
        a loss that ties in rounding says nothing about which model is better.
        """
        weight, bias = self.model_params()
        last = self.loss_history[-1] if self.loss_history else math.inf
        # ties in rounding: of the loss itself, or of where it started (a fit at 1e-32)
        start = abs(self.loss_history[0]) if self.loss_history else 0.0
        slack = 64 * torch.finfo(weight.dtype).eps * max(abs(self.best_loss), start)
        if last <= self.best_loss + slack:
            return weight.clone(), bias.clone(), self.epoch
        if self._best is None:
            # fused gd keeps no copy (see _keep_best): a loss above its lowest at the end is
            # a rise the divergence guard had no time to call sustained
            raise DivergenceError(
                f"training diverged: the loss rose in the last epochs, to {last:.6g} at epoch "
                f"{self.epoch} from {self.best_loss:.6g} at epoch {self.best_epoch}; use a "
                "smaller lr",
                epoch=self.epoch,
                solver=self.spec.name,
            )
        return self._best[0].clone(), self._best[1].clone(), self.best_epoch

    def _keep_best(self, loss: float) -> None:
        # <=: on a tie the later model, so a run that ends at its lowest loss returns its
        # final weights bit for bit (the walk-through).
        if not loss <= self.best_loss:
            return
        self.best_loss, self.best_epoch = loss, self.epoch
        if self._fused:
            # Full-batch gd with a fixed step lowers the loss at every epoch unless the step
            # is too large, and then the loss rises for ever (DivergenceGuard): the last
            # model is the best one, and the walk-through's epoch (~90 us) pays no copy.
            return
        w, b = self.model_params()
        if self._best is None:
            self._best = [w.clone(), b.clone()]
        else:
            self._best[0].copy_(w)
            self._best[1].copy_(b)

    def _accumulate(self) -> None:
        """Add the live parameters to the averaging sums (after each step, once started)."""
        lin = self._linear
        if self._sums is None:
            self._sums = [torch.zeros_like(lin.weight.detach()), torch.zeros_like(lin.bias)]
        self._sums[0].add_(lin.weight.detach())
        self._sums[1].add_(lin.bias.detach())
        self._count += 1

    @property
    def _fused(self) -> bool:
        return self.spec.fused_full_batch and self.source.full_batch

    def fit(self) -> Trainer:
        """Train until ``max_iter`` epochs or a callback stops; returns ``self``."""
        if self.stop_reason is not None:
            # resumed from a run that had already stopped: no epoch to run, but the callbacks
            # still see the run begin and end (a resumed CLI run checks its data there)
            self._begin(self.loss_history[-1] if self.loss_history else float("nan"))
        elif self._fused:
            self._fit_fused()
        else:
            self._fit_batches()
        state = self._state()
        for cb in self.callbacks:
            cb.on_train_end(state)
        return self

    def _begin(self, loss: float) -> None:
        if not self.loss_history:
            self.loss_history.append(loss)
            self._keep_best(loss)
        state = self._state()
        for cb in self.callbacks:
            cb.on_train_begin(state)

    def _fit_fused(self) -> None:
        # See NOTE [gd is the walk-through]: each forward's loss is the previous epoch's.
        X, Y, w = next(self.source.epoch(self.generator))
        loss = self._loss(X, Y, w)
        self._begin(self._global(loss))
        params, step = self.params, self.spec.step
        lr = self.spec.lr
        while self.epoch < self.max_iter:
            loss.backward()
            step(params, lr)
            self.epoch += 1
            loss = self._loss(X, Y, w)
            if self._end_epoch(self._global(loss)):
                break

    def _fit_batches(self) -> None:
        self._begin(self.full_loss())
        opt, params, spec = self.optimizer, self.params, self.spec
        # A DDP wrap needs backward() for its gradient all-reduce; a bare LinearModule does not.
        closed_form = isinstance(self.module, LinearModule)
        while self.epoch < self.max_iter:
            lr = spec.lr_at(self.epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            average = spec.average_from is not None and self.epoch >= spec.average_from
            for X, Y, w in self.source.epoch(self.generator):
                if spec.needs_closure:
                    opt.step(lambda X=X, Y=Y, w=w: self._closure(X, Y, w))
                elif spec.plain and closed_form:
                    self._closed_form_step(X, Y, w, lr)
                elif spec.plain:
                    # The optimizer's own step() adds ~25 us of bookkeeping per batch.
                    self._loss(X, Y, w).backward()
                    spec.step(params, lr)
                else:
                    if closed_form:
                        self._closed_form_grads(X, Y, w)
                    else:
                        self._loss(X, Y, w).backward()
                    opt.step()
                    for p in params:
                        p.grad = None
                if average:
                    self._accumulate()
            self.epoch += 1
            loss = self.full_loss()
            if spec.needs_closure and not loss < self.loss_history[-1]:
                # NOTE [lbfgs restart]: an L-BFGS iteration that did not lower the loss has
                # a memory that points nowhere (its line search failed along a direction
                # the flat eigenvalues of collinear data spoilt); start it afresh from the
                # gradient. Measured on a twin-column problem (cond 1e13): stuck at an R2
                # gap of 2.6e-6 for 1000 iterations without, 5.6e-13 in 82 with.
                opt.state.clear()
            if self._end_epoch(loss):
                break

    @torch.no_grad()
    def _closed_form_step(self, X: Tensor, Y: Tensor, w: Tensor | None, lr: float) -> None:
        """One plain step with the loss's gradient written out: no autograd graph per batch.

        ``d/dW sum(w * diff**2) / numel = 2 (w * diff).T X / numel`` (column sums for the
        bias); the penalty ``coef * sum(W**2 * scale)`` adds ``2 coef W scale``. At batch
        256 building and back-propagating a graph costs about 75 us a batch, more than the
        arithmetic itself.
        """
        lin = self._linear
        diff, grad_w = self._weighted_residuals(X, Y, w)
        step = 2.0 * lr / diff.numel()
        if self.penalty is not None:
            coef, scale = self.penalty
            grad_w.add_(lin.weight * scale, alpha=coef * diff.numel())
        lin.weight.sub_(grad_w, alpha=step)
        if isinstance(lin.bias, nn.Parameter):
            lin.bias.sub_(diff.sum(0), alpha=step)

    def _weighted_residuals(self, X: Tensor, Y: Tensor, w: Tensor | None) -> tuple[Tensor, Tensor]:
        """``w * (X W' + b - Y)`` of a batch and its product with X, ``(w * diff)' X``: the
        unscaled gradient both closed-form routes start from."""
        lin = self._linear
        diff = torch.addmm(lin.bias, X, lin.weight.t()).sub_(Y)
        if w is not None:
            diff.mul_(w[:, None])
        return diff, diff.t() @ X

    @torch.no_grad()
    def _closed_form_grads(self, X: Tensor, Y: Tensor, w: Tensor | None) -> None:
        """The loss's gradient written out into ``.grad`` (adam's batches), as
        :meth:`_closed_form_step` does for a plain step: each batch's autograd graph cost
        more than the step, and on a GPU it is a dozen kernel launches (NOTE [small steps
        on a GPU])."""
        lin = self._linear
        diff, grad_w = self._weighted_residuals(X, Y, w)
        scale = 2.0 / diff.numel()
        grad_w.mul_(scale)
        if self.penalty is not None:
            coef, pscale = self.penalty
            grad_w.add_(lin.weight * pscale, alpha=2.0 * coef)
        lin.weight.grad = grad_w
        if isinstance(lin.bias, nn.Parameter):
            lin.bias.grad = diff.sum(0).mul_(scale)

    def _closure(self, X: Tensor, Y: Tensor, w: Tensor | None) -> Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        # NOTE [lbfgs curvature test]: torch's L-BFGS keeps a pair (s, y) only when
        # y.s > 1e-10, an absolute test. On an O(1) loss the pairs of the flat directions of
        # collinear data (eigenvalues 1e-11 of the standardized Gram) fail it, the memory
        # stops learning and L-BFGS crawls (measured: R2 gap 2.4e-3 after 600 iterations on
        # a raw cubic in the year). The optimizer sees the loss times 2^32 (exact in binary,
        # and L-BFGS with its line search is otherwise invariant to the loss's scale), which
        # makes the test relative to about 2e-19 of the loss; the loss history is unscaled.
        # Not in float32: its line search's cubic interpolation squares the directional
        # derivatives (about 1e19 after the scale) past float32's 3e38, and a benign float32
        # fit (linnerud, 20 x 3) stopped at epoch 1 with a NaN loss, "diverged"; float32
        # resolves no curvature below 1e-7 of the loss anyway.
        loss = self._loss(X, Y, w)
        loss = loss * LBFGS_LOSS_SCALE if loss.dtype == torch.float64 else loss
        loss.backward()
        if self.all_sum is None:
            return loss
        return self._mean_over_ranks(loss)

    def _mean_over_ranks(self, loss: Tensor) -> Tensor:
        # Each rank's loss is scaled so that the ranks' mean is the global loss, as DDP
        # averages the gradients (torchlinreg.distributed.ddp.RankBatches).
        return self.all_sum(loss.detach()) / dist.get_world_size()

    def _global(self, loss: Tensor) -> float:
        return (loss if self.all_sum is None else self._mean_over_ranks(loss)).item()
