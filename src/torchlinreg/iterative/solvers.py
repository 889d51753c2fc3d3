"""The iterative solvers: their optimizers (optimizers.py), learning-rate schedules, defaults.

Defaults are set from the data's curvature, so that naming a solver alone is safe on raw,
correlated data: ``lambda`` is the largest eigenvalue of the Gram of the features as trained
(standardized by default, plus the column of ones) divided by the total weight (1 for
uncorrelated standardized features, up to ``d`` for collinear ones; the Gram gives it exactly,
``optimality.Optimum.curvature``, or power iteration where no Gram is formed). The training
loss's Hessian has largest eigenvalue ``L = 2 lambda / k`` (NOTE [the training objective]).

========  =====================  =============================================  ==========
solver    batch                  step (epoch ``t``)                             optimizer
========  =====================  =============================================  ==========
gd        all rows               ``1 / L = k / (2 lambda)``, constant           plain step
sgd       ``n / 16`` in 16..256  ``k / (2 (lambda + R^2 / b))``, constant,      plain step
          (all up to 64 rows)
                                 iterates averaged from epoch 1
adam      ``n / 16`` in 16..128  ``0.05 / (1 + t / 50)``, iterates averaged     Adam
                                 from epoch 1
lbfgs     all rows               ``1`` with a strong-Wolfe line search          L-BFGS
                                 (up to 25 evaluations a step)
========  =====================  =============================================  ==========

gd's constant step ``1 / L`` never diverges on a least-squares objective (any step below
``2 / L`` decreases the loss at every epoch) and gains a fixed fraction ``1 / cond`` of the
remaining gap per epoch. sgd's step shrinks with the batch's noise (``R^2`` is the largest
squared norm of a row as trained, with the intercept's 1: with the mean norm instead,
``d + 1``, high-leverage rows of statsmodels' star98 made it diverge at batch 16) and
Polyak-Ruppert averaging of the iterates removes the remaining noise, so the average
converges to the optimum at a constant step (Bach & Moulines 2013); adam's iterates are
averaged in the same way. Batches of about ``n / 16`` rows give data sets of a few thousand
rows 16 steps per epoch; past the caps a batch grows to ``n / 1024`` rows, so that an epoch
is at most 1,024 steps (NOTE [steps per epoch]). L-BFGS keeps 50 pairs: with 10, collinear
data (statsmodels' star98, scikit-learn's breast cancer) crawled for hundreds of
iterations. Schedules depend on the epoch only, so a checkpoint needs no scheduler state.
The corpus of real data sets in the README measures what each reaches by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .optimizers import LBFGS, Adam, PlainGD

SOLVERS = ("gd", "sgd", "adam", "lbfgs")
SMALL_DATA_ROWS = 64  # mini-batch solvers take one batch of all rows up to this


@torch.no_grad()
def gd_step(params: list[Tensor], lr: float) -> None:
    """The walk-through's update, ``p -= p.grad * lr``, then drop the gradient."""
    for p in params:
        p -= p.grad * lr
        p.grad = None


@dataclass
class SolverSpec:
    """One solver, resolved: its optimizer factory, schedule and batch size."""

    name: str
    lr: float
    batch_size: int | None  # None: full batch
    decay_epochs: float | None  # lr_t = lr / (1 + t / decay_epochs); None: constant
    make_optimizer: Callable[[list[Tensor]], torch.optim.Optimizer]
    fused_full_batch: bool = False  # gd: the walk-through's one-forward-per-epoch loop
    needs_closure: bool = False  # lbfgs
    plain: bool = False  # gd, sgd: the loop may call step() below instead of the optimizer
    average_from: int | None = None  # Polyak averaging of the iterates from this epoch on

    def lr_at(self, epoch: int) -> float:
        if self.decay_epochs is None:
            return self.lr
        return self.lr / (1.0 + epoch / self.decay_epochs)

    @staticmethod
    def step(params: list[Tensor], lr: float) -> None:
        gd_step(params, lr)


# NOTE [steps per epoch]
# Batches of n / 16 rows, capped at 128 (adam) or 256 (sgd), suit the data sets of a few
# thousand rows the defaults were tuned on (the corpus). On a million rows the cap made
# 7,812 adam steps an epoch, each too small to use the machine: 1M x 50 took 3.8 s to a
# 1e-6 gap (one thread), and 4.85 s on an H200, where every step is a dozen kernel
# launches (NOTE [small steps on a GPU]). An epoch now takes at most 1,024 steps, the
# batch growing to n / 1024 rows past the cap. benchmarks/iterative_time.py, each solver
# in its own process on one thread: adam 3.8 s -> 1.8 s (2 epochs instead of 3), sgd
# 2.0-2.7 s -> 1.8-2.2 s; every gap below 1e-6 and measured. Data sets up to 131,072 rows
# (adam) and 262,144 (sgd) keep their batches.
MAX_STEPS_PER_EPOCH = 1024


def default_batch(n_rows: int, largest: int) -> int:
    """About 16 steps per epoch: ``n / 16`` rows, at least 16 and at most ``largest``,
    evened out so that the last batch of an epoch is not a handful of rows (303 rows make 16
    batches of 19 or 18, not 18 of 16 and one of 15). Up to 64 rows, one batch of all rows:
    a batch of 16 would be a quarter of the data, whose steps add noise and little else (and
    one batch keeps weights equivalent to repeated rows, as scikit-learn checks). Past
    ``1024 * largest`` rows the batch grows so that an epoch stays at 1,024 steps (NOTE
    [steps per epoch]).

    Example:
        >>> default_batch(40, 256), default_batch(303, 256), default_batch(10**5, 256)
        (40, 19, 256)
        >>> default_batch(10**6, 256), default_batch(10**6, 128)
        (977, 977)
    """
    if n_rows <= SMALL_DATA_ROWS:
        return max(n_rows, 1)
    largest = max(largest, -(-n_rows // MAX_STEPS_PER_EPOCH))
    target = max(16, min(largest, -(-n_rows // 16)))
    steps = -(-n_rows // target)
    return -(-n_rows // steps)


def resolve_solver(
    name: str,
    *,
    n_targets: int,
    n_rows: int,
    lr: float | None = None,
    batch_size: int | None = None,
    curvature: float = 1.0,
    row_norm: float | None = None,
) -> SolverSpec:
    """The :class:`SolverSpec` for ``name`` with the defaults filled in.

    ``curvature`` is ``lambda`` of the module docstring (1 when unknown: uncorrelated
    standardized features); ``row_norm`` is ``R^2``, the largest squared norm of a row as
    trained (with the intercept's 1), which sizes sgd's noise term (default ``lambda``).

    Example:
        >>> resolve_solver("gd", n_targets=2, n_rows=1000, curvature=4.0).lr
        0.25
    """
    if name not in SOLVERS:
        raise ValueError(
            f"The 'solver' parameter must be one of {set(SOLVERS)}. Got {name!r} instead."
        )
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"Invalid learning rate: {lr}; it must be a positive number")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"Invalid batch_size: {batch_size}; it must be >= 1")
    if not (math.isfinite(curvature) and curvature > 0):
        curvature = 1.0
    k = n_targets
    if name == "gd":
        rate = lr if lr is not None else k / (2.0 * curvature)
        return SolverSpec(
            name,
            rate,
            None,
            None,
            lambda ps: PlainGD(ps, rate),
            fused_full_batch=True,
            plain=True,
        )
    if name == "lbfgs":
        rate = lr if lr is not None else 1.0
        return SolverSpec(
            name,
            rate,
            None,
            None,
            # NOTE [lbfgs tolerances]: torch's defaults (1e-7 on the gradient, 1e-9 on
            # changes) stop it at about 1e-5 from the optimum on an O(1) standardized loss;
            # the gap decides when to stop instead. One iteration per epoch, but its
            # strong-Wolfe line search needs evaluations: torch's default max_eval for
            # max_iter=1 is 1, which leaves the line search none (it then keeps x when the
            # first trial point is worse, and L-BFGS stalls).
            lambda ps: LBFGS(
                ps,
                lr=rate,
                max_iter=1,
                max_eval=25,
                history_size=50,
                line_search_fn="strong_wolfe",
                tolerance_grad=1e-14,
                tolerance_change=1e-30,
            ),
            needs_closure=True,
        )
    if name == "sgd":
        bs = batch_size if batch_size is not None else default_batch(n_rows, 256)
        # one batch of all rows is the exact gradient: no noise, the step of gd
        noise = 0.0 if bs >= n_rows else (row_norm if row_norm is not None else curvature) / bs
        rate = lr if lr is not None else k / (2.0 * (curvature + noise))
        return SolverSpec(
            name, rate, bs, None, lambda ps: PlainGD(ps, rate), plain=True, average_from=1
        )
    bs = batch_size if batch_size is not None else default_batch(n_rows, 128)
    rate = lr if lr is not None else 0.05
    return SolverSpec(name, rate, bs, 50.0, lambda ps: Adam(ps, lr=rate), average_from=1)
