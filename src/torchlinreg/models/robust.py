"""HC0-HC3 covariances of grouped fits, batched over groups.

In each group's centred coordinates the bread is ``diag(1/sum(w), (Xc'WXc)^-1)`` and the
meat ``sum_i (w_i e_i)^2 f_i a_i a_i'`` with ``a_i = [1, xc_i]`` (statsmodels' WLS
sandwich on whitened rows), ``f_i`` 1, ``1 / (1 - h_i)`` or ``1 / (1 - h_i)^2``, ``h_i``
the leverage; both are taken through the group's R factor (NOTE [the sandwich through
R]). The result maps back to ``[const, slopes]`` with ``const = mean(y) - mean(x) b``.

Example:
    >>> import numpy as np
    >>> from torchlinreg.models.grouped import grouped_ols
    >>> x = np.arange(8.0); res = grouped_ols(x, x ** 2, groups=[0] * 4 + [1] * 4)
    >>> res.HC3_se.shape
    (2, 2)
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..errors import DegenerateWarning, RankWarning
from ..exact.solve import ACCURACY_WARNING
from ..stats.covariance import LEVERAGE_ONE_FACTOR
from .groupfit import GroupedFit, raw_residuals


def hc_covariance(fit: GroupedFit, kind: str, df_resid: np.ndarray) -> np.ndarray:
    """HC covariance ``(G, p, p)`` of every group (NaN for the groups left out).

    NOTE [the sandwich through R]
    With ``A = Q R`` the whitened rows of a group (``[1 | xc]`` times ``sqrt(w)``, whose R
    is ``diag(sqrt(sum w), R_x)``: centred columns are orthogonal to the constant), the
    sandwich ``B M B`` with ``B = (A'A)^-1`` is ``R^-1 (Q' diag(u^2) Q) R^-T`` and the
    leverage is ``h_i = |Q_i|^2``, ``Q_i = A_i R^-1`` by triangular solves (as the single
    fit's stats/covariance.py, with the group's own R). The explicit ``B`` squared the
    condition number twice over: with x2 = x1 + 1e-4 noise (cond(C) 7e8) HC0 was 5.6e-6
    from the single fits, and Fair's data shifted by 1e8 without an intercept got HC3 2.6x
    off or NaN. The map back to ``[const, slopes]`` (``J cov J'``, ``J = [[1, -m'], [0,
    I]]``) had the same flaw for the intercept: ``m' cov_slopes m`` cancels terms of size
    ``|m|^2 |cov_slopes|`` (HC3 intercept se 4.8e-8 off for two columns near 100 that
    differ by 1e-5 noise). ``J R^-1`` is ``P = [[1/sqrt(sum w), -z'], [0, R_x^-1]]`` with
    ``z = R_x^-T m`` from the fit (NOTE [the intercept's variance] in groupfit.py), and the
    sandwich is ``P meat P'``: no product with ``m`` is left to cancel.
    """
    seg = fit.seg
    R = fit.r_factor
    c = int(fit.fit_intercept)
    if c:  # R of [1 | xc] in the whitened rows: diag(sqrt(sum w), R_x)
        wt = torch.ones_like(fit.y) if fit.weights is None else fit.weights
        sw = seg.sum(wt[:, None])[:, 0]
        full = R.new_zeros((R.shape[0], R.shape[1] + 1, R.shape[2] + 1))
        full[:, 0, 0] = torch.where(sw > 0, sw, 1.0).sqrt()
        full[:, 1:, 1:] = R
        R = full
    p = R.shape[1]
    centre, low, slopes = fit.centre, fit.centre_low, fit.slopes
    near = fit.near_exact
    meat = R.new_zeros((R.shape[0], p, p))
    # NOTE [leverage one] (stats/covariance.py): 1 - h at rounding level counts as 0
    counts = seg.counts.to(R.dtype)
    tol = LEVERAGE_ONE_FACTOR * (counts * p).sqrt() * torch.finfo(R.dtype).eps
    ones = torch.zeros(R.shape[0], dtype=torch.bool, device=R.device)
    # each group's smallest 1 - h among rows below leverage 1 (NOTE [leverage near one])
    gap = R.new_ones(R.shape[0])
    # the rows group by group, in padded slabs: centred, whitened and their residuals
    # formed there (the rows' xc and resid in the caller's order took a third of the time)
    for groups, rows, index in seg.slabs(fit.X):
        inside = index >= 0
        at = index.clamp(min=0)
        w = inside.to(rows.dtype) if fit.weights is None else fit.weights[at] * inside
        rw = w.sqrt()
        xc = (rows - centre[groups, None, :-1]) - low[groups, None, :-1]
        yc = (fit.y[at] - centre[groups, None, -1]) - low[groups, None, -1]
        u = rw * (yc - (xc * slopes[groups, None, :]).sum(-1))  # whitened residuals
        if near is not None and bool(near[groups].any()):  # NOTE [near-exact groups]
            k = torch.nonzero(near[groups]).reshape(-1)
            gk = groups[k]
            b0 = fit.params[gk, 0] if c else None
            exact = raw_residuals(rows[k], fit.y[at[k]], b0, slopes[gk])
            u = u.clone()
            u[k] = rw[k] * exact
        a = xc * rw[..., None]
        if c:
            a = torch.cat([rw[..., None], a], dim=-1)
        q = torch.linalg.solve_triangular(R[groups], a, upper=True, left=False)  # a_i R^-1
        if kind in ("HC2", "HC3"):
            one_minus_h = 1 - (q * q).sum(-1)
            one = inside & (one_minus_h <= tol[groups, None])
            ones[groups] |= one.any(1)
            closest = torch.where(inside & ~one, one_minus_h, 1.0).amin(1)
            gap.scatter_reduce_(0, groups, closest, "amin")
            u = u / one_minus_h.sqrt() if kind == "HC2" else u / one_minus_h
            u = torch.where(one, float("nan"), u)  # 0 / 0: no covariance (as a single fit)
        z = q * u[..., None]
        meat.index_add_(0, groups, z.mT @ z)
    zm = fit.intercept_z  # R_x^-T mean(x)

    def back(B: torch.Tensor) -> torch.Tensor:  # P B, P the map to [const, slopes]
        out = torch.linalg.solve_triangular(R, B, upper=True)
        if c:  # const = a_c - mean(x) b: its row of P is [1 / sqrt(sum w), -z']
            out[:, 0] -= (zm[:, :, None] * B[:, 1:]).sum(1)
        return out

    cov = back(back(meat).mT)
    cov = (cov + cov.mT) / 2
    if kind == "HC1":
        cov = (
            cov
            * torch.as_tensor(
                seg.counts.cpu().numpy() / df_resid, dtype=cov.dtype, device=cov.device
            )[:, None, None]
        )
    cov = torch.where(fit.bad[:, None, None], float("nan"), cov)
    ones &= ~fit.bad  # groups left out are NaN already, with their own warning
    if bool(ones.any()):
        _warn_leverage_one(seg, ones, kind)
    if kind in ("HC2", "HC3") and fit.cov_error is not None:
        _warn_leverage_near_one(fit, gap, kind)
    if fit.error is not None:
        _warn_residual_error(fit, kind)
    return cov.detach().to("cpu", torch.float64).numpy()


# NOTE [HC through the residuals]
# An HC covariance squares the residuals, and a group's residuals carry its coefficients'
# error: |X db| over |r|, about the coefficients' relative error times |fitted| / |resid|.
# The covariances' bound (4 eps kappa) does not hold it: groups of 4-6 rows near 1e8
# without an intercept had HC0 1.5e-5 off where the fit's warning said 5.3e-7. Where the
# coefficients may be off past 1e-8, HC's estimate adds 2 rho + rho^2, rho that ratio.


def _warn_residual_error(fit, kind: str) -> None:
    fitted = (fit.uncentered_tss if not fit.fit_intercept else fit.centered_tss) - fit.ssr
    tiny = torch.finfo(fit.ssr.dtype).tiny
    rho = fit.error * (fitted.clamp(min=0) / fit.ssr.clamp(min=tiny)).sqrt()
    estimate = fit.cov_error + 2 * rho + rho * rho
    said = torch.where(fit.cov_error > ACCURACY_WARNING, 2 * fit.cov_error, ACCURACY_WARNING)
    # where the coefficients are flagged, or the fit is nearly exact (NOTE [near-exact
    # groups]): elsewhere rho, first-order, is far above the actual (Longley: 5e-8
    # quoted, 5e-12 actual)
    risky = fit.error > ACCURACY_WARNING
    if fit.near_exact is not None:
        risky = risky | fit.near_exact
    flagged = (estimate > said) & risky & ~fit.bad
    _warn_estimate(
        fit.seg,
        flagged,
        estimate,
        lambda groups, worst: (
            f"{groups}: their {kind} covariances square residuals that carry "
            f"the coefficients' error, and may be off by up to {worst:.1e} (relative; beyond the "
            "covariances' bound); use the nonrobust covariance there, or fit those groups one at "
            "a time with torchlinreg.ols"
        ),
    )


def _warn_estimate(seg, flagged: torch.Tensor, estimate: torch.Tensor, says) -> None:
    """One RankWarning for the ``flagged`` groups, ``says(groups, worst)`` its text after
    "N of G groups, e.g. [...]" and ``error`` the worst ``estimate`` among them."""
    if not bool(flagged.any()):
        return
    mask = flagged.cpu().numpy()
    labels = seg.labels[mask][:5].tolist()
    more = f" and {int(mask.sum()) - 5} more" if mask.sum() > 5 else ""
    worst = float(estimate[flagged].max())
    groups = f"{int(mask.sum())} of {len(mask)} groups, e.g. {labels}{more}"
    warnings.warn(
        RankWarning(says(groups, min(worst, 1.0)), error=worst, method="qr"), stacklevel=5
    )


# NOTE [leverage near one]
# HC2 and HC3 divide each residual by (1 - h)^(1/2) or (1 - h). The leverage is |a R^-1|^2,
# off by about 2 eps kappa h, so 1 - h is off by that relative to itself over 1 - h, and the
# covariance by the fit's estimate (4 eps kappa, NOTE [grouped accuracy]) times 1 + c h / (1
# - h), c = 1 for HC2 and 2 for HC3. In groups of p + 2 rows with nearly collinear columns
# HC2/HC3 were up to 25x the fit's estimate (9.4e-4 off in one group) without a word; where
# this estimate passes 1e-8 one RankWarning now says by how much they may be off.


def _warn_leverage_near_one(fit, gap: torch.Tensor, kind: str) -> None:
    c = 1.0 if kind == "HC2" else 2.0
    h = (1 - gap).clamp(min=0)
    estimate = fit.cov_error * (1 + c * h / gap.clamp(min=torch.finfo(gap.dtype).tiny))
    # past 1e-8, and (where the fit's warning already gave the covariances' bound) past
    # twice that: a leverage of 0.07 changes nothing worth a second warning
    said = torch.where(fit.cov_error > ACCURACY_WARNING, 2 * fit.cov_error, ACCURACY_WARNING)
    flagged = (estimate > said) & ~fit.bad
    low = float(gap[flagged].min()) if bool(flagged.any()) else 1.0
    _warn_estimate(
        fit.seg,
        flagged,
        estimate,
        lambda groups, worst: (
            f"{groups}, have rows of leverage near 1 (1 - h down to "
            f"{low:.1e}): their {kind} covariances may be off by up to {worst:.1e} (relative); "
            "use HC0 or HC1, or fit those groups one at a time with torchlinreg.ols"
        ),
    )


def _warn_leverage_one(seg, ones: torch.Tensor, kind: str) -> None:
    flagged = ones.cpu().numpy()
    labels = seg.labels[flagged][:5].tolist()
    more = f" and {int(flagged.sum()) - 5} more" if flagged.sum() > 5 else ""
    warnings.warn(
        f"{int(flagged.sum())} of {len(flagged)} groups have rows of leverage 1, e.g. "
        f"{labels}{more}: {kind} divides their zero residuals by 1 - h = 0, so its "
        "covariance is NaN there; use HC0 or HC1, or drop those rows (or the columns that "
        "single them out)",
        DegenerateWarning,
        stacklevel=4,
    )
