"""Internal standardization for the iterative engine, and the way back to original units.

Gradient methods converge at a rate set by the conditioning of the features: columns with
scales of 0.5 and 20 and means far from zero make one learning rate too large for some
directions and too small for others. Training in standardized space (weighted mean 0,
weighted standard deviation 1 for every feature and every target) removes that, and the
fitted weights are mapped back exactly, since the map is affine.

NOTE [ridge standardization]
With a ridge penalty the trained objective's curvature along feature ``l`` is
``var_l / scale_l^2 + alpha / (sum(w) scale_l^2)``: dividing by the standard deviation makes
the first term 1 but leaves the penalty's term large for a feature of small spread (a
column with a few nonzero values), and one stiff direction sets gd's step for all: it
crawled for 20000 epochs on scikit-learn's ridge consistency data. ``scale_l = sqrt(var_l +
alpha / sum(w))`` makes the whole diagonal 1 (a Jacobi preconditioner, in the coordinates);
the minimiser in original units is the same, since the map back is exact.

Example:
    >>> X = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    >>> Y = torch.tensor([[2.0], [4.0]])
    >>> s = Scaler.fit(X, Y)
    >>> s.transform_x(X)
    tensor([[-1., -1.],
            [ 1.,  1.]])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Scaler:
    """Per-column shifts and scales of X ``(d,)`` and Y ``(k,)``: ``x' = (x - x_mean) / x_scale``.

    ``x_scale`` of a constant column is 1 (not 0), so it never divides by zero; the column
    becomes zero after centring and its weight is then fixed by the penalty or the
    initial value, not by the data.
    """

    x_mean: Tensor
    x_scale: Tensor
    y_mean: Tensor
    y_scale: Tensor

    @classmethod
    def fit(
        cls,
        X: Tensor,
        Y: Tensor,
        sample_weight: Tensor | None = None,
        *,
        center: bool = True,
        reduce: Callable[[Tensor], Tensor] | None = None,
    ) -> Scaler:
        """Weighted means and standard deviations of X and Y.

        Without ``center`` (a model with no intercept) nothing is shifted and the scales
        are root mean squares, which keeps ``x' = 0`` meaning ``x = 0``. ``reduce`` sums a
        tensor over the ranks of a distributed fit, so that every rank standardizes with
        the statistics of all rows.
        """
        x_mean, x_scale = _moments(X, sample_weight, center, reduce)
        y_mean, y_scale = _moments(Y, sample_weight, center, reduce)
        return cls(x_mean, x_scale, y_mean, y_scale)

    @classmethod
    def from_moments(
        cls, x_mean: Tensor, x_var: Tensor, y_mean: Tensor, y_var: Tensor, *, dtype=None
    ) -> Scaler:
        """From weighted means and (population) variances accumulated elsewhere, e.g. in one
        streaming pass; a constant column gets scale 1, as in :meth:`fit`.

        Example:
            >>> s = Scaler.from_moments(torch.zeros(1), torch.ones(1) * 4, torch.ones(1),
            ...                         torch.zeros(1))
            >>> s.x_scale, s.y_scale
            (tensor([2.]), tensor([1.]))
        """
        dtype = dtype or x_mean.dtype
        x_mean, x_scale = _finish(x_mean, x_var, dtype)
        y_mean, y_scale = _finish(y_mean, y_var, dtype)
        return cls(x_mean, x_scale, y_mean, y_scale)

    @classmethod
    def identity(cls, d: int, k: int, *, device=None, dtype=None) -> Scaler:
        """The scaler that changes nothing (``standardize=False``)."""
        zeros = torch.zeros
        ones = torch.ones
        return cls(
            zeros(d, device=device, dtype=dtype),
            ones(d, device=device, dtype=dtype),
            zeros(k, device=device, dtype=dtype),
            ones(k, device=device, dtype=dtype),
        )

    def transform_x(self, X: Tensor) -> Tensor:
        return (X - self.x_mean) / self.x_scale

    def transform_y(self, Y: Tensor) -> Tensor:
        return (Y - self.y_mean) / self.y_scale

    def with_ridge(self, alpha_per_weight: float) -> Scaler:
        """Feature scales ``sqrt(var + alpha / sum(w))`` instead of ``sqrt(var)``: NOTE
        [ridge standardization]. The targets and the means are unchanged.

        Example:
            >>> s = Scaler(torch.zeros(2), torch.tensor([1.0, 0.01]), torch.zeros(1),
            ...            torch.ones(1)).with_ridge(0.0003)
            >>> [round(v, 4) for v in s.x_scale.tolist()]
            [1.0001, 0.02]
        """
        if not alpha_per_weight > 0:
            return self
        scale = self.x_scale
        # scale * sqrt(1 + a / scale^2): no square of a scale of 1e160
        grown = scale * (1.0 + alpha_per_weight / scale.double().square()).sqrt().to(scale)
        return Scaler(self.x_mean, grown, self.y_mean, self.y_scale)

    def penalty_scale(self) -> Tensor:
        """Per-feature factor ``1 / x_scale**2`` on ``W'**2`` that keeps the ridge minimiser.

        ``W = diag(y_scale) W' diag(1 / x_scale)``, so ``alpha * ||W||^2`` becomes
        ``alpha * sum(y_scale_j^2 * W'_jl^2 / x_scale_l^2)``. The residuals of target j
        shrink by ``y_scale_j`` as well, and targets do not interact, so dividing target j's
        whole objective by ``y_scale_j^2`` leaves the minimiser unchanged and leaves
        ``alpha * W'_jl^2 / x_scale_l^2``.
        """
        return self.x_scale.reciprocal().square()

    def to_original(self, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
        """Map standardized ``(W', b')`` to ``(W, b)`` with ``Y = X W^T + b``."""
        W = weight * self.y_scale[:, None] / self.x_scale[None, :]
        b = self.y_mean + self.y_scale * bias - W @ self.x_mean
        return W, b

    def state_dict(self) -> dict[str, Tensor]:
        return {
            "x_mean": self.x_mean,
            "x_scale": self.x_scale,
            "y_mean": self.y_mean,
            "y_scale": self.y_scale,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> Scaler:
        return cls(state["x_mean"], state["x_scale"], state["y_mean"], state["y_scale"])


# Rows at a time for the moments: the temporaries stay at a block, not a copy of X.
_CHUNK = 65536


def _moments(
    A: Tensor,
    weight: Tensor | None,
    center: bool,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Weighted mean and standard deviation of each column, in two passes over row chunks.

    ``reduce`` sums the per-process sums across ranks (distributed fits); the statistics
    are then those of every rank's rows.
    """
    # Float64 at least: float32 sums of a million squares lose digits that the mapping back
    # to original units would carry into the intercept.
    acc = torch.promote_types(A.dtype, torch.float64)
    n, d = A.shape
    reduce = reduce or (lambda t: t)

    def chunks():
        for lo in range(0, n, _CHUNK):
            part = A[lo : lo + _CHUNK].to(acc)
            w = weight[lo : lo + _CHUNK].to(acc) if weight is not None else None
            yield part, (torch.ones(part.shape[0], dtype=acc, device=A.device) if w is None else w)

    # First pass: total weight, weighted sums and sums of magnitudes; the squares of the
    # second pass are taken in units of a power of two near the mean magnitude (a sum, so
    # it reduces over ranks like the others): 1e160 squared would overflow.
    first = torch.zeros(2 * d + 1, dtype=acc, device=A.device)
    for part, w in chunks():
        first[0] += w.sum()
        first[1 : d + 1] += w @ part
        first[d + 1 :] += w @ part.abs()
    first = reduce(first)
    total = first[0]
    mean = first[1 : d + 1] / total if center else torch.zeros(d, dtype=acc, device=A.device)
    units = _power_of_two(first[d + 1 :] / total)
    square = torch.zeros(d, dtype=acc, device=A.device)
    for part, w in chunks():
        square += w @ ((part - mean) / units).square_()
    std = (reduce(square) / total).clamp(min=0).sqrt()
    return scaled_moments(mean / units, std, units, A.dtype)


def _power_of_two(top: Tensor) -> Tensor:
    _, exponent = torch.frexp(top)
    units = torch.ldexp(torch.ones_like(top), exponent)
    return torch.where((top > 0) & torch.isfinite(top), units, torch.ones_like(top))


def _finish(mean: Tensor, var: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    return scaled_moments(mean, var.clamp(min=0).sqrt(), torch.ones_like(mean), dtype)


def scaled_moments(
    mean: Tensor, std: Tensor, units: Tensor, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """``(mean * units, std * units)`` in ``dtype``; a constant column (a spread within
    rounding of its mean: ``std <= 10 eps |mean|``, or 0) gets scale 1.

    The test is relative: an absolute floor (the former ``10 eps (|mean| + 1)``) called
    every column of ``X * 1e-15`` constant, and the fit then left all its coefficients 0.
    """
    constant = ~(std > torch.finfo(dtype).eps * mean.abs() * 10)
    scale = torch.where(constant, torch.ones_like(std), std * units)
    return (mean * units).to(dtype), scale.to(dtype)
