"""The first pass over a stream of row blocks: layout, Gram state and column extremes.

:func:`scan_moments` reads every block once (:mod:`.streaming` then trains over further
passes): the columns divided by powers of two (NOTE [optimality gap] in ``optimality.py``)
go into a centred Gram state, which gives the standardization, the exact optimum and gd's
and sgd's steps; the column extremes bound sgd's noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data import Matrix, as_matrix, as_targets, as_weights, unpack_block
from ..errors import DataError
from ..exact.state import LeastSquaresState
from .optimality import units_of
from .scaling import Scaler

__all__ = ["BlockFactory", "Scan", "in_original_units", "scan_moments"]

BlockFactory = Callable[..., Iterable[Any]]


def _call(factory: BlockFactory, generator: torch.Generator | None) -> Iterator[Any]:
    if generator is not None and getattr(factory, "can_shuffle", False):
        return iter(factory(generator))
    blocks = factory()
    if not isinstance(blocks, Iterable):
        raise DataError(
            f"the block factory returned {type(blocks).__name__}, not an iterable of blocks; "
            "pass a callable that returns a new iterator of (X, y[, w]) blocks on every call"
        )
    return iter(blocks)


@dataclass
class _Layout:
    """What the first block says about the stream: columns, kinds, device and dtype."""

    X: Matrix
    Y: Matrix
    device: torch.device
    dtype: torch.dtype


def _all_zero(w: Any) -> bool:
    values = w if isinstance(w, Tensor) else np.asarray(w)
    return len(values) > 0 and bool((values == 0).all())


def _tensors(block: Any, layout: _Layout | None, device, dtype):
    """A block as validated tensors, or None for a block whose weights are all zero (it adds
    nothing, and ``as_weights`` refuses such a block on its own)."""
    X, y, w = unpack_block(block)
    if w is not None and _all_zero(w):
        return None
    Xm = as_matrix(X, name="X")
    n, d = Xm.values.shape
    Ym = as_targets(y, n, name="y")
    if layout is not None:
        if d != layout.X.values.shape[1] or Ym.values.shape[1] != layout.Y.values.shape[1]:
            raise DataError(
                f"a block has {d} features and {Ym.values.shape[1]} targets, but the first "
                f"had {layout.X.values.shape[1]} and {layout.Y.values.shape[1]}; every block "
                "must have the same columns"
            )
        for what, now, first in (("feature", Xm, layout.X), ("target", Ym, layout.Y)):
            named = now.columns is not None and first.columns is not None
            if named and [str(c) for c in now.columns] != [str(c) for c in first.columns]:
                # taken by position before: a wrong model, reported converged
                raise DataError(
                    f"a block's {what} columns are {list(now.columns)}, the first block's "
                    f"{list(first.columns)}; give every block the same columns in the same "
                    "order"
                )
        device, dtype = layout.device, layout.dtype
    wt = as_weights(w, n)
    to = {"device": device, "dtype": dtype}
    return Xm, Ym, Xm.values.to(**to), Ym.values.to(**to), None if wt is None else wt.to(**to)


@dataclass
class Scan:
    """What the first pass over a stream learned: a float64 Gram state of the columns divided
    by ``x_units``/``y_units`` (powers of two near the first block's largest values, NOTE
    [optimality gap]), the layout, and each feature's smallest and largest value."""

    state: LeastSquaresState
    layout: _Layout
    x_units: Tensor
    y_units: Tensor
    x_min: Tensor
    x_max: Tensor
    fit_intercept: bool

    def row_norm_bound(self, scaler: Scaler | None) -> float:
        """An upper bound on ``max_i ||[x'_i, 1]||^2`` from the column extremes."""
        lo, hi = self.x_min, self.x_max
        if scaler is not None:
            mu, sigma = scaler.x_mean.to(lo), scaler.x_scale.to(lo)
            lo, hi = (lo - mu) / sigma, (hi - mu) / sigma
        return float(torch.maximum(lo.square(), hi.square()).sum()) + float(self.fit_intercept)


def scan_moments(
    factory: BlockFactory,
    *,
    fit_intercept: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Scan:
    """One pass over the blocks: see :class:`Scan`; data of 1e160 does not overflow."""
    state, layout, units, lo, hi = None, None, None, None, None
    for block in _call(factory, None):
        parts = _tensors(block, layout, None, None)
        if parts is None:
            continue
        Xm, Ym, X, Y, w = parts
        if layout is None:
            dev = torch.device(device) if device is not None else Xm.values.device
            dt = dtype or (X.dtype if X.dtype in (torch.float32, torch.float64) else torch.float64)
            layout = _Layout(Xm, Ym, dev, dt)
            # centred whatever the model: the gap's unit is the targets' centred variance
            state = LeastSquaresState(
                X.shape[1], Y.shape[1], fit_intercept=True, method="gram", device=dev
            )
            units = [_first_units(A).to(dev) for A in (X, Y)]
        X64, Y64 = X.to(dev, torch.float64), Y.to(dev, torch.float64)
        if X64.shape[0]:
            bmin, bmax = X64.amin(dim=0), X64.amax(dim=0)
            lo = bmin if lo is None else torch.minimum(lo, bmin)
            hi = bmax if hi is None else torch.maximum(hi, bmax)
        state.absorb(X64 / units[0], Y64 / units[1], w)
    if state is None or state.n_samples == 0:
        raise DataError("no blocks to fit; the data source yielded no rows")
    if not state.sum_weights > 0:
        raise DataError("sample_weight must be non-negative with a positive sum")
    return Scan(state, layout, units[0], units[1], lo, hi, fit_intercept)


def _first_units(A: Tensor) -> Tensor:
    top = A.abs().amax(dim=0).to(torch.float64) if A.shape[0] else A.new_zeros(A.shape[1])
    return units_of(top.to(torch.float64))


def in_original_units(
    state: LeastSquaresState, x_units: Tensor, y_units: Tensor, *, fit_intercept: bool
) -> LeastSquaresState:
    """The Gram state of the unscaled columns, of the model's kind (raw moments without an
    intercept), for the metrics of any coefficients."""
    units = torch.cat([x_units, y_units]).to(state.device, state.dtype)
    record = state.state_dict()
    # The state keeps its totals in units of ``columns * scale`` (NOTE [gram fast path]): the
    # scanned columns were divided by ``units``, so dividing the scales by them too states
    # the same totals in the original units, without touching (or rounding) the totals.
    scale = record["scale"]
    record["scale"] = torch.where(scale > 0, scale, torch.ones_like(scale)) / units
    if not fit_intercept:
        mean, comoment = record.pop("mean") + record.pop("shift"), record.pop("comoment")
        record["gram"] = comoment + state.sum_weights * torch.outer(mean, mean)
        record["fit_intercept"] = False
        record.pop("has_shift", None)
    return LeastSquaresState.from_state_dict(record)
