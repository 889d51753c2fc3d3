"""Heteroscedasticity-robust (HC0-HC3) covariances and the Wald F test, for OLSResults.

All functions take the whitened rows ``A`` ``(n, q)`` (``sqrt(w)`` times the design), the
whitened residuals ``e`` ``(n, k)`` and ``C = (A'A)^-1`` ``(q, q)``, as statsmodels' WLS
does, and return one covariance per target.

Example:
    >>> import torch
    >>> A = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    >>> e = torch.tensor([[0.1], [-0.2], [0.1]], dtype=torch.float64)
    >>> C = torch.linalg.inv(A.T @ A)
    >>> hc_covariance(A, e, C, "HC0", 3, 1).shape
    torch.Size([2, 2, 1])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def leverage(A: Tensor, C: Tensor) -> Tensor:
    """Diagonal of the hat matrix ``A C A'``, ``(n, 1)``."""
    return ((A @ C) * A).sum(1, keepdim=True)


def hc_covariance(A: Tensor, e: Tensor, C: Tensor, cov_type: str, nobs: int, df_resid: float):
    """Sandwich ``C (A' diag(u**2) A) C`` per target, ``(q, q, k)``.

    HC0: ``u = e``; HC1: HC0 times ``nobs / df_resid``; HC2: ``u = e / sqrt(1 - h)``;
    HC3: ``u = e / (1 - h)``, with ``h`` the leverage.
    """
    if cov_type in ("HC2", "HC3"):
        h = leverage(A, C)
        e = e / (1 - h).sqrt() if cov_type == "HC2" else e / (1 - h)
    meat = torch.einsum("na,nk,nb->abk", A, e**2, A)
    cov = torch.einsum("ia,abk,bj->ijk", C, meat, C)
    if cov_type == "HC1":
        cov = cov * (nobs / df_resid)
    return cov


def wald_f(params: np.ndarray, cov: np.ndarray, idx: list[int]) -> np.ndarray:
    """F statistic that ``params[idx]`` are all zero, per target: ``b' V^-1 b / len(idx)``."""
    f = np.full(params.shape[1], np.nan)
    if not idx:
        return f
    for t in range(f.size):
        b = params[idx, t]
        f[t] = b @ np.linalg.solve(cov[np.ix_(idx, idx, [t])][..., 0], b) / len(idx)
    return f
