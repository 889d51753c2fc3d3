"""The iterative engine: one training loop for gd, sgd, adam and lbfgs.

The model is a tiny ``nn.Module`` (:class:`LinearModule`: ``x @ weight.t() + bias``), the
data comes from a batch source (:mod:`.batches`), callbacks watch and stop the
loop (:mod:`.callbacks`). Because the model is a module whose forward is the
whole prediction, the same :class:`Trainer` can drive a ``DistributedDataParallel`` wrap.

NOTE [the training objective]
The exact engine minimises ``sum_i w_i ||y_i - W x_i - b||^2 + alpha ||W||_F^2``. The loop
minimises that divided by ``sum(w) * k`` (``k`` targets): without weights and penalty this
is the walk-through's mean over all elements, ``sum(diff * diff) / diff.numel()``, and the
minimiser is the same. In standardized space each target is also divided by its scale,
which divides that target's objective by ``y_scale_j^2``; targets do not interact, so the
minimiser is still the same, and the penalty becomes
``alpha * sum(W'^2 / x_scale^2)`` (see :meth:`Scaler.penalty_scale`). Because the loss
averages over targets, each target's gradient is ``1/k`` of its own; the default learning
rates of gd and sgd are multiplied by ``k`` to compensate.

NOTE [centred intercept]
Standardized with an intercept, the features and targets have weighted mean 0, and the
objective splits: ``L(W', b') = L(W', 0) + b'^2`` (the cross term is the features' weighted
mean). The intercept's optimum in trained space is therefore ``b' = 0`` for every ``W'``;
the loop keeps it at 0 (a buffer, as without an intercept) and the map back to original
units gives ``b = y_mean - W x_mean``. Training it anyway only adds noise: Adam, which
normalises each coordinate's step, turned the rounding-level gradient of ``b'`` into a
random walk of size ``lr`` (measured: ``b'`` at +-0.02 after 6 epochs, opposite signs for
weights and repeated rows). Mini-batches are unaffected: the full objective's gradient in
``W'`` at ``b' = 0`` is what their gradients estimate.

NOTE [gd is the walk-through]
With ``solver="gd"`` and a full batch, each epoch computes the loss, records it, calls
``backward()`` and updates ``w -= w.grad * lr``: the walk-through's loop, operation for
operation, so ``fit_iterative(..., solver="gd", standardize=False, lr=1e-5, init="randn")``
reproduces ``tutorial.run_seeded`` bit for bit. The loss computed at the start of an epoch
is the loss after the previous update, so one forward per epoch gives the history.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..data import _all_finite
from ..distributed.collectives import (
    agree_on_errors,
    allgather,
    allreduce_sum,
    broadcast_int,
    is_distributed,
    merge_across_ranks,
)
from ..distributed.ddp import RankBatches, RankInfo, ddp_wrap
from ..errors import DataError
from ..exact.threads import with_fit_threads
from .batches import FullBatch, ShuffledBatches
from .callbacks import Callback
from .convergence import (
    GapMeter,
    IterativeResult,
    builtin_callbacks,
    finish,
    resolve_max_iter,
    resolve_tol,
)
from .curvature import gradient_bound, largest_row_norm, power_curvature
from .optimality import GRAM_MAX_COLUMNS, Optimum, column_units, gram_state
from .scaling import Scaler
from .solvers import SOLVERS, resolve_solver
from .trainer import LinearModule, Trainer

__all__ = ["SOLVERS", "IterativeResult", "LinearModule", "Trainer", "fit_iterative"]


@with_fit_threads
def fit_iterative(
    X: Tensor,
    Y: Tensor,
    *,
    sample_weight: Tensor | None = None,
    solver: str = "adam",
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
    callbacks: Sequence[Callback] = (),
    resume_from: dict | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> IterativeResult:
    """Fit ``Y ~ X @ coef.T + intercept`` by gradient methods; see NOTE [the training objective].

    Args:
        X: ``(n, d)`` features. Y: ``(n, k)`` or ``(n,)`` targets.
        sample_weight: ``(n,)`` non-negative row weights (default: all 1).
        solver: ``"gd"``, ``"sgd"``, ``"adam"`` (default) or ``"lbfgs"``; defaults per
            solver are in :mod:`torchlinreg.iterative.solvers`.
        alpha: ridge penalty on ``coef`` (not the intercept), as the exact engine's.
        standardize: train on standardized X and Y (weighted), report original units.
        lr, batch_size: override the solver's defaults (gd's and sgd's learning rates come
            from the largest eigenvalue of the standardized Gram: see ``solvers.py``).
        max_iter: epochs at most (None: the solver's default, ``convergence.DEFAULT_EPOCHS``).
        tol: the optimality gap to reach (NOTE [stopping on the gap] in ``convergence.py``):
            ``"auto"`` is the solver's own (``convergence.DEFAULT_TOL``), ``None`` runs all
            ``max_iter`` epochs. n_iter_no_change: the loss-plateau rule used only where the
            gap cannot be measured.
        random_state: seeds the initial weights (``init="randn"``) and the shuffling.
        init: ``"zeros"`` (default) or ``"randn"`` (the walk-through's ``randn(k, d)``,
            ``randn(k)`` from a generator seeded ``random_state``).
        callbacks: extra :class:`Callback` objects, called after the built-in ones.
        resume_from: a ``Trainer.state_dict()`` to continue from.
        device, dtype: where and in what to compute; ``dtype=None`` is float64 for float64
            input and float32 otherwise.

    Example:
        >>> X = torch.randn(200, 3, dtype=torch.float64)
        >>> Y = X @ torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64) + 4
        >>> res = fit_iterative(X, Y, solver="lbfgs")
        >>> torch.allclose(res.intercept, torch.tensor([4.0], dtype=torch.float64))
        True
    """
    with agree_on_errors():
        X, Y, weight, dtype = _prepare(X, Y, sample_weight, device, dtype)
    # NOTE [distributed training] in ddp.py: every rank holds its own rows.
    ranks = RankInfo.gather(X.shape[0], weight) if is_distributed() else None
    n, d = X.shape
    k = Y.shape[1]
    if init not in ("zeros", "randn"):
        raise ValueError(f"The 'init' parameter must be 'zeros' or 'randn'. Got {init!r} instead.")
    if not alpha >= 0:
        raise ValueError(f"Invalid alpha: {alpha}; it must be >= 0")
    max_iter = resolve_max_iter(max_iter, solver)
    tol = resolve_tol(tol, solver, dtype)
    n_all = n if ranks is None else ranks.n_rows
    resolve_solver(solver, n_targets=k, n_rows=n_all, lr=lr, batch_size=batch_size)  # checks

    optimum = _optimum(X, Y, weight, ranks, fit_intercept=fit_intercept, alpha=alpha)
    total = float(n if weight is None else weight.sum()) if ranks is None else ranks.total_weight
    if resume_from is not None and "scaler" in resume_from:
        scaler = Scaler.from_state_dict(resume_from["scaler"])
    elif standardize and optimum is not None:
        scaler = optimum.scaler(dtype, center=fit_intercept).with_ridge(alpha / total)
    elif standardize:
        reduce = None if ranks is None else allreduce_sum
        scaler = Scaler.fit(X, Y, weight, center=fit_intercept, reduce=reduce)
        scaler = scaler.with_ridge(alpha / total)  # NOTE [ridge standardization]
    else:
        scaler = None
    if optimum is not None:
        curvature = optimum.curvature(scaler)
    else:
        reduce = None if ranks is None else allreduce_sum
        curvature = power_curvature(
            X, weight, scaler, alpha=alpha, total=total, fit_intercept=fit_intercept, reduce=reduce
        )
    spec = resolve_solver(
        solver,
        n_targets=k,
        n_rows=n_all,
        lr=lr,
        batch_size=batch_size,
        curvature=curvature,
        row_norm=_row_norm(solver, lr, X, weight, scaler, fit_intercept, ranks),
    )
    # Mini-batches are standardized as they are gathered (each batch is a copy anyway):
    # no standardized copy of X, which would double the memory of a large fit.
    per_batch = scaler is not None and ranks is None and spec.batch_size is not None
    Xs = X if scaler is None or per_batch else scaler.transform_x(X)
    Ys = Y if scaler is None or per_batch else scaler.transform_y(Y)
    # Weights normalised to mean 1: the batch losses are then plain means.
    if weight is None:
        wn = None
    else:
        wn = weight * (n / weight.sum()) if ranks is None else weight * (n_all / total)

    seed = _seed(random_state) if ranks is None else broadcast_int(_seed(random_state))
    W0, b0 = _initial(init, k, d, seed, dtype)
    # NOTE [centred intercept]: on centred (standardized) data the intercept's optimum is 0
    # whatever the weights, so it is not trained there.
    learn_bias = fit_intercept and scaler is None
    module = LinearModule(W0.to(X.device), b0.to(X.device), fit_intercept=learn_bias)
    if ranks is not None:
        module = ddp_wrap(module)
        source = RankBatches(Xs, Ys, wn, ranks, batch_size=spec.batch_size)
    elif spec.batch_size is None:
        source = FullBatch(Xs, Ys, wn)
    else:
        source = ShuffledBatches(
            Xs, Ys, wn, batch_size=spec.batch_size, scaler=scaler if per_batch else None
        )
    penalty = None
    if alpha > 0:
        scale = scaler.penalty_scale() if scaler is not None else torch.ones_like(W0[0])
        penalty = (alpha / (total * k), scale.to(X.device))
    bound = None
    if optimum is None and penalty is not None and scaler is not None:
        # standardized features are centred (or, without an intercept, there is none)
        all_sum = None if ranks is None else allreduce_sum
        bound = gradient_bound(source, penalty, k=k, fit_intercept=fit_intercept, all_sum=all_sum)
        if not fit_intercept:
            bound = _over_centred_sst(bound, Y, weight, scaler, all_sum)
    meter = GapMeter(optimum, scaler, bound)
    builtins = builtin_callbacks(
        spec, tol, n_iter_no_change, meter, lambda: trainer, standardized=scaler is not None
    )
    # Each rank shuffles its own rows in its own order, reproducibly (seed + rank).
    rank = 0 if ranks is None else ranks.rank
    generator = torch.Generator(device=X.device).manual_seed(seed + rank)
    trainer = Trainer(
        module,
        source,
        spec,
        max_iter=max_iter,
        penalty=penalty,
        callbacks=[*builtins, *callbacks],
        generator=generator,
        scaler=scaler,
        all_sum=None if ranks is None else allreduce_sum,
        objective=meter.loss if optimum is not None else None,
    )
    if resume_from is not None:
        trainer.load_state_dict(resume_from)
    trainer.fit()
    return finish(trainer, scaler, meter, tol, max_iter)


def _over_centred_sst(bound, Y, weight, scaler: Scaler, reduce):
    """NOTE [a bound without an intercept]: the gradient bound in the gap's own unit.

    The bound is relative to the standardized target's sum of squares; without an
    intercept its scale is the root mean square, so the bound was relative to the
    uncentred SST while the gap is relative to the centred one (NOTE [optimality gap]). On
    y near 100 (2,050 columns, alpha 50) it read 7.3e-4 for a true gap of 0.34, and the
    fit claimed convergence with coefficients 0.22 off (an iterative hunt). It is now
    multiplied by uncentred over centred SST per target (the exact gap's fallback for a
    constant target: the SST of a unit spread).
    """
    centred = Scaler.fit(Y, Y, weight, center=True, reduce=reduce).y_scale.to(torch.float64)
    var = torch.where(centred > 0, centred.square(), torch.ones_like(centred))
    ratio = scaler.y_scale.to(torch.float64).square() / var

    def in_units(weight_: Tensor, bias: Tensor) -> Tensor:
        return bound(weight_, bias) * ratio.to(weight_.device)

    return in_units


def _optimum(X, Y, weight, ranks, *, fit_intercept: bool, alpha: float) -> Optimum | None:
    """The Gram of all rows and the exact optimum (NOTE [optimality gap]), where affordable.

    The columns' units come from the first chunk of rows (no extra pass); where the squares
    then overflow, or a column's first chunk is all zeros, from all rows.
    """
    d = X.shape[1]
    k = Y.shape[1]
    if d + k > GRAM_MAX_COLUMNS:
        return None
    reduce_max = None if ranks is None else _max_over_ranks
    first = [column_units(A[:_CHUNK], reduce_max) for A in (X, Y)]
    zero_column = bool((X[:_CHUNK] == 0).all(dim=0).any() | (Y[:_CHUNK] == 0).all(dim=0).any())
    if ranks is not None:
        zero_column = bool(allreduce_sum(torch.tensor([float(zero_column)]))[0] > 0)
    tries = [first] if not zero_column else []
    tries.append(None)  # all rows: computed only if needed
    for units in tries:
        if units is None:
            units = [column_units(A, reduce_max) for A in (X, Y)]
        try:
            return _optimum_in(X, Y, weight, ranks, units, fit_intercept, alpha)
        except DataError:
            if units is first:
                continue  # the first chunk's units were too small for later rows
            raise
    raise AssertionError("unreachable")


def _optimum_in(X, Y, weight, ranks, units, fit_intercept, alpha) -> Optimum:
    n, d = X.shape
    chunks = (
        (
            X[lo : lo + _CHUNK],
            Y[lo : lo + _CHUNK],
            None if weight is None else weight[lo : lo + _CHUNK],
        )
        for lo in range(0, n, _CHUNK)
    )
    state = gram_state(chunks, d, Y.shape[1], units[0], units[1], device=X.device)
    if ranks is not None:
        state = merge_across_ranks(state, fit_intercept=True, method="gram", device=X.device)
    return Optimum(state, units[0], units[1], alpha=alpha, fit_intercept=fit_intercept)


_CHUNK = 65536  # rows at a time for the passes over the data: bounded temporaries


def _row_norm(solver, lr, X, weight, scaler, fit_intercept, ranks) -> float | None:
    """sgd's default step needs the largest row norm (one pass); nothing else does."""
    if solver != "sgd" or lr is not None:
        return None
    reduce_max = None if ranks is None else _max_over_ranks
    return largest_row_norm(X, weight, scaler, fit_intercept=fit_intercept, reduce_max=reduce_max)


def _max_over_ranks(t: Tensor) -> Tensor:
    return torch.stack(allgather(t)).amax(dim=0)


def _prepare(X, Y, sample_weight, device, dtype):
    X = torch.as_tensor(X, device=device)
    Y = torch.as_tensor(Y, device=X.device)
    if dtype is None:
        dtype = torch.float64 if X.dtype == torch.float64 else torch.float32
    # Contiguous rows: a column-major X would otherwise give results that differ in the
    # last bits from the same data row-major (matmul kernels sum in another order).
    X, Y = X.to(dtype).contiguous(), Y.to(dtype).contiguous()
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise DataError(
            f"X must be (n, d) and Y (n, k) or (n,) with the same n; got X {tuple(X.shape)}, "
            f"Y {tuple(Y.shape)}"
        )
    if X.shape[0] == 0:
        raise DataError("no rows to fit; pass at least one row")
    for name, A in (("X", X), ("Y", Y)):
        if not _all_finite(A):  # a sum first: no full-size boolean temporary
            raise DataError(f"{name} contains NaN or infinite values; drop or impute them first")
    weight = None
    if sample_weight is not None:
        weight = torch.as_tensor(sample_weight, device=X.device).to(dtype).reshape(-1)
        if weight.shape[0] != X.shape[0]:
            raise DataError(f"sample_weight has {weight.shape[0]} values for {X.shape[0]} rows")
        # a rank may hold only rows of weight 0 (the estimator checks every rank's sum)
        if bool((weight < 0).any()) or not (is_distributed() or bool(weight.sum() > 0)):
            raise DataError("sample_weight must be non-negative with a positive sum")
    return X, Y, weight, dtype


def _seed(random_state: int | None) -> int:
    if random_state is not None:
        return int(random_state)
    # Drawn from torch's global generator, so torch.manual_seed makes unseeded fits repeat.
    return int(torch.randint(0, 2**62, (), dtype=torch.int64))


def _initial(init: str, k: int, d: int, seed: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    if init == "zeros":
        return torch.zeros(k, d, dtype=dtype), torch.zeros(k, dtype=dtype)
    # The walk-through's draw order: torch.manual_seed(S); randn(k, d); randn(k). A CPU
    # generator gives the same numbers on every device.
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(k, d, generator=g, dtype=dtype)
    return W, torch.randn(k, generator=g, dtype=dtype)
