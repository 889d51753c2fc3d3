"""HC0-HC3 covariances of a streamed fit: one more pass over the row blocks.

The sandwich of :func:`~torchlinreg.stats.covariance.hc_covariance` with the state's factor
``R`` (``A'WA = R'R``, about the offsets where they dominate) in place of a QR of all rows:
the pass of ``OLSResults.robust_from_blocks`` (``robust_blocks.py``), each block giving
``Q = A R^-1`` by a triangular solve, the leverage ``h = ||Q_i||^2`` and its share of the
meat; memory stays at one block plus ``q x q`` per target. The results of the
state (:meth:`OLSResults.from_state`) then take the covariance with :func:`with_robust`.
``Q`` from ``R`` loses digits as ``cond(A)^2`` where a Householder QR of the rows would not,
so badly conditioned designs keep fewer digits here than in memory.

Example:
    >>> import numpy as np, torch
    >>> from torchlinreg.stats.results import ols
    >>> X = np.arange(12.0)[:, None]; y = X[:, 0] + np.tile([0.3, -0.1, -0.2], 4)
    >>> mem = ols(X, y, cov_type="HC3")
    >>> res = ols(X, y)
    >>> blocks = [(torch.from_numpy(X[:5]), torch.from_numpy(y[:5, None]), None),
    ...           (torch.from_numpy(X[5:]), torch.from_numpy(y[5:, None]), None)]
    >>> cov = hc_from_blocks(res, blocks, "HC3")
    >>> bool(np.allclose(with_robust(res, cov, "HC3").bse, mem.bse, rtol=1e-10))
    True
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .robust_blocks import HC_TYPES, hc_covariances


def hc_from_blocks(res, blocks, cov_type: str) -> Tensor:
    """``(q, q, k)`` robust covariance in ``res``'s basis from blocks ``(X, Y, w)``."""
    # NOTE [streamed HC about the offsets]
    # This pass took the raw rows and R, and residuals Y - A b in float64: a column near
    # 1e9 with a spread of 0.01 (intercept) gave standard errors up to 3.9e-6 from the
    # 60-digit sandwich of the same parameters, silently, and so did the model file of
    # `train --cov-type HC1`. It is now robust_from_blocks' pass (robust_blocks.py): rows
    # about the fit's offsets before the weights (NOTE [blocks about the offsets]), the
    # residuals in double-double where float64 cancels, and the warning of NOTE [blocks
    # without an intercept] where one pass cannot be accurate.
    return hc_covariances(res, blocks, cov_type)[0]


def with_robust(res, cov_basis: Tensor, cov_type: str):
    """``res`` reporting ``cov_type`` standard errors from a covariance computed elsewhere
    (normal distribution for the tests, as statsmodels uses for HC)."""
    res.cov_type = cov_type
    res.use_t = False
    res.__dict__["_robust_cov_basis"] = cov_basis.to(res._r.device, torch.float64)
    for key in ("_cov", "bse", "tvalues", "pvalues", "_f"):
        res.__dict__.pop(key, None)
    return res


def cov_record(cov_basis: Tensor, cov_type: str) -> dict:
    """The covariance as plain JSON for a model file."""
    values = cov_basis.detach().cpu().to(torch.float64).numpy()
    return {
        "cov_type": cov_type,
        "cov": [
            [[None if not np.isfinite(v) else float(v) for v in row] for row in m] for m in values
        ],
    }


def cov_from_record(record, q: int, k: int) -> tuple[Tensor, str]:
    """Validate a model file's robust covariance record: ``(q, q, k)`` numbers or nulls."""
    if not (isinstance(record, dict) and record.get("cov_type") in HC_TYPES):
        raise DataError("the robust covariance record names no HC0-HC3 covariance")
    cov = record.get("cov")
    ok = (
        isinstance(cov, list)
        and len(cov) == q
        and all(isinstance(r, list) and len(r) == q for r in cov)
        and all(isinstance(c, list) and len(c) == k for r in cov for c in r)
        and all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
            for r in cov
            for c in r
            for v in c
        )
    )
    if not ok:
        raise DataError(f"the robust covariance is not {q} x {q} x {k} numbers")
    values = np.array(
        [[[np.nan if v is None else v for v in c] for c in r] for r in cov], dtype=np.float64
    )
    return torch.from_numpy(values), record["cov_type"]
