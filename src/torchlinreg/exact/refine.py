"""Iterative refinement of least-squares solutions with double-double residuals.

A Householder QR solution is backward stable, yet its forward error grows like
``eps * (kappa + kappa**2 * |r| / (|A| |x|))``: ill-conditioned or large-residual problems
(NIST Pontius, Wampler4/5) lose digits. The corrected seminormal equations recover them:
compute ``r = y - A x`` and ``g = A.T W r`` in double-double (the rows again, ~20 flops per
element), solve ``R.T R dx = g`` with two triangular solves on the small R factor, add
``dx`` and repeat until the correction stops shrinking.

Because refinement needs a second pass over the rows, it is adaptive:
:func:`needs_refinement` estimates the digits at risk from the R factor alone, so a
well-conditioned fit pays nothing.

Example:
    >>> import torch
    >>> X = torch.linspace(0, 1, 50, dtype=torch.float64)[:, None] ** torch.arange(1, 4)
    >>> Y = (1 + X.sum(1))[:, None]
    >>> R = torch.linalg.qr(torch.cat([torch.ones(50, 1, dtype=X.dtype), X, Y], 1)).R
    >>> p = torch.linalg.solve_triangular(R[:4, :4], R[:4, 4:], upper=True)
    >>> fit = refine_solution(X, Y, None, True, R, p[1:].T, p[0])
    >>> round(float(fit.coef[0, 2]), 12)
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .ddouble import (
    DD,
    dd_add,
    dd_div_d,
    dd_from,
    dd_mul,
    dd_sub,
    dd_sum,
    two_sum,
)
from .linalg import column_norms, extreme_singular_values, inverse_and_kappa
from .products import SplitBlock
from .rowpasses import RowPasses, block_rows, chunked, finish_sums, gradient, weighted

_EPS = torch.finfo(torch.float64).eps


@dataclass(frozen=True)
class RefinedFit:
    """A refined solution and its sums of squares, each accurate to about float64 rounding.

    ``params`` and ``params_lo`` hold the parameters (intercept first, shape ``(p, k)``) as
    a double-double pair; ``coef`` ``(k, d)`` and ``intercept`` ``(k,)`` are their float64
    values. Sums are weighted: ``rss = sum w r**2``; ``ess`` is the regression sum of
    squares about the weighted mean (about zero without an intercept); ``centered_tss`` and
    ``uncentered_tss`` are ``sum w (y - ybar)**2`` and ``sum w y**2``.
    """

    coef: Tensor
    intercept: Tensor
    params: Tensor
    params_lo: Tensor
    rss: Tensor
    ess: Tensor
    centered_tss: Tensor
    uncentered_tss: Tensor
    steps: int
    converged: bool
    # twice the larger of the last two corrections relative to their coefficients (column-
    # scaled, down to FLOOR of the norm): about how far off an unconverged refinement may be
    last_correction: float = 0.0


def _r_factor(state_or_r: object) -> Tensor:
    r_factor = getattr(state_or_r, "r_factor", None)
    return r_factor() if callable(r_factor) else state_or_r  # type: ignore[return-value]


# NOTE [refinement about the shift]
# The corrected seminormal equations contract by about how far the factor's R'R is from
# the rows' A'A. The raw design [1 | X] of a column near 1e9 with a spread of 0.01 has a
# condition number near 1e13, and its R factor (even rounded correctly from the state's)
# is only that far from A'A: refinement from it stalled after 4 steps and returned an
# intercept 3e-5 off and standard errors 14-58% off, worse than the unrefined solution,
# without a word. The state's working factor is taken about an offset s, R_s of
# A_s = [1 | X - s] = A M with M = [[1, -s'], [0, I]], where the conditioning is that of
# the data's spread. So the correction is solved there: g_s = M' g = [g_0, g_x - s g_0]
# (formed in double-double before rounding: g_x and s g_0 cancel), dx_s from R_s, and
# dx = M dx_s = [dx_s0 - s'dx_sx, dx_sx]. The residuals and the gradient are still those
# of the raw rows, so the fixed point is the raw problem's solution.


# Offsets up to this many times a column's spread cost the raw factor at most about 2 log10 of
# it in digits of (R'R)^-1; it serves below, as it always did.
_OFFSET_RATIO = 64.0


@dataclass(frozen=True)
class ShiftedFactor:
    """The design's factor in the coordinates refinement solves in (NOTE [refinement about
    the shift]): ``r`` upper triangular with ``r'r = A_s'WA_s``, ``A_s = [1 | X - shift]``
    (``shift`` None: ``A_s = A``, the raw design, also without an intercept)."""

    r: Tensor
    shift: Tensor | None

    def offsets_dominate(self) -> bool:
        """Whether some column's offset is over ``_OFFSET_RATIO`` times its spread (rms
        about the offset): there the raw factor loses the spread's digits."""
        if self.shift is None:
            return False
        spread = torch.linalg.vector_norm(self.r[:, 1:], dim=0)
        return bool((self.r[0, 0].abs() * self.shift.abs() > _OFFSET_RATIO * spread).any())

    def raw_r(self) -> Tensor:
        """The factor of the raw design, ``r M^-1`` (its first row takes ``r_00 s``)."""
        if self.shift is None:
            return self.r
        R = self.r.clone()
        R[0, 1:] = self.r[0, 1:] + self.r[0, 0] * self.shift
        return R

    def raw_inverse(self) -> tuple[Tensor, float]:
        """``R^-1`` of the raw design as ``M r^-1``: its first row is ``r^-1``'s less
        ``s'`` times the rest, no cancellation where the factor of the raw design would
        lose the spread's digits (its covariance then took 14-58% errors); and the
        condition bound of ``r`` (:func:`inverse_and_kappa`), which sets its accuracy."""
        inv, kappa = inverse_and_kappa(self.r)
        if self.shift is not None:
            inv[0] = inv[0] - self.shift @ inv[1:]
        return inv, kappa


def shifted_factor(state: object, p: int, intercept: bool) -> ShiftedFactor | None:
    """A state's working factor about its offsets, where they dominate a column's spread
    (NOTE [refinement about the shift]); None where the raw factor serves."""
    working = getattr(state, "working_factor", None)
    if not (callable(working) and intercept and p > 1):
        return None
    R, offsets = working()
    if offsets is None:
        return None
    factor = ShiftedFactor(R.to(torch.float64)[:p, :p], offsets[: p - 1].to(torch.float64))
    return factor if factor.offsets_dominate() else None


def design_factor(state_or_r: object, p: int, intercept: bool) -> ShiftedFactor:
    """The ``p x p`` design factor refinement works from: :func:`shifted_factor` where the
    offsets dominate, the raw factor otherwise (the same numbers as before the shift was
    used); a :class:`ShiftedFactor` as it is, a raw R tensor unshifted."""
    if isinstance(state_or_r, ShiftedFactor):
        return ShiftedFactor(state_or_r.r[:p, :p], state_or_r.shift)
    shifted = shifted_factor(state_or_r, p, intercept)
    if shifted is not None:
        return shifted
    return ShiftedFactor(_r_factor(state_or_r).to(torch.float64)[:p, :p], None)


# The intercept of a shifted fit is mapped back through every slope: ``b0 = x0 + s_y -
# s_x . coef``. Its error bound took each slope's error at the normwise bound, summed over
# the columns (``||s_x||_1 |err|``), which grows with p: every fit with a few hundred
# columns and offsets was flagged, and 200,000 x 500 took 8-12x the unrefined fit for
# digits numpy's own lstsq could not confirm (both ~1e-13 normwise, kappa 1.4). The slopes'
# errors form one vector of norm ``|err|``, so Cauchy-Schwarz bounds the sum by
# ``||s_x / scale||_2 |err|``: still a bound, sqrt(p) tighter.
FLOOR = 1e-2


def needs_refinement(
    state_or_r: object, n_params: int, *, tol: float = 1e-12, floor: float = FLOOR
) -> bool:
    """Whether any target's QR solution may have a relative error above ``tol``
    (:func:`targets_at_risk` for every target; same arguments).

    Example:
        >>> x = torch.linspace(-1, 1, 100, dtype=torch.float64)[:, None]
        >>> one = torch.ones_like(x)
        >>> y = 2 + 3 * x + 0.1 * torch.cos(40 * x)
        >>> needs_refinement(torch.linalg.qr(torch.cat([one, x, y], 1)).R, 2)
        False
        >>> needs_refinement(torch.linalg.qr(torch.cat([one, 1e6 + x, 2 + 3 * x], 1)).R, 2)
        True
    """
    return any(targets_at_risk(state_or_r, n_params, tol=tol, floor=floor))


def targets_at_risk(
    state_or_r: object, n_params: int, *, tol: float = 1e-12, floor: float = FLOOR
) -> list[bool]:
    """Per target: whether its QR solution from this R factor may have a relative error
    above ``tol`` (a list with one entry per target column of R; one entry for a design
    factor without target columns).

    The default ``tol`` asks for 12 correct digits per coefficient. (Small in-memory fits
    are refined whatever this says, see ``fitstats.SMALL_WORK``: that is what gives the
    NIST sets their last digits; this policy decides for large fits, where a second pass
    over the rows costs real time.) For a state, the conditioning is that of the factor
    the solver works from (shifted by the state's offsets, see
    ``LeastSquaresState.working_factor``), not the raw design's, and the intercept's risk
    includes the cancellation of mapping it back from the shift.

    ``state_or_r`` is a LeastSquaresState or the R factor of ``[1 | X | Y]`` (or of the
    design alone); ``n_params`` counts the design columns (intercept included). The
    estimate is the first-order QR bound ``eps * (kappa + kappa**2 * |r| / (|A| |x|))``,
    with ``kappa`` the condition number of the column-scaled design read off R, applied
    to each coefficient: a coefficient whose scaled size ``|a_j| |x_j|`` is small next to
    ``|D x|`` gets the error relative to itself, down to ``floor * |D x|`` (so exact
    zeros do not force a second pass over the rows). A ``method="gram"`` state squares
    ``kappa``. With a row count (a state), errors are also taken next to the standard
    errors (NOTE [errors next to the standard error]), and a target whose rss the factor
    may have lost past ``SUMS_TOL`` is at risk too (NOTE [sums at risk]): a nearly exact
    fit (with a Gram factor, an exact one too).

    Example:
        >>> x = torch.linspace(-1, 1, 100, dtype=torch.float64)[:, None]
        >>> X = torch.cat([x, x + 0.01 * x**2], 1)  # nearly collinear: kappa ~ 1e3
        >>> fit = 1 + X.sum(1, keepdim=True)
        >>> wave = torch.cos(40 * x)
        >>> y = torch.cat([fit + 0.01 * wave, fit + wave], 1)  # a small residual; a large one
        >>> targets_at_risk(torch.linalg.qr(torch.cat([torch.ones_like(x), X, y], 1)).R, 3)
        [False, True]
    """
    return risks_and_kappa(state_or_r, n_params, tol=tol, floor=floor)[0]


def risks_and_kappa(
    state_or_r: object, n_params: int, *, tol: float = 1e-12, floor: float = FLOOR
) -> tuple[list[bool], float]:
    """:func:`targets_at_risk` and the :func:`working_kappa` it read, from one look at the
    factor (a Gram state's working factor is a Cholesky of the whole Gram)."""
    errors, kappa, sums = _estimates(state_or_r, n_params, floor=floor, policy=True)
    return [e > tol or s > SUMS_TOL for e, s in zip(errors, sums, strict=True)], kappa


# NOTE [sums at risk]
# The policy looked at the coefficients only. The unrefined rss is read off the factor,
# where it is the difference the factorisation leaves of |y - s|^2: about eps |y - s| / |r|
# of itself off for a Householder factor (measured 0.01-0.1 of that), eps (|y - s| / |r|)^2
# for a Gram one (measured up to 10x at 1M rows, the co-moments merged block by block:
# 16x is taken). A dummy column with an effect of 1e9 against a noise of 1 (20,000 rows)
# gave a Gram rss 55x the exact one, and standard errors 8x, with no pass and no warning
# (QR: 3e-8). A target is now refined where that estimate passes SUMS_TOL, so an unrefined
# rss is right to 1e-9 and its standard errors to 5e-10: Gram fits are refined from
# |y - s| / |r| ~ 530 (R2 above 1 - 4e-6), QR fits from ~ 4.5e6. The headline data
# (|y - s| / |r| ~ 130, 1M x 100) stay well below it: their Gram rss is up to 5e-11 off
# (estimate 8e-11). A Householder factor whose residual is at the rounding level of y
# (|r| <= 2p eps |y - s|) holds an exact fit's, y = 2x + 1 or a derived column: its rss is
# rounding noise next to an exact 0 (or to what y's own rounding leaves), with nothing to
# gain, so it is not flagged (nor warned about). A Gram factor cannot tell an exact fit
# from a nearly exact one below sqrt(eps): it refines both (an exact target at 1M x 100:
# 2.1 s against 0.19 s unrefined; the rss of the float64 data, 4.3e-21, where the Gram's
# read 1e-15).
# The rss moves with the rounding of the design as much as with that of y: a perturbation
# dA of the factor's rows moves it by 2 r'dA b to first order, |dA b| ~ eps |A| |b|
# (columnwise, |x| in column-scaled units). Where coefficients cancel (columns with large
# offsets and no intercept, nearly collinear ones) |x| passes |y - s| by orders, and a
# streamed fit's rss was silently off: 2.4e-6 (QR, kappa 1e7, noise 1e-6 of the fit) and
# 4.7e-4 (Gram, kappa 4e10), each with a warning about its coefficients only. The
# estimate now takes max(|y - s|, |x|) / |r|: unchanged wherever |y - s| is the larger (every
# benchmark regime), and above the actual error in each such case of the hunt: 5.5-1000x
# it with a Gram factor, 15-130x with a Householder one (before a warning's 100x).
SUMS_TOL = 1e-9
_GRAM_SUMS_CONSTANT = 16.0


# NOTE [a warning's constant]
# The first-order bound has no constant in front of eps: measured on the NIST sets streamed
# in blocks of 21, 10 and 3 rows (tests/test_nist.py), the actual error of the unrefined
# coefficients reached 6.7x the estimate a warning quoted (Wampler1, Gram: 9.65e-7 against
# 1.44e-7; Wampler5, QR in blocks of 3: 2.2x). The backward errors behind it grow with the
# columns (a Cholesky's and a Householder's are ~p eps, before the sums' own), so a
# warning's estimate takes 2p eps: 0.7x of the quote at worst there. The refinement policy
# keeps the bare bound, which only decides a second pass at 1e-12.
_WARNING_CONSTANT = 2.0


def estimated_errors(
    state_or_r: object,
    n_params: int,
    *,
    floor: float = FLOOR,
    policy: bool = True,
    sums: bool = False,
) -> tuple[list[float], float] | tuple[list[float], float, list[float]]:
    """Per target, the estimated relative error of the worst coefficient of the unrefined
    solution (inf where the factor is singular), and the working kappa.

    ``policy=True`` gives the bound :func:`targets_at_risk` decides by, which for a Gram
    factor squares its kappa in the residual term too (cautious: refining costs time
    only). ``policy=False`` gives the estimate a warning quotes: the normal equations'
    error is about ``eps kappa (1 + |r| / (|A| |x|))`` with kappa the Gram's, which
    measured within 10x of the actual error where the cautious bound was 10^4 over.
    The policy's error is relative to the coefficient or to its standard error, whichever
    is larger, where a state gives the row count (NOTE [errors next to the standard
    error]); a warning's, to the coefficient (down to ``floor`` of the norm). ``sums=True``
    adds, per target, the estimated relative error of the rss the factor holds (NOTE [sums
    at risk]).

    Example:
        >>> x = torch.linspace(-1, 1, 100, dtype=torch.float64)[:, None]
        >>> X = torch.cat([x, x + 1e-4 * x**2], 1)  # nearly collinear
        >>> R = torch.linalg.qr(torch.cat([x**0, X, X.sum(1, keepdim=True)], 1)).R
        >>> errors, kappa = estimated_errors(R, 3)
        >>> 1e-13 < errors[0] < 1e-9, 1e4 < kappa < 1e6
        (True, True)
    """
    out = _estimates(state_or_r, n_params, floor=floor, policy=policy)
    return out if sums else out[:2]


def _estimates(
    state_or_r: object, n_params: int, *, floor: float, policy: bool
) -> tuple[list[float], float, list[float]]:
    """:func:`estimated_errors`, and per target the estimated relative error of the
    unrefined rss (NOTE [sums at risk])."""
    R, offsets, scale, top, kappa = _working_conditioning(state_or_r, n_params)
    p = n_params
    every = [float("inf")] * max(R.shape[1] - p, 1)
    if not kappa < float("inf"):
        return every, kappa, every
    rxx = R[:p, :p]
    if R.shape[1] <= p:
        return [_EPS * kappa / floor], kappa, [0.0]
    x = torch.linalg.solve_triangular(rxx, R[:p, p:], upper=True) * scale[:, None]
    xnorm = torch.linalg.vector_norm(x, dim=0).clamp_min(torch.finfo(R.dtype).tiny)
    rnorm = column_norms(R[p:, p:])
    ynorm = column_norms(R[:, p:])
    ratio = ynorm / rnorm  # |y - s| / |r|: inf where rss is 0
    gram = getattr(state_or_r, "method", "qr") == "gram"
    # residuals at the rounding level of y (what the factor can resolve): an exact fit
    rounding = (_EPS * ratio.square() if gram else _EPS * ratio) >= 1 / (2 * p)
    # the rss moves with the rounding of y and of A b, whichever is larger: coefficients
    # that cancel make |A| |b| the larger (NOTE [sums at risk])
    reach = torch.maximum(ynorm, xnorm) / rnorm
    if gram:
        sums = _GRAM_SUMS_CONSTANT * _EPS * reach.square()
    else:  # nothing to gain (NOTE [sums at risk])
        sums = torch.where(rounding, 0.0, _EPS * reach)
    sums = sums.nan_to_num(nan=0.0)  # a target column of zeros: nothing to lose
    # the policy only (NOTE [errors next to the standard error]); a warning's quote stays
    # relative to the coefficient; an exact fit has no standard errors to speak of
    n = getattr(state_or_r, "n_samples", None) if policy else None
    sigma = torch.where(rounding, 0.0, _sigma(rnorm, n, p))
    squared = policy or getattr(state_or_r, "method", "qr") != "gram"
    risk = kappa + (kappa**2 if squared else kappa) * rnorm / (top * xnorm)  # normwise
    err = _EPS * risk * xnorm  # (k,) absolute error of each column-scaled coefficient
    if not policy:  # NOTE [a warning's constant]
        err = err * _WARNING_CONSTANT * p
    # NOTE [errors next to the standard error]
    small = _capped(floor * xnorm, sigma)
    rel = err / torch.maximum(torch.maximum(x.abs(), small), sigma)  # (p, k)
    if offsets is not None and p > 1:
        rel[0] = _intercept_risk(x, scale, err, offsets, p, floor, sigma, rxx)
    return rel.amax(dim=0).tolist(), kappa, sums.tolist()


# NOTE [errors next to the standard error]
# The first-order bound's residual term, eps kappa^2 |r| / top in column-scaled units,
# grows like sqrt(n) (|r| does), while a coefficient with nothing to fit shrinks like
# 1/sqrt(n): taken relative to the coefficient alone (down to FLOOR of the norm), a target
# unrelated to X was flagged from about a million rows, and one orthogonal to X (residuals
# regressed on the same X) at any size, its coefficients being rounding noise: its
# default fit took 6x (QR) and 13x (Gram) an ordinary one, three passes over the rows for
# digits far below the standard error. Each coefficient's error is now also taken relative
# to its standard error, or rather to sigma = sqrt(rss / (n - p)), which is below every
# column-scaled standard error (``(R'R)^-1_jj >= 1 / (R'R)_jj``, so ``scale_j se_j >=
# sigma``); the intercept of a shifted fit takes half its own (one solve with R). An
# estimate under 1e-12 thus means each coefficient within 1e-12 of the largest of itself,
# its standard error and FLOOR of the column-scaled norm. That last floor, older than
# this note, is what lets exact zeros pass; where one coefficient dominates the norm (a
# dummy with an effect of 1e9 beside noise slopes) it let the small ones be off by
# several of their standard errors (1e-14 of the norm; 7.9 for an intercept, found by a
# hunt, older than this note). So the floor is capped at _SE_CAP = 1000 standard errors
# (sigma): every coefficient within 1e-9 of its standard error at worst, t values right
# to 1e-9. The cap binds only where the norm passes 1e5 sigma, that is
# sqrt(n) |fitted| / |r| > 1e5, and refines only past ~4e7 (at a million rows, R2 above
# 1 - 5e-10); the headline fits (sqrt(n) |fitted| / |r| ~ 1e5) are untouched. A large
# fit's refinement aims at the same (NOTE [bits in refinement], NOTE [one certified step]);
# small fits (the NIST sets) refine whatever the estimate says. Without a row count (a
# bare R tensor) or residual degrees of freedom, or where the residuals are at the rounding
# level of y (an exact fit: sigma is noise there, and capped the floor to it, so a 1M x
# 100 exact target was refined for nothing), sigma is 0 and the floor is the old one.
# A warning's estimate (``policy=False``, fits that cannot be refined) keeps the old
# floor: it quotes how far off the coefficient itself may be.
# The residual term still grows like sqrt(n) against sigma: a noise target is flagged
# again from about 1e-24 top^2 / (eps^2 kappa^4) rows, 2e7 where top = kappa = 1 (measured:
# 2.4e-13 at 1e6 rows of 10 columns, 5e-13 at 3e6 of 100, so from 1e7-4e7 rows).


_SE_CAP = 1e3


def _capped(floor: Tensor, se: Tensor) -> Tensor:
    """The norm's floor, at most ``_SE_CAP`` standard errors where they are known (> 0)."""
    return torch.where(se > 0, torch.minimum(floor, _SE_CAP * se), floor)


def _sigma(rnorm: Tensor, n: int | None, p: int) -> Tensor:
    """``sqrt(rss / (n - p))`` per target from the residual norms, 0 without ``n - p > 0``
    (NOTE [errors next to the standard error])."""
    if n is None or n <= p:
        return torch.zeros_like(rnorm)
    return rnorm / math.sqrt(n - p)


def _working_conditioning(state_or_r: object, p: int):
    """The working factor, its offsets, the design columns' scale, the largest singular
    value of the column-scaled design factor and the solution's condition number (squared
    for a ``method="gram"`` state: R from the Gram matrix); inf where singular."""
    working = getattr(state_or_r, "working_factor", None)
    R, offsets = working() if callable(working) else (_r_factor(state_or_r), None)
    rxx = R[:p, :p]
    scale = column_norms(rxx)  # safe for columns of 1e-200 or 1e160
    if not bool((scale > 0).all()):
        return R, offsets, scale, 0.0, float("inf")
    top, low = extreme_singular_values(rxx / scale)
    if not low > 0.0:
        return R, offsets, scale, top, float("inf")
    kappa = top / low
    if getattr(state_or_r, "method", "qr") == "gram":
        kappa = kappa * kappa
    return R, offsets, scale, top, kappa


def working_kappa(state_or_r: object, n_params: int) -> float:
    """The condition number of the column-scaled design in the factor the solver works
    from, squared for a ``method="gram"`` state (R from the Gram matrix); inf where
    singular. It bounds how far that factor's R'R is from the rows' A'A, which is what
    refinement from it needs (NOTE [one certified step]).

    Example:
        >>> from torchlinreg.exact.state import LeastSquaresState
        >>> X = torch.linspace(-1, 1, 100, dtype=torch.float64)[:, None]
        >>> near = torch.cat([X, X + 1e-5 * X**2], 1)
        >>> qr = LeastSquaresState(2, 1).absorb(near, 2 + 3 * X)
        >>> gram = LeastSquaresState(2, 1, method="gram").absorb(near, 2 + 3 * X)
        >>> 1e5 < working_kappa(qr, 3) < 1e7, 1e10 < working_kappa(gram, 3) < 1e14
        (True, True)
    """
    return _working_conditioning(state_or_r, n_params)[4]


# NOTE [one certified step]
# A correction dx leaves an error of about rho |dx| in x + dx, rho being the contraction of
# the corrected seminormal equations: how far (R'R)^-1 A'WA is from the identity, about
# p eps kappa for a Householder factor of the rows and p eps kappa^2 for a Gram one. The
# first correction of a large fit is typically 1e-12 of x and rho below 1e-10, so x + dx is
# already at float64 rounding, and the usual confirming pass (the rows read and split
# again, only to find a correction at rounding level) would double the cost. Where
# ``rho |dx| <= eps / 4``, with rho taken 32 times over the bound, x + dx is returned
# without it. Its sums of squares are carried from the pass at x: with ``r' = r - A dx``,
# ``rss' = rss - 2 dx.g + |R dx|^2`` and the fitted values' sums move by ``A.T W (y - s)``
# and ``A.T W 1``, gathered in float64 by the same pass: they only enter through terms
# of the size of dx, where float64 is more than enough. Small fits (the NIST sets) keep
# the confirming pass: it costs microseconds.
_RHO_MARGIN = 32.0


def _contraction(R: Tensor, scale: Tensor, factor_kappa: float) -> float:
    """The per-step contraction bound of refinement from ``R`` (NOTE [one certified step])."""
    top, low = extreme_singular_values(R / scale.T)
    kappa = max(top / low if low > 0 else float("inf"), factor_kappa)
    return _RHO_MARGIN * R.shape[0] * _EPS * kappa


# NOTE [the least-squares rss]
# The parameters returned are the least-squares solution b* rounded to float64, and the
# rows' sums at them (a pass, or carried to them) hold rss(x) = rss* + |A (x - b*)|^2: the
# rounding of the coefficients raises the rss. Past |y| / |r| ~ 1e12 that is more than 1e-9
# of it: y = 3e7 + 2x with a noise of 1e-6 (5 rows) had an ssr 3.3e-5 above the exact
# least-squares one, and standard errors 1.6e-5 off, silently. The last correction's
# rounding is known (``x + dx = x' + below`` exactly, TwoSum), so b* = x' + below to the
# correction's own accuracy, and ``rss* = rss(x') - |A below|^2`` (A'r(x') = -A'A (x' - b*)
# at the optimum). The ssr reported is rss*: the statistics (standard errors, F, llf) are
# those of the least-squares fit, and the residuals' own sum of squares (y - A x' for the
# float64 x') may exceed it by that much. Sums carried by formula (NOTE [one certified
# step]) are taken to x + dx before its rounding, already the least-squares ones: taking
# |A below|^2 off them too left a 100,000-row fit's ssr 1.2e-5 under the exact one.


def _least_squares_rss(passes: RowPasses, raw: Tensor, below: Tensor) -> None:
    """Take the sums' rss from the rounded parameters' to the least-squares one (NOTE [the
    least-squares rss]); ``raw`` is the factor of the rows in the parameters' own terms."""
    sums = passes.sums
    if sums is None or "rss" not in sums or not bool((below != 0).any()):
        return
    quad = (raw @ below).square().sum(0)
    hi, lo = dd_add(sums["rss"], (-quad, torch.zeros_like(quad)))  # type: ignore[index]
    # an exact fit's rss* is 0: what rounding leaves below it is not a sum of squares
    # (4 weighted rows fitted exactly gave -4e-41, and NaN standard errors)
    negative = hi < 0
    sums["rss"] = (hi.masked_fill(negative, 0.0), lo.masked_fill(negative, 0.0))


def _carry_sums(passes: RowPasses, R: Tensor, dxs: Tensor, dx: Tensor, gs: Tensor) -> None:
    """The pass's sums moved from x to ``x + dx`` (NOTE [one certified step]); ``dxs`` and
    ``gs`` are the correction and gradient about the factor's shift (``|A dx| = |R dxs|``,
    ``dx.g = dxs.gs``: NOTE [refinement about the shift])."""
    h, col = passes.moments  # type: ignore[misc]
    shift = passes.shift[0]  # type: ignore[index]
    quad = (R @ dxs).square().sum(0)
    dg = (dxs * gs).sum(0)
    moved = {
        "rss": quad - 2 * dg,
        "sf": col @ dx,
        "sff": quad + 2 * ((dx * h).sum(0) - dg),
        "uff": quad + 2 * ((dx * (h + col[:, None] * shift)).sum(0) - dg),
    }
    sums = passes.sums
    for key, v in moved.items():
        if key in sums:  # type: ignore[operator]  (uff: only without an intercept)
            sums[key] = dd_add(sums[key], (v, torch.zeros_like(v)))  # type: ignore[index]


def _intercept_risk(
    x: Tensor, scale: Tensor, err: Tensor, offsets: Tensor, p: int, floor, sigma: Tensor,
    rxx: Tensor,
):  # fmt: skip
    """Relative error of the real intercept ``b0 = x0 + s_y - s_x . coef`` of a shifted fit.

    The factor was taken about offsets ``s``: the intercept it solves for is the shifted
    one, and mapping it back adds every slope's error times its offset. Its standard error
    is ``sigma |R^-T u|``, ``u = [1, -s_x]`` (one triangular solve; half of it is taken,
    for the solve's own rounding: NOTE [errors next to the standard error]).
    """
    coef = x[1:] / scale[1:, None]  # (d, k) slopes in original units
    s_x, s_y = offsets[: p - 1], offsets[p - 1 :]
    b0 = x[0] / scale[0] + s_y - s_x @ coef
    abs_err = err / scale[0] + torch.linalg.vector_norm(s_x / scale[1:]) * err
    # The floor: the intercept's share of the column-scaled solution, as for the slopes,
    # or of the terms it is computed from, whichever is larger.
    size = (x[0] / scale[0]).abs() + s_y.abs() + s_x.abs() @ coef.abs()
    size = torch.maximum(size, torch.linalg.vector_norm(x, dim=0) / scale[0])
    u = torch.cat([s_x.new_ones(1), -s_x])[:, None]
    spread = torch.linalg.vector_norm(torch.linalg.solve_triangular(rxx.T, u, upper=False))
    se = 0.5 * sigma * spread if bool(torch.isfinite(spread)) else torch.zeros_like(sigma)
    return abs_err / torch.maximum(torch.maximum(b0.abs(), _capped(floor * size, se)), se)


def _gradient(A: Tensor | None, wr: DD, intercept: bool) -> Tensor:
    """``[1 | A].T @ wr`` in double-double (GEMMs on error-free pieces, by row blocks),
    rounded to float64; shape ``(q, k)``."""
    A = wr[0].new_zeros(wr[0].shape[0], 0) if A is None else A
    g = None
    for X, hi, lo in chunked([(A, wr[0], wr[1])], block_rows(A.shape[1], wr[0].shape[1])):
        gb = gradient(SplitBlock(X, None), (hi, lo), intercept)
        g = gb if g is None else dd_add(g, gb)
    return g[0] + g[1]


_weighted = weighted


def _wsum(v: DD, w: Tensor | None) -> Tensor:
    hi, lo = dd_sum(_weighted(v, w), 0)
    return hi + lo


def sums_of_squares(Y: Tensor, r: DD, w: Tensor | None, fit_intercept: bool) -> dict[str, Tensor]:
    """Weighted rss, ess, centered and uncentered tss from exact residuals ``r`` (dd)."""
    y = dd_from(Y)
    fitted = dd_sub(y, r)
    uncentered = _wsum(dd_mul(y, y), w)
    if fit_intercept:
        sw = Y.new_tensor(float(Y.shape[0])) if w is None else dd_sum(dd_from(w), 0)[0]
        mean = dd_div_d(dd_sum(_weighted(y, w), 0), sw)
        dy, dfit = dd_sub(y, mean), dd_sub(fitted, mean)
        centered = _wsum(dd_mul(dy, dy), w)
        ess = _wsum(dd_mul(dfit, dfit), w)
    else:
        centered = None
        ess = _wsum(dd_mul(fitted, fitted), w)
    if centered is None:
        sw = Y.new_tensor(float(Y.shape[0])) if w is None else dd_sum(dd_from(w), 0)[0]
        mean = dd_div_d(dd_sum(_weighted(y, w), 0), sw)
        dy = dd_sub(y, mean)
        centered = _wsum(dd_mul(dy, dy), w)
    return {
        "rss": _wsum(dd_mul(r, r), w),
        "ess": ess,
        "centered_tss": centered,
        "uncentered_tss": uncentered,
    }


def refine_core(
    rhs: Callable[[DD], Tensor],
    R: Tensor,
    x: DD,
    *,
    max_steps: int = 10,
) -> tuple[DD, int, bool]:
    """Refine ``x`` (dd, ``(p, k)``) with the corrected seminormal equations ``R.T R dx = g``.

    ``rhs(x)`` returns ``g = A.T W (y - A x)``, computed in double-double and rounded to
    float64 (one pass over the rows). Stops when the column-scaled correction stops
    halving or reaches rounding level. Returns the refined ``x``, the steps taken and
    whether it converged.
    """
    scale = column_norms(R).clamp_min(torch.finfo(R.dtype).tiny)[:, None]
    previous = float("inf")
    for step in range(max_steps):
        g = rhs(x)
        z = torch.linalg.solve_triangular(R.T, g, upper=False)
        dx = torch.linalg.solve_triangular(R, z, upper=True)
        xnorm = torch.linalg.vector_norm(x[0] * scale, dim=0).clamp_min(1e-300)
        size = float((torch.linalg.vector_norm(dx * scale, dim=0) / xnorm).max())
        if not size < previous:  # diverging or stalled (NaN included): keep the last x
            return x, step, size <= 4 * _EPS
        x = dd_add(x, dd_from(dx))
        if size <= 2 * _EPS or size > 0.5 * previous:
            return x, step + 1, size <= 4 * _EPS or size <= 0.5 * previous
        previous = size
    return x, max_steps, False


def _owned(t: Tensor) -> Tensor:
    """A float64 copy of ``t`` that shares no memory with it.

    Everything this module is handed (rows, the solution, the R factor) belongs to the
    caller: ``Tensor.to`` and ``reshape`` return ``t`` itself or a view when nothing needs to
    change, so an in-place write after them would reach the caller's tensor (issue 9: the
    no-intercept coefficients were zeroed that way). Copy before writing, always.
    """
    return t.detach().to(torch.float64, copy=True).contiguous()


def _setup(
    d: int, fit_intercept: bool, state_or_r: object, coef: Tensor, intercept: Tensor, aliased
) -> tuple[Tensor, ShiftedFactor, list[int], list[int]]:
    """Parameters ``(p, k)`` (aliased zeroed), the factor of the kept columns
    (:func:`design_factor`), kept params and columns.

    The parameters are a fresh tensor: ``coef`` and ``intercept`` belong to the caller (the
    solution a model publishes) and are never written to, see :func:`_owned`.
    """
    c = int(fit_intercept)
    p = c + d
    factor = design_factor(state_or_r, p, fit_intercept)
    parts = [intercept.reshape(1, -1)] if fit_intercept else []
    params = _owned(torch.cat([*parts, coef.T], 0) if parts else coef.T)
    dropped = {a + c for a in aliased}
    keep = [j for j in range(p) if j not in dropped]
    params[sorted(dropped)] = 0.0  # aliased columns stay out of the model
    if len(keep) < p:
        shift = factor.shift
        if shift is not None:  # the intercept is never aliased (it is the first column)
            shift = shift[[j - c for j in keep if j >= c]]
        factor = ShiftedFactor(torch.linalg.qr(factor.r[:, keep], mode="r").R, shift)
    return params, factor, keep, [j - c for j in keep if j >= c]


def _result(
    params: Tensor, keep: list[int], x: DD, c: int, steps, converged, sums, last=0.0
) -> RefinedFit:
    hi, lo = params.clone(), torch.zeros_like(params)
    hi[keep], lo[keep] = x[0], x[1]
    full = hi + lo
    return RefinedFit(
        coef=full[c:].T.contiguous(),
        intercept=full[0] if c else full.new_zeros(full.shape[1]),
        params=hi,
        params_lo=lo,
        steps=steps,
        converged=converged,
        last_correction=last,
        **sums,
    )


def refine_solution(
    X: Tensor,
    Y: Tensor,
    sample_weight: Tensor | None,
    fit_intercept: bool,
    state_or_r: object,
    coef: Tensor,
    intercept: Tensor,
    *,
    aliased: Sequence[int] = (),
    max_steps: int = 10,
    factor_kappa: float | None = None,
    estimates: Estimates | None = None,
) -> RefinedFit:
    """Refine an exact-engine solution against the rows ``(X, Y, sample_weight)``.

    ``state_or_r`` is the LeastSquaresState (or its R factor, the design part being the
    leading ``int(fit_intercept) + d`` columns); ``coef`` is ``(k, d)``, ``intercept``
    ``(k,)``. Aliased feature columns keep their values; the others are refined.
    The returned sums of squares come from double-double residuals. ``factor_kappa``, the
    condition number that bounds how far the factor's R'R is from the rows' A'A (the
    design's for a Householder factor, its square for a Gram one), lets a small enough
    correction end the refinement without a confirming pass (NOTE [one certified step]).
    ``estimates`` (the unrefined rss and ess per target, the weights' sum and the rows)
    let such a large fit's passes take only the bits they need (NOTE [bits as needed]).

    Example: see the module docstring.
    """
    X = X.to(torch.float64)
    Y = Y.to(torch.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    w = None if sample_weight is None else sample_weight.to(torch.float64).reshape(-1)
    params, factor, keep, cols = _setup(
        X.shape[1], fit_intercept, state_or_r, coef, intercept, aliased
    )
    # Advanced indexing copies X: select only when a column is aliased.
    Xk = X if len(cols) == X.shape[1] else X[:, cols]
    passes = RowPasses(lambda: [(Xk, Y, w)], intercept=fit_intercept)
    return _refine(
        passes, factor, params, keep, int(fit_intercept), max_steps, factor_kappa, estimates
    )


Blocks = Callable[[], Iterable[tuple[Tensor, Tensor, Tensor | None]]]


@dataclass(frozen=True)
class Estimates:
    """What a large fit's refinement knows before its first pass (NOTE [bits as needed]):
    the unrefined ``rss`` and ``ess`` per target (ess about the mean, uncentred without
    an intercept), the weights' sum ``sw`` and the number of ``rows``."""

    rss: Tensor
    ess: Tensor
    sw: float
    rows: int


def estimated_sigma(estimates: Estimates | None, p: int) -> Tensor | None:
    """``sqrt(rss / (rows - p))`` per target from the unrefined sums, 0 without residual
    degrees of freedom; None without estimates."""
    if estimates is None:
        return None
    return _sigma(estimates.rss.clamp_min(0).sqrt(), estimates.rows, p)


# NOTE [bits in refinement]
# What a large fit's pass needs of its products (NOTE [bits as needed] in products.py),
# each to a fraction of float64 rounding: the corrected coefficients to TAU of the
# column-scaled norm (the policy's floor times eps / 8, so a coefficient as large as the
# floor is right to eps / 8 of itself), and rss and ess to eps / 8. A residual error
# delta (per row) moves the column-scaled correction by at most sqrt(sw) delta / s_min
# and the gradient's error e_j by |D^-1 e| / s_min^2 (s_min: the column-scaled factor's
# smallest singular value); half the budget goes to each. rss moves by at most
# 2 sqrt(rss sw) delta, ess alike. Those set the tolerances from the unrefined sums, at a
# quarter of the budget (the unrefined sums are estimates);
# after the pass the bounds the blocks used are checked against the same budget with the
# pass's own sums, and where one is not met (an estimate far off, a fit nearly exact) the
# pass is made again at 106 bits (unless the bounds that missed had them all already: a
# target fitted exactly has its rss at rounding level, which no bits reach). Small fits,
# and fits whose factor is taken about offsets (where the intercept's error is mapped back
# through every slope), keep 106.
_TAU = FLOOR * _EPS / 8


class _Budget:
    """The tolerances of one refinement's passes, and the check of what a pass met."""

    def __init__(self, R: Tensor, scale: Tensor, estimates: Estimates, c: int) -> None:
        self.scale, self.c, self.est = scale[:, 0], c, estimates
        top, low = extreme_singular_values(R / scale.T)
        self.low = low if top > 0 else 0.0
        # below every column-scaled standard error (NOTE [errors next to the standard error])
        self.sigma = estimated_sigma(estimates, R.shape[0]).to(R) / FLOOR

    def _norm(self, x: Tensor) -> Tensor:
        """The column-scaled norm, floored at sigma / FLOOR: the floor's share of it is
        then sigma (NOTE [errors next to the standard error])."""
        norm = torch.linalg.vector_norm(x * self.scale[:, None], dim=0)
        return torch.maximum(norm, self.sigma)

    def tolerance(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """Per residual ``(k,)`` and per gradient entry and row ``(d, k)``."""
        if not self.low > 0:
            return None
        est, root = self.est, math.sqrt(max(self.est.sw, 1e-300))
        xn = self._norm(x)
        # a quarter of each budget (``missed`` allows it all): the estimates may be off a
        # little; they come from the statistics (on the CPU), the pass runs where x is
        sums = torch.minimum(est.rss.to(xn), est.ess.to(xn)).clamp_min(0).sqrt()
        r_tol = torch.minimum(_TAU * xn * self.low / (4 * root), _EPS / 64 * sums / root)
        d = self.scale.shape[0] - self.c
        g_tol = self.scale[self.c :, None] * (_TAU * xn * self.low**2 / (4 * math.sqrt(max(d, 1))))
        return r_tol, g_tol / max(est.rows, 1)

    def missed(self, passes: RowPasses, x: Tensor) -> bool:
        """Whether the bounds the last pass used miss the budget, by its own sums, where
        more bits could have met it: the sums rest on the residuals' bits alone, so where
        every residual took 106 bits already (a target fitted exactly: its rss is at
        rounding level) they do not ask for the pass again."""
        cut_r, cut_g = passes.cut
        if not (cut_r or cut_g):
            return False
        err_r2, err_g = passes.error  # type: ignore[misc]
        d_err = torch.linalg.vector_norm(err_g / self.scale[self.c :, None], dim=0)
        moved = err_r2.sqrt() / self.low + d_err / self.low**2
        if not bool((moved <= _TAU * self._norm(x)).all()):
            return True
        if not cut_r:
            return False
        sums = finish_sums(passes.sums, bool(self.c))  # type: ignore[arg-type]
        for key in ("rss", "ess"):
            v = sums[key].clamp_min(0)
            if not bool((2 * (v * err_r2).sqrt() + err_r2 <= _EPS / 8 * v).all()):
                return True
        return False


def refine_blocks(
    blocks: Blocks,
    fit_intercept: bool,
    state_or_r: object,
    coef: Tensor,
    intercept: Tensor,
    *,
    aliased: Sequence[int] = (),
    max_steps: int = 10,
    factor_kappa: float | None = None,
    estimates: Estimates | None = None,
) -> RefinedFit:
    """The opt-in extra passes for streamed input: :func:`refine_solution` over row blocks.

    ``blocks()`` must return a fresh iterable of ``(X, Y, sample_weight or None)`` blocks
    each time it is called (e.g. re-open the file); each refinement step reads them once,
    and the sums of squares come with the last step (taken about the first block's mean, so
    offsets do not cost digits). Memory stays at one block.

    Example:
        >>> X = torch.linspace(0, 1, 40, dtype=torch.float64)[:, None]
        >>> Y = 3 - 2 * X
        >>> R = torch.linalg.qr(torch.cat([torch.ones_like(X), X, Y], 1)).R
        >>> fit = refine_blocks(lambda: [(X[:25], Y[:25], None), (X[25:], Y[25:], None)],
        ...                     True, R, torch.tensor([[-1.9]]), torch.tensor([3.1]))
        >>> float(fit.coef[0, 0]), float(fit.intercept[0])
        (-2.0, 3.0)
    """
    d = coef.shape[-1]
    params, factor, keep, cols = _setup(d, fit_intercept, state_or_r, coef, intercept, aliased)

    def chunks():
        for X, Y, w in blocks():
            Y = Y.to(torch.float64)
            Y = Y[:, None] if Y.ndim == 1 else Y
            w = None if w is None else w.to(torch.float64).reshape(-1)
            yield X.to(torch.float64)[:, cols], Y, w

    passes = RowPasses(chunks, intercept=fit_intercept)
    return _refine(
        passes, factor, params, keep, int(fit_intercept), max_steps, factor_kappa, estimates
    )


# NOTE [the last correction]
# The loop ends when a correction is at rounding level in the column-scaled norm. It used
# to return x, whose sums the pass had just computed, and drop that correction. But a
# coefficient whose scaled size is small next to the norm (an intercept far from the
# data's centre, the coefficient of a high power) is only right to eps times the norm,
# and the correction holds its missing digits, computed from double-double residuals.
# Adding it made every NIST coefficient except Filip's the correctly rounded solution of
# the float64 data (tests/test_nist.py, against an exact rational solve): Norris's intercept
# went from 12.8 to 17 digits, Longley's worst from 13.8. A large fit carries the sums
# to x + dx (NOTE [one certified step]); a small one takes them from one more pass at the
# parameters returned (microseconds): a noiseless target near 1e9 kept the sums of the
# pass before, and its ssr was 1.7x that of the parameters returned (bse 30% off).


def _refine(
    passes: RowPasses,
    factor: ShiftedFactor,
    params: Tensor,
    keep: list[int],
    c: int,
    max_steps: int,
    factor_kappa: float | None = None,
    estimates: Estimates | None = None,
) -> RefinedFit:
    """The corrected seminormal equations on float64 parameters, one row pass per step.

    Each pass computes the residual and the gradient in double-double at the current
    parameters (and the sums of squares there). The parameters users get are float64, so
    they are refined as float64: a correction at rounding level ends the loop, and the sums
    of that last pass are the sums of the parameters returned: no extra pass over the rows.
    So does a correction the contraction certifies (NOTE [one certified step]). Corrections
    are solved about the factor's shift (NOTE [refinement about the shift]).
    """
    R, shift = factor.r, factor.shift if c else None
    passes.gradient_shift = shift
    # sizes in the raw parameters: those are the ones float64 holds (a huge intercept is
    # final to its ulp while its shifted counterpart, small, still moves)
    raw = factor.raw_r() if shift is not None else R
    scale = column_norms(raw).clamp_min(torch.finfo(R.dtype).tiny)[:, None]
    # the contraction is the solving factor's, in its own column scale
    r_scale = (
        scale if shift is None else column_norms(R).clamp_min(torch.finfo(R.dtype).tiny)[:, None]
    )
    rho = None if factor_kappa is None else _contraction(R, r_scale, factor_kappa)
    # NOTE [bits in refinement]
    budget = None
    if rho is not None and shift is None and estimates is not None and len(keep) == len(params):
        budget = _Budget(R, scale, estimates, c)
    # a large fit's corrections are sized against the norm or sigma, whichever is larger
    # (NOTE [errors next to the standard error]); small fits keep the norm alone
    sigma = estimated_sigma(estimates, len(keep)) if rho is not None else None
    floor = 1e-300 if sigma is None else sigma.to(R).clamp_min(1e-300)
    x = params[keep].clone()
    previous, steps, converged, last, recent = float("inf"), 0, False, 0.0, 0.0
    for _ in range(max_steps):
        steps += 1
        tolerance = None if budget is None else budget.tolerance(x)
        g = passes(x, moments=rho is not None, tolerance=tolerance)  # M' g where shifted
        if tolerance is not None and budget.missed(passes, x):  # type: ignore[union-attr]
            budget = None  # 106 bits from here on
            g = passes(x, moments=True)
        dxs = torch.linalg.solve_triangular(
            R, torch.linalg.solve_triangular(R.T, g, upper=False), upper=True
        )
        dx = _unshifted(dxs, shift)
        xnorm = torch.linalg.vector_norm(x * scale, dim=0)
        xnorm = torch.maximum(xnorm, floor) if sigma is not None else xnorm.clamp_min(floor)
        size = float((torch.linalg.vector_norm(dx * scale, dim=0) / xnorm).max())
        # each coefficient's own share (the floor as the error estimates take it): what an
        # unconverged refinement may leave in a small one, such as an intercept near 0,
        # is about the size of its last corrections (twice the larger of the last two is
        # quoted)
        own = float(((dx * scale).abs() / torch.maximum((x * scale).abs(), FLOOR * xnorm)).max())
        last, recent = 2 * max(own, recent), own
        if size <= 2 * _EPS:  # at rounding level: x, and the sums of this pass, are final
            # ... norm-wise. A coefficient small next to the others still takes dx: its
            # digits live below the norm's rounding level (NOTE [the last correction]).
            x, below = two_sum(x, dx)
            if rho is not None:  # carried to x + dx unrounded: the least-squares sums
                _carry_sums(passes, R, dxs, dx, g)
            elif bool((dx != 0).any()):  # NOTE [the last correction]: the sums of x + dx
                passes(x, gradient_too=False)  # ... rounded: NOTE [the least-squares rss]
                _least_squares_rss(passes, raw, below)
            converged = True
            break
        if not size < previous:  # diverging or stalled (NaN included): keep this x
            converged = size <= 4 * _EPS
            break
        if rho is not None and rho * size <= _EPS / 4:
            _carry_sums(passes, R, dxs, dx, g)  # to x + dx unrounded: no rounding to undo
            x = x + dx
            converged = True
            break
        x = x + dx
        previous = size
    else:
        passes(x, gradient_too=False)  # the sums of the last x
    sums = finish_sums(passes.sums, bool(c))
    return _result(params, keep, dd_from(x), c, steps, converged, sums, last)


def _unshifted(dx: Tensor, shift: Tensor | None) -> Tensor:
    """``M dx``: a correction from the shifted coordinates back to the raw parameters."""
    if shift is None:
        return dx
    return torch.cat([dx[:1] - shift @ dx[1:], dx[1:]])
