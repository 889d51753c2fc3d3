"""Solving a centred summary: rank decision, then OLS, minimum-norm or ridge coefficients.

NOTE [numerical null space]
A column the rank decision aliases (NOTE [rank tolerance] in ``linalg``) spans, with the kept
ones, directions the factor cannot tell from exactly null: on the Gram route, for one, the
factor of wide data carries singular values of about sqrt(eps) * |X| where the data has
exact zeros. Every solve with an aliased column therefore works in the orthogonal
complement of those directions (``range_basis``) and gives them exactly zero weight:
- OLS (alpha = 0) is then the minimum-norm least-squares solution, ``numpy.linalg.lstsq``'s;
- ridge is ``(X'X + alpha I)^-1 X'y`` with the null directions exactly null, so it tends to
  that same minimum-norm solution as alpha -> 0 and to the closed form for larger alpha.
  (Before, the noise directions got weight 1/s: at alpha 1e-16 the Gram route's solution on
  wide data was off by 58, issue 9.)
The basis is orthonormal in the coefficients' own units, so "minimum norm" means the norm
of ``coef`` as the user sees it; the null directions are found on the column-scaled factor,
so they do not depend on units. Each solve in the basis is one Householder QR of
``[X Q | Y]`` over ``sqrt(alpha) I`` rows: column-wise backward stable, so columns of very
different scales keep their accuracy (an SVD would not).

Only where the data could also be nearly but not exactly collinear does the answer depend on
this decision: the closed form would then give a direction of singular value
``s <= s_cut`` (the rank tolerance in the data's units) the weight ``s / (s^2 + alpha)``.
Ridge warns (RankWarning) when that could move the solution by more than
``RIDGE_RESOLUTION`` relative, with the bound; directions that are null because there are
fewer rows than features are exactly null and never warn.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import RankWarning
from .linalg import (
    CentredSummary,
    ExactSolution,
    aliased_columns,
    column_norms,
    condition_number,
    decision_norms,
    residual_sums,
    squared_column_sums,
    unit_columns,
)

RIDGE_RESOLUTION = 1e-6  # relative change of a ridge solution worth a warning
ACCURACY_WARNING = 1e-8  # estimated relative error worth a warning (NOTE [accuracy estimate])


def per_target_alpha(alpha: Any, n_targets: int) -> tuple[float, ...]:
    """``alpha`` (a number, or one per target) as ``n_targets`` finite floats >= 0.

    Example:
        >>> per_target_alpha(0.5, 2), per_target_alpha([1, 2], 2)
        ((0.5, 0.5), (1.0, 2.0))
    """
    try:
        alpha = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1).tolist()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"alpha must be a number or one number per target: {exc}") from exc
    if len(alpha) not in (1, n_targets):
        raise ValueError(
            f"alpha has {len(alpha)} values for {n_targets} targets: pass one number, or one "
            "penalty per target (shape (n_targets,))"
        )
    if not all(a >= 0.0 and math.isfinite(a) for a in alpha):
        raise ValueError(f"alpha must be finite numbers >= 0, got {alpha}")
    return tuple(alpha) * (n_targets if len(alpha) == 1 else 1)


def range_basis(rxx: Tensor, norms: Tensor, rank: int) -> Tensor:
    """Orthonormal ``Q`` (d, rank): the coefficients orthogonal to the numerical null space.

    The null space of the column-scaled factor ``T = rxx / norms`` is spanned by its last
    right singular vectors ``V0``; in the coefficients' units it is ``diag(1 / norms) V0``,
    whose orthogonal complement is ``diag(norms) V1`` with ``V1`` the leading ones.
    """
    n = torch.where(norms > 0, norms, torch.ones_like(norms))
    _, _, vh = torch.linalg.svd(rxx / n[None, :])
    if rank == 0:
        return rxx.new_zeros(rxx.shape[1], 0)
    return torch.linalg.qr(vh[:rank].T * n[:, None]).Q


def penalised_coefficients(
    rxx: Tensor,
    rxy: Tensor,
    alphas: Sequence[float],
    basis: Tensor | None,
    rest: Tensor | None = None,
    squared: bool = False,
    kappa_bound: float | None = None,
) -> tuple[Tensor, Tensor]:
    """``B`` (d, k) minimising ``||Y - X B||^2 + sum_t alpha_t ||B_t||^2``, ``B`` in the basis,
    and an estimate of each column's relative error.

    One QR of ``[[M, Y_t], [sqrt(alpha_t) I, 0]]`` per distinct penalty, ``M = rxx @ basis``
    (``rxx`` itself when ``basis`` is None): never forms ``X'X + alpha I``. ``rest`` holds the
    norms of the residual outside ``rxy`` (the factor's rows below d); ``squared`` says the
    factor came from a Gram matrix; ``kappa_bound`` bounds the condition number of the
    column-scaled ``M`` (NOTE [accuracy estimate]).
    """
    m = rxx if basis is None else rxx @ basis
    r, k = m.shape[1], rxy.shape[1]
    out = rxx.new_zeros(r, k)
    err = rxx.new_zeros(k)
    for a in sorted(set(alphas)):
        cols = [t for t in range(k) if alphas[t] == a]
        if r == 0:
            break
        top = torch.cat([m, rxy[:, cols]], dim=1)
        penalty = rxx.new_zeros(r, r + len(cols))
        penalty[:, :r] = math.sqrt(a) * torch.eye(r, dtype=rxx.dtype, device=rxx.device)
        f = torch.linalg.qr(torch.cat([top, penalty], dim=0), mode="r").R
        out[:, cols] = torch.linalg.solve_triangular(f[:r, :r], f[:r, r:], upper=True)
        extra = None if rest is None else rest[cols]
        err[cols] = _relative_error(f, r, out[:, cols], extra, squared, kappa_bound)
    return (out if basis is None else basis @ out), err


# NOTE [accuracy estimate]
# A least-squares solution from a QR factor has a relative error of about
# eps * (kappa + kappa^2 * |res| / (|A| |x|)) (the first-order bound refine.needs_refinement
# uses), with kappa the condition number of the column-scaled problem: here the penalised
# one, [M; sqrt(alpha) I], whose R factor has the same column norms. A factor taken from a
# Gram matrix is itself only accurate to eps * kappa, which multiplies the bound by kappa.
# In-memory OLS fits are refined afterwards (stats.fitstats); ridge and minimum-norm
# solutions are not, so solve_centred warns when this estimate exceeds ACCURACY_WARNING.
# The penalty only improves the column-scaled conditioning (with unit columns C and
# Lambda^2 + M^2 = I, the stacked Gram matrix Lambda C'C Lambda + M^2 has its eigenvalues
# within those of C'C), and unit columns make |A| >= 1: so the condition number of M, known
# before the solve, gives a bound for free, and the stacked factor's own SVD is computed
# only when that bound says a warning may be due.


def _relative_error(
    f: Tensor, r: int, z: Tensor, rest: Tensor | None, squared: bool, kappa_bound: float | None
) -> Tensor:
    """NOTE [accuracy estimate] for the targets whose stacked factor is ``f``."""
    eps, tiny = torch.finfo(f.dtype).eps, torch.finfo(f.dtype).tiny
    scale = column_norms(f[:r, :r])
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    res = column_norms(f[r:, r:]) if f.shape[0] > r else f.new_zeros(z.shape[1])
    if rest is not None:
        res = torch.hypot(res, rest)
    xs = column_norms(z * scale[:, None]).clamp_min(tiny)

    def estimate(kappa, top):
        err = eps * (kappa + kappa * kappa * res / (top * xs))
        return err * kappa if squared else err

    if kappa_bound is not None:
        bound = estimate(kappa_bound, 1.0)
        if not float(bound.max()) > ACCURACY_WARNING:
            return bound
    sv = torch.linalg.svdvals(f[:r, :r] / scale[None, :])
    return estimate(sv[0] / sv[-1].clamp_min(tiny), sv[0])


def solve_centred(
    summ: CentredSummary,
    d: int,
    fit_intercept: bool,
    alpha: Any,
    tol: float,
    feature_names: Sequence[str] | None = None,
    *,
    data_tol: float | None = None,
    n_rows: int | None = None,
    method: str = "qr",
) -> ExactSolution:
    """OLS or ridge from a centred summary: rank decision, coefficients, intercept, rss.

    ``alpha`` is one penalty or one per target. ``tol`` is the rank tolerance relative to the
    raw column norms, or, when ``data_tol`` is given (the Gram route), relative to the
    centred norms, with ``data_tol`` relative to the raw ones (NOTE [rank tolerance] in
    ``linalg``). ``n_rows`` (rows with a positive weight) tells which null directions are
    there for want of rows. Full-rank OLS is one triangular solve and its rss the squared
    Y-block of the factor; with aliased columns see NOTE [numerical null space].
    """
    r = summ.r
    k = r.shape[1] - d
    rxx, rxy = r[:d, :d], r[:d, d:]
    alphas = per_target_alpha(alpha, k)
    norms = decision_norms(summ, d, fit_intercept, tol, data_tol)
    aliased = aliased_columns(rxx, norms, tol, amplified=True)
    rank = d - len(aliased)
    ridge = any(a > 0 for a in alphas)
    cond = condition_number(unit_columns(rxx)) if d else 1.0
    if not ridge and not aliased:
        coef_t = torch.linalg.solve_triangular(rxx, rxy, upper=True)
        rss = squared_column_sums(r[d:, d:])
    else:
        basis = range_basis(rxx, norms, rank) if aliased else None
        rest = column_norms(r[d:, d:])
        bound = cond if basis is None else None
        squared = method == "gram"
        coef_t, err = penalised_coefficients(rxx, rxy, alphas, basis, rest, squared, bound)
        rss = residual_sums(r, coef_t)
        _warn_accuracy(float(err.max()) if k else 0.0, method, ridge)
        if not ridge:
            message = _rank_message(aliased, d, feature_names, r.dtype)
            warnings.warn(message, RankWarning, stacklevel=3)
        elif basis is not None and len(aliased) > _for_want_of_rows(d, n_rows, fit_intercept):
            cut = tol * norms
            _warn_resolution(rxx, rxy, rest, basis, coef_t, alphas, cut, aliased, feature_names)
    intercept = summ.means[d:] - summ.means[:d] @ coef_t if fit_intercept else r.new_zeros(k)
    return ExactSolution(
        coef=coef_t.T.contiguous(),
        intercept=intercept,
        rank=rank,
        aliased=tuple(aliased),
        rss=rss,
        cond=cond,
        tol=tol,
        alpha=alphas[0] if len(set(alphas)) == 1 else alphas,
        fit_intercept=fit_intercept,
    )


def _warn_accuracy(err: float, method: str, ridge: bool) -> None:
    if not err > ACCURACY_WARNING:
        return
    fix = "use solver='qr', " if method == "gram" else ""
    fix += "increase alpha or drop nearly collinear columns" if ridge else "drop aliased columns"
    warnings.warn(
        f"{'ridge' if ridge else 'minimum-norm'} solution from an ill-conditioned "
        f"{method!r} factor: its coefficients may be off by up to {err:.1e} (relative, "
        f"estimated); {fix}.",
        RankWarning,
        stacklevel=4,
    )


def _for_want_of_rows(d: int, n_rows: int | None, fit_intercept: bool) -> int:
    """Null directions there must be with ``n_rows`` rows: exactly null, never near."""
    return d - max(0, (d if n_rows is None else n_rows) - int(fit_intercept))


def _warn_resolution(rxx, rxy, rest, basis, coef_t, alphas, cut, aliased, names) -> None:
    """Warn when nearly-null directions could move a ridge solution (NOTE [numerical null
    space]): by at most ``|y_null| * max_s s / (s^2 + alpha)`` over ``s <= s_cut``."""
    m = rxx @ basis
    f = torch.linalg.qr(torch.cat([m, rxy], dim=1), mode="r").R
    # What a null direction could pick up: at most the least-squares residual of y on the
    # kept columns (rxy off their range, and the factor's rows below d). The first part
    # alone is not a bound: a Gram factor leaves it at rounding level where it cannot
    # resolve the direction.
    y_null = torch.hypot(column_norms(f[basis.shape[1] :, basis.shape[1] :]), rest)
    s_cut = float(torch.linalg.vector_norm(cut))
    a = torch.tensor(alphas, dtype=rxx.dtype, device=rxx.device)
    reach = torch.where(a > 0, torch.minimum(s_cut / a, 0.5 / a.sqrt()), math.inf)
    size = column_norms(coef_t).clamp_min(torch.finfo(rxx.dtype).tiny)
    bound = float((y_null * reach / size).max())
    if not bound > RIDGE_RESOLUTION:
        return
    cols = [repr(names[j]) if names is not None else str(j) for j in aliased]
    warnings.warn(
        f"ridge: {len(aliased)} of {rxx.shape[1]} features are collinear, within the solver's "
        f"resolution, with earlier columns or the intercept: {', '.join(cols)}; the solution "
        "gives the unresolved directions zero weight (for alpha -> 0, the minimum-norm "
        "least-squares solution). If the columns are not exactly collinear, it may differ "
        f"from the closed form by up to {bound:.1e} (relative). Increase alpha, drop these "
        "columns, or use solver='qr' (finer resolution than 'gram').",
        RankWarning,
        stacklevel=4,
    )


def _rank_message(
    aliased: list[int], d: int, names: Sequence[str] | None, dtype: torch.dtype = torch.float64
) -> str:
    cols = [repr(names[j]) if names is not None else str(j) for j in aliased]
    # in float32 the cut is 1e-7 of a column: designs float64 resolves (Longley, cond 5e9)
    # alias there, and the minimum-norm coefficients then differ from OLS's entirely
    where = (
        " at float32 precision (dtype=float32: collinear to about 1e-7; fit in float64, "
        "the default, to resolve them)"
        if dtype == torch.float32
        else ""
    )
    return (
        f"rank-deficient design{where}: {len(aliased)} of {d} features are collinear with "
        f"earlier columns or the intercept and are aliased: {', '.join(cols)}; their "
        "coefficients take the minimum-norm solution. Drop these columns or use ridge "
        "(alpha > 0)."
    )
