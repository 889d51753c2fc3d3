"""torch.distributed for both engines: collectives, shared errors, exact states merged.

Inside an initialized process group of more than one process, each rank fits on its own
rows and every rank ends with the model of all rows:

- the exact engine all-gathers each rank's :class:`~torchlinreg.exact.state.LeastSquaresState`
  summary and merges the states in rank order (:func:`merge_across_ranks`), so every rank
  solves the same bits whatever the timing;
- the iterative engine trains one :class:`~torch.nn.parallel.DistributedDataParallel`
  model with global standardization, equal step counts per rank and the global loss for
  the history and early stopping (:mod:`torchlinreg.distributed.ddp`, NOTE [distributed training]).

Outside a process group (or with one process) every helper here is the identity, so the
engines call them unconditionally.

NOTE [deterministic sums]
Sums across ranks (:func:`allreduce_sum`) are an all-gather followed by a sum in rank
order, not ``all_reduce``: every rank then holds the same bits, whatever algorithm the
backend picks, so decisions taken on them (early stopping, a line search, a rank
tolerance) are the same on every rank and no rank runs a collective the others skip. They
are only used on small tensors (a loss, column means), where the extra traffic is nothing.

NOTE [errors on one rank]
A rank that raises while the others wait in a collective would hang them. The local phases
of a fit (reading and checking rows) run inside :func:`agree_on_errors`: at its end every
rank joins one all-gather of an error record, and if any rank failed, all raise the first
failing rank's error (its message, as a DataError when it was one). Nothing is pickled: the
message travels as a tensor of UTF-8 bytes.

Example (run under ``torchrun --nproc_per_node=2``)::

    dist.init_process_group("gloo")
    X_local, y_local = my_share_of_the_rows(dist.get_rank())
    model = LinearRegression().fit(X_local, y_local)   # the model of all rows, on every rank
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from ..errors import DataError, TorchLinRegError
from ..exact.state import LeastSquaresState
from ..stats.metrics import metrics_from_sums, regression_metrics

__all__ = [
    "agree_on_errors",
    "allgather",
    "allreduce_sum",
    "broadcast_int",
    "check_same_columns",
    "comm_device",
    "count_all_ranks",
    "is_distributed",
    "is_shared_error",
    "merge_across_ranks",
    "rank_zero_only",
    "regression_metrics_all_ranks",
    "world",
]

F = TypeVar("F", bound=Callable[..., Any])

_MAX_MESSAGE = 2000  # bytes of an error message sent to the other ranks
_SHARED = "_torchlinreg_shared"  # set on an exception every rank knows about


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the current process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_distributed() -> bool:
    """True inside an initialized process group of more than one process."""
    return world()[1] > 1


def rank_zero_only(fn: F) -> F:
    """Run ``fn`` on rank 0 only (other ranks get ``None``); for printing and saving.

    Example:
        >>> @rank_zero_only
        ... def report(text):
        ...     print(text)
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs) if world()[0] == 0 else None

    return wrapper  # type: ignore[return-value]


def comm_device(preferred: torch.device | None = None) -> torch.device:
    """Where collective tensors must live: CUDA for nccl, the CPU for gloo.

    ``preferred`` (a tensor's device) is kept when the backend can use it, as in a mixed
    ``cpu:gloo,cuda:nccl`` group.
    """
    backend = str(dist.get_backend())
    if preferred is not None and preferred.type == "cuda" and "nccl" in backend:
        return preferred
    if "gloo" in backend:
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def allgather(t: Tensor) -> list[Tensor]:
    """Every rank's ``t`` (same shape and dtype on all ranks), in rank order, on ``t``'s device."""
    if not is_distributed():
        return [t]
    dev = comm_device(t.device)
    local = t.detach().to(dev).contiguous()
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local)
    return [p.to(t.device) for p in parts]


def allreduce_sum(t: Tensor) -> Tensor:
    """The sum of ``t`` over ranks, the same bits on every rank (NOTE [deterministic sums])."""
    if not is_distributed():
        return t
    return torch.stack(allgather(t)).sum(dim=0)


def count_all_ranks(n: int) -> int:
    """The sum of an integer count (rows, say) over ranks."""
    if not is_distributed():
        return n
    return int(allreduce_sum(torch.tensor([n], dtype=torch.int64))[0])


def broadcast_int(value: int) -> int:
    """Rank 0's ``value`` on every rank (a seed drawn on rank 0, say)."""
    if not is_distributed():
        return value
    return int(allgather(torch.tensor([value], dtype=torch.int64))[0][0])


# NOTE [columns by name across ranks]
# A merge adds the ranks' summaries column by column, by position: a rank whose DataFrame
# held [c, a, b] where another's held [a, b, c] was merged silently, coefficients
# [2.15, 1.42, 2.32] for [1.01, 2.00, 3.00] (a distributed hunt), and a renamed column went
# through too. Each rank's feature names (None: unnamed, or no rows) are compared by a
# digest before anything is merged; unnamed ranks are taken as they come.


def check_same_columns(names: Sequence[str] | None) -> None:
    """Refuse ranks whose named feature columns differ (NOTE [columns by name across
    ranks]); every rank must call it. Outside a process group it does nothing."""
    if not is_distributed():
        return
    digest = 0
    if names is not None:
        text = "\x1f".join(str(n) for n in names).encode()
        digest = 1 + int.from_bytes(hashlib.sha256(text).digest()[:6], "big")  # < 2^53
    digests = [int(t[0]) for t in allgather(torch.tensor([digest], dtype=torch.int64))]
    named = [(r, d) for r, d in enumerate(digests) if d]
    if len({d for _, d in named}) > 1:
        first = named[0][0]
        other = next(r for r, d in named if d != named[0][1])
        mine = "" if names is None else f" (this rank's: {list(names)[:8]})"
        raise DataError(
            f"rank {other}'s feature columns are not rank {first}'s, by name or order{mine}; "
            "merged by position they would mix: give every rank the same columns in the "
            "same order"
        )


# ---------------------------------------------------------------- errors on one rank


def _encode_error(exc: BaseException | None) -> Tensor:
    out = torch.zeros(2 + _MAX_MESSAGE, dtype=torch.int64)
    if exc is None:
        return out
    code = 1 if isinstance(exc, DataError) else 2 if isinstance(exc, TorchLinRegError) else 3
    text = str(exc) if code < 3 else f"{type(exc).__name__}: {exc}"
    raw = text.encode("utf-8")[:_MAX_MESSAGE]
    out[0], out[1] = code, len(raw)
    out[2 : 2 + len(raw)] = torch.tensor(list(raw), dtype=torch.int64)
    return out


def _decode_error(record: Tensor, rank: int) -> Exception:
    code, n = int(record[0]), int(record[1])
    text = bytes(record[2 : 2 + n].tolist()).decode("utf-8", errors="replace")
    if code == 1:
        exc: Exception = DataError(text)
    elif code == 2:
        exc = TorchLinRegError(text)
    else:
        exc = RuntimeError(f"rank {rank} failed: {text}")
    setattr(exc, _SHARED, True)
    return exc


@contextmanager
def agree_on_errors() -> Iterator[None]:
    """Make an error on any rank an error on every rank; see NOTE [errors on one rank].

    Every rank must enter and leave the block (it ends in one collective). Outside a
    process group it does nothing.
    """
    if not is_distributed():
        yield
        return
    try:
        yield
    except Exception as exc:
        _exchange_errors(exc)
        setattr(exc, _SHARED, True)
        raise
    else:
        _exchange_errors(None)


def _exchange_errors(exc: Exception | None) -> None:
    records = allgather(_encode_error(exc))
    if exc is not None:
        return
    for rank, record in enumerate(records):
        if int(record[0]):
            raise _decode_error(record.cpu(), rank)


def is_shared_error(exc: BaseException) -> bool:
    """True when every rank raised this error too (so only rank 0 needs to report it)."""
    return bool(getattr(exc, _SHARED, False))


# ---------------------------------------------------------------- the exact engine

_METHOD_CODES = {"qr": 0.0, "gram": 1.0}
# present, n_features, n_targets, fit_intercept, method, n, sum_w, nonzero, shift, sum log w
_META = 10


def _meta(state: LeastSquaresState | None) -> Tensor:
    if state is None:
        return torch.zeros(_META, dtype=torch.float64)
    return torch.tensor(
        [
            1.0,
            state.n_features,
            state.n_targets,
            float(state.fit_intercept),
            _METHOD_CODES[state.method],
            state.n_samples,
            state.sum_weights,
            state.n_nonzero,
            float(getattr(state._summary, "has_shift", False)),
            state.sum_log_weights,
        ],
        dtype=torch.float64,
    )


def _tensor_keys(sd: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in sd.items() if isinstance(v, Tensor))


def merge_across_ranks(
    state: LeastSquaresState | None,
    *,
    fit_intercept: bool = True,
    method: str = "qr",
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> LeastSquaresState:
    """The state of every rank's rows, the same bits on every rank.

    Each rank passes its own state (``None`` when it read no rows; ``fit_intercept``,
    ``method``, ``dtype`` and ``device`` then describe the state it would have had). The
    summaries are all-gathered and merged with :meth:`LeastSquaresState.merge_all` in rank
    order: for ``qr`` one QR of the stacked R factors, for ``gram`` the pairwise merge of
    the centred co-moments. Outside a process group the state comes back unchanged.

    Example (under torchrun)::

        local = LeastSquaresState(3, 1).absorb(X_local, y_local)
        state = merge_across_ranks(local)   # every rank: the state of all rows
    """
    if not is_distributed():
        if state is None:
            raise DataError("no rows to fit; the data source yielded no rows")
        return state
    metas = allgather(_meta(state))
    present = [m for m in metas if m[0] > 0]
    if not present:
        raise DataError("no rows to fit on any rank; the data source yielded no rows")
    shape = [tuple(float(x) for x in m[1:5]) for m in present]
    if len(set(shape)) != 1:
        raise DataError(
            "the ranks fitted different problems (n_features, n_targets, fit_intercept, "
            f"method) = {sorted(set(shape))}; give every rank the same columns and settings"
        )
    d, k, icpt, code = (int(x) for x in shape[0])
    method = next(name for name, c in _METHOD_CODES.items() if c == code)
    if state is None:
        state = LeastSquaresState(
            d, k, fit_intercept=bool(icpt), method=method, dtype=dtype, device=device
        )
    template = state.state_dict()
    keys = _tensor_keys(template)
    flat = torch.cat([template[key].reshape(-1).to(torch.float64) for key in keys])
    gathered = allgather(flat)
    states = [
        _rebuild(template, keys, meta, values, state)
        for meta, values in zip(metas, gathered, strict=True)
        if meta[0] > 0
    ]
    merged = LeastSquaresState.merge_all(states)
    merged.block_rows = state.block_rows
    return merged


def _rebuild(
    template: dict[str, Any],
    keys: list[str],
    meta: Tensor,
    values: Tensor,
    like: LeastSquaresState,
) -> LeastSquaresState:
    """One rank's state from its gathered meta record and flat summary."""
    sd = dict(template)
    offset = 0
    for key in keys:
        ref = template[key]
        part = values[offset : offset + ref.numel()].reshape(ref.shape)
        sd[key] = part.to(device=like.device, dtype=like.dtype)
        offset += ref.numel()
    sd["n_samples"], sd["sum_weights"] = int(meta[5]), float(meta[6])
    sd["n_nonzero"], sd["has_shift"] = int(meta[7]), bool(meta[8])
    sd["sum_log_weights"] = float(meta[9])
    return LeastSquaresState.from_state_dict(sd)


# ---------------------------------------------------------------- reports


def regression_metrics_all_ranks(
    y_true: Tensor,
    y_pred: Tensor,
    sample_weight: Tensor | None = None,
    *,
    uncentered: bool = False,
) -> dict[str, Tensor]:
    """:func:`~torchlinreg.stats.metrics.regression_metrics` over every rank's rows.

    Two small collectives: the weighted sums that give the target means, then the squared
    and absolute errors and the (centred and, with ``uncentered``, raw) sums of squares.
    """
    if not is_distributed():
        return regression_metrics(y_true, y_pred, sample_weight, uncentered=uncentered)
    yt = (y_true.reshape(-1, 1) if y_true.ndim == 1 else y_true).to(torch.float64)
    yp = (y_pred.reshape(-1, 1) if y_pred.ndim == 1 else y_pred).to(yt.device, torch.float64)
    w = torch.ones(yt.shape[0], dtype=torch.float64, device=yt.device)
    if sample_weight is not None:
        w = sample_weight.to(device=yt.device, dtype=torch.float64).reshape(-1)
    first = allreduce_sum(torch.cat([w.sum()[None], w @ yt, yt.new_full((1,), yt.shape[0])]))
    total, mean, n_rows = first[0], first[1:-1] / first[0], int(first[-1])
    err = yt - yp
    parts = [w @ (err * err), w @ err.abs(), w @ (yt - mean).square(), w @ yt.square()]
    sse, sae, sst, syy = allreduce_sum(torch.cat(parts)).split(yt.shape[1])
    return metrics_from_sums(
        sse=sse,
        sum_w=total,
        n_rows=n_rows,
        sae=sae,
        sst=sst,
        sst_uncentered=syy if uncentered else None,
    )
