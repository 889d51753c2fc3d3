"""Huber's robust regression with a joint scale, scikit-learn's objective.

``L(w, b, s) = sum_i v_i (s + H((y_i - x_i w - b) / s) s) + alpha ||w||^2`` with sample
weights ``v``, ``H(z) = z^2`` for ``|z| <= epsilon`` and ``2 epsilon |z| - epsilon^2``
beyond (Owen's concomitant scale, as scikit-learn's HuberRegressor). ``L`` is jointly convex
in ``(w, b, s)``; it needs the rows (the loss is not quadratic), so fits are in memory.

NOTE [huber polish]
L-BFGS-B (scipy, float64) minimises ``L`` from scikit-learn's start. Its stopping rule
leaves digits on the table, so the result is then polished on its own partition of the
rows into inliers and outliers, where ``L`` is smooth: the stationarity conditions are a
linear system in ``(w, b)`` for a given ``s``, and ``s^2 = r_I'V r_I / (sum v - eps^2
sum_outliers v)`` for given residuals; alternating the two converges to the minimiser of
that piece. The polished point is kept only when its partition is unchanged and ``L`` did
not increase, so the result is never worse than the L-BFGS point.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ..errors import ConvergenceWarning


class HuberFit(NamedTuple):
    coef: np.ndarray
    intercept: float
    scale: float
    n_iter: int
    loss: float


def huber_loss_and_grad(params, X, y, epsilon, alpha, sw, fit_intercept):
    """``L`` and its gradient at ``params = [w, (b,) s]`` (scikit-learn's layout);
    ``alpha`` one penalty or one per coefficient."""
    d = X.shape[1]
    w, s = params[:d], params[-1]
    r = y - X @ w - (params[d] if fit_intercept else 0.0)
    out = np.abs(r) > epsilon * s
    v_in, r_in = sw[~out], r[~out]
    sign_out = np.sign(r[out]) * sw[out]
    sw_out = sw[out].sum()
    sq = (v_in * r_in) @ r_in
    loss = sw.sum() * s + sq / s + 2 * epsilon * (sw[out] @ np.abs(r[out]))
    loss += -s * sw_out * epsilon**2 + (alpha * w) @ w
    grad = np.zeros_like(params)
    grad[:d] = -2.0 / s * (X[~out].T @ (v_in * r_in)) - 2 * epsilon * (X[out].T @ sign_out)
    grad[:d] += 2 * alpha * w
    if fit_intercept:
        grad[d] = -2.0 / s * (v_in @ r_in) - 2 * epsilon * sign_out.sum()
    grad[-1] = sw.sum() - sw_out * epsilon**2 - sq / s**2
    return loss, grad


def fit_huber(
    X: np.ndarray,
    y: np.ndarray,
    sw: np.ndarray | None = None,
    *,
    epsilon: float = 1.35,
    alpha: float = 1e-4,
    fit_intercept: bool = True,
    max_iter: int = 100,
    tol: float = 1e-5,
    init: np.ndarray | None = None,
) -> HuberFit:
    """Minimise ``L`` (module docstring) for one target; warns if L-BFGS-B stopped early.

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(50, 1))
        >>> y = 2 * X[:, 0] + 1 + 0.1 * rng.normal(size=50); y[:3] += 50
        >>> fit = fit_huber(X, y)
        >>> round(float(fit.coef[0]), 1), round(fit.intercept, 1)
        (2.0, 1.0)
    """
    from scipy import optimize

    d = X.shape[1]
    sw = np.ones(len(y)) if sw is None else np.asarray(sw, dtype=np.float64)
    # NOTE [huber coordinates]: centred columns of unit size, the penalty carried along
    mu = (sw @ X) / sw.sum() if fit_intercept and sw.sum() > 0 else np.zeros(d)
    size = np.sqrt(sw @ (X - mu) ** 2 / max(sw.sum(), 1e-300)) if len(y) else np.ones(d)
    # a constant column's spread is its mean's rounding (8.9e-16 with weights), not a
    # scale: taken as one it multiplied the column by 2^50 and its penalty by 2^100, and
    # the fit stopped at R2 -4 for 0.52 (a scikit-learn hunt). Such a column is 0 about
    # its mean, as it is; its coefficient is then the penalty's, 0
    peak = np.abs(X).max(axis=0) if len(y) else np.zeros(d)
    constant = size <= 64 * np.finfo(np.float64).eps * peak if fit_intercept else size == 0
    size = np.where(constant, 0.0, size)
    c = np.exp2(np.round(np.log2(np.where((size > 0) & np.isfinite(size), size, 1.0))))
    Xs = np.where(constant, 0.0, X - mu) / c
    params = np.zeros(d + 1 + int(fit_intercept))
    params[-1] = 1.0
    if init is not None:
        params[:] = init
    raw = params.copy()
    params[:d] *= c
    if fit_intercept:
        params[d] += mu @ (params[:d] / c)
    bounds = [(-np.inf, np.inf)] * (len(params) - 1) + [(np.finfo(np.float64).eps * 10, np.inf)]
    args = (Xs, y, epsilon, alpha / c**2, sw, fit_intercept)
    res = optimize.minimize(
        huber_loss_and_grad,
        params,
        method="L-BFGS-B",
        jac=True,
        args=args,
        bounds=bounds,
        options={"maxiter": max_iter, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
    )
    z = _polished(res.x, args)
    loss, _, worst = _checked(z, args, bounds)
    if not worst <= tol:
        # NOTE [huber in the raw coordinates]
        # With more columns than rows the minimum lies where the scale goes to 0 and the
        # rows are interpolated; in the scaled coordinates L-BFGS-B crawled there (5 rows
        # x 20 columns: objective 1.069 after 10,000 iterations, scikit-learn 0.805 in
        # 87), in the raw ones it got there. Where the first run falls short, the raw
        # coordinates are tried too and the lower objective kept.
        raw_args = (X, y, epsilon, alpha, sw, fit_intercept)
        again = optimize.minimize(
            huber_loss_and_grad, raw, method="L-BFGS-B", jac=True, args=raw_args,
            bounds=bounds, options={"maxiter": max_iter, "gtol": tol, "ftol": 64 * _EPS},
        )  # fmt: skip
        z2 = again.x.copy()
        z2[:d] *= c
        if fit_intercept:
            z2[d] += mu @ again.x[:d]
        z2 = _polished(z2, args)
        loss2, _, worst2 = _checked(z2, args, bounds)
        if loss2 < loss:
            z, loss, worst, res = z2, loss2, worst2, again
    if not worst <= tol:
        why = "raise max_iter" if res.status == 1 else "raise max_iter or tol, or rescale y"
        warnings.warn(
            f"Huber fit: L-BFGS-B stopped after {res.nit} iterations with a largest "
            f"gradient of {worst:.3g} (tol {tol:.3g}, on centred columns of unit size); the "
            f"coefficients are not at the minimum; {why}",
            ConvergenceWarning,
            stacklevel=2,
        )
    w = z[:d] / c
    b = float(z[d] - mu @ w) if fit_intercept else 0.0
    return HuberFit(w, b, float(z[-1]), int(res.nit), float(loss))


_EPS = float(np.finfo(np.float64).eps)


def _checked(z, args, bounds):
    """``L``, its gradient and the largest that could still move at ``z``."""
    loss, grad = huber_loss_and_grad(z, *args)
    if z[-1] <= bounds[-1][0] * (1 + 1e-12):  # the scale at its bound: only an upward pull
        grad[-1] = min(grad[-1], 0.0)
    return loss, grad, float(np.abs(grad).max())


# NOTE [huber coordinates]
# L-BFGS-B's progress depends on the coordinates: with stackloss's columns + 1e4 the
# intercept and the slopes were nearly collinear directions, and it stopped on its ftol
# rule at an objective of 199.7 (minimum 107.5; slopes 200% off) with a gradient of 8.6e-3,
# status 0, silently; columns scaled 1e+-3 with alpha = 10 left 18-53%. The objective is
# minimised instead in z = (w * c, b + mu'w, s), mu the weighted column means (with an
# intercept) and c their spreads rounded to powers of two: the same function (the
# penalty becomes alpha / c^2 per coordinate), so the same minimum, reached on centred
# columns of one size. The fit then checks its largest gradient (the scale's only where
# it could move) against tol, whatever the stopping rule said, and warns past it.


def _polished(params, args, rounds: int = 20):
    """NOTE [huber polish]: piece minimisers while they lower ``L``; never worse."""
    best, best_loss = params, huber_loss_and_grad(params, *args)[0]
    for _ in range(rounds):
        cand = _piece_minimiser(best, args)
        if cand is None:
            break
        cand_loss = huber_loss_and_grad(cand, *args)[0]
        if not cand_loss <= best_loss:
            break
        moved = not np.array_equal(cand, best)
        best, best_loss = cand, cand_loss
        if not moved or _partition(cand, args) == _partition(params, args):
            break
        params = cand
    return best


def _partition(params, args):
    X, y, epsilon, _, _, fit_intercept = args
    d = X.shape[1]
    r = y - X @ params[:d] - (params[d] if fit_intercept else 0.0)
    out = np.abs(r) > epsilon * params[-1]
    return out.tobytes() + np.sign(r[out]).tobytes()


def _piece_minimiser(params, args, sweeps: int = 200):
    """The minimiser of ``L`` on the inlier/outlier partition at ``params`` (None if none)."""
    X, y, epsilon, alpha, sw, fit_intercept = args
    d = X.shape[1]
    Z = np.hstack([X, np.ones((len(y), 1))]) if fit_intercept else X
    pen = np.diag(np.append(np.broadcast_to(alpha, (d,)), [0.0] * int(fit_intercept)))
    r = y - Z @ params[:-1]
    out = np.abs(r) > epsilon * params[-1]
    sign = np.sign(r)
    total = sw.sum() - epsilon**2 * sw[out].sum()
    if not total > 0 or out.all():
        return None
    zi, vi = Z[~out], sw[~out]
    gram, zy = zi.T @ (vi[:, None] * zi), zi.T @ (vi * y[~out])
    pull = Z[out].T @ (sw[out] * sign[out])
    theta, s = params[:-1].copy(), params[-1]
    for _ in range(sweeps):
        try:
            theta_new = np.linalg.solve(gram + s * pen, zy + s * epsilon * pull)
        except np.linalg.LinAlgError:
            return None
        ri = y[~out] - zi @ theta_new
        s_new = np.sqrt((vi * ri) @ ri / total)
        done = np.allclose(theta_new, theta, rtol=1e-15, atol=0) and s_new == s
        theta, s = theta_new, s_new
        if done:
            break
    return np.append(theta, s) if s > 0 and np.isfinite(theta).all() else None
