"""Turn an exact fit (rows, LeastSquaresState, ExactSolution) into OLSResults' inputs.

The only place that decides on refinement for in-memory fits: where the R factor says
digits are at risk, the solution is refined against the rows with double-double
residuals, and the sums of squares come from those residuals; otherwise they are read
off the R factor without touching the rows again.

Example:
    >>> import torch
    >>> from torchlinreg.exact.state import fit_exact
    >>> X = torch.arange(6.0, dtype=torch.float64)[:, None]
    >>> y = 3 + X[:, 0] + torch.tensor([0.1, -0.1, 0.0, 0.1, -0.1, 0.0], dtype=torch.float64)
    >>> state, sol = fit_exact(X, y[:, None])
    >>> kw = results_from_fit(X, y, None, True, state, sol)
    >>> kw["nobs"], kw["k_constant"]
    (6, 1)
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError, DegenerateWarning, RankWarning
from ..exact.ddouble import dd_add_fast, dd_from, two_prod
from ..exact.linalg import condition_number, inverse_and_kappa
from ..exact.refine import (
    Estimates,
    ShiftedFactor,
    refine_blocks,
    refine_solution,
    risks_and_kappa,
    shifted_factor,
    working_kappa,
)
from ..exact.rowpasses import block_rows
from ..exact.solve import ACCURACY_WARNING
from .covariance import Reference, about_reference, reference_columns, reference_inverse

_SUMS = ("rss", "ess", "centered_tss", "uncentered_tss")
SMALL_WORK = 1 << 16  # rows x params x targets below which an in-memory fit always refines
RESIDUAL_TOL = 1e-12  # relative error of the residuals that HC covariances may inherit
SUM_VALUES = 1 << 17  # the QR factor's target columns are read this many values at a time


def as_tensor(a) -> Tensor:
    """A tensor from a tensor, numpy array, list or pandas object (copied if read-only)."""
    if isinstance(a, Tensor):
        return a
    arr = np.asarray(a)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def results_from_fit(
    X: Tensor,
    Y: Tensor,
    sample_weight: Tensor | None,
    fit_intercept: bool,
    state: object,
    solution: object,
    *,
    feature_names: Sequence[str] | None = None,
    target_names: Sequence[str] | None = None,
    refine: bool | None = None,
    warn: bool = False,
) -> dict:
    """Keyword arguments of ``OLSResults`` for an exact fit (see ``OLSResults.from_fit``)."""
    if np.any(np.asarray(getattr(solution, "alpha", 0.0), dtype=np.float64) != 0.0):
        raise ValueError(
            "OLS statistics need an unpenalised fit (alpha=0); ridge estimates are biased "
            "and their t/F statistics are not defined here"
        )
    X, Y = as_tensor(X), as_tensor(Y)
    sample_weight = None if sample_weight is None else as_tensor(sample_weight)
    squeeze = Y.ndim == 1
    # X and Y stay in their dtype (NOTE [memory of the statistics])
    Y = Y.reshape(X.shape[0], -1)
    w = None if sample_weight is None else sample_weight.to(torch.float64).reshape(-1)
    c, d = int(fit_intercept), X.shape[1]
    p = c + d
    aliased = tuple(int(a) for a in solution.aliased)  # type: ignore[attr-defined]
    keep = [j for j in range(p) if j - c not in aliased]
    # the risk estimate's temporaries come and go before R is copied out of the state
    targets, kappa = _targets_to_refine(X, Y, p, state, bool(aliased), refine)
    R, sums = _factor_and_sums(state, p, fit_intercept, solution.rss, bool(aliased))  # type: ignore[attr-defined]
    names = list(feature_names) if feature_names is not None else [f"x{j + 1}" for j in range(d)]
    if warn_squares_out_of_range(state, names, target_names, aliased):
        targets = []  # NOTE [squares out of range]: the pieces' products would underflow
    # every target's parameters and sums from the factor; refined targets then replace theirs
    coef = solution.coef.to(torch.float64).T  # type: ignore[attr-defined]
    icpt = solution.intercept.to(torch.float64)[None]  # type: ignore[attr-defined]
    full = torch.cat([icpt, coef]) if fit_intercept else coef.clone()
    if not fit_intercept:  # R has no ones column to centre with: one pass over Y
        sums["centered_tss"] = _centered_tss(Y.to(torch.float64), w)
    factor = None  # NOTE [refinement about the shift] (made when needed: a Gram state
    # factors its whole Gram for it)
    gram_factor = getattr(state, "method", "qr") == "gram"  # R is the Gram's, until replaced
    if targets:
        gram = getattr(state, "method", "qr") == "gram"
        # NOTE [one certified step] (in exact/refine.py): large fits only
        large = not aliased and X.shape[0] * p * Y.shape[1] > SMALL_WORK
        if kappa is None and not aliased and (gram or large):  # the policy did not look
            kappa = working_kappa(state, p)
        # NOTE [the Gram factor in refinement]; a Gram state's kappa is squared already
        untrusted = gram and (aliased or not _gram_factor_trusted(kappa))
        # the raw factor, or the one about the offsets where they dominate the spread
        factor = R if aliased else shifted_factor(state, p, fit_intercept) or ShiftedFactor(R, None)
        if untrusted:
            factor = _householder_factor(X, w, fit_intercept)
            R, gram_factor = factor.raw_r(), False
        step = None if not large else kappa**0.5 if untrusted else kappa
        # NOTE [a Gram factor about offsets is not certified]: confirming passes instead
        if gram and not untrusted and factor.shift is not None:
            step = None
        fit = _refine(X, Y, w, fit_intercept, factor, solution, targets, aliased, step, sums)
        if gram and not untrusted and not fit.converged:  # the Gram R fell short after all
            factor = _householder_factor(X, w, fit_intercept)
            R, gram_factor = factor.raw_r(), False
            step = kappa**0.5 if large else None
            fit = _refine(X, Y, w, fit_intercept, factor, solution, targets, aliased, step, sums)
        if not fit.converged and fit.last_correction > ACCURACY_WARNING:
            _warn_unconverged(fit, [target_names[t] if target_names else f"y{t + 1}"
                                    for t in targets])  # fmt: skip
        full[:, targets] = fit.params + fit.params_lo
        for key in _SUMS:
            sums[key] = np.array(sums[key], dtype=np.float64, copy=True)
            sums[key][targets] = _np(getattr(fit, key))
        if fit_intercept:
            _consistent_ess(sums)
    if warn and aliased:
        warnings.warn(
            f"design is rank-deficient (rank {len(keep)} of {p}); aliased columns "
            f"{[names[a] for a in aliased]} get NaN; pass rcond= to change the cut-off",
            RankWarning,
            stacklevel=2,
        )
    design = _design_fn(X, c, d, keep, X.device)
    shifted = None if aliased else _offset_factor(factor, state, p, fit_intercept)
    inverse = None if shifted is None else _accurate_inverse(shifted, R)
    reference = None
    if not fit_intercept and not aliased:  # NOTE [columns about a reference column]
        reference, inverse = _reference_factor(design, w, R, gram_factor)

    def rows(shift: Tensor | Reference | None = None) -> tuple[Tensor, Tensor]:
        """The whitened design and residuals; with ``shift`` the design's columns after the
        intercept about it, subtracted before the weights (exact near the offset, where the
        whitened rows' subtraction was not: NOTE [refinement about the shift]), or with a
        Reference the columns about a reference column (no intercept)."""
        A = design(None)
        resid = residuals(A, Y.to(torch.float64), full[keep])
        if isinstance(shift, Reference):
            A = about_reference(A, shift)
        elif shift is not None:
            A[:, 1:] -= shift
        s = A.new_ones(A.shape[0]) if w is None else w.sqrt()
        return s[:, None] * A, s[:, None] * resid

    return _kwargs(
        R=R,
        full=full,
        keep=keep,
        aliased=aliased,
        c=c,
        names=names,
        exog_names=feature_names,
        design=design,
        rows=rows,
        endog=Y,
        sums=sums,
        nobs=int(X.shape[0]),
        weights=None if w is None else _np(w),
        target_names=target_names,
        squeeze=squeeze,
        basis_rinv=inverse,
        gram_factor=gram_factor,
        robust_shift=shifted,
        robust_reference=reference,
    )


def _consistent_ess(sums: dict) -> None:
    """ess from ``centered_tss - rss`` where the refined ess disagrees with them.

    tss comes from y alone and rss from double-double residuals, both accurate; ess is
    carried to the last correction in float64 (NOTE [one certified step]), and on a design
    with a condition number near 1e11 that carry was 1e-3 of tss off, R2 3e-6 off without a
    word. Where they agree to 1e-12 of tss the ess kept is the fitted values' own (the
    accurate one when R2 is near 0)."""
    tss, rss, ess = sums["centered_tss"], sums["rss"], sums["ess"]
    off = np.abs(ess + rss - tss) > 1e-12 * np.abs(tss)
    if off.any():
        sums["ess"] = np.where(off, tss - rss, ess)


def _warn_unconverged(fit, names: list) -> None:
    """Refinement that stopped short leaves the coefficients about as far off as its last
    correction (no silent stall: NOTE [refinement about the shift] in exact/refine.py)."""
    shown = ", ".join(str(n) for n in names[:5]) + (" and more" if len(names) > 5 else "")
    off = fit.last_correction
    warnings.warn(
        RankWarning(
            f"refinement of {shown} against the rows did not converge: the coefficients may "
            f"be off by about {off:.1e} (relative, twice its last corrections) and the "
            "statistics with them; centre or rescale the columns (subtract each column's "
            "mean) and fit again",
            error=off,
            method="qr",
        ),
        stacklevel=4,
    )


def _offset_factor(factor, state, p: int, intercept: bool) -> Callable[[], ShiftedFactor | None]:
    """What gives, once and when first asked, the design's factor about its offsets where
    they dominate the spread (NOTE [refinement about the shift] in exact/refine.py), None
    otherwise: the one refinement used if it ran (``factor``), else the state's (a Gram
    state factors its whole Gram for it, so only when a statistic needs it)."""

    @functools.cache
    def shifted() -> ShiftedFactor | None:
        f = shifted_factor(state, p, intercept) if factor is None else factor
        return f if isinstance(f, ShiftedFactor) and f.offsets_dominate() else None

    return shifted


def _accurate_inverse(shifted: Callable[[], ShiftedFactor | None], R: Tensor) -> Callable:
    """What computes ``R^-1`` of the raw design and a condition bound, when the covariance
    is asked for: ``M R_s^-1`` about the offsets where they dominate (the raw factor then
    holds the spread only to ``eps * offset``: the covariance it gave was 14-58% off for a
    column near 1e9 with a spread of 0.01), from the raw design factor ``R`` otherwise."""

    def inverse() -> tuple[Tensor, float]:
        f = shifted()
        return inverse_and_kappa(R) if f is None else f.raw_inverse()

    return inverse


# eps kappa of the raw factor past which a fit without an intercept looks for columns to
# take about a reference column: the covariance's bound (4 eps kappa) is then within 64x of
# ACCURACY_WARNING (NOTE [columns about a reference column] in covariance.py)
_REFERENCE_GATE = ACCURACY_WARNING / 256


def _reference_factor(design, w: Tensor | None, R: Tensor, squared: bool):
    """What gives, once and when first asked, the :class:`Reference` of a design without
    an intercept and the R factor of its whitened rows about it, or None (the raw factor
    serves: NOTE [columns about a reference column] in covariance.py); and the inverse
    for the covariance, ``P`` from that factor where there is one, ``R^-1`` otherwise.
    ``squared``: ``R`` came from a Gram (its kappa squares)."""
    kappa: list[float] = []  # the raw factor's, once the inverse has read it

    @functools.cache
    def factor() -> tuple[Reference, Tensor] | None:
        k = kappa[0] if kappa else inverse_and_kappa(R)[1]
        if not _EPS * (k * k if squared else k) > _REFERENCE_GATE:
            return None
        A = design(None)
        ref = reference_columns(A)
        if ref is None:
            return None
        Y = about_reference(A, ref)
        del A
        if w is not None:
            Y *= w.sqrt()[:, None]
        return ref, torch.linalg.qr(Y, mode="r").R

    def reference() -> Reference | None:
        f = factor()
        return None if f is None else f[0]

    def inverse() -> tuple[Tensor, float]:
        inv, k = inverse_and_kappa(R)
        kappa[:] = [k]
        f = factor()
        return (inv, k) if f is None else reference_inverse(f[1], f[0])

    return reference, inverse


# NOTE [the Gram factor in refinement]
# A Gram state's factor squares kappa, so the Gram route used to refine (and take the
# covariance) from one Householder QR of a float64 copy of [1 | X]: at 1M x 100 that copy
# is 800 MB and its QR 1.5-1.8 s, four times the fit, paid whenever one target was at risk,
# and a target unrelated to X is at risk at a million rows (its coefficients are small
# next to the residual). Refinement only needs a factor whose R'R is close to the rows'
# A'A: it contracts the error by about eps * kappa^2 per step with the Gram factor. Where
# that is at most 1e-12 (kappa of the scaled, shifted design below ~70, what the policy's
# risk estimate already computes) the factor is as good as a Householder R for the
# covariance too, and refinement runs from it; should it still fail to converge, the
# Householder R is taken and the refinement redone. Rank-deficient fits take the
# Householder R as before.

_EPS = torch.finfo(torch.float64).eps
_GRAM_FACTOR_TOL = 1e-12  # NOTE [the Gram factor in refinement]


def _gram_factor_trusted(kappa: float) -> bool:
    """Whether a Gram state's own factor serves refinement and the covariance: eps times
    its (squared) kappa at most ``_GRAM_FACTOR_TOL``."""
    return _EPS * kappa <= _GRAM_FACTOR_TOL


# NOTE [a Gram factor about offsets is not certified]
# One certified step (NOTE [one certified step] in exact/refine.py) rests on a bound of how
# far the factor's R'R is from the rows' A'A: p eps kappa^2 for a Gram factor. A hunt found
# it short for a Gram factor taken about offsets that dwarf the spread (three columns
# near -4.5e8 and -6.6e8 with spreads 0.002-0.18, 20,000 rows): the step was certified
# and the coefficients left 3.7e-6 of a standard error off (2.5e-5 weighted), where the
# confirming passes reach the exact rational solution. Such a fit now refines with
# confirming passes (four there); a Householder factor, and a Gram one without offsets
# that dominate, keep the certified step.

# NOTE [memory of the statistics]
# The statistics must not cost a copy of the rows up front. X and Y keep the dtype they came
# in (float32 rows are not converted whole: the state absorbed them block by block, in
# float64); what reads the rows again converts a block at a time: refinement gets float64
# blocks of at most 2^20 values, those a pass takes (``block_rows``: each block is split
# into several float64 copies, and 4096 rows at 4,000 columns were 1 GB; the products are
# double-double either way, so the numbers agree to rounding), and the design for
# residuals, HC covariances and leverage is built in float64 when asked for. Only the Gram
# route's refinement may factor one float64 copy of [1 | X], where its own factor is not
# trusted (NOTE [the Gram factor in refinement]).


def _centered_tss(Y: Tensor, w: Tensor | None) -> np.ndarray:
    sw = float(Y.shape[0]) if w is None else w.sum()
    wy = Y if w is None else w[:, None] * Y
    dev = Y - wy.sum(0) / sw
    return _np(((dev if w is None else w[:, None] * dev) * dev).sum(0))


def _refine(X, Y, w, fit_intercept, R, solution, targets, aliased, kappa=None, sums=None):
    """Refine ``targets`` against the rows (``exact.refine``), reading them in float64
    blocks where X is not float64 or has aliased columns (NOTE [memory of the
    statistics]); otherwise as one float64 matrix, as ``refine_solution`` takes it. A large
    fit (``kappa`` given) passes the unrefined ``sums`` on (NOTE [bits in refinement])."""
    every = len(targets) == Y.shape[1]
    estimates = None
    if kappa is not None and sums is not None:
        estimates = Estimates(
            rss=torch.as_tensor(sums["rss"][targets], dtype=torch.float64),
            ess=torch.as_tensor(sums["ess"][targets], dtype=torch.float64),
            sw=float(X.shape[0]) if w is None else float(w.sum()),
            rows=X.shape[0],
        )
    coef = solution.coef if every else solution.coef[targets]
    intercept = solution.intercept if every else solution.intercept[targets]
    # blocks no larger than a pass takes (NOTE [blocks in cache] in exact/products.py),
    # converted one at a time; float64 rows go whole and the pass cuts its own blocks
    rows = block_rows(X.shape[1], len(targets))
    whole = X.dtype == Y.dtype == torch.float64 and not aliased
    if whole:
        Yt = Y if every else Y[:, targets]
        return refine_solution(
            X, Yt, w, fit_intercept, R, coef, intercept, aliased=aliased, factor_kappa=kappa,
            estimates=estimates,
        )  # fmt: skip

    def blocks():
        for lo in range(0, X.shape[0], rows):
            Yb = Y[lo : lo + rows]
            yield (
                X[lo : lo + rows],
                Yb if every else Yb[:, targets],
                None if w is None else w[lo : lo + rows],
            )

    return refine_blocks(
        blocks, fit_intercept, R, coef, intercept, aliased=aliased, factor_kappa=kappa,
        estimates=estimates,
    )  # fmt: skip


def residuals(A: Tensor, Y: Tensor, b: Tensor) -> Tensor:
    """``Y - A b``, each to about float64 rounding: the residuals of the parameters users
    get, which HC covariances square. ``A`` ``(n, q)``, ``Y`` ``(n, k)``, ``b`` ``(q, k)``.

    In float64 the sum may cancel most of ``Y`` (offsets, fitted values far larger than
    the residuals); its error is at most ``(q + 1) eps (|y| + sum_j |a_j| |b_j|)``. Where
    that bound exceeds ``RESIDUAL_TOL`` of the residuals' rms, they are accumulated in
    double-double instead (~25 flops per element, one pass per column); otherwise the
    float64 product is already that accurate and the extra pass is skipped.

    Example:
        >>> A = torch.tensor([[1.0, 1e8], [1.0, 1e8 + 1]], dtype=torch.float64)
        >>> Y = torch.tensor([[1e8 + 0.25], [1e8 + 1.5]], dtype=torch.float64)
        >>> residuals(A, Y, torch.tensor([[0.1], [1.0]], dtype=torch.float64)).flatten()
        tensor([0.1500, 0.4000], dtype=torch.float64)
    """
    r = Y - A @ b
    eps = torch.finfo(torch.float64).eps
    size = Y.abs().amax(0) + torch.linalg.vector_norm(A, ord=math.inf, dim=0) @ b.abs()
    rms = torch.linalg.vector_norm(r, dim=0) / math.sqrt(max(A.shape[0], 1))
    if bool(((A.shape[1] + 1) * eps * size <= RESIDUAL_TOL * rms).all()):
        return r
    return _residuals_dd(A, Y, b)


def _residuals_dd(A: Tensor, Y: Tensor, b: Tensor) -> Tensor:
    r = dd_from(Y)
    for j in range(A.shape[1]):
        col = A[:, j : j + 1].contiguous()  # a strided column makes each of ~25 ops 6x slower
        r = dd_add_fast(r, two_prod(col, -b[j : j + 1]))
    return r[0] + r[1]


def _targets_to_refine(X, Y, p, state, aliased, refine) -> tuple[list[int], float | None]:
    """The targets whose solution is refined against the rows (NOTE [refinement policy]),
    and the working kappa where the risk estimate read it (None where it did not run).

    NOTE [refinement policy]
    Small problems (rows x params x targets <= SMALL_WORK) always refine: it costs
    microseconds and gives the last digits (the NIST sets). Rank-deficient ones refine every
    target, to the dropped-column (R lm-style) solution. Otherwise each target is refined
    only if the factor says its own digits are at risk (``refine.targets_at_risk``): one
    ill-conditioned target among a thousand costs one target's refinement, not a thousand.
    The risk estimate is a property of the design and of each target's residual relative to
    its fit, not of the number of rows, so more rows of the same data do not switch a target
    to refinement, with one exception: a target with nothing to fit (coefficients that are
    only noise, shrinking like 1/sqrt(n)) drifts towards the bound as rows are added. Its
    errors are taken next to the standard errors, which shrink alike (NOTE [errors next to
    the standard error] in exact/refine.py): such a target is flagged from 1e7-4e7 rows, no
    longer from a million, and one orthogonal to X not at all, where it was at any size.
    One certified step and the Gram factor keep a refinement to about one extra pass (NOTE
    [one certified step]). ``refine=True/False`` forces every target.
    """
    k = Y.shape[1]
    if refine is not None:
        return (list(range(k)) if refine else []), None
    if aliased or X.shape[0] * max(p, 1) * k <= SMALL_WORK:
        return list(range(k)), None
    risky, kappa = risks_and_kappa(state, p)
    return [t for t, r in enumerate(risky) if r], kappa


def _design_fn(X: Tensor | None, c: int, d: int, keep: list[int], device: torch.device):
    """The design matrix of the kept parameters for new rows (or the training rows)."""
    cols = [j - c for j in keep if j >= c]

    def design(Xn: Tensor | None) -> Tensor:
        if Xn is None:
            if X is None:
                raise DataError(
                    "this needs the training rows, which a streamed or loaded fit does not "
                    "keep; pass new rows (get_prediction(X)) or refit in memory"
                )
            Xn = X  # float32 rows are converted into the design, never copied whole first
        else:
            Xn = Xn.to(device=device, dtype=torch.float64).reshape(Xn.shape[0], d)
        ones = int(c and 0 in keep)
        A = Xn.new_empty((Xn.shape[0], ones + len(cols)), dtype=torch.float64)
        A[:, :ones] = 1.0
        A[:, ones:] = Xn if len(cols) == d else Xn[:, cols]
        return A

    return design


def _kwargs(*, R, full, keep, aliased, c, names, exog_names, target_names, squeeze, **rest) -> dict:
    """The OLSResults keyword arguments both constructors share.

    ``exog_names`` are the feature names the fit was given (None when it had none): new rows
    for predictions are checked against them, as ``predict`` checks them.
    """
    p = c + len(names)
    params = _np(full).copy()
    gone = [j for j in range(p) if j not in keep]
    params[gone] = np.nan
    # full rank: R itself (indexing would copy it: 800 MB at 10,000 columns)
    rk = torch.linalg.qr(R[:p, :p][:, keep], mode="r").R if len(keep) < p else R[:p, :p]
    aliasing = None
    if gone:  # A_gone = A_keep C in training (NOTE [rows that break the aliasing])
        q, r = torch.linalg.qr(R[:p, :p][:, keep], mode="reduced")
        C = torch.linalg.solve_triangular(r, q.T @ R[:p, :p][:, gone], upper=True)
        aliasing = (keep, gone, C)
    return dict(
        aliasing=aliasing,
        params=params,
        basis_params=full[keep],
        basis_r=rk,
        basis_map=None,  # the kept parameters themselves (OLSResults._embed)
        k_constant=c,
        aliased_params=[a + c for a in aliased],
        param_names=(["const"] if c else []) + list(names),
        exog_names=None if exog_names is None else [str(n) for n in exog_names],
        n_exog=len(names),
        target_names=list(target_names)
        if target_names
        else [f"y{t + 1}" for t in range(full.shape[1])],
        squeeze=squeeze,
        # statsmodels' condition number (of [1 | X]); estimated above 512 columns, when read
        # (full rank: R is kept as basis_r anyway)
        condition_number=partial(condition_number, rk)
        if len(keep) == p
        else condition_number(R[:p, :p]),
        **rest,
    )


def _householder_factor(X: Tensor, w: Tensor | None, fit_intercept: bool) -> ShiftedFactor:
    """A Householder factor of the rows, about the first row of positive weight where
    there is an intercept (NOTE [refinement about the shift] in exact/refine.py; a row of
    weight zero may hold anything, NOTE [shifts from rows that count] in summaries.py)."""
    # one float64 copy of the rows (cat converts float32 as it copies): LAPACK factors it
    shift = None
    if fit_intercept and X.shape[0]:
        live = None if w is None else torch.nonzero(w > 0).reshape(-1)
        first = int(live[0]) if live is not None and live.numel() else 0
        shift = X[first].to(torch.float64)
    ones = torch.ones(X.shape[0], 1, dtype=torch.float64, device=X.device)
    A = torch.cat([ones, X], 1) if fit_intercept else X.to(torch.float64)
    if shift is not None:
        A[:, 1:] -= shift
    if w is not None:
        A = A * w.sqrt()[:, None]
    R = torch.linalg.qr(A, mode="r").R
    if R.shape[0] < A.shape[1]:  # fewer rows than columns: pad to square
        R = torch.cat([R, R.new_zeros(A.shape[1] - R.shape[0], A.shape[1])])
    return ShiftedFactor(R, shift)


def _factor_and_sums(state, p: int, fit_intercept: bool, rss: Tensor, aliased: bool):
    """``R[:p, :p]`` (the design's factor) and the sums of squares read
    off the R factor of ``[1 | X | Y]`` (no pass over the rows).

    The QR state's target columns are read a few at a time (with 1000 targets R is 10 MB,
    NOTE [memory of the statistics]); a Gram state builds its factor whole, once.
    """
    m = int(state.n_features) + int(state.n_targets) + int(fit_intercept)
    step = max(1, SUM_VALUES // m) if getattr(state, "method", "qr") == "qr" else m
    if step >= m - p:
        R = state.r_factor().to(torch.float64)
        design = R[:p, :p]  # a view, unless it would keep many target columns alive
        design = design.clone() if R.numel() > 2 * design.numel() else design
        parts = [_column_sums(R[:, p:], p, fit_intercept)]
        del R
    else:
        design = state.r_factor(slice(0, p)).to(torch.float64)[:p]
        cols = [slice(lo, min(lo + step, m)) for lo in range(p, m, step)]
        parts = [_column_sums(state.r_factor(j).to(torch.float64), p, fit_intercept) for j in cols]
    uncentered, centered, ess = (
        torch.cat(v) if v[0] is not None else None for v in zip(*parts, strict=True)
    )
    rss = rss.to(torch.float64).reshape(-1)
    if aliased:
        ess = (centered if fit_intercept else uncentered) - rss
    return design, {
        "rss": _np(rss),
        "ess": _np(ess),
        "centered_tss": None if centered is None else _np(centered),
        "uncentered_tss": _np(uncentered),
    }


def _column_sums(ycols: Tensor, p: int, fit_intercept: bool):
    c = int(fit_intercept)
    centered = (ycols[c:] ** 2).sum(0) if fit_intercept else None
    return (ycols**2).sum(0), centered, (ycols[c:p] ** 2).sum(0)


# NOTE [squares out of range]
# Least squares is exact under scaling by powers of two, but float64 squares are not: data
# whose centred columns lie below about 1e-150 have sums of squares in the subnormal range
# (digits lost; below about 1e-162 they are 0), and above about 1e153 they overflow. The
# standard errors (through (X'X)^-1, which then over- or underflows), R2, F and the
# log-likelihood are then inf, NaN or silently off (R2 4e-6 off at 1e-160), and the
# refinement's error-free products underflow: it moved coefficients that the factor had
# right by 2.5e-5. Such columns (read off the R factor: its entries are the data's size,
# only their squares leave the range) skip refinement and get one DegenerateWarning that
# names them and says to rescale; the coefficients from the factor are kept. The grouped
# fits test their Grams alike (NOTE [squares out of range] in models/groupfit.py).
_SQUARES_HIGH, _SQUARES_LOW = 2.0**1016, 2.0**-1000


def squares_out_of_range(state: object) -> np.ndarray:
    """Per column of ``[X | Y]``: whether its (centred, with an intercept) sum of squares
    leaves float64's normal range (NOTE [squares out of range]), read off the state's
    factor, whose entries are the data's size."""
    r = state.centred_summary().r.to(torch.float64)  # type: ignore[attr-defined]
    sq = (r * r).sum(0)
    big = r.abs().amax(0) if r.shape[0] else torch.zeros_like(sq)
    return _np(~torch.isfinite(sq) | (sq > _SQUARES_HIGH) | ((big > 0) & (sq < _SQUARES_LOW)))


def warn_squares_out_of_range(
    state: object, names: Sequence, targets: Sequence | None, aliased: Sequence[int] = ()
) -> bool:
    """One DegenerateWarning naming the columns and targets whose squares leave float64
    (NOTE [squares out of range]); whether there were any."""
    wild = squares_out_of_range(state)
    d = len(names)
    # aliased columns are numerically constant: not a question of range
    flagged = [str(names[j]) for j in range(d) if wild[j] and j not in aliased]
    k = len(wild) - d
    tnames = list(targets) if targets else [f"y{t + 1}" for t in range(k)]
    flagged += [str(tnames[t]) for t in range(k) if wild[d + t]]
    if not flagged:
        return False
    warnings.warn(
        f"{', '.join(flagged[:5])}{' and others' if len(flagged) > 5 else ''} have "
        "centred values beyond about 1e150 or below 1e-150: their sums of squares over- or "
        "underflow float64, so standard errors, t and p-values, R2, F and the "
        "log-likelihood may be inf, NaN or off by any amount (the coefficients, taken "
        "from the factor, are not refined); rescale y and X (e.g. by a power of ten) and "
        "fit again",
        DegenerateWarning,
        stacklevel=4,
    )
    return True


def results_from_state(
    state: object,
    solution: object,
    *,
    weighted: bool,
    y_was_1d: bool,
    feature_names: Sequence[str] | None = None,
    target_names: Sequence[str] | None = None,
) -> dict:
    """``OLSResults`` inputs from the least-squares state alone, for streamed or loaded fits.

    Everything non-robust is read off the R factor: parameters, covariance, t and F tests,
    R2, intervals for new rows. What needs the rows again (HC covariances, residuals,
    in-sample predictions) raises a DataError that says so. Without an intercept the
    centred total sum of squares is unknown (the uncentred R2 is the one reported). The
    log-likelihood of a weighted fit takes ``sum(log w)`` from the state: NaN for a state
    saved before it was kept, -inf when a weight is zero (as statsmodels' WLS).
    """
    if np.any(np.asarray(getattr(solution, "alpha", 0.0), dtype=np.float64) != 0.0):
        raise ValueError("OLS statistics need an unpenalised fit (alpha=0)")
    c = int(state.fit_intercept)  # type: ignore[attr-defined]
    d = int(state.n_features)  # type: ignore[attr-defined]
    p = c + d
    aliased = tuple(int(a) for a in solution.aliased)  # type: ignore[attr-defined]
    keep = [j for j in range(p) if j - c not in aliased]
    coef = solution.coef.to(torch.float64).T  # type: ignore[attr-defined]
    icpt = solution.intercept.to(torch.float64)[None]  # type: ignore[attr-defined]
    full = torch.cat([icpt, coef]) if c else coef
    R, sums = _factor_and_sums(state, p, bool(c), solution.rss, bool(aliased))  # type: ignore[attr-defined]
    if aliased:
        full = _kept_solution(R, full, keep)
    if not c:
        sums["centered_tss"] = np.full(full.shape[1], np.nan)
    names = list(feature_names) if feature_names is not None else [f"x{j + 1}" for j in range(d)]
    warn_squares_out_of_range(state, names, target_names, aliased)
    # the covariance and a second pass over the blocks take the state's factor about its
    # offsets where they dominate (NOTE [blocks about the offsets] in robust_blocks.py)
    shifted = None if aliased else _offset_factor(None, state, p, bool(c))
    return _kwargs(
        R=R,
        full=full,
        keep=keep,
        aliased=aliased,
        c=c,
        names=names,
        exog_names=feature_names,
        design=_design_fn(None, c, d, keep, R.device),
        rows=None,
        endog=None,
        sums=sums,
        nobs=int(state.n_samples),  # type: ignore[attr-defined]
        weights=None,
        weighted=weighted,
        sum_log_weights=_sum_log_weights(state) if weighted else 0.0,
        target_names=target_names,
        squeeze=y_was_1d,
        gram_factor=getattr(state, "method", "qr") == "gram",
        basis_rinv=None if shifted is None else _accurate_inverse(shifted, R),
        robust_shift=shifted,
    )


def _kept_solution(R: Tensor, full: Tensor, keep: list[int]) -> Tensor:
    """``full`` ``(p, k)`` with the kept parameters those of the model without the aliased
    columns, as R's ``lm`` (NA) and the in-memory fit report them.

    NOTE [aliased columns from a state]
    A streamed or loaded fit took the minimum-norm solution's kept entries as the
    parameters, and paired them with the reduced model's standard errors: stackloss with a
    column 2 AIRFLOW + WATERTEMP gave AIRFLOW -0.193 (t -1.43) for 0.716 (t 5.31), and
    get_prediction means of -46.2 for 38.8, with nothing said beyond "rank-deficient". Both
    solutions have the same fitted values, ``A b``: the kept parameters are the least-squares
    fit of ``R b`` by ``R``'s kept columns, one small QR of the factor, no rows.
    """
    d = R.shape[0]
    Rk = R[:d, :d][:, keep]
    q, rk = torch.linalg.qr(Rk, mode="reduced")
    target = R[:d, :d] @ torch.nan_to_num(full)
    out = full.clone()
    out[keep] = torch.linalg.solve_triangular(rk, q.T @ target, upper=True)
    return out


def _sum_log_weights(state) -> float:
    """``sum(log w)`` over every row absorbed: statsmodels' WLS takes log(0) = -inf for a
    zero weight (its llf is then -inf), the state keeps the sum over the positive ones."""
    if state.n_nonzero < state.n_samples:
        return -math.inf
    return state.sum_log_weights
