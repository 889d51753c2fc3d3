"""Elastic net by coordinate descent on the Gram ("covariance updates"), duality-gap stopping.

With ``Q = X_c'WX_c / W``, ``q = X_c'Wy_c / W`` and ``yy = y_c'Wy_c / W`` (:mod:`.moments`),
scikit-learn's objective ``1/(2W) ||y_c - X_c w||_W^2 + l1 |w|_1 + l2/2 ||w||^2`` is
``w'Qw/2 - q'w + yy/2 + l1 |w|_1 + l2/2 ||w||^2``: no row is needed (glmnet's covariance
updates). ``l1 = alpha * l1_ratio`` and ``l2 = alpha * (1 - l1_ratio)``.

NOTE [polishing]
Coordinate descent converges linearly, slowly where features are correlated; and each
sweep is a Python loop. Once a sweep has found the support and signs, the solution is
the root of a linear system on the support, ``(Q_AA + l2 I) w_A = q_A - l1 sign(w_A)``: we
solve it and keep it when its signs agree (and, with ``positive``, it stays positive) and
its duality gap is smaller. Optimality is never assumed: the duality gap decides, as in
scikit-learn (the same formula, in the objective's units, against ``tol * yy``).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ..errors import ConvergenceWarning


class CDResult(NamedTuple):
    """Coefficients, the final duality gap (objective units), its bound, and sweeps run."""

    coef: np.ndarray
    gap: float
    tol: float
    n_iter: int

    @property
    def converged(self) -> bool:
        return self.gap <= self.tol


def objective(Q, q, yy, coef, l1, l2) -> float:
    """The elastic-net objective at ``coef`` from the moments (intercept profiled out)."""
    Qw = Q @ coef
    return float(
        0.5 * (yy + coef @ Qw - 2 * q @ coef) + l1 * np.abs(coef).sum() + 0.5 * l2 * (coef @ coef)
    )


def duality_gap(Q, q, yy, coef, Qw, l1, l2, positive=False) -> float:
    """scikit-learn's duality gap ("formulation A"), in the objective's units.

    The dual point is the residual scaled into the dual-feasible set; the gap bounds how
    far the objective is above its minimum.
    """
    q_w = float(q @ coef)
    w2 = float(coef @ coef)
    r2 = yy + float(coef @ Qw) - 2.0 * q_w  # ||residual||^2 / W
    ry = yy - q_w
    xta = q - Qw - l2 * coef
    if l1 == 0:
        if l2 == 0:  # least squares: no dual; the gradient's norm, as scikit-learn
            return float(xta @ xta)
        # ridge: the dual at theta = r is r'y - |r|^2/2 - |X'r|^2 / (2 l2), with X'r (not
        # X'r - l2 w, which is 0 at the optimum: the gap came out -l2 |w|^2 / 2 < 0 and
        # the descent stopped after one sweep, 34.7 off on diabetes, silently); with
        # positive, only X'r's positive part is dual-feasible
        xtr = q - Qw
        if positive:
            xtr = np.maximum(xtr, 0.0)
        return r2 + 0.5 * l2 * w2 - ry + float(xtr @ xtr) / (2 * l2)
    dual_norm = float(xta.max()) if positive else float(np.abs(xta).max())
    primal = 0.5 * (r2 + l2 * w2) + l1 * float(np.abs(coef).sum())
    scale = l1 / dual_norm if dual_norm > l1 else 1.0
    dual = -0.5 * scale**2 * (r2 + l2 * w2) + scale * ry
    return primal - dual


def enet_gram(
    Q: np.ndarray,
    q: np.ndarray,
    yy: float,
    l1: float,
    l2: float,
    *,
    coef_init: np.ndarray | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    positive: bool = False,
    warn: bool = True,
) -> CDResult:
    """Minimise ``w'Qw/2 - q'w + yy/2 + l1 |w|_1 + l2/2 ||w||^2`` by cyclic coordinate descent.

    Starts from ``coef_init`` (warm start), stops when the duality gap is at most
    ``tol * yy`` (scikit-learn's rule), and warns with a :class:`ConvergenceWarning` stating
    the gap reached when ``max_iter`` sweeps were not enough.

    Example:
        >>> Q = np.array([[1.0, 0.5], [0.5, 1.0]]); q = np.array([1.0, 0.2])
        >>> res = enet_gram(Q, q, 2.0, 0.1, 0.0, tol=1e-12)  # KKT: Qw - q = -0.1 sign(w)
        >>> np.round(res.coef, 6).tolist(), res.converged
        ([1.0, -0.2], True)
    """
    d = q.shape[0]
    coef = np.zeros(d) if coef_init is None else np.array(coef_init, dtype=np.float64)
    if positive:
        np.maximum(coef, 0.0, out=coef)
    bound = tol * yy
    Qw = Q @ coef
    gap = duality_gap(Q, q, yy, coef, Qw, l1, l2, positive)
    n_iter = 0
    diag = np.diag(Q).tolist()
    rows = list(Q)  # Q is symmetric: rows are columns
    qs = q.tolist()
    while not gap <= bound and n_iter < max_iter:
        n_iter += 1
        for j in range(d):
            if diag[j] == 0.0:
                continue
            old = coef[j]
            z = qs[j] - Qw[j] + old * diag[j]
            shrunk = max(z - l1, 0.0) if positive else np.sign(z) * max(abs(z) - l1, 0.0)
            new = shrunk / (diag[j] + l2)
            if new != old:
                Qw += (new - old) * rows[j]
                coef[j] = new
        gap = duality_gap(Q, q, yy, coef, Qw, l1, l2, positive)
        if not gap <= bound:
            coef, Qw, gap = _polished(Q, q, yy, coef, Qw, gap, l1, l2, positive)
    if l1 == 0 and l2 > 0 and n_iter:
        # a ridge's exact solution is one solve away: within tol the gap still left the
        # coefficients 3e-5 (relative) from it at a heavy penalty, where scikit-learn's
        # sweeps were closer. The gap, rounding noise for both there, cannot tell them
        # apart: the solve is taken wherever it meets the bound
        coef, Qw, gap = _polished(Q, q, yy, coef, Qw, gap, l1, l2, positive, accept=bound)
    if warn and not gap <= bound:
        warnings.warn(
            f"coordinate descent stopped after {n_iter} sweeps with duality gap {gap:.3g} "
            f"(objective units), above tol * var(y) = {bound:.3g}; raise max_iter or tol",
            ConvergenceWarning,
            stacklevel=2,
        )
    return CDResult(coef, float(gap), float(bound), n_iter)


def _polished(Q, q, yy, coef, Qw, gap, l1, l2, positive, accept=-np.inf):
    """NOTE [polishing]: the exact solution on the current support and signs, if better."""
    ridge = l1 == 0 and not positive  # no signs to keep: every column with a variance
    active = np.flatnonzero(np.diag(Q) > 0) if ridge else np.flatnonzero(coef)
    if active.size == 0:
        return coef, Qw, gap
    signs = np.sign(coef[active])
    m = Q[np.ix_(active, active)] + l2 * np.eye(active.size)
    try:
        sol = np.linalg.solve(m, q[active] - l1 * signs)
    except np.linalg.LinAlgError:
        return coef, Qw, gap
    if not (np.isfinite(sol).all() and (ridge or (np.sign(sol) == signs).all())):
        return coef, Qw, gap
    cand = np.zeros_like(coef)
    cand[active] = sol
    cand_Qw = Q @ cand
    cand_gap = duality_gap(Q, q, yy, cand, cand_Qw, l1, l2, positive)
    if cand_gap < gap or cand_gap <= accept:
        return cand, cand_Qw, cand_gap
    return coef, Qw, gap
