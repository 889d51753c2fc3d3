"""Non-negative least squares (and ridge) from a least-squares state: Lawson-Hanson.

The state's centred factor ``R`` (``R'R`` the weighted co-moments of ``[X | Y]``) turns
``min ||y_c - X_c w||_W^2 + alpha ||w||^2, w >= 0`` into the same problem on ``d + k`` rows,
``A = [R_x; sqrt(alpha) I]``, ``b = [R_y; 0]``: Lawson and Hanson's active-set method then
never forms the Gram (each step is a small least-squares solve on the passive columns, as
scipy's ``nnls`` on the rows would do), so its accuracy is that of QR, not of the normal
equations.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ..errors import ConvergenceWarning


def nnls(A: np.ndarray, b: np.ndarray, *, max_iter: int | None = None) -> np.ndarray:
    """``argmin ||A x - b||, x >= 0`` by Lawson-Hanson's active-set method.

    Example:
        >>> A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]); b = np.array([2.0, -1.0, 1.0])
        >>> np.round(nnls(A, b), 12).tolist()
        [1.5, 0.0]
    """
    # NOTE [columns at one scale]: the same problem with unit columns, scaled back exactly
    norms = np.linalg.norm(A, axis=0)
    safe = np.where((norms > 0) & np.isfinite(norms), norms, 1.0)
    unit = np.exp2(-np.round(np.log2(safe)))
    return _lawson_hanson(A * unit, b, max_iter) * unit


# NOTE [columns at one scale]
# The active-set method's tolerance on the gradient A'(b - Ax) is absolute, set by the
# largest column: a column 1e-8 next to one of 1e8 never reached it and was left at zero
# (its coefficient 2e8 in the answer; rss 238 against 0.43), silently, as on stackloss with
# columns in units 1e-6, 1 and 1e6 (rss 1255 against 1196). x >= 0 is the same constraint
# on x_j / s_j for s_j > 0, so the columns are scaled to unit norm by powers of two (exact)
# first, and each column's gradient is measured on its own scale.


def _lawson_hanson(A: np.ndarray, b: np.ndarray, max_iter: int | None) -> np.ndarray:
    m, n = A.shape
    max_iter = 3 * n if max_iter is None else max_iter
    # the gradient A'(b - Ax) is on the scale of |A| |b|: rounding makes it about eps of that
    scale = np.abs(A).sum(axis=0).max(initial=0.0) * max(np.abs(b).max(initial=0.0), 1e-300)
    tol = 10 * np.finfo(np.float64).eps * max(m, n) * scale
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    skip = np.zeros(n, dtype=bool)  # entered with a non-positive value: rounding's doing
    grad = A.T @ b
    it = 0
    while (free := ~passive & ~skip).any() and grad[free].max() > tol:
        if it >= max_iter:
            warnings.warn(
                f"non-negative least squares stopped after {it} steps with a largest "
                f"gradient {grad[free].max():.3g} on a zero coefficient (tolerance "
                f"{tol:.3g}); the result may not be optimal",
                ConvergenceWarning,
                stacklevel=2,
            )
            break
        it += 1
        j = np.flatnonzero(free)[np.argmax(grad[free])]
        passive[j] = True
        s = np.zeros(n)
        s[passive] = np.linalg.lstsq(A[:, passive], b, rcond=None)[0]
        if s[j] <= 0:  # in exact arithmetic s_j > 0 whenever grad_j > 0
            passive[j], skip[j] = False, True
            continue
        while passive.any() and s[passive].min() <= 0:
            # Step from x toward s until the first passive coefficient reaches zero.
            neg = passive & (s <= 0)
            step = np.min(x[neg] / (x[neg] - s[neg]))
            x = x + step * (s - x)
            passive &= x > tol
            x[~passive] = 0.0
            s = np.zeros(n)
            if passive.any():
                s[passive] = np.linalg.lstsq(A[:, passive], b, rcond=None)[0]
        x = s
        skip[:] = False
        grad = A.T @ (b - A @ x)
    return x


@torch.no_grad()
def nonneg_solution(state: Any, alpha: Any = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients ``(k, d)`` >= 0 and intercepts ``(k,)`` minimising the state's weighted
    squared error plus ``alpha ||w||^2`` (scikit-learn's Ridge alpha; one or one per target).

    Example:
        >>> from torchlinreg.exact.state import LeastSquaresState
        >>> X = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
        >>> y = X[:, 0] - X[:, 1] + 1
        >>> coef, b = nonneg_solution(LeastSquaresState(2, 1).absorb(X, y))
        >>> coef.tolist()[0][1]
        0.0
    """
    summ = state.centred_summary()
    r = summ.r.detach().cpu().double().numpy()
    means = summ.means.detach().cpu().double().numpy()
    d, k = state.n_features, state.n_targets
    alphas = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (k,))
    coef = np.zeros((k, d))
    for t in range(k):
        A = np.vstack([r[:, :d], np.sqrt(alphas[t]) * np.eye(d)]) if alphas[t] > 0 else r[:, :d]
        b = np.concatenate([r[:, d + t], np.zeros(A.shape[0] - r.shape[0])])
        coef[t] = nnls(A, b)
    intercept = means[d:] - coef @ means[:d] if state.fit_intercept else np.zeros(k)
    device = summ.r.device
    return torch.as_tensor(coef, device=device), torch.as_tensor(intercept, device=device)
