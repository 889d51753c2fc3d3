"""The batched fit behind ``ols(groups=)``: one R factor per group, and what it yields.

NOTE [grouped fit]
Groups are fitted a chunk at a time (``segments.chunks``: whole groups of similar size,
their rows gathered into a ``(groups, rows, columns)`` batch, zero-weight padding where
sizes differ). Each group's rows are centred by its (weighted) mean, and what rounding
left of the mean is measured in a second sum and removed by a rank-one correction, so
data near 1e9 keeps the digits of its spread. Two routes then give each group's R factor
of the centred ``[X | y]``:

- the Gram route (every group it can certify): one batched GEMM for the centred Gram,
  one batched Cholesky, one triangular inverse. Its error is that of the normal
  equations, about ``cond(C) eps`` with ``C`` the group's correlation matrix of X
  (equilibrated: van der Sluis), against QR's ``sqrt(cond(C)) eps``; a group stays on this
  route only when the 1-norm condition number of ``C`` (exact, from the inverse the
  covariance needs anyway) is at most ``GRAM_COND_LIMIT`` = 1024 (so about 1.5 digits
  more than QR at worst, an error near 1e-13), when its Gram is finite and away from over-
  and underflow, and when no column can be constant within the group.
- the QR route (every other group): the rows centred again, scaled per group and column
  by a power of two, and one batched Householder QR, as a single fit does. Rank decisions
  are made here: a column (nearly) in the span of those before it, or constant within
  the group (its centred values at rounding level of its magnitude), leaves the group out.

From R: the slopes by a triangular solve, ``(X'WX)^-1`` as ``R^-1 R^-T``, the intercept
as ``mean(y) - mean(x) b`` and its variance through ``R^-T mean(x)`` (NOTE [the
intercept's variance]). Residuals and ``ssr`` come from the rows again, so the
statistics do not lose the digits a fit close to exact would lose from R alone. A group
with no more rows than parameters, or with collinear columns, gets NaN everywhere; one
DegenerateWarning counts them, and no group stops the others.

Tried and dropped (2026-11-28): gathering each group once into ``[X | y | 1]`` so that one
product gives the Gram and the sums (four passes over a group's rows where there are
eight) made no difference at 100 groups x 100,000 rows x 20 (0.84 against 0.85 s): the
gather into strided columns costs 2.7 ms a group against 1.8 ms, and the Gram of 22
columns, 2 ms a group on one thread or two, is bound by reading its 17.6 MB. Shifting the
rows by a 64-row sample's mean instead of the exact one saved another pass but lost
digits: the rank-one correction then cancels about (sd / 8)^2 in every entry, and where
two columns are nearly uncorrelated within a group that entry, and a small coefficient
with it, lost a digit (Fair's affairs data by religion: 1.9e-12 against 1.5e-13 from the
refined single fits, R2 2.6e-13 against 4.6e-15). R2's ``y'y`` and ``ssr`` stay torch's
pairwise sums: a product's running sum cost R2 a digit there too.

Example:
    >>> import numpy as np
    >>> seg = Segments.from_labels(np.array([0, 0, 0, 1, 1, 1]))
    >>> x = torch.arange(6.0, dtype=torch.float64)[:, None]
    >>> fit_groups(seg, x, x[:, 0] ** 2, None, True).params.round(decimals=9).tolist()
    [[-0.333333333, 2.0], [-15.333333333, 8.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .momentsolve import small_cholesky, small_lower_inverse
from .segments import Chunk, Segments, chunks

GRAM_COND_LIMIT = 1024.0  # NOTE [grouped fit]: the Gram route's largest cond(C)
_EPS = torch.finfo(torch.float64).eps
# the Gram's diagonal must lie within these: no product over- or underflowed unseen
_TINY, _HUGE = 2.0**-900, 2.0**900


@dataclass
class GroupedFit:
    """What the batched fit leaves for the statistics (tensors with a group axis)."""

    seg: Segments  # labels, and each row's group code (rows in the caller's order)
    params: Tensor  # (G, p)
    cov_unscaled: Tensor  # (G, p, p)
    ssr: Tensor
    centered_tss: Tensor
    uncentered_tss: Tensor
    sum_log_w: Tensor
    bad: Tensor  # (G,) bool: NaN statistics
    mean: Tensor  # (G, d + 1): weighted means of [X | y] (zero without an intercept)
    # the mean as first computed, and the correction the second sum found: their sum is
    # the mean to within rounding of the spread, though `mean` rounds it to the offset's ulp
    centre: Tensor
    centre_low: Tensor
    slopes: Tensor  # (G, d): the slopes, finite also for the groups left out
    X: Tensor  # the rows, for HC covariances
    y: Tensor
    weights: Tensor | None
    fit_intercept: bool
    # (G,) bool: centred rows beyond 2^+-500, where sums of squares over- or underflow
    # float64 (NOTE [squares out of range]); the parameters are right, the rest is not
    out_of_range: Tensor | None = None
    # (G,): estimated relative error of each group's worst coefficient, and of its
    # covariances (NOTE [grouped accuracy]); zero for the groups left out
    error: Tensor | None = None
    cov_error: Tensor | None = None
    # (G, d, d): upper triangular R with R'R = Xc'WXc, the whitened centred slopes' design
    # (anything for the groups left out): the HC sandwich is taken through it
    r_factor: Tensor | None = None
    # (G, d): z = R^-T mean(x) with an intercept (NOTE [the intercept's variance])
    intercept_z: Tensor | None = None
    # (G,) bool: residuals taken again in double-double (NOTE [near-exact groups])
    near_exact: Tensor | None = None

    @property
    def x_mean(self) -> Tensor:
        return self.mean[:, :-1]


def fit_groups(
    seg: Segments,
    X: Tensor,
    y: Tensor,
    w: Tensor | None,
    fit_intercept: bool,
    chunk_values: int = 1 << 20,
    check: Callable[[], None] | None = None,
) -> GroupedFit:
    """The batched fit of NOTE [grouped fit], a chunk of about ``chunk_values`` at a time.

    ``check`` is called (once) when a chunk's sums are not finite: every row enters them,
    so a NaN or infinity in the data shows there, and the caller, which has not scanned
    the rows for them, names the row (NOTE [no scan for NaN] in grouped.py). It returns
    when the data are finite (sums that overflowed) and the fit goes on.
    """
    d = X.shape[1]
    counts = seg.counts.cpu().numpy()
    # codes on an accelerator are ordered there (NOTE [grouping on the device])
    codes = seg.codes if seg.codes.device.type != "cpu" else seg.codes.numpy()
    order, parts = chunks(codes, counts, chunk_values, d + 1, X.device)
    # buffers for every chunk's rows, worked on in place: fresh pages cost more than the
    # arithmetic (and a copy of [X | y] whole costs more than the fit)
    rows = max(ch.rows.numel() for ch in parts)
    bufs = (X.new_empty(rows * d), X.new_empty(rows))
    state = {"check": check}
    fits = [_fit_chunk(ch, X, y, w, fit_intercept, bufs, state) for ch in parts]
    out = {}
    for name in fits[0]:
        cat = torch.cat([f[name] for f in fits]) if len(fits) > 1 else fits[0][name]
        # back to label order (groups of equal size are fitted in label order already)
        out[name] = cat if order is None else torch.empty_like(cat).index_copy_(0, order, cat)
    estimate = [out.pop(k) for k in ("_scale", "_cond", "_qr", "_skip")]
    tss = out["centered_tss"] if fit_intercept else out["uncentered_tss"]
    sw = seg.counts.to(X.dtype) if w is None else seg.sum(w)
    var = torch.diagonal(out["cov_unscaled"], dim1=1, dim2=2)
    out["error"], out["cov_error"] = _estimated_errors(
        *estimate, out["slopes"], out["ssr"], out["mean"], tss,
        sw=sw, se=_standard_errors(out["ssr"], var, seg.counts), intercept=fit_intercept,
        count=seg.counts,
    )  # fmt: skip
    # -inf with a zero weight, as statsmodels
    sum_log_w = X.new_zeros(seg.n_groups) if w is None else seg.sum(torch.log(w))
    return GroupedFit(seg=seg, sum_log_w=sum_log_w, X=X, y=y, weights=w,
                      fit_intercept=fit_intercept, **out)  # fmt: skip


def _gather(ch: Chunk, X: Tensor, y: Tensor, w: Tensor | None, bufs):
    """The chunk's rows of X ``(g, width, d)`` and y ``(g, width)`` (in buffers), weights
    ``(g, width)`` (None: every row weighs one and none is padding), each group's row count.
    """
    index = ch.rows.clamp(min=0).reshape(-1) if ch.padded else ch.rows
    n, d, g = index.numel(), X.shape[1], ch.groups.shape[0]
    Px = torch.index_select(X, 0, index, out=bufs[0][: n * d].view(n, d)).view(g, ch.width, d)
    Py = torch.index_select(y, 0, index, out=bufs[1][:n]).view(g, ch.width)
    if not ch.padded:
        count = Py.new_full((g,), float(ch.width))
        return Px, Py, None if w is None else w.index_select(0, index).view(Py.shape), count
    inside = (ch.rows >= 0).to(Py.dtype)
    W = inside if w is None else w.index_select(0, index).view(Py.shape) * inside
    return Px, Py, W, inside.sum(1)


def _fit_chunk(
    ch: Chunk, X: Tensor, y: Tensor, w: Tensor | None, fit_intercept: bool, bufs, state: dict
):
    """Every group of one chunk: the Gram route, and the QR route where it cannot certify.

    X and y stay apart (one gather each, no copy into one array): the Gram is assembled
    from ``X'X``, ``X'y`` and ``y'y``.
    """
    Px, Py, W, count = _gather(ch, X, y, w, bufs)
    g, m, d = Px.shape
    rw = None if W is None else W.sqrt()
    sw = Py.new_full((g,), float(m)) if W is None else W.sum(1)
    nonzero = sw if W is None else (W > 0).sum(1).to(Py.dtype)
    safe_sw = torch.where(sw > 0, sw, 1.0)[:, None]
    mean = Py.new_zeros((g, d + 1))
    if fit_intercept:
        mean = _sums(Px, Py, W) / safe_sw
        Px.sub_(mean[:, None, :d])  # centred in place
        Py.sub_(mean[:, d:])
    if rw is not None:  # rows times sqrt(w), in place
        Px.mul_(rw[..., None])
        Py.mul_(rw)
    xy = Px.mT @ Py[..., None]
    # a NaN or infinity anywhere in a row reaches X'y (inf times 0 is NaN) or the means
    if state["check"] is not None and not _finite(xy, mean):
        state["check"]()  # raises, naming the row (NOTE [no scan for NaN] in grouped.py)
        state["check"] = None
    gram = torch.cat([torch.cat([Px.mT @ Px, xy], 2),
                      torch.cat([xy.mT, (Py * Py).sum(1)[:, None, None]], 2)], 1)  # fmt: skip
    delta = Py.new_zeros((g, d + 1))
    if fit_intercept:  # what rounding left of the mean: a rank-one correction
        delta = _sums(Px, Py, rw) / safe_sw
        gram = gram - sw[:, None, None] * delta[:, :, None] * delta[:, None, :]
    few = nonzero <= d + fit_intercept
    b, V, R, rinv, cond, risky = _gram_route(gram, mean + delta, W, m, fit_intercept)
    risky &= ~few
    bad = few
    sunk = torch.zeros_like(few)  # NOTE [squares out of range]: squares that underflowed to 0
    if bool(risky.any()):
        at = torch.nonzero(risky).reshape(-1)
        rwq = torch.ones_like(Py[at]) if rw is None else rw[at]
        Aq = torch.cat([Px[at], Py[at, :, None]], 2) - rwq[..., None] * delta[at, None, :]
        raw = (Px[at] + rwq[..., None] * mean[at, None, :d]).abs().amax(1)
        centred = (Px[at] - rwq[..., None] * delta[at, None, :d]).abs().amax(1)
        sunk[at] = ((torch.diagonal(gram[at], dim1=1, dim2=2)[:, :d] == 0) & (centred > 0)).any(1)
        R = R.clone()
        b[at], V[at], R[at], bad_q = _qr_route(Aq, raw, count[at], fit_intercept)
        cond = cond.clone()
        cond[at] = _cond(gram[at], V[at])
        bad = bad.clone()
        bad[at] = bad_q
    if bool(bad.any()):  # finite slopes for the residuals below; NaN statistics later
        b = torch.where(bad[:, None], 0.0, b)
    # residuals (times sqrt(w)) from the rows: [-b, 1] on the centred rows, less the
    # rounding left of the mean
    resid = Py - (Px @ b[..., None])[..., 0]
    if fit_intercept:
        shift = (delta[:, d] - (delta[:, :d] * b).sum(1))[:, None]
        resid -= shift if rw is None else rw * shift
    ssr = (resid * resid).sum(1)
    ctss = gram[:, d, d]
    utss = ctss + sw * (mean[:, d] + delta[:, d]) ** 2 if fit_intercept else ctss
    zv = _intercept_terms(R, rinv, (mean + delta)[:, :d], risky & ~bad) if fit_intercept else None
    out = _assemble(b, V, zv, mean + delta, sw, ssr, ctss, utss, bad, fit_intercept)
    near = near_exact(ssr, ctss if fit_intercept else utss, d) & ~bad
    if bool(near.any()):  # NOTE [near-exact groups]: with the parameters returned
        at = torch.nonzero(near).reshape(-1)
        index = ch.rows.reshape(g, m)[at] if not ch.padded else ch.rows[at]
        inside = index >= 0
        rows = index.clamp(min=0)
        b0 = out["params"][at, 0] if fit_intercept else None
        r = raw_residuals(X[rows], y[rows], b0, b[at])
        wr = inside.to(r.dtype) if w is None else w[rows] * inside
        out["ssr"][at] = (wr * r * r).sum(1)
    out["near_exact"] = near
    if fit_intercept:  # for the HC covariances' map back to const
        out["intercept_z"] = zv[0]
    out["out_of_range"] = (_out_of_range(gram) | sunk) & ~bad
    # for the accuracy estimate, made once for all chunks (NOTE [grouped accuracy]);
    # groups out of range have a Gram of inf or 0 and their own warning
    out["_qr"], out["_skip"] = risky & ~bad, bad | out["out_of_range"]
    out["_scale"] = torch.diagonal(gram, dim1=1, dim2=2)[:, :d].clamp_min(0).sqrt()
    out["_cond"] = cond
    out["r_factor"] = R  # a group left out may have a singular one: its HC is NaN anyway
    return {**out, "centre": mean, "centre_low": delta}


# NOTE [grouped accuracy]
# Grouped fits are not refined against the rows (a single fit is, NOTE [refinement
# policy] in stats/fitstats.py), so each group's coefficients carry its factor's error,
# estimated as the single fit's warning estimates it (refine.estimated_errors, policy=False)
# with kappa^2 = cond(C), the 1-norm condition number of the group's (centred, when there
# is an intercept) correlation matrix: eps (kappa + kappa^2 |r| / |x|) for a Householder
# factor, eps kappa^2 (1 + |r| / |x|) for the Gram route, in the column-scaled units, and
# relative to each coefficient down to FLOOR (1%) of the norm, the intercept through the
# means it is mapped back with. Covariances, (X'WX)^-1 = R^-1 R^-T and the HC sandwich
# through R (NOTE [the sandwich through R] in robust.py), carry about eps kappa: measured
# within 1.6x of it on Fair's data shifted by 1e4 to 1e8 without an intercept, so the
# estimate is 4 eps kappa. The intercept's variance, 1/sum(w) + |R^-T m|^2, carries the
# same (NOTE [the intercept's variance]): against 60-digit references over offsets 1e2
# to 1e6, two columns equal up to noise 1e-3 to 1e-8, groups of p + 1 to 1,000 rows,
# with and without weights (1,080 groups), within 0.56x of the estimate for every entry
# (it was up to 2e8x, as m'Vm); HC0 within 0.65x of the larger of the coefficients' and
# the covariances' estimates (its residuals carry the coefficients' error); Grunfeld per
# firm shifted by 1e6: 6e-16, no warning. HC2/HC3 divide by 1 - h and are not covered
# where a leverage is near 1 (up to 25x the estimates in groups of p + 2 rows). The caller
# warns past ACCURACY_WARNING (1e-8). Found on Fair's data shifted by 1e8 and fitted
# without an intercept (cond(C) 3e15): coefficients 1.6e-7 from the refined single fits,
# and HC3 standard errors then 2.6x off or NaN, without a word. On Longley without an
# intercept (cond(C) 1e6) nothing is said: coefficients 6e-14 from the single fits, HC3
# 1e-13. The coefficients' estimate is a first-order bound and can be 1e3-1e4 above the
# actual error (Fair shifted by 1e4: 1.2e-8 against 6.3e-12).
_FLOOR = 1e-2


def _standard_errors(ssr: Tensor, var: Tensor, counts: Tensor) -> Tensor:
    """``(G, p)`` standard errors from ``ssr`` and the diagonal of ``(X'WX)^-1``."""
    df = (counts.to(ssr.dtype) - var.shape[1]).clamp(min=1)
    return ((ssr.clamp(min=0) / df)[:, None] * var.clamp(min=0)).sqrt().nan_to_num(nan=0.0)


def _estimated_errors(
    scale, cond, qr, bad, b, ssr, mean, tss, *, sw=None, se=None, intercept=False, count=None
) -> tuple[Tensor, Tensor]:
    """Per group, the estimated relative error of the worst coefficient and of the
    covariances (NOTE [grouped accuracy]): ``scale`` the column norms of the whitened,
    centred X, ``cond`` :func:`_cond`, ``qr`` the groups fitted by the QR route, ``bad``
    those left without an estimate; ``sw`` the weights' sums and ``se`` ``(G, p)`` the
    standard errors (intercept first), for NOTE [coefficients next to their standard
    errors]."""
    g, d = b.shape
    if d == 0:
        return b.new_zeros(g), b.new_zeros(g)
    scale = torch.where(scale > 0, scale, 1.0)
    cond = torch.nan_to_num(cond, nan=float("inf"))
    kappa = cond.sqrt()
    x = b * scale  # the column-scaled slopes
    xnorm = torch.linalg.vector_norm(x, dim=1)
    safe = xnorm.clamp_min(torch.finfo(b.dtype).tiny)
    ratio = ssr.clamp_min(0).sqrt() / safe
    risk = torch.where(qr, kappa + cond * ratio, cond * (1 + ratio))
    # absolute, in column-scaled units; slopes that are exactly zero (y constant within
    # the group) are exact
    # the Gram route's sums carry about sqrt(rows) eps (NOTE [coefficients next to their
    # standard errors]: 24 eps in a slope of 538 rows); a Householder factor does not sum
    if count is not None:
        risk = torch.where(qr, risk, risk * count.to(risk.dtype).clamp(min=1).sqrt())
    err = torch.where(xnorm > 0, _EPS * risk * xnorm, 0.0)
    c = int(intercept and se is not None)
    sex = se[:, c:] * scale if se is not None else torch.zeros_like(x)  # column-scaled
    # each slope next to itself or its standard error, down to FLOOR of the norm only
    # where there is no standard error (an exact fit)
    floor = torch.where(sex > 0, sex, _FLOOR * safe[:, None])
    worst = (err[:, None] / torch.maximum(x.abs(), floor)).amax(1)
    # next to the norm (FLOOR), as the residuals carry it: |X db| ~ that times |fitted|
    normwise = (err[:, None] / torch.maximum(x.abs(), _FLOOR * safe[:, None])).amax(1)
    mx, my = mean[:, :d], mean[:, d]
    b0 = my - (mx * b).sum(1)
    # the intercept's own evaluation in float64, which cancels where the means are large
    # (the means are sums over the rows, as the factor's are)
    rows = 1.0 if count is None else count.to(b.dtype).clamp(min=1).sqrt()
    evaluation = 2 * _EPS * rows * (my.abs() + (mx * b).abs().sum(1))
    if bool(mx.abs().gt(0).any()):  # the intercept, my - mx b: every slope's error times mx
        spread = torch.linalg.vector_norm(mx / scale, dim=1) * err + evaluation
        old = _FLOOR * (my.abs() + (mx * b).abs().sum(1))
        se0 = se[:, 0] if c else torch.zeros_like(b0)
        size = torch.maximum(b0.abs(), torch.where(se0 > 0, se0, old))
        worst = torch.maximum(worst, torch.where(spread > 0, spread / size, 0.0))
        size = torch.maximum(b0.abs(), old)
        normwise = torch.maximum(normwise, torch.where(spread > 0, spread / size, 0.0))
    # the reported estimate is the larger: HC's residual share reads it next to the norm
    worst = torch.maximum(worst, normwise)
    zero = torch.zeros_like(worst)
    # ssr of the parameters returned exceeds the least-squares one by |X db|^2: rho^2 of
    # it, rho the coefficients' error times |fitted| / |resid| (NOTE [near-exact groups]),
    # and their rounding to float64: an ulp of a large intercept or of a slope of a column
    # far from zero moves every residual (NOTE [coefficients next to their standard errors])
    tiny = torch.finfo(ssr.dtype).tiny
    fitted = (tss - ssr).clamp(min=0)
    rho = normwise * (fitted / ssr.clamp(min=tiny)).sqrt()
    if sw is not None:  # and the parameters' rounding to float64 (ulps)
        root = sw.clamp(min=0).sqrt()
        raw = (sw[:, None] * mx * mx + scale * scale).sqrt()  # the columns' raw norms
        ulp = _EPS * (root * (b0.abs() + my.abs()) + (b.abs() * raw).sum(1))
        rho = rho + ulp / ssr.clamp(min=tiny).sqrt()
    cov = 4 * _EPS * kappa + torch.where(ssr > 0, rho * rho, 0.0)
    return torch.where(bad, zero, worst), torch.where(bad, zero, cov)


# NOTE [coefficients next to their standard errors]
# A grouped hunt against exact rational fits (29,583 groups) found two silent errors the
# estimate missed. Coefficients small next to the norm were measured against 1% of it: an
# intercept 3.5e-6 of its standard error off (y = 200.6 x + noise 3.6e-8, its float64
# evaluation my - mx b cancelling), 613 groups past 1e-9 of their standard errors. Each
# coefficient is now taken next to itself or its standard error, whichever is larger (as
# a single fit's policy, NOTE [errors next to the standard error] in exact/refine.py), and
# the intercept's estimate adds its own evaluation's rounding. The factor's error grows
# with the rows its sums run over: a slope of 538 rows was 24 eps off (1.1e-8 of the
# intercept's standard error, estimated 2.3e-9), so the Gram route's estimate takes
# sqrt(rows) eps where it took eps, and so does the intercept's evaluation from the means.
# And the ssr of the float64 parameters exceeds the least-squares one by their rounding:
# y = 3e7 + 2x + noise 1e-6 (5 rows) had ssr 5.2e-4 and standard errors 2.6e-4 off, 4
# weighted rows 5.7e6x, with no word; the covariances' estimate now adds that rounding's
# share of the residuals.


# NOTE [near-exact groups]
# A group's residuals come from its centred rows in float64, each off by about (d + 2) eps
# |yc|: where the fit is nearly exact (residuals of 1e-12 against y of 1) ssr and every
# standard error were 5e-5 off (HC0 9e-4) without a word. Where that rounding could reach
# 1e-10 of the residuals, they are taken again from the raw rows in double-double with
# the parameters the group is given (two_prod per column): ssr, and the HC covariances'
# residuals, of the returned parameters, as a single fit takes them. Few groups qualify;
# the rest keep the float64 pass.
_RESIDUAL_TOL = 1e-10


def near_exact(ssr: Tensor, tss: Tensor, d: int) -> Tensor:
    """The groups whose float64 residuals may be off past ``_RESIDUAL_TOL`` of themselves
    (NOTE [near-exact groups]); an exact fit (ssr 0) has nothing to lose."""
    ratio = (tss.clamp(min=0) / ssr.clamp(min=torch.finfo(ssr.dtype).tiny)).sqrt()
    return (ssr > 0) & ((d + 2) * _EPS * ratio > _RESIDUAL_TOL)


def raw_residuals(X: Tensor, y: Tensor, b0: Tensor | None, b: Tensor) -> Tensor:
    """``y - b0 - X b`` of raw rows ``(g, m, d)``, ``(g, m)`` in double-double, rounded
    once (NOTE [near-exact groups]); ``b0`` None without an intercept."""
    from ..exact.ddouble import dd_add_fast, two_prod

    r = (y, torch.zeros_like(y))
    if b0 is not None:
        r = dd_add_fast(r, (-b0[:, None].expand_as(y), torch.zeros_like(y)))
    for j in range(b.shape[1]):
        r = dd_add_fast(r, two_prod(X[..., j], -b[:, j : j + 1].expand_as(y)))
    return r[0] + r[1]


def _finite(*parts: Tensor) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in parts)


# NOTE [squares out of range]
# The statistics rest on sums of squares of the centred rows: with values past about 1e154
# they overflow, below about 1e-154 they sink into subnormals and then zero, and standard
# errors, R2 and F come out inf, 0 or NaN while the parameters (solved on the rows) stay
# right. The Gram's diagonal holds those sums already: a group with one that is not finite,
# above 2^1016 or (nonzero and) below 2^-1000 is flagged, and the caller says so once.
# Below about 1e-162 the squares are 0, as a constant column's: such a group fails the
# Gram's certificate, and the QR route's rows tell the two apart (a column with nonzero
# centred values and a zero square). R2 and F, ratios of two sums that both lost digits,
# can stay finite and still be off (4e-3 at 1e-161): the warning says "off", not NaN.
_HIGH, _LOW = 2.0**1016, 2.0**-1000


def _out_of_range(gram: Tensor) -> Tensor:
    sq = gram.diagonal(dim1=1, dim2=2)
    return (~torch.isfinite(sq) | (sq > _HIGH) | ((sq > 0) & (sq < _LOW))).any(1)


def _sums(Px: Tensor, Py: Tensor, W: Tensor | None) -> Tensor:
    """Per-group sums of the rows of ``[X | y]`` ``(g, d + 1)``, weighted by ``W``."""
    # a product with a row of ones or weights: a sum over the middle axis of (g, m, d) took
    # twice as long (1.07 ms against 0.50 ms at 100,000 x 20); the second sum corrects
    # what rounding leaves of the first
    if W is None:
        W = Py.new_ones(Py.shape)
        return torch.cat([(W[:, None, :] @ Px)[:, 0], Py.sum(1, keepdim=True)], 1)
    return torch.cat([(W[:, None, :] @ Px)[:, 0], (W * Py).sum(1, keepdim=True)], 1)


def _gram_route(gram: Tensor, mean: Tensor, W: Tensor | None, rows: int, fit_intercept: bool):
    """Slopes, ``(X'WX)^-1``, its factor R, R^-1 and :func:`_cond` from a batched
    Cholesky of the centred Gram ``(g, c, c)``, and which groups it cannot certify (NOTE
    [grouped fit]; the Gram is not scaled: it is checked against over- and underflow
    instead)."""
    g, c, _ = gram.shape
    d = c - 1
    diag = torch.diagonal(gram, dim1=1, dim2=2)
    ok = torch.isfinite(gram.sum((1, 2)))  # a sum of inf or NaN is not finite
    ok &= (diag[:, :d] >= _TINY).all(1) & (diag <= _HUGE).all(1)
    if c <= _SMALL_C:  # NOTE [small factors]
        factored, b, V, Uxx, rinv = _small_factor(gram)
        ok &= factored
    else:
        U, info = torch.linalg.cholesky_ex(gram, upper=True)
        ok &= info == 0
        eye = torch.eye(d, dtype=gram.dtype, device=gram.device).expand(g, d, d)
        Uxx = U[:, :d, :d] if bool(ok.all()) else torch.where(ok[:, None, None], U[:, :d, :d], eye)
        rinv = torch.linalg.solve_triangular(Uxx, eye, upper=True)
        b = (rinv @ U[:, :d, d:])[..., 0]
        V = rinv @ rinv.mT
    cond = _cond(gram, V, ok)
    ok &= cond <= GRAM_COND_LIMIT
    # no column constant within its group: its centred values are not at the rounding
    # level of its magnitude (the QR route decides when this cannot be certified)
    if fit_intercept:
        wmax = gram.new_ones(g) if W is None else W.amax(1)
        spread = diag[:, :d].clamp(min=0).sqrt()  # >= the largest centred value
        raw = mean[:, :d].abs() * wmax.sqrt()[:, None] + spread  # >= the largest value
        ok &= (spread / rows**0.5 > 16 * _EPS * raw).all(1)  # largest centred value >= lhs
    return b, V, Uxx, rinv, cond, ~ok


def _cond(gram: Tensor, V: Tensor, ok: Tensor | None = None) -> Tensor:
    """The 1-norm condition number of each group's correlation matrix ``S gram S``,
    ``S = diag^-1/2``, from its inverse ``V`` (the groups not ``ok`` scaled by 1)."""
    g, d = V.shape[0], V.shape[1]
    if not d:
        return V.new_ones(g)
    diag = torch.diagonal(gram, dim1=1, dim2=2)[:, :d]
    root = (diag if ok is None else torch.where(ok[:, None], diag, 1.0)).sqrt()
    outer = root[:, :, None] * root[:, None, :]
    norm = (gram[:, :d, :d] / outer).abs().sum(1).amax(1)
    return norm * (V * outer).abs().sum(1).amax(1)


# NOTE [small factors]
# Batched LAPACK calls once per matrix: for 10,000 groups of 5 features the Cholesky, the
# triangular inverse and the products took 2.3 ms per chunk of 3,333 groups, most of it
# per-call overhead. Up to _SMALL_C columns the factor is instead computed with the batch
# as the last axis, every step one vector operation over all groups (``small_cholesky`` and
# ``small_lower_inverse`` of momentsolve.py, which the rolling fits' solver uses). A pivot
# that is not positive marks its group (as LAPACK's info does) and is replaced by 1, so
# the rest stays finite; such groups, like every one the Gram route cannot certify, go to
# the QR route.
_SMALL_C = 8


def _small_factor(gram: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """For Grams of ``[X | y]`` ``(g, c, c)``: whether each Cholesky succeeded, the slopes
    ``(g, d)``, ``(X'X)^-1`` ``(g, d, d)``, the factor R of X'X and R^-1 (NOTE [small
    factors])."""
    d = gram.shape[1] - 1
    L, piv = small_cholesky(gram.permute(1, 2, 0))  # the batch last
    Li = small_lower_inverse(L, d)
    # R = L', R^-1 = Li': b = R^-1 R[:d, d], V = R^-1 R^-T
    b = (Li * L[d, :d][:, None]).sum(0)
    V = (Li[:, :, None] * Li[:, None, :]).sum(0)
    R, rinv = L[:d, :d].permute(2, 1, 0), Li.permute(2, 1, 0)
    return (piv > 0).all(0), b.T, V.permute(2, 0, 1), R, rinv


def _qr_route(A: Tensor, raw: Tensor, count: Tensor, fit_intercept: bool):
    """Slopes, ``(X'WX)^-1`` and its factor R by Householder QR of the centred rows ``A``
    scaled by powers of two, and which groups are rank-deficient: a column (nearly) in the
    span of those before it, or constant within its group (``raw``: each column's largest
    magnitude before centring)."""
    g, m, c = A.shape
    d = c - 1
    amax = A.abs().amax(1)
    # powers of two: exact, and keep data near 1e200 or 1e-200 inside the range
    scale = torch.where(amax > 0, torch.exp2(torch.round(torch.log2(amax))), 1.0)
    A = A / scale[:, None, :]
    if m < c:  # fewer rows than columns: pad to a square factor
        A = torch.cat([A, A.new_zeros((g, c - m, c))], dim=1)
    R = torch.linalg.qr(A, mode="r").R
    diag = torch.diagonal(R[:, :d, :d], dim1=1, dim2=2).abs()
    norms = torch.linalg.vector_norm(R[:, :d, :d], dim=1)
    tol = torch.clamp(count, min=d + 1)[:, None] * _EPS * 8
    flat = amax[:, :d] <= 16 * _EPS * raw if fit_intercept else raw == 0
    bad = (diag <= tol * norms).any(1) | flat.any(1)
    eye = torch.eye(d, dtype=A.dtype, device=A.device).expand(g, d, d)
    Rxx = torch.where(bad[:, None, None], eye, R[:, :d, :d])
    b = torch.linalg.solve_triangular(Rxx, R[:, :d, d:], upper=True)[..., 0]
    rinv = torch.linalg.solve_triangular(Rxx, eye, upper=True)
    sx = scale[:, :d]
    V = (rinv @ rinv.mT) / (sx[:, :, None] * sx[:, None, :])
    return b * scale[:, d:] / sx, V, Rxx * sx[:, None, :], bad


# NOTE [the intercept's variance]
# With an intercept the covariance of [const, slopes] is, in each group's centred
# coordinates mapped back (const = mean(y) - mean(x) b),
#     var(const) = 1/sum(w) + m'Vm,   cov(const, b) = -Vm,   V = (Xc'WXc)^-1 = R^-1 R^-T,
# m = mean(x). Formed as m'(Vm) with V explicit, that sum cancels: V's entries are about
# 1/sigma_min^2 and m can be large, so terms near |m|^2 |V| sum to far less (two columns
# near 100 differing by 1e-5 noise: var(const) 3.9e-7 off, silently; by 1e-7: 5e-3 off,
# in groups of 5 rows 107% off, with a warning that said 6.8e-7). As a sum of squares,
# m'Vm = |z|^2 with z = R^-T m, has no cancellation; z solves R'z = m, and Vm = R^-1 z.
# On the QR route (ill-conditioned groups) both are triangular solves, backward stable:
# error about eps kappa, as the rest of the covariance (NOTE [grouped accuracy]). On the
# Gram route they are products with R^-1, which that route has anyway: a product with an
# explicit inverse may lose eps kappa^2, below 2.3e-13 there (cond(C) <= 1024), and the
# two products take 0.1 ms a chunk of 3,333 groups of 5 columns where two batched
# triangular solves take 0.6 ms. HC covariances map back through the same z (NOTE [the
# sandwich through R] in robust.py).


def _intercept_terms(R: Tensor, rinv: Tensor, mx: Tensor, qr: Tensor) -> tuple[Tensor, Tensor]:
    """``z = R^-T mx`` and ``Vm = R^-1 z`` ``(g, d)`` (NOTE [the intercept's variance]):
    products with ``rinv`` = R^-1, triangular solves with R for the groups ``qr``."""
    z = (rinv.mT @ mx[..., None])[..., 0]
    vm = (rinv @ z[..., None])[..., 0]
    if bool(qr.any()):
        at = torch.nonzero(qr).reshape(-1)
        z[at] = torch.linalg.solve_triangular(R[at].mT, mx[at, :, None], upper=False)[..., 0]
        vm[at] = torch.linalg.solve_triangular(R[at], z[at, :, None], upper=True)[..., 0]
    return z, vm


def _assemble(b, V, zv, mean, sw, ssr, ctss, utss, bad, fit_intercept: bool) -> dict:
    """Parameters and ``(X'WX)^-1`` with the intercept first; NaN for the groups left out.
    ``zv``: ``z = R^-T mean(x)`` and ``Vm`` (NOTE [the intercept's variance])."""
    g, d = b.shape
    if fit_intercept:
        mx = mean[:, :d]
        z, vm = zv
        params = torch.cat([(mean[:, d] - (mx * b).sum(1))[:, None], b], dim=1)
        cov = V.new_empty((g, d + 1, d + 1))
        cov[:, 0, 0] = 1 / sw + (z * z).sum(1)
        cov[:, 0, 1:] = -vm
        cov[:, 1:, 0] = -vm
        cov[:, 1:, 1:] = V
    else:
        params, cov = b, V
    nan = float("nan")
    return {
        "params": torch.where(bad[:, None], nan, params),
        "cov_unscaled": torch.where(bad[:, None, None], nan, cov),
        "ssr": torch.where(bad, nan, ssr),
        "centered_tss": ctss,
        "uncentered_tss": utss,
        "bad": bad,
        "mean": mean,
        "slopes": b,
    }
