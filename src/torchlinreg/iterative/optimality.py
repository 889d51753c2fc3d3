"""How far an iterative fit is from the exact optimum: the Gram, its optimum and the gap.

NOTE [optimality gap]
Every least-squares objective the loop minimises (NOTE [the training objective] in
``fit.py``) has an exact optimum that one ``(d + k) x (d + k)`` Gram of ``[X | Y]`` gives.
The pass that computes the standardization moments accumulates that Gram (a ``method="gram"``
:class:`~torchlinreg.exact.state.LeastSquaresState`: weighted means and centred co-moments)
when it is affordable, ``d + k <= GRAM_MAX_COLUMNS``. Let ``R`` be the upper-triangular
factor of the co-moments of ``[X | Y]``, stacked on the penalty rows ``[sqrt(alpha) I, 0]``
and re-triangularised by QR, ``R_m`` its feature block and ``T_j`` the feature rows of
target ``j``'s column. For any coefficients ``(beta_j, b_j)``::

    SSR_j + alpha ||beta_j||^2 = ||T_j - R_m beta_j||^2 + W (m_yj - beta_j m_x - b_j)^2 + opt_j

where ``opt_j`` (the exact optimum) does not depend on the coefficients. The *gap* is the
first two terms divided by the target's centred total sum of squares ``SST_j``: for OLS
with an intercept exactly ``R2_exact - R2``, for ridge the excess objective in the same unit.
Without an intercept ``R`` factors the raw moments and the offset term is absent; dividing
by the centred (not the uncentred) SST keeps the unit and is the stricter test when the
targets' means are large. It is computed as a norm, never as a difference of two losses,
so it has no cancellation. Its error is that of the Gram itself, about
``eps * ||C|| * ||beta||^2`` (not the condition number times anything): lstsq's own
solution scores below 1e-15 on every set of the corpus but one with twin columns (cond
1e15), where its coefficients are huge and it scores 3e-6. ``optimality_gap_`` is the
maximum over targets.

A column whose largest magnitude (in the first 65536 rows; in all rows where that
overflows, or where those rows are all zero) is outside ``[1e-100, 1e100]`` is divided by
a power of two near it (exact, no rounding) before it enters the Gram, so data of 1e160 or
1e-160 never overflows or underflows in the squares.

Threshold: accumulating the Gram costs ``n (d + k)^2`` multiply-adds against ``4 n d k``
for a gd epoch; as a matrix product it runs nearer the machine's peak than an epoch does, so
the ratio grows slower than ``(d + k) / 4``: measured here (one thread, 2-core machine) the
Gram costs as much as 14 gd epochs at ``d + k = 51``, 23 at 512, 43 at 1024 and 100 at 2048
(32 MiB). ``GRAM_MAX_COLUMNS = 2048`` keeps it within the default 1000 epochs of gd and
the few hundred of the others, whose full-data loss it replaces (mini-batch solvers save a
pass over the rows at every epoch). Above 2048 columns no Gram is formed: with
``alpha > 0`` the objective is ``mu``-strongly convex and ``||grad||^2 / (2 mu)`` bounds the
gap (one pass for the full gradient); with ``alpha = 0`` no bound is known from first-order
information alone, and the fit says so (``optimality_gap_`` is NaN, a ConvergenceWarning
says why) and stops on the loss plateau rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from ..errors import DataError
from ..exact.linalg import condition_number, unit_columns
from ..exact.state import LeastSquaresState
from .scaling import Scaler, scaled_moments

# A unit-column factor this ill-conditioned is singular to the Gram's float64 resolution.
_SINGULAR = 1e13

__all__ = ["GRAM_MAX_COLUMNS", "Optimum", "column_units", "gram_state"]

GRAM_MAX_COLUMNS = 2048

# Rows at a time for the passes over in-memory data: bounded temporaries.
_CHUNK = 65536


def column_units(A: Tensor, reduce_max: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Per column, 1 where its magnitudes are ordinary, else a power of two near the largest.

    Ordinary: every nonzero magnitude's square, summed over any number of rows, stays far
    from overflow and underflow (largest magnitude within ``[1e-100, 1e100]``), and the
    column is taken as it is (no division pass). Otherwise the power of two ``2^e`` with
    ``top < 2^e <= 2 top`` (exact, no rounding). ``reduce_max`` takes the maximum over the
    ranks of a distributed fit.

    Example:
        >>> column_units(torch.tensor([[3.0, 0.5, 1e160], [-1e3, 0.0, 0.0]],
        ...                           dtype=torch.float64)).tolist()[:2]
        [1.0, 1.0]
    """
    top = torch.zeros(A.shape[1], dtype=torch.float64, device=A.device)
    for lo in range(0, A.shape[0], _CHUNK):
        part = A[lo : lo + _CHUNK]
        if part.shape[0]:
            # the extremes give the largest magnitude, with no temporary (measured: amax
            # and amin faster than abs().amax(), and than aminmax along rows)
            low, high = part.amin(dim=0), part.amax(dim=0)
            top = torch.maximum(top, torch.maximum(high, -low).to(torch.float64))
    if reduce_max is not None:
        top = reduce_max(top)
    ordinary = (top == 0) | ((top >= 1e-100) & (top <= 1e100))
    return torch.where(ordinary, torch.ones_like(top), units_of(top))


def units_of(top: Tensor) -> Tensor:
    """Powers of two ``2^e`` with ``top < 2^e <= 2 top`` (1 where ``top`` is 0)."""
    _, exponent = torch.frexp(top)
    units = torch.ldexp(torch.ones_like(top), exponent)
    return torch.where(top > 0, units, torch.ones_like(top))


def gram_state(
    blocks: Iterable[tuple[Tensor, Tensor, Tensor | None]],
    n_features: int,
    n_targets: int,
    x_units: Tensor,
    y_units: Tensor,
    *,
    device: torch.device,
) -> LeastSquaresState:
    """A float64 Gram state (weighted means and centred co-moments, whatever the model's
    intercept) of ``[X / x_units | Y / y_units]`` over the blocks."""
    state = LeastSquaresState(
        n_features, n_targets, fit_intercept=True, method="gram", device=device
    )
    xu, yu = x_units.to(device), y_units.to(device)
    for X, Y, w in blocks:
        if X.shape[0]:
            state.absorb(X.to(torch.float64) / xu, Y.to(torch.float64) / yu, w)
    return state


class Optimum:
    """The exact optimum of the training objective and the gap of any coefficients.

    ``state`` is a centred Gram state of the unit-scaled ``[X | Y]`` (:func:`gram_state`),
    ``alpha`` the ridge penalty of the original objective. Without an intercept the model's
    objective is the raw (uncentred) one, ``C + W m m^T``; the gap is still divided by the
    targets' centred total sum of squares, so it is the same unit with or without an
    intercept (and stricter than the uncentred R2 would be). See NOTE [optimality gap].

    Example:
        >>> X = torch.randn(100, 2, dtype=torch.float64)
        >>> y = X @ torch.tensor([[1.0], [2.0]], dtype=torch.float64)
        >>> ones = torch.ones(2, dtype=torch.float64)
        >>> state = gram_state([(X, y, None)], 2, 1, ones, ones[:1], device=X.device)
        >>> opt = Optimum(state, ones, ones[:1], alpha=0.0)
        >>> float(opt.gaps(torch.tensor([[1.0, 2.0]]), torch.zeros(1))[0]) < 1e-20
        True
    """

    def __init__(
        self,
        state: LeastSquaresState,
        x_units: Tensor,
        y_units: Tensor,
        *,
        alpha: float,
        fit_intercept: bool = True,
    ) -> None:
        summary = state.centred_summary()
        # The state keeps its totals in power-of-two scaled units, so they stay finite where
        # the co-moments in these units (which the gap and the scaler square) would not.
        second = summary.r.square().sum(dim=0)
        if not (bool(torch.isfinite(second).all()) and bool(torch.isfinite(summary.means).all())):
            raise DataError(
                "the data's squares overflow even after scaling each column by its largest "
                "value: some values are more than 1e150 times larger than others in the same "
                "column; rescale that column"
            )
        d, k = state.n_features, state.n_targets
        dev = summary.r.device
        self.n_features, self.n_targets = d, k
        self.fit_intercept = fit_intercept
        self.alpha = float(alpha)
        self.x_units = x_units.to(device=dev, dtype=torch.float64)
        self.y_units = y_units.to(device=dev, dtype=torch.float64)
        self.sum_weights = summary.sum_weights.to(torch.float64)
        sst = summary.r[:, d:].square().sum(dim=0)
        self._sst = torch.where(sst > 0, sst, self.sum_weights.expand_as(sst))
        if fit_intercept:
            self.means, r = summary.means, summary.r
        else:
            # the raw second moments' factor: the co-moments' with the means' row stacked
            # under it, never the squares (raw = r'r + W m m' formed in float64 lost the
            # spread's digits for columns near 1e9: a quoted gap of 0.0086 for 0.0122)
            m = summary.means
            stacked = torch.cat([summary.r, (self.sum_weights.sqrt() * m)[None, :]])
            self.means, r = torch.zeros_like(m), torch.linalg.qr(stacked, mode="r").R
        self.comoment_factor = r  # R.T @ R: the (centred or raw) second moments
        if self.alpha > 0:
            # The penalty alpha ||W_j||^2 in unit-scaled coordinates, target j's objective
            # divided by y_units_j^2: alpha ||beta_j / x_units||^2.
            pen = torch.zeros(d, d + k, dtype=r.dtype, device=dev)
            pen[:, :d] = torch.diag(self.alpha**0.5 / self.x_units)
            r = torch.linalg.qr(torch.cat([r, pen]), mode="r").R
        self._rm, self._t = r[:d, :d], r[:d, d:]
        self.optimum = r[d:, d:].square().sum(dim=0)  # opt_j, unit-scaled
        self._best = self._rank_deficient_minimum()

    def _rank_deficient_minimum(self) -> Tensor | None:
        """``argmin ||Rm b - t||`` (d, k) where ``Rm`` is numerically singular, else None.

        With a singular ``Rm`` (collinear columns, alpha = 0) ``t`` need not lie in its range,
        so ``||Rm b - t||^2`` keeps a floor and ``s^2`` alone is not the optimum: a fit at the
        optimum read as 0.06..0.46 from it. Then the gap is ``||Rm (b - b*)||^2`` (Pythagoras:
        the minimal residual is orthogonal to ``Rm``'s range) and the floor joins the optimum.
        """
        rm = self._rm
        if rm.shape[0] == 0 or condition_number(unit_columns(rm)) < _SINGULAR:
            return None
        # on the CPU: gelsd (SVD, minimum norm) is the rank-revealing driver, and d is small
        sol = torch.linalg.lstsq(
            rm.cpu(), self._t.cpu(), rcond=1.0 / _SINGULAR, driver="gelsd"
        ).solution.to(rm)
        self.optimum = self.optimum + (rm @ sol - self._t).square().sum(dim=0)
        return sol

    def gaps(self, coef: Tensor, intercept: Tensor) -> Tensor:
        """Per target, the excess objective of ``(coef (k, d), intercept (k,))`` over the
        optimum, divided by the target's total sum of squares (the R2 gap for OLS)."""
        return self._excess(coef, intercept) / self._sst

    def objective(self, coef: Tensor, intercept: Tensor) -> Tensor:
        """Per target, ``SSR_j + alpha ||coef_j||^2`` divided by ``y_units_j^2``."""
        return self._excess(coef, intercept) + self.optimum

    def _excess(self, coef: Tensor, intercept: Tensor) -> Tensor:
        rm = self._rm
        beta = coef.to(rm) * self.x_units[None, :] / self.y_units[:, None]
        if self._best is None:
            excess = (beta @ rm.T - self._t.T).square().sum(dim=1)
        else:
            excess = ((beta - self._best.T) @ rm.T).square().sum(dim=1)
        if self.fit_intercept:
            b = intercept.to(rm) / self.y_units
            d = self.n_features
            offset = self.means[d:] - beta @ self.means[:d] - b
            excess = excess + self.sum_weights * offset.square()
        return excess

    def scaler(self, dtype: torch.dtype, *, center: bool) -> Scaler:
        """The standardization: weighted means and standard deviations (root mean squares
        without ``center``), in the original units."""
        d = self.n_features
        # in unit-scaled coordinates, then times the units: squaring 1e160 would overflow
        std = (self.comoment_factor.square().sum(dim=0) / self.sum_weights).sqrt()
        mean = self.means if center else torch.zeros_like(self.means)
        units = torch.cat([self.x_units, self.y_units])
        mean, scale = scaled_moments(mean, std, units, dtype)
        return Scaler(mean[:d], scale[:d], mean[d:], scale[d:])

    def curvature(self, scaler: Scaler | None) -> float:
        """The largest eigenvalue of the trained loss's Hessian, per target, times
        ``sum(w) * k / 2``: ``lambda_max`` of the weighted Gram of ``[x', 1] / sum(w)`` (plus
        the penalty), ``x'`` the features as trained (standardized or raw).

        With it, ``lr = k / (2 lambda)`` is the step ``1 / L`` of gradient descent.
        """
        d, r = self.n_features, self.comoment_factor
        dt = r.dtype
        if scaler is None:
            mu = torch.zeros(d, dtype=dt, device=r.device)
            sigma = torch.ones(d, dtype=dt, device=r.device)
        else:
            mu, sigma = scaler.x_mean.to(r), scaler.x_scale.to(r)
        a = self.x_units / sigma
        gram = (r[:, :d] * a).T @ (r[:, :d] * a) / self.sum_weights
        if self.alpha > 0:
            gram = gram + torch.diag(self.alpha / (sigma.square() * self.sum_weights))
        if self.fit_intercept:
            m = (self.means[:d] * self.x_units - mu) / sigma
            top = torch.cat([gram + torch.outer(m, m), m[:, None]], dim=1)
            bottom = torch.cat([m, torch.ones(1, dtype=dt, device=r.device)])[None, :]
            gram = torch.cat([top, bottom])
        if gram.shape[0] == 0:
            return 1.0
        return float(torch.linalg.eigvalsh((gram + gram.T) / 2)[-1])
