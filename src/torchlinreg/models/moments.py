"""The centred moments of a least-squares state, divided by the total weight.

scikit-learn's penalised objectives are ``1/(2 W) ||y - Xw - b||_W^2 + penalty`` with ``W`` the
sum of the sample weights: with ``b`` profiled out they only see the centred co-moments of
``[X | Y]`` over ``W``, which is what :func:`moments` returns (in float64 numpy on the CPU:
the matrices are ``(d + k)^2``, and coordinate descent is a scalar loop).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from ..errors import DataError


class Moments(NamedTuple):
    """Weighted means and centred second moments (over the total weight) of ``[X | Y]``.

    ``xx`` is ``(d, d)``, ``xy`` ``(d, k)``, ``yy`` ``(k,)`` (the targets' variances);
    without an intercept the moments are about zero and the means are zero.
    """

    sum_w: float
    x_mean: np.ndarray
    y_mean: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    yy: np.ndarray


@torch.no_grad()
def moments(state: Any) -> Moments:
    """The :class:`Moments` of ``state`` (a LeastSquaresState of either method).

    Example:
        >>> from torchlinreg.exact.state import LeastSquaresState
        >>> X = torch.tensor([[0.0], [2.0]]); y = torch.tensor([1.0, 5.0])
        >>> m = moments(LeastSquaresState(1, 1).absorb(X, y))
        >>> [round(float(v), 12) for v in (m.xx[0, 0], m.xy[0, 0], m.y_mean[0])]
        [1.0, 2.0, 3.0]
    """
    if state.n_samples == 0:
        raise DataError("no rows absorbed: the state is empty; fit on at least one row")
    summ = state.centred_summary()
    w = float(summ.sum_weights)
    if not w > 0:
        raise DataError("all sample weights are zero: at least one weight must be positive")
    r = summ.r.detach().to(device="cpu", dtype=torch.float64)
    means = summ.means.detach().to(device="cpu", dtype=torch.float64).numpy()
    if not (torch.isfinite(r).all() and np.isfinite(means).all()):
        raise DataError(
            "the state holds non-finite values: X, y or sample_weight had NaN or inf; "
            "clean the data before fitting"
        )
    c = (r.T @ r).numpy() / w
    c = (c + c.T) / 2  # exactly symmetric, as coordinate descent assumes
    d = state.n_features
    return Moments(w, means[:d], means[d:], c[:d, :d], c[:d, d:], np.diag(c)[d:].copy())
