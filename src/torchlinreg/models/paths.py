"""Regularisation paths: lasso and elastic net along a grid of alphas, warm-started.

``lasso_path`` and ``enet_path`` take scikit-learn's arguments and return its shapes; they
also take a :class:`~torchlinreg.exact.state.LeastSquaresState` in place of ``X`` (then
``y`` is None), so a path is solved from the state of a file larger than memory.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..data import is_sparse, sparse_row_blocks
from ..errors import ConvergenceWarning, DataError
from ..exact.state import LeastSquaresState
from .coordinate import enet_gram
from .moments import Moments, moments


def alpha_grid(
    m: Moments, l1_ratio: float, n_alphas: int = 100, eps: float = 1e-3, *, positive: bool = False
) -> np.ndarray:
    """scikit-learn's grid: ``n_alphas`` log-spaced from the smallest alpha giving zero
    coefficients (``max_j ||x_j'W y|| / (W * l1_ratio)``) down to ``eps`` times it.

    Example:
        >>> m = Moments(1.0, np.zeros(1), np.zeros(1), np.eye(1), np.array([[2.0]]), np.ones(1))
        >>> alpha_grid(m, 1.0, 3, 1e-2).tolist()
        [2.0, 0.2, 0.02]
    """
    if l1_ratio == 0:
        raise ValueError(
            "an alpha grid needs l1_ratio > 0 (alpha_max is infinite for ridge); pass alphas="
        )
    norms = np.maximum(m.xy.max(axis=1), 0.0) if positive else np.sqrt((m.xy**2).sum(axis=1))
    top = float(norms.max()) / l1_ratio
    resolution = np.finfo(np.float64).resolution
    if top <= resolution:
        return np.full(n_alphas, resolution)
    return np.geomspace(top, top * eps, num=n_alphas)


def path_from_moments(
    m: Moments,
    alphas: np.ndarray,
    l1_ratio: float = 1.0,
    *,
    tol: float = 1e-4,
    max_iter: int = 1000,
    positive: bool = False,
    coef_init: np.ndarray | None = None,
    warn: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients ``(k, d, n_alphas)``, duality gaps ``(k, n_alphas)`` and sweeps
    ``(k, n_alphas)`` along ``alphas`` (in the order given), each fit warm-started from the
    previous one. One ConvergenceWarning names the alphas whose gap stayed above ``tol``.
    """
    d, k = m.xy.shape
    coefs = np.zeros((k, d, len(alphas)))
    gaps = np.zeros((k, len(alphas)))
    iters = np.zeros((k, len(alphas)), dtype=np.int64)
    missed = []
    for t in range(k):
        coef = np.zeros(d) if coef_init is None else np.asarray(coef_init, float).reshape(k, d)[t]
        for i, alpha in enumerate(alphas):
            res = enet_gram(
                m.xx,
                m.xy[:, t],
                float(m.yy[t]),
                alpha * l1_ratio,
                alpha * (1.0 - l1_ratio),
                coef_init=coef,
                tol=tol,
                max_iter=max_iter,
                positive=positive,
                warn=False,
            )
            coef = res.coef
            coefs[t, :, i], gaps[t, i], iters[t, i] = coef, res.gap, res.n_iter
            if not res.converged:
                missed.append((float(alpha), res.gap, res.tol))
    if missed and warn:
        worst = max(missed, key=lambda a: a[1] / max(a[2], 1e-300))
        warnings.warn(
            f"coordinate descent did not reach the duality gap tol * var(y) for {len(missed)} "
            f"of {len(alphas) * k} fits (worst: alpha={worst[0]:.4g}, gap {worst[1]:.3g} > "
            f"{worst[2]:.3g}); raise max_iter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )
    return coefs, gaps, iters


def enet_path(
    X: Any,
    y: Any = None,
    *,
    l1_ratio: float = 0.5,
    eps: float = 1e-3,
    n_alphas: int = 100,
    alphas: Any = None,
    sample_weight: Any = None,
    fit_intercept: bool = False,
    coef_init: Any = None,
    return_n_iter: bool = False,
    positive: bool = False,
    tol: float = 1e-4,
    max_iter: int = 1000,
):
    """scikit-learn's ``enet_path``: ``(alphas, coefs, dual_gaps[, n_iters])``.

    ``coefs`` is ``(d, n_alphas)`` for a 1-D y, else ``(k, d, n_alphas)``; alphas run from
    large to small. Each target of a 2-D y is its own problem (as ``ElasticNet`` fits them),
    not scikit-learn's multi-task path; the default grid is the multi-task one. As
    scikit-learn's, the path fits no intercept unless ``fit_intercept=True`` (then on
    weighted-centred data). ``X`` may be a
    LeastSquaresState (``y`` None): its own intercept setting and weights apply.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]); y = np.array([1.0, 2.0, 3.0])
        >>> alphas, coefs, gaps = enet_path(X, y, l1_ratio=1.0, n_alphas=3)
        >>> coefs.shape, bool(np.all(coefs[:, 0] == 0))
        ((2, 3), True)
    """
    if isinstance(X, LeastSquaresState):
        if y is not None:
            raise DataError("pass a LeastSquaresState alone (y=None): it holds the targets")
        state, one_d = X, X.n_targets == 1
    elif is_sparse(X):  # in dense row blocks, as the estimators take it (a raw numpy error)
        import torch

        blocks, Ym = sparse_row_blocks(X, y, sample_weight)
        one_d = Ym.was_1d
        state = LeastSquaresState(X.shape[1], Ym.values.shape[1], fit_intercept=fit_intercept)
        for Xb, Yb, wb in blocks:
            Yb = Yb[:, None] if Yb.ndim == 1 else Yb
            state.absorb(torch.as_tensor(Xb), Yb.to(torch.float64), wb)
    else:
        import torch

        Xt = torch.as_tensor(np.asarray(X, dtype=np.float64))
        Yt = torch.as_tensor(np.asarray(y, dtype=np.float64))
        one_d = Yt.ndim == 1
        Yt = Yt[:, None] if one_d else Yt
        w = None if sample_weight is None else torch.as_tensor(np.asarray(sample_weight, float))
        state = LeastSquaresState(Xt.shape[1], Yt.shape[1], fit_intercept=fit_intercept)
        state.absorb(Xt, Yt, w)
    m = moments(state)
    if alphas is None or isinstance(alphas, (int, np.integer)):  # an int: scikit-learn 1.9's
        count = n_alphas if alphas is None else int(alphas)
        alphas = alpha_grid(m, l1_ratio, count, eps, positive=positive)
    else:
        alphas = np.sort(np.asarray(alphas, dtype=np.float64).ravel())[::-1]
    coefs, gaps, iters = path_from_moments(
        m, alphas, l1_ratio, tol=tol, max_iter=max_iter, positive=positive, coef_init=coef_init
    )
    if one_d:
        coefs, gaps, iters = coefs[0], gaps[0], iters[0]
    return (alphas, coefs, gaps, iters) if return_n_iter else (alphas, coefs, gaps)


def lasso_path(X: Any, y: Any = None, **kwargs: Any):
    """scikit-learn's ``lasso_path``: :func:`enet_path` with ``l1_ratio=1``.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]); y = np.array([1.0, 2.0, 3.0])
        >>> alphas, coefs, gaps = lasso_path(X, y, alphas=[0.01])
        >>> np.round(coefs[:, 0], 3).tolist()
        [0.99, 1.99]
    """
    return enet_path(X, y, l1_ratio=1.0, **kwargs)
