"""The exact engine: a mergeable least-squares state over ``[1 | X | Y]`` and its solvers.

A :class:`LeastSquaresState` absorbs row blocks (rows scaled by ``sqrt(sample_weight)``) into a
small summary, merges with other states, and solves OLS, ridge and rank-deficient problems
from that summary alone. The same code serves an in-memory fit, streaming, ``partial_fit``
and distributed fits.

NOTE [centring]
With an intercept the trailing block of the R factor of ``[1 | X | Y]`` is the R factor of
the weighted-centred ``[X | Y]`` (the first Householder step centres), and its first row holds
the weighted means. To keep large column offsets from costing digits, the QR state subtracts a
fixed per-state shift (the first block's column means) from every row before factoring: this
only changes the first row of R (``R[0, j] -= shift_j * R[0, 0]``), so states with different
shifts merge after a rank-one fix of that row. The Gram state never accumulates the raw
uncentred Gram (it would square the offsets into the condition number): it keeps the weighted
means and the centred co-moment matrix, each block centred on its own mean and merged with
the pairwise formula of Chan, Golub & LeVeque; the means are taken about a fixed shift too,
so that the differences of block means the formula squares keep the centred data's digits.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import DataError, ModelFileError
from . import linalg, solve, summaries
from .linalg import CentredSummary, ExactSolution
from .threads import with_fit_threads

__all__ = ["CentredSummary", "ExactSolution", "LeastSquaresState", "default_rcond", "fit_exact"]

default_rcond = linalg.default_rcond

_METHODS = ("qr", "gram")
_STATE_FORMAT = "torchlinreg.exact.LeastSquaresState"  # in model files: never rename
# Version 2: Gram records carry the columns' power-of-two ``scale`` (their totals are stored
# scaled by it) and, with an intercept, the fixed ``shift`` the means are taken about; QR
# records are unchanged and keep version 1, so older readers still load them. Version 1 Gram
# records are read as unscaled and unshifted.
_STATE_VERSION = 2
_READABLE_VERSIONS = (1, 2)
# Rows per block on CPU, measured on 2 cores (AVX-512, MKL) at d = 100, k = 3 with
# benchmarks/bench_exact_blocks.py (numbers in its docstring). On accelerators larger blocks
# amortise the kernel launches (not measured: no GPU on the project machine).
DEFAULT_BLOCK_ROWS = {"cpu": 4096, "other": 65536}


def _as_tensor(a: Any) -> Tensor:
    """A tensor view of ``a`` without copying; read-only arrays (memory maps) are fine."""
    if isinstance(a, Tensor):
        return a
    with warnings.catch_warnings():
        # torch warns that writing to a read-only array is undefined; we only ever read it.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(a)


class LeastSquaresState:
    """Mergeable least-squares summary of ``[1 | X | Y]``: TSQR ``R`` or centred Gram.

    Args:
        n_features: columns of X (d).
        n_targets: columns of Y (k).
        fit_intercept: include the column of ones (never penalised by ridge). Default True.
        method: ``"qr"`` (default; accurate, never squares the condition number) or
            ``"gram"`` (faster, squares it; fine for well-conditioned data).
        dtype: computation dtype, float64 by default whatever the input dtype.
        device: where the summary lives and where blocks are computed.
        block_rows: rows per internal block (memory is ``O(block_rows * (d + k))``); default
            4096 on CPU, 65536 elsewhere.

    Example:
        >>> X = torch.randn(100, 3); y = X @ torch.tensor([1.0, 2.0, 3.0]) + 4
        >>> sol = LeastSquaresState(3, 1).absorb(X, y).solve()
        >>> torch.allclose(sol.coef, torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64))
        True
    """

    def __init__(
        self,
        n_features: int,
        n_targets: int,
        *,
        fit_intercept: bool = True,
        method: str = "qr",
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        block_rows: int | None = None,
    ) -> None:
        if method not in _METHODS:
            raise ValueError(
                f"The 'method' parameter of LeastSquaresState must be one of {set(_METHODS)}. "
                f"Got {method!r} instead."
            )
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if n_features < 0 or n_targets < 1:
            raise ValueError(
                f"need n_features >= 0 and n_targets >= 1, got {n_features} and {n_targets}"
            )
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if block_rows is None:
            block_rows = DEFAULT_BLOCK_ROWS["cpu" if self.device.type == "cpu" else "other"]
        if block_rows < 1:
            raise ValueError(f"block_rows must be positive, got {block_rows}")
        self.n_features = int(n_features)
        self.n_targets = int(n_targets)
        self.fit_intercept = bool(fit_intercept)
        self.method = method
        self.dtype = dtype
        self.block_rows = int(block_rows)
        self.n_samples = 0
        self._summary = summaries.new_summary(
            method,
            self.n_features + self.n_targets,
            self.fit_intercept,
            dtype,
            self.device,
            self.n_features,
        )

    @property
    def sum_weights(self) -> float:
        """Sum of the sample weights absorbed (``n_samples`` when unweighted)."""
        return float(self._summary.sum_w)

    @property
    def n_nonzero(self) -> int:
        """Rows absorbed with a positive weight."""
        return int(self._summary.n_nonzero)

    @property
    def sum_log_weights(self) -> float:
        """Sum of ``log(w)`` over the rows absorbed with a positive weight (0.0 unweighted).

        WLS's log-likelihood needs it. NaN for a state saved before it was kept.
        """
        return float(self._summary.sum_log_w)

    def __repr__(self) -> str:
        return (
            f"LeastSquaresState(n_features={self.n_features}, n_targets={self.n_targets}, "
            f"fit_intercept={self.fit_intercept}, method={self.method!r}, dtype={self.dtype}, "
            f"device={self.device}, n_samples={self.n_samples})"
        )

    # ---------------------------------------------------------------- absorbing rows

    @torch.no_grad()
    def absorb(self, X: Any, Y: Any, sample_weight: Any = None) -> LeastSquaresState:
        """Add the rows of ``X`` (n, d) and ``Y`` (n, k) (or (n,) when k = 1) to the state.

        Inputs may be any float tensor (or array) on any device; each block is converted to
        the state's dtype and device on the fly, so memory stays ``O(block_rows * (d + k))``.
        Rows are weighted by ``sample_weight`` (n,), non-negative. Returns ``self``.

        Example:
            >>> state = LeastSquaresState(2, 1)
            >>> state.absorb(torch.randn(10, 2), torch.randn(10)).n_samples
            10
        """
        X, Y, w = self._check_block(X, Y, sample_weight)
        n = X.shape[0]
        if n == 0:
            return self
        self._summary.absorb(X, Y, w, self.block_rows)
        self.n_samples += n
        return self

    def is_finite(self) -> bool:
        """Whether every stored total is finite (NaN or infinity in the rows makes them not).

        Example:
            >>> LeastSquaresState(1, 1).absorb(torch.tensor([[float("nan")]]), [1.0]).is_finite()
            False
        """
        return all(bool(torch.isfinite(t).all()) for t in self._summary.tensors().values())

    def _check_block(self, X: Any, Y: Any, sample_weight: Any) -> tuple[Tensor, Tensor, Any]:
        X, Y = _as_tensor(X), _as_tensor(Y)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise DataError(
                f"X must have shape (n, {self.n_features}), got {tuple(X.shape)}; "
                "pass the same columns to every absorb() of a state"
            )
        if Y.ndim == 1 and self.n_targets == 1:
            Y = Y[:, None]
        if Y.ndim != 2 or Y.shape != (X.shape[0], self.n_targets):
            raise DataError(
                f"Y must have shape ({X.shape[0]}, {self.n_targets}), got {tuple(Y.shape)}"
            )
        if sample_weight is None:
            return X, Y, None
        w = _as_tensor(sample_weight)
        if w.shape != (X.shape[0],):
            raise DataError(f"sample_weight must have shape ({X.shape[0]},), got {tuple(w.shape)}")
        if X.shape[0] and bool((w < 0).any()):
            raise DataError("sample_weight has negative values; weights must be >= 0")
        return X, Y, w

    # ---------------------------------------------------------------- merging states

    def _check_compatible(self, other: LeastSquaresState) -> None:
        mine = (self.n_features, self.n_targets, self.fit_intercept, self.method)
        theirs = (other.n_features, other.n_targets, other.fit_intercept, other.method)
        if mine != theirs:
            raise ValueError(
                "cannot merge states of different shape or kind: (n_features, n_targets, "
                f"fit_intercept, method) = {mine} vs {theirs}"
            )

    def merge(self, other: LeastSquaresState) -> LeastSquaresState:
        """Add ``other``'s rows to this state (in place); ``other`` is unchanged. Returns self.

        Example:
            >>> a = LeastSquaresState(2, 1).absorb(torch.randn(5, 2), torch.randn(5))
            >>> b = LeastSquaresState(2, 1).absorb(torch.randn(7, 2), torch.randn(7))
            >>> a.merge(b).n_samples
            12
        """
        return self._merge([other])

    @torch.no_grad()
    def _merge(self, others: Sequence[LeastSquaresState]) -> LeastSquaresState:
        for other in others:
            self._check_compatible(other)
        parts = [o._summary.converted(self.device, self.dtype) for o in others if o.n_samples]
        if parts and self.n_samples == 0:
            self._summary = parts.pop(0)
        if parts:
            self._summary.merge(parts)
        self.n_samples += sum(o.n_samples for o in others)
        return self

    def copy(self) -> LeastSquaresState:
        """An independent copy of this state (same settings, same summary)."""
        out = self._empty_like()
        out._summary = self._summary.converted(self.device, self.dtype)
        out.n_samples = self.n_samples
        return out

    def _empty_like(self) -> LeastSquaresState:
        return type(self)(
            self.n_features,
            self.n_targets,
            fit_intercept=self.fit_intercept,
            method=self.method,
            dtype=self.dtype,
            device=self.device,
            block_rows=self.block_rows,
        )

    @classmethod
    def merge_all(cls, states: Sequence[LeastSquaresState]) -> LeastSquaresState:
        """A new state holding the rows of all ``states``, combined in the given order.

        The order is fixed so that every rank of a distributed fit gets the same bits. QR
        states are stacked and factored once.
        """
        if not states:
            raise ValueError("merge_all needs at least one state")
        return states[0]._empty_like()._merge(states)

    # ---------------------------------------------------------------- factors and solving

    def centred_summary(self) -> CentredSummary:
        """Total weight, column means of ``[X | Y]`` and the R factor of the centred data.

        The tensors may be views of the state: read them, do not modify them in place.
        """
        return self._summary.centred()

    def working_factor(self) -> tuple[Tensor, Tensor | None]:
        """The factor the solver works from, and the column offsets it was taken about.

        With an intercept: the R factor of ``[1 | X - s | Y - s]`` and ``s`` (the QR state's
        fixed shift, or the Gram state's means); without: :meth:`r_factor` and None. Its
        conditioning, not the raw design's, is what limits the solution's accuracy.
        """
        return self._summary.working()

    def r_factor(self, columns: slice | None = None) -> Tensor:
        """Upper-triangular ``R`` (m, m) with ``R.T @ R == A.T @ A`` for the weighted ``A``.

        ``A = [sqrt(w) | sqrt(w) * X | sqrt(w) * Y]`` (no first column without an intercept),
        columns ordered intercept, features, targets. ``columns`` (a slice) asks for those
        columns only: with many targets R is ``(d + k)^2`` values, and the QR state then
        copies just the columns asked for.
        """
        if columns is None:
            return self._summary.full_r()
        return self._summary.full_r_columns(columns)

    @torch.no_grad()
    def solve(
        self,
        *,
        alpha: float | Sequence[float] | Tensor = 0.0,
        rcond: float | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> ExactSolution:
        """Solve OLS (``alpha=0``) or ridge from the summary.

        ``alpha`` is one penalty, or one per target (shape ``(n_targets,)``, as
        scikit-learn's Ridge). ``rcond`` is the relative rank tolerance (default
        :func:`default_rcond`, see NOTE [rank tolerance] in ``linalg``). Rank-deficient OLS
        gives the minimum-norm coefficients with a :class:`RankWarning` naming the aliased
        columns (by ``feature_names`` when given); ridge gives the aliased directions zero
        weight, its limit as alpha -> 0 (NOTE [numerical null space] in ``solve``). The
        intercept is never penalised.

        Example:
            >>> X = torch.randn(50, 2, dtype=torch.float64)
            >>> sol = LeastSquaresState(2, 1).absorb(X, X[:, :1] * 3).solve(alpha=0.0)
            >>> round(float(sol.coef[0, 0]), 6), sol.rank
            (3.0, 2)
        """
        alpha = solve.per_target_alpha(alpha, self.n_targets)
        if self.n_samples == 0:
            raise DataError("no rows absorbed: call absorb(X, Y) with at least one row first")
        summ = self.centred_summary()
        if not (linalg.all_finite(summ.r) and linalg.all_finite(summ.means)):
            raise DataError(
                "the state holds non-finite values: X, Y or sample_weight had NaN or inf, "
                "or values beyond about 1e150 overflowed the QR factor; clean the data, or "
                "for such magnitudes rescale it or use the Gram route (solver='gram', "
                "--solver gram), which scales columns"
            )
        if self.fit_intercept and not float(summ.sum_weights) > 0:
            raise DataError("all sample weights are zero: nothing to fit an intercept to")
        if rcond is None:
            rcond = default_rcond(self.n_features, self.dtype, self.method, self.n_samples)
        # The Gram route's own error is relative to the centred columns, the data's rounding
        # to the raw ones (NOTE [rank tolerance] in linalg).
        data_tol = default_rcond(self.n_features, self.dtype) if self.method == "gram" else None
        return solve.solve_centred(
            summ,
            self.n_features,
            self.fit_intercept,
            alpha,
            float(rcond),
            feature_names,
            data_tol=data_tol,
            n_rows=self.n_nonzero,
            method=self.method,
        )

    # ---------------------------------------------------------------- persistence

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values that rebuild this state exactly (safetensors-friendly)."""
        log_w = self.sum_log_weights
        out: dict[str, Any] = {
            "format": _STATE_FORMAT,
            "version": _STATE_VERSION if self._summary.since_version_2 else 1,
            "n_features": self.n_features,
            "n_targets": self.n_targets,
            "fit_intercept": self.fit_intercept,
            "method": self.method,
            "dtype": str(self.dtype).removeprefix("torch."),
            "block_rows": self.block_rows,
            "n_samples": self.n_samples,
            "sum_weights": self.sum_weights,
            "n_nonzero": self.n_nonzero,
            # JSON has no NaN: unknown (a state loaded from an older file) is None
            "sum_log_weights": None if math.isnan(log_w) else log_w,
        }
        for name, value in self._summary.tensors().items():
            out[name] = value.detach().clone(memory_format=torch.contiguous_format)
        if hasattr(self._summary, "has_shift"):
            out["has_shift"] = self._summary.has_shift
        return out

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> LeastSquaresState:
        """Rebuild a state saved by :meth:`state_dict`; raises ModelFileError if malformed."""
        if d.get("format") != _STATE_FORMAT or d.get("version") not in _READABLE_VERSIONS:
            raise ModelFileError(
                f"not a LeastSquaresState record (format {d.get('format')!r}, version "
                f"{d.get('version')!r}); expected {_STATE_FORMAT!r} version <= {_STATE_VERSION}: "
                "a newer torchlinreg wrote it, or it is not a model file"
            )
        try:
            dtype = getattr(torch, str(d["dtype"]))
            first = next(v for k, v in d.items() if isinstance(v, Tensor))
            state = cls(
                int(d["n_features"]),
                int(d["n_targets"]),
                fit_intercept=bool(d["fit_intercept"]),
                method=str(d["method"]),
                dtype=dtype,
                device=first.device,
                block_rows=int(d["block_rows"]),
            )
            summary = state._summary
            for name, ref in summary.tensors().items():
                if name in summary.since_version_2 and d["version"] == 1:
                    continue  # unscaled, unshifted Gram totals: the defaults
                value = torch.as_tensor(d[name])
                if value.shape != ref.shape:
                    raise ValueError(f"{name} is {tuple(value.shape)}, not {tuple(ref.shape)}")
                setattr(summary, name, value.to(device=state.device, dtype=dtype).clone())
            state.n_samples = int(d["n_samples"])
            summary.sum_w.fill_(float(d["sum_weights"]))
            summary.n_nonzero.fill_(int(d["n_nonzero"]))
            # absent from files saved before it was kept: unknown, so NaN (and llf NaN)
            log_w = d.get("sum_log_weights")
            summary.sum_log_w.fill_(float("nan") if log_w is None else float(log_w))
            if hasattr(summary, "has_shift"):
                # Rows absorbed mean a shift was fixed, whatever the record says (a state
                # gathered across ranks arrives without the flag, and a fresh shift would
                # then be taken from the next rows, against the stored ones).
                summary.has_shift = bool(d.get("has_shift", False)) or state.n_samples > 0
        except (KeyError, ValueError, TypeError, AttributeError, StopIteration) as exc:
            raise ModelFileError(f"malformed LeastSquaresState record: {exc}") from exc
        return state

    def to(self, device: torch.device | str) -> LeastSquaresState:
        """Move the summary to ``device`` (in place, like ``nn.Module.to``). Returns self."""
        self.device = torch.device(device)
        self._summary = self._summary.converted(self.device, self.dtype)
        return self


@with_fit_threads
def fit_exact(
    X: Any,
    Y: Any,
    *,
    sample_weight: Any = None,
    fit_intercept: bool = True,
    alpha: float | Sequence[float] | Tensor = 0.0,
    method: str = "qr",
    dtype: torch.dtype = torch.float64,
    rcond: float | None = None,
    device: torch.device | str | None = None,
    feature_names: Sequence[str] | None = None,
) -> tuple[LeastSquaresState, ExactSolution]:
    """Absorb ``X`` (n, d), ``Y`` (n, k) or (n,) into one state and solve it.

    The state lives on ``device`` (default: X's device). This is the engine: the solution
    is the factor's, not refined against the rows, so on ill-conditioned data it carries
    the factor's error (squared condition number for ``method="gram"``).
    ``torchlinreg.ols`` and ``LinearRegression`` refine it (and warn where they cannot);
    ``refine.estimated_errors(state, d + fit_intercept)`` estimates it per target.

    Example:
        >>> X = torch.randn(20, 2); y = 2 * X[:, 0] - 1
        >>> state, sol = fit_exact(X, y)
        >>> round(float(sol.intercept[0]), 6)
        -1.0
    """
    X, Y = _as_tensor(X), _as_tensor(Y)
    if X.ndim != 2:
        raise DataError(f"X must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}")
    k = 1 if Y.ndim == 1 else Y.shape[1] if Y.ndim == 2 else -1
    if k < 1:
        raise DataError(f"Y must be (n,) or (n, k) with k >= 1, got shape {tuple(Y.shape)}")
    state = LeastSquaresState(
        X.shape[1],
        k,
        fit_intercept=fit_intercept,
        method=method,
        dtype=dtype,
        device=X.device if device is None else device,
    )
    state.absorb(X, Y, sample_weight)
    return state, state.solve(alpha=alpha, rcond=rcond, feature_names=feature_names)
