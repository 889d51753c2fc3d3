"""Least squares from centred moments, batched: one solve per summary (window or group).

The parameters come from a Cholesky factor of each summary's correlation matrix (columns
scaled to unit length, so only the correlation's condition number counts), the intercept
as ``mean(y) - mean(x) b``. Summaries whose columns are collinear (a column constant
within them, a combination of others) are NaN, and one warning counts them; summaries near
that, where the moments' route may have lost digits, are counted in a warning too.

Example:
    >>> from torchlinreg.models.windows import Moments
    >>> t = lambda v: torch.tensor(v, dtype=torch.float64)
    >>> M = t([[[2.0, 4.0], [4.0, 8.5]]])
    >>> m = Moments(t([3.0]), t([[1.0, 2.0]]), M, t([3.0]), t([[2.0, 8.5]]))
    >>> solve_moments(m, torch.tensor([True]), True)["params"].round(12).tolist()
    [[-0.0, 2.0]]
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from ..errors import DegenerateWarning, RankWarning
from ..exact.solve import ACCURACY_WARNING
from .windows import Moments

# 1 - R^2 of a column on the others (the factor's squared diagonal, columns scaled):
# below _ALIASED the window is NaN; below _AT_RISK its parameters may have lost digits
_ALIASED = 1e-13
_AT_RISK = 1e-6
_FLAT = 1024.0
_SSR_RISK = 1e-11
# NOTE [moments' error]
# The moments' route solves C bs = gs with C, gs off by delta per entry (relative):
# Cholesky's (d + 2) eps, the sums' sqrt(n) eps, the moments' eps raw / G_jj. With
# kappa = trace(C^-1) >= ||C^-1|| and r = ||dC|| |bs| + ||dg|| <= d delta (|bs| + sqrt gyy),
# |db| <= kappa r; ssr from gyy - g'b is off by b'r, from the rows by r'C^-1 r plus their
# rounding; C^-1 (bse) by kappa d delta. The pivot-only claim ("lost log10(1/min pivot)
# digits") was 1.5 digits low (Fair +1e6 without an intercept: claimed 12, lost 13.8) and
# said nothing of ssr, bse (off 6e-4 with x2 = x1 + 1e-6 noise) or R2. Random sweeps
# (offsets 1..1e8, collinearity 1e-3..1e-8, weights, with and without an intercept): the
# bounds sat 20-50x above the errors; _ENTRY and the rows' factor carry margin for that.
# The rows' form holds only where the caller recomputes ssr from rows (rolling.py); grouped
# moments have none (solve_moments, rows=False): their ssr is gyy - g'b, off by
# [-b; 1]' dG [-b; 1] <= |b| r + delta gyy, whatever the risk (the rows' form said 8e-6
# where ssr was 1.1e-4 off). groupstate adds its merges' rounding to delta (``extra``).
_ENTRY = 4.0
_RAW = 8.0
# up to this many features the factor runs as vector operations over the batch
_SMALL = 12


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def solve_moments(
    m: Moments,
    full: Tensor,
    fit_intercept: bool,
    what: str = "windows",
    thin: Tensor | None = None,
    extra: Tensor | None = None,
    dmean: Tensor | None = None,
) -> dict:
    """Parameters, unscaled covariances and sums of squares of every summary, batched.

    ``full``: the summaries that hold enough rows; ``what`` names them in warnings.
    ``thin``: those with fewer rows of nonzero weight than parameters, which get no fit
    whatever their pivots say (rounding can leave a singular summary's pivot above the
    aliasing threshold) and are counted with the aliased ones. ``extra`` ``(m,)``: a
    relative error of the moments' entries beyond the bounds' own (groupstate's merges),
    ``dmean`` ``(m, q)``: the means' absolute error. There are no rows here: ssr stays
    ``gyy - g'b`` and its bound the linear one (NOTE [moments' error]).
    """
    fit = solve_batch(m, full, fit_intercept, extra=extra, dmean=dmean, rows=False)
    if thin is not None:
        no_fit_where(fit, thin & full)
    # said for what it is, not as collinearity or loose bounds (NOTE [values out of range])
    wild = full & _squares_wild(m)
    _warn_squares_wild(wild, what)
    aliased, at_risk = fit["aliased"] & ~wild, fit["at_risk"] & ~wild
    _warn(aliased, at_risk, fit["low"], what, fit["err"], fit["bad"] | wild)
    return {
        "params": _np(fit["params"]), "cov": _np(fit["cov"]), "ssr": _np(fit["ssr"]),
        "ctss": _np(fit["ctss"]), "utss": _np(fit["utss"]), "bad": _np(fit["bad"]).astype(bool),
        "b": fit["b"], "risk": fit["risk"],
    }  # fmt: skip


def no_fit_where(fit: dict, thin) -> None:
    """Mark the summaries ``thin`` (fewer rows of nonzero weight than parameters, among
    those with enough rows) as aliased: no fit, counted in the NaN warning. Their moments
    are singular, but rounding can leave a pivot above the aliasing threshold (a window
    of macrodata with 2 weighted rows for 3 parameters got finite parameters and R2 = 1
    with only a "nearly collinear" warning): the count decides. ``fit`` holds tensors or
    numpy arrays (``bad``, ``aliased``, ``at_risk``), changed in place."""
    thin = thin & ~fit["bad"]
    fit["bad"] = fit["bad"] | thin
    fit["aliased"] = fit["aliased"] | thin
    fit["at_risk"] = fit["at_risk"] & ~thin


def solve_batch(
    m: Moments,
    full: Tensor,
    fit_intercept: bool,
    cov: str = "full",
    extra: Tensor | None = None,
    dmean: Tensor | None = None,
    rows: bool = True,
    offsets: Tensor | None = None,
) -> dict:
    """``solve_moments``' tensors, without warnings: ``aliased`` and ``at_risk`` say which.

    ``cov="diag"`` gives only the diagonal of each unscaled covariance ``(m, p)`` (the
    standard errors' part): no ``p x p`` matrix per summary is formed. ``rows``: the
    caller recomputes the ``risk`` summaries' ssr from their rows (rolling.py does);
    without them the ssr bound stays the linear one. ``extra``, ``dmean``: as
    ``solve_moments``.
    """
    q = m.mean.shape[1]
    d = q - 1
    eps = torch.finfo(torch.float64).eps
    G = m.M if fit_intercept else m.M + m.w[:, None, None] * m.mean[:, :, None] * m.mean[:, None, :]
    Gxx, gxy, gyy = G[:, :d, :d], G[:, :d, d], G[:, d, d]
    sd = torch.sqrt(torch.diagonal(Gxx, dim1=1, dim2=2).clamp(min=0))
    # a column's centred sum of squares within its rounding (NOTE [rolling moments]'s raw
    # sums): constant in the window, or too nearly so for the moments to resolve
    flat = (sd**2 <= _FLAT * eps * m.raw[:, :d]) | (sd == 0) if fit_intercept else sd == 0
    safe = torch.where(flat, 1.0, sd)
    C = Gxx / (safe[:, :, None] * safe[:, None, :])
    eye = torch.eye(d, dtype=C.dtype, device=C.device)
    C = torch.where(flat.any(1)[:, None, None], eye, C)
    mx = m.mean[:, :d]
    if cov == "diag" and 0 < d <= _SMALL:
        pivots, bs, Vd, u2 = _small_diag(C, gxy / safe, mx / safe)
        low = pivots.min(1).values
        bad = ~full | flat.any(1) | ~(low > _ALIASED)
        b = bs / safe
        V = Vd / safe**2
        if fit_intercept:
            V = torch.cat([(1 / m.w + u2)[:, None], V], dim=1)
    else:
        b, V, low, bad = _lapack(C, gxy, mx, safe, full, flat, m.w, fit_intercept, cov)
    ssr = (gyy - (gxy * b).sum(1)).clamp(min=0)
    # ssr = gyy - gxy'b cancels when the fit is close to exact: the moments' rounding
    # (eps * raw) and gyy's own (without an intercept gyy holds w mean(y)^2: offsets
    # 1e6 left ssr 1e-2 for 6e-12) against ssr say where the rows must give it (_exact_ssr)
    risk = ~bad & (eps * (m.raw[:, d] + gyy) > _SSR_RISK * ssr)
    ctss = m.M[:, d, d]
    utss = ctss + m.w * m.mean[:, d] ** 2
    if fit_intercept:
        params = torch.cat([(m.mean[:, d] - (mx * b).sum(1))[:, None], b], dim=1)
    else:
        params = b
    vd = torch.diagonal(V, dim1=1, dim2=2) if V.dim() == 3 else V
    G_diag = torch.cat([sd**2, gyy[:, None]], dim=1)
    extra = _centring(offsets, G_diag, extra)
    dc = None
    if dmean is not None and fit_intercept:  # mean(y) - mean(x)'b with the means off
        dc = dmean[:, d] + (b.abs() * dmean[:, :d]).sum(1)
    err = error_bounds(vd[:, -d:] * safe**2 if d else vd[:, :0], b * safe, gyy, ssr,
                       risk if rows else torch.zeros_like(risk),
                       mx / safe, params, utss if not fit_intercept else ctss,
                       m.raw / G_diag.clamp(min=1e-300), m.count, m.w, m.mean[:, d],
                       extra=extra, dc=dc,
                       v0=vd[:, 0] if fit_intercept and vd.shape[1] > d else None)  # fmt: skip
    return {
        "params": params, "cov": V, "ssr": ssr, "ctss": ctss, "utss": utss, "bad": bad,
        "b": b, "risk": risk, "aliased": bad & full, "at_risk": full & ~bad & (low < _AT_RISK),
        "low": low, "err": err,
    }  # fmt: skip


def _lapack(C, gxy, mx, safe, full, flat, w, fit_intercept: bool, cov: str):
    """Batched LAPACK Cholesky: slopes, unscaled covariances, smallest pivot, no-fit mask."""
    d = C.shape[1]
    eye = torch.eye(d, dtype=C.dtype, device=C.device)
    L, info = torch.linalg.cholesky_ex(C)
    pivots = torch.diagonal(L, dim1=1, dim2=2) ** 2
    low = pivots.min(1).values if d else torch.ones_like(w)
    bad = ~full | flat.any(1) | (info != 0) | ~(low > _ALIASED)
    L = torch.where(bad[:, None, None], eye, L)
    b = torch.cholesky_solve((gxy / safe)[:, :, None], L)[:, :, 0] / safe
    if cov == "diag":  # V = Li' Li / (sd sd'): diag from Li's columns, mx'V mx = |Li mx/sd|^2
        Li = torch.linalg.solve_triangular(L, eye.expand_as(L), upper=False)
        V = (Li * Li).sum(1) / safe**2
        if fit_intercept:
            u = (Li @ (mx / safe)[:, :, None])[:, :, 0]
            V = torch.cat([(1 / w + (u * u).sum(1))[:, None], V], dim=1)
        return b, V, low, bad
    V = torch.cholesky_inverse(L) / (safe[:, :, None] * safe[:, None, :])
    if fit_intercept:
        vm = (V @ mx[:, :, None])[:, :, 0]
        Vx = V
        V = Vx.new_zeros((Vx.shape[0], d + 1, d + 1))
        V[:, 0, 0] = 1 / w + (mx * vm).sum(1)
        V[:, 0, 1:] = -vm
        V[:, 1:, 0] = -vm
        V[:, 1:, 1:] = Vx
    return b, V, low, bad


def solve_packed(
    w, mean, M, raw, full: Tensor, fit_intercept: bool, count=None, offsets=None
) -> dict:
    """``solve_batch(..., cov="diag")`` on feature-major summaries (the batch last).

    ``w`` ``(m,)``, ``mean`` and ``raw`` ``(q, m)``, ``M`` ``(q, q, m)``, at most
    ``_SMALL`` features: every step a vector operation over the batch, no transposes.
    Returns the same dictionary, row-major (``params`` ``(m, p)``, ``cov`` ``(m, p)``).
    """
    q = mean.shape[0]
    d = q - 1
    eps = torch.finfo(torch.float64).eps
    G = M if fit_intercept else M + w * mean[:, None] * mean[None, :]
    Gxx, gxy, gyy = G[:d, :d], G[:d, d], G[d, d]
    sd = torch.sqrt(torch.diagonal(Gxx).T.clamp(min=0))  # (d, m)
    flat = (sd**2 <= _FLAT * eps * raw[:d]) | (sd == 0) if fit_intercept else sd == 0
    safe = torch.where(flat, 1.0, sd)
    C = Gxx / (safe[:, None] * safe[None, :])
    anyflat = flat.any(0)
    eye = torch.eye(d, dtype=C.dtype, device=C.device)[:, :, None]
    C = torch.where(anyflat, eye, C)
    mx = mean[:d]
    pivots, bs, Vd, u2 = _small_fm(C, gxy / safe, mx / safe)
    low = pivots.min(0).values
    bad = ~full | anyflat | ~(low > _ALIASED)
    b = bs / safe
    V = Vd / safe**2
    if fit_intercept:
        V = torch.cat([(1 / w + u2)[None], V], dim=0)
    ssr = (gyy - (gxy * b).sum(0)).clamp(min=0)
    risk = ~bad & (eps * (raw[d] + gyy) > _SSR_RISK * ssr)  # as solve_batch
    ctss = M[d, d]
    utss = ctss + w * mean[d] ** 2
    params = torch.cat([(mean[d] - (mx * b).sum(0))[None], b]) if fit_intercept else b
    G_diag = torch.cat([sd**2, gyy[None]])
    extra = _centring(offsets, G_diag.T, None)
    err = error_bounds(Vd.T, bs.T, gyy, ssr, risk, (mx / safe).T, params.T,
                       ctss if fit_intercept else utss, (raw / G_diag.clamp(min=1e-300)).T,
                       w.new_ones(w.shape) if count is None else count, w, mean[d],
                       extra=extra, v0=V[0] if fit_intercept else None)  # fmt: skip
    return {
        "params": params.T, "cov": V.T, "ssr": ssr, "ctss": ctss, "utss": utss, "bad": bad,
        "b": b.T, "risk": risk, "aliased": bad & full, "at_risk": full & ~bad & (low < _AT_RISK),
        "low": low, "err": err,
    }  # fmt: skip


# NOTE [a far row]
# Rolling windows are taken about a reference row of their group first (NOTE [rolling
# moments]), each row rounded to eps |x - ref| on the way. When the reference was the
# group's mean, one row far from the rest (1e12 among rows near 0) moved it to 3e10, and
# every row kept only 1e-6 of its spread: the windows far from that row were 1.6e-5 off
# while their bounds, taken from the rows after the centring, said 1e-14. The reference is
# now a median of rows (NOTE [anchors inside] in windows.py), which a far row cannot move,
# but a group at two levels still puts the rows of one far from it. A window's sums of
# squares about the reference (``offsets``, per column) bound that rounding: each entry of
# C is off by up to about eps sqrt(offsets_j / G_jj) more, which the bounds add (and warn
# past 1e-8).


def _centring(offsets, G_diag, extra):
    """``extra`` plus the centring's share of each summary's relative entry error (NOTE
    [a far row]); ``offsets`` and ``G_diag`` ``(m, q)``."""
    if offsets is None:
        return extra
    eps = torch.finfo(torch.float64).eps
    ratio = (offsets / G_diag.clamp(min=1e-300)).amax(1)
    share = 2 * eps * ratio.clamp(min=0).sqrt()
    return share if extra is None else extra + share


def error_bounds(
    cinv,
    bs,
    gyy,
    ssr,
    risk,
    mxs,
    params,
    tss,
    rawrel,
    count,
    w,
    my,
    extra=None,
    dc=None,
    v0=None,
) -> dict:
    """First-order bounds on the errors the moments' route leaves (NOTE [moments' error]).

    Per summary: ``cinv`` the diagonal of ``C^-1`` ``(m, d)``, ``bs`` the slopes in the
    columns' unit scale, ``mxs`` the means in that scale, ``rawrel`` each column's
    ``raw / G_jj`` ``(m, q)``, ``w`` the weights' sum and ``my`` the mean of ``y``.
    ``extra``: a relative error of every entry beyond these (groupstate's merges), ``dc``
    the intercept's absolute error from the means'. ``risk``: the summaries whose ssr
    the caller takes from their rows. Returns relative bounds ``params`` (the worst
    coefficient), ``bse`` and ``ssr``, and ``r2`` (absolute); and ``params_se``, each
    coefficient's relative to it or to its standard error, whichever is larger (``v0``: the
    intercept's unscaled variance), the one a warning is decided by (NOTE [bounds that
    warn]).
    """
    eps = torch.finfo(torch.float64).eps
    d = cinv.shape[1]
    inf = torch.tensor(float("inf"), dtype=bs.dtype, device=bs.device)
    # each entry of C (and of the scaled X'y) off by delta, relative (NOTE [moments' error])
    delta = eps * (_ENTRY * (d + 2) + count.clamp(min=1).sqrt() + _RAW * rawrel.max(1).values)
    if extra is not None:
        delta = delta + extra
    kappa = cinv.sum(1)  # trace(C^-1) >= ||C^-1||_2
    e = d * delta * kappa  # >= ||C^-1|| ||dC||_2: C^-1's relative error, first order
    amp = torch.where(e < 0.5, 1 / (1 - e), inf)
    # db = C^-1 r with ||r|| <= ||dC|| ||b|| + ||dg|| (scaled): r's size, and db's
    r = d * delta * (bs.norm(dim=1) + gyy.clamp(min=0).sqrt()) * amp
    dbs = kappa * r
    db = dbs[:, None].expand_as(bs)
    if params.shape[1] > d:  # the intercept mean(y) - mean(x)'b: off by |mean(x)| ||db||
        dc = (0 if dc is None else dc) + mxs.norm(dim=1) * dbs
        dc = dc + 4 * eps * (params[:, 0].abs() + (mxs * bs).abs().sum(1))
        db = torch.cat([dc[:, None], db if d else db[:, :0]], dim=1)
        scale = torch.cat([params[:, :1].abs(), bs.abs()], dim=1)
    else:
        scale = bs.abs()
    rel_params = _rel(db, scale).amax(1) if params.shape[1] else e
    # the standard errors (scaled like db): sqrt(ssr / df) times sqrt(diag V)
    s2 = ssr.clamp(min=0) / (count - params.shape[1]).clamp(min=1)
    se = (s2[:, None] * cinv.clamp(min=0)).sqrt()
    if params.shape[1] > d:
        v0 = torch.full_like(s2, float("nan")) if v0 is None else v0
        se = torch.cat([(s2 * v0.clamp(min=0)).sqrt().nan_to_num(nan=0.0)[:, None], se], dim=1)
    # no spare rows (an exact fit): no standard error; 1% of the largest coefficient then
    spare = count > params.shape[1]
    floor = torch.where(spare[:, None], se, 0.01 * scale.amax(1, keepdim=True) if d else se)
    low = torch.maximum(scale - db, floor)
    rel_se = torch.where(low > 0, db / low, float("inf"))
    rel_se = rel_se.amax(1) if params.shape[1] else e
    # ssr from the rows (risk) is quadratic in db (b minimises it): db'C db = r'C^-1 r;
    # gyy - g'b is linear: g'db = b'C C^-1 r = b'r
    # the rows' residuals (risk) carry their own rounding rho, and the centre's
    rho = 4 * (d + 2) * eps * (gyy.clamp(min=0).sqrt() + bs.abs().sum(1))
    rho = rho + eps * w.clamp(min=0).sqrt() * (my.abs() + (mxs * bs).abs().sum(1))
    rows = kappa * r**2 + 2 * ssr.sqrt() * rho + rho**2
    dssr = torch.where(risk, rows, bs.norm(dim=1) * r + delta * gyy.clamp(min=0))
    dssr = dssr + 4 * eps * ssr
    rel_ssr = _rel(dssr, ssr)
    # R2 = 1 - ssr / tss, tss off as y's own diagonal entry is (NOTE [bounds that warn]:
    # a level shift left tss 3e-6 off where the bound, ssr's alone, said 8e-8)
    dy = eps * (_ENTRY * (d + 2) + count.clamp(min=1).sqrt() + _RAW * rawrel[:, -1])
    if extra is not None:
        dy = dy + extra
    # no residual degrees of freedom: ssr is 0 but for rounding, its statistics undefined
    nan = torch.tensor(float("nan"), dtype=bs.dtype, device=bs.device)
    return {
        "params": rel_params,
        "params_se": rel_se,
        "bse": torch.where(spare, rel_ssr + 2 * e * amp, nan),  # sqrt(ssr C^-1_jj), doubled for HC
        "ssr": torch.where(spare, rel_ssr, nan),
        # and R2's own rounding (1 - ssr / tss in float64; its reference's too)
        "r2": ((dssr + ssr * dy) / tss + 4 * eps).nan_to_num(nan=float("inf")),
    }


def _rel(err: Tensor, value: Tensor) -> Tensor:
    """``err`` relative to the true value, which is at least ``|value| - err`` (inf if not
    above 0): relative to the computed value the bound would be low where it is large."""
    low = value.abs() - err
    return torch.where(low > 0, err / low, float("inf"))


def _small_diag(C: Tensor, g: Tensor, mx: Tensor):
    """``_small_fm`` on row-major ``C`` ``(m, d, d)``, ``g`` and ``mx`` ``(m, d)``."""
    piv, b, v, u2 = _small_fm(C.permute(1, 2, 0), g.T, mx.T)
    return piv.T, b.T, v.T, u2


def _small_fm(A: Tensor, gt: Tensor, mxt: Tensor):
    """Cholesky ``A = L L'`` of many small matrices with the batch as the last axis.

    Batched LAPACK pays a call per matrix; here every step is one vector operation over
    the batch (``4 d`` of them per factor and inverse). ``A`` ``(d, d, m)``, ``gt`` and
    ``mxt`` ``(d, m)``. Returns the pivots ``(d, m)``, ``A^-1 g``, ``diag(A^-1)`` and
    ``mx' A^-1 mx``. A failed pivot (not positive) is kept as it is (the caller's ``low``
    test makes that summary NaN) and replaced by 1 so the rest stays finite.
    """
    d = A.shape[0]
    L, piv = small_cholesky(A)
    Li = small_lower_inverse(L, d)
    # A^-1 g by substitution, not with L^-1: ssr = gyy - g'b is first-order in b's error
    z = A.new_empty(gt.shape)
    for i in range(d):
        z[i] = (gt[i] - (L[i, :i] * z[:i]).sum(0)) / L[i, i]
    b = A.new_empty(gt.shape)
    for i in reversed(range(d)):
        b[i] = (z[i] - (L[i + 1 :, i] * b[i + 1 :]).sum(0)) / L[i, i]
    u = (Li * mxt[None]).sum(1)
    return piv, b, (Li * Li).sum(0), (u * u).sum(0)


def small_cholesky(A: Tensor) -> tuple[Tensor, Tensor]:
    """``A = L L'`` for many small matrices ``A`` ``(c, c, m)``, the batch last: every step
    one vector operation over the batch. Returns ``L`` and the pivots ``(c, m)``; a pivot
    that is not positive is kept in the pivots and replaced by 1 in ``L``, so the rest
    stays finite."""
    c = A.shape[0]
    L = A.new_zeros(A.shape)
    piv = A.new_empty((c, A.shape[2]))
    for j in range(c):
        s = A[j:, j] - (L[j:, :j] * L[j, :j][None]).sum(1)  # column j below the diagonal
        piv[j] = s[0]
        ljj = torch.sqrt(torch.where(s[0] > 0, s[0], 1.0))
        L[j, j] = ljj
        L[j + 1 :, j] = s[1:] / ljj
    return L, piv


def small_lower_inverse(L: Tensor, d: int) -> Tensor:
    """The inverse of the leading ``d x d`` block of the lower triangular ``L`` ``(c, c, m)``
    (batch last), row by row."""
    Li = L.new_zeros((d, d, L.shape[2]))
    for i in range(d):
        r = -(L[i, :i, None] * Li[:i]).sum(0)
        r[i] += 1
        Li[i] = r / L[i, i]
    return Li


def _warn(aliased: Tensor, at_risk: Tensor, low: Tensor, what: str, err=None, bad=None) -> None:
    """The NaN summaries counted; the nearly collinear ones, and (given ``bad``, the
    summaries without a fit) every other whose bounds pass ACCURACY_WARNING (NOTE [bounds
    that warn]), said with their bounds."""
    if bool(aliased.any()):
        remedy = "widen the window" if what == "windows" else f"those {what}"
        warnings.warn(
            f"{int(aliased.sum())} {what} get NaN statistics: a column is constant or "
            "collinear with others within them (or numerically so: columns far from zero "
            "without an intercept; fit one or centre the columns), or too few of their rows "
            f"have nonzero weight; drop the column or {remedy}",
            DegenerateWarning,
            stacklevel=3,
        )
    if bool(at_risk.any()):
        worst = float(low[at_risk].min())
        risky = np.asarray(at_risk.cpu() if torch.is_tensor(at_risk) else at_risk)
        off = {k: float(_np(torch.as_tensor(v))[risky].max()) for k, v in (err or {}).items()}
        if off:
            lost = np.log10(min(max(off["params"], 1.1e-16), 1.0) / 1.1e-16)
            digits = int(np.ceil(lost - 1e-9))
            said = (
                f"computed from their moments, their parameters may have lost up to {digits} "
                f"digits (relative error up to {_e(off['params'])} in the worst coefficient), "
                f"standard errors up to {_e(off['bse'])}, ssr up to {_e(off['ssr'])} relative, "
                f"R2 up to {_e(off['r2'])} (absolute)"
            )
        else:
            said = f"their parameters may have lost up to {int(np.log10(1 / worst))} digits"
        warnings.warn(
            f"{int(at_risk.sum())} {what} have nearly collinear columns (1 - R^2 of a "
            f"column on the others down to {worst:.1e}); {said}; drop or combine columns",
            RankWarning,
            stacklevel=3,
        )
    loose = _loose(err, bad, at_risk)
    if loose is not None and bool(loose.any()):
        off = {k: float(_np(torch.as_tensor(v))[loose].max()) for k, v in err.items()}
        warnings.warn(
            f"{int(loose.sum())} {what} may be off, computed from their moments: parameters "
            f"up to {_e(off['params_se'])} (relative to each or to its standard error, "
            f"whichever is larger), standard errors "
            f"up to {_e(off['bse'])}, ssr up to {_e(off['ssr'])} relative, R2 up to "
            f"{_e(off['r2'])} (absolute); rows far from the others near them (a level "
            "shift, an outlier), weights over many decades or a fit close to exact cost "
            f"the moments digits; fit a {what[:-1]} that matters with torchlinreg.ols, which "
            "refines against its rows",
            RankWarning,
            stacklevel=3,
        )


# NOTE [values out of range]
# The moments are sums of squares: with values below about 1e-150 they sink into
# subnormals (digits lost from about 1e-154, none left below 1e-162) and above about 1e150
# they overflow, and the bounds, built on the same sums, cannot see it. Rolling windows of
# data scaled by 2^-531 (about 1e-160; least squares is exact under such a scaling) had
# parameters 3.8e-4 off and, at 1e-162, 44% off without a word. The columns' magnitudes
# are read once (one pass over the rows, about 1% of a rolling fit) and a column past
# 2^+-500 is named in one warning; the windows are fitted as they are.
_RANGE_HIGH, _RANGE_LOW = 2.0**500, 2.0**-500


def _squares_wild(m: Moments) -> Tensor:
    """Summaries with a centred sum of squares past float64's normal range (non-finite,
    above 2^1016, or nonzero below 2^-1000; NOTE [values out of range]). Squares that sank
    to 0 look like a constant column's and are said as such."""
    sq = torch.diagonal(m.M, dim1=1, dim2=2)
    return (~torch.isfinite(sq) | (sq > 2.0**1016) | ((sq > 0) & (sq < 2.0**-1000))).any(1)


def _warn_squares_wild(wild: Tensor, what: str) -> None:
    if not bool(wild.any()):
        return
    warnings.warn(
        f"{int(wild.sum())} {what} have centred values beyond about 1e150 or below 1e-150: "
        "their sums of squares over- or underflow float64, so their parameters, standard "
        "errors, R2 and F may be NaN or off by any amount; rescale y and X (e.g. by a power "
        "of ten) and fit again",
        DegenerateWarning,
        stacklevel=4,
    )


def warn_values_out_of_range(Z: Tensor, names: list[str], what: str) -> None:
    """One DegenerateWarning naming the columns of ``Z`` (``[X | y]``, ``names`` for each)
    whose values leave the range where their squares stay normal float64 (NOTE [values out
    of range])."""
    big = _np(Z.abs().amax(0)) if Z.shape[0] else np.zeros(Z.shape[1])
    wild = (big > _RANGE_HIGH) | ((big > 0) & (big < _RANGE_LOW))
    if not wild.any():
        return
    shown = [str(n) for n, w in zip(names, wild, strict=True) if w]
    warnings.warn(
        f"{', '.join(shown)} have values beyond about 1e150 or below 1e-150: the {what}' "
        "sums of squares over- or underflow float64, so their parameters, standard errors, "
        "R2 and F may be NaN or off by any amount; rescale y and X (e.g. by a power of ten) "
        "and fit again",
        DegenerateWarning,
        stacklevel=3,
    )


# NOTE [bounds that warn]
# The moments' bounds (NOTE [moments' error]) were computed for every summary but said only
# for the nearly collinear ones (1 - R^2 below _AT_RISK). A rolling hunt found windows with
# no collinearity off without a word, each within its bound: a level shift of 1e6 in the
# block before a window (prefix and suffix sums about a block mean far from the window's
# rows; parameters 1.2e-4, standard errors 2.5e-5 off, bound 3e-4), a large row later in an
# expanding window's block (1e-6), rows weighted 1e10 beside weights of 1 (2.7e-7), a fit
# close to exact (standard errors 2e-6). Every summary whose bounds pass ACCURACY_WARNING
# now says so, with them.


def _loose(err, bad, at_risk) -> np.ndarray | None:
    """The fitted summaries, not nearly collinear, whose bounds pass ACCURACY_WARNING."""
    if not err or bad is None:
        return None
    over = np.zeros(np.shape(_np(torch.as_tensor(bad))), dtype=bool)
    for key in ("params_se", "bse", "ssr", "r2"):  # a coefficient next to its se
        over |= _np(torch.as_tensor(err[key])) > ACCURACY_WARNING  # NaN: not over
    ok = ~_np(torch.as_tensor(bad)).astype(bool) & ~_np(torch.as_tensor(at_risk)).astype(bool)
    return over & ok


def _e(x: float) -> str:
    """A bound for a warning: one digit, rounded up. Past 0.1 a first-order bound no longer
    bounds (a rolling sweep found ssr 31% off where it said 24%): any amount, then."""
    if not x < 0.1:
        return "any amount (no correct digit)"
    if x <= 0:
        return "0"
    e = int(np.floor(np.log10(x)))
    m = int(np.ceil(x / 10.0**e * (1 - 1e-12)))
    return f"1e{e + 1}" if m == 10 else f"{m}e{e}"  # 9.99e-3 rounds up to 1e-2, not 10e-3
