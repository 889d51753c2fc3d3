"""Polynomial least squares to the last digit: fit on a centred, scaled basis, report monomials.

Powers of raw ``x`` prebuilt in float64 cap the accuracy of any solver (NIST Filip: about
7.6 digits). Here the design is built from ``x`` itself: ``t = (x - c) / s`` with ``c``
the mid-range and ``s`` a power of two, so ``t`` is known exactly as a double-double
``t_hi + t_lo``. The fit runs in ``t`` (Householder QR, then iterative refinement with
residuals evaluated by a double-double Horner scheme in the exact ``t``), and the
``t``-coefficients are mapped back to monomial coefficients by a binomial expansion in
double-double. The covariance goes through the same linear map.

Example:
    >>> import torch
    >>> x = torch.arange(21, dtype=torch.float64)
    >>> y = 1 + x + x**2 + x**3 + x**4 + x**5
    >>> res = polyfit(x, y, 5)
    >>> [round(float(b), 12) for b in res.params]
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import math
from math import comb

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from ..exact.ddouble import DD, dd_add, dd_from, dd_mul, dd_mul_d, dd_sub, two_sum
from ..exact.refine import _gradient, _weighted, refine_core, sums_of_squares
from .fitstats import as_tensor
from .results import OLSResults


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _center_scale(x: Tensor) -> tuple[float, float]:
    lo, hi = float(x.min()), float(x.max())
    c = lo + (hi - lo) / 2
    half = max(abs(hi - c), abs(c - lo))
    s = 2.0 ** math.ceil(math.log2(half)) if half > 0 else 1.0
    return c, s


def _t_of(x: Tensor, c: float, s: float) -> DD:
    """``(x - c) / s`` exactly, as a double-double (s is a power of two)."""
    hi, lo = two_sum(x, torch.full_like(x, -c))
    return hi / s, lo / s


def _powers(t: Tensor, degree: int) -> Tensor:
    """Columns ``t**1 .. t**degree`` (float64; only a preconditioner and A.T for g)."""
    cols = [t]
    for _ in range(degree - 1):
        cols.append(cols[-1] * t)
    return torch.stack(cols, 1) if cols else t.new_zeros(t.shape[0], 0)


def _powers_dd(t: DD, degree: int) -> DD:
    """Columns ``t**1 .. t**degree`` in double-double, ``(hi, lo)`` each ``(n, degree)``.

    NOTE [the gradient of exact powers]
    Refinement's gradient took the float64 powers of t's high part: the fixed point then
    solved the normal equations of a design perturbed by eps, which a badly conditioned
    basis turns into the coefficients' error (x in [0, 1] and one point at 1e6, degree 3:
    5.6e-5 off, 3.3e-7 at 1e3 and degree 4, all reported as converged; an iterative
    hunt). The powers of the exact t carry their low parts into ``A.T r`` too.
    """
    hi, lo = [t[0]], [t[1]]
    for _ in range(degree - 1):
        h, low = dd_mul((hi[-1], lo[-1]), t)
        hi.append(h)
        lo.append(low)
    if not degree:
        empty = t[0].new_zeros(t[0].shape[0], 0)
        return empty, empty
    return torch.stack(hi, 1), torch.stack(lo, 1)


def _horner(b: DD, t: DD) -> DD:
    """``sum_j b_j t**j`` in double-double; ``b`` is ``(p, k)``, ``t`` ``(n,)`` -> ``(n, k)``."""
    th, tl = t[0][:, None], t[1][:, None]
    acc = (b[0][-1].expand(th.shape[0], -1), b[1][-1].expand(th.shape[0], -1))
    for j in range(b[0].shape[0] - 2, -1, -1):
        acc = dd_add(dd_mul(acc, (th, tl)), (b[0][j], b[1][j]))
    return acc


def _monomial_map(degree: int, c: float, s: float, device=None) -> list[list[tuple[float, DD]]]:
    """For each monomial m, the terms ``(C(j,m) / s**j, (-c)**(j-m) as dd)`` over j >= m."""
    one = torch.ones((), dtype=torch.float64, device=device)
    pw: list[DD] = [dd_from(one)]
    for _ in range(degree):
        pw.append(dd_mul_d(pw[-1], one * -c))
    return [
        [(comb(j, m) / s**j, pw[j - m]) for j in range(m, degree + 1)] for m in range(degree + 1)
    ]


def _to_monomials(b: DD, c: float, s: float) -> DD:
    degree = b[0].shape[0] - 1
    out_hi, out_lo = [], []
    for m, terms in enumerate(_monomial_map(degree, c, s, b[0].device)):
        acc = dd_from(torch.zeros_like(b[0][0]))
        for off, (factor, power) in enumerate(terms):
            j = m + off
            term = dd_mul(
                (b[0][j], b[1][j]), (power[0].expand_as(b[0][j]), power[1].expand_as(b[0][j]))
            )
            acc = dd_add(acc, dd_mul_d(term, torch.full_like(term[0], factor)))
        out_hi.append(acc[0])
        out_lo.append(acc[1])
    return torch.stack(out_hi), torch.stack(out_lo)


def _map_matrix(degree: int, c: float, s: float) -> Tensor:
    M = torch.zeros(degree + 1, degree + 1, dtype=torch.float64)
    for m, terms in enumerate(_monomial_map(degree, c, s)):
        for off, (factor, power) in enumerate(terms):
            M[m, m + off] = factor * float(power[0] + power[1])
    return M


def polyfit(
    x,
    y,
    degree: int,
    *,
    sample_weight=None,
    cov_type: str = "nonrobust",
    rcond: float | None = None,
    max_steps: int = 10,
) -> OLSResults:
    """Fit ``y = B0 + B1 x + ... + Bdegree x**degree`` to full float64 accuracy.

    ``x`` is ``(n,)``, ``y`` ``(n,)`` or ``(n, k)``. Returns an :class:`OLSResults` whose
    ``params`` are the monomial coefficients ``B0..Bdegree`` (NaN where aliased), with
    standard errors, R-squared, intervals and ``get_prediction(x_new)`` on the same basis.

    Example: see the module docstring.
    """
    from ..exact.state import fit_exact

    x = as_tensor(x).to(torch.float64)
    Y = as_tensor(y)
    Y = Y.to(device=x.device, dtype=torch.float64)
    squeeze = Y.ndim == 1
    x, Y = x.reshape(-1), Y.reshape(x.shape[0] if x.ndim else 1, -1)
    if degree < 0 or degree != int(degree):
        raise ValueError(f"degree must be a non-negative integer; got {degree!r}")
    if not bool(torch.isfinite(x).all()) or not bool(torch.isfinite(Y).all()):
        raise DataError("x and y must be finite; drop or impute the non-finite values first")
    w = None if sample_weight is None else as_tensor(sample_weight).to(x)
    c, s = _center_scale(x)
    t = _t_of(x, c, s)
    A = _powers(t[0], degree)
    p = degree + 1
    names = ["const"] + [f"x**{j}" if j > 1 else "x" for j in range(1, p)]
    state, sol = fit_exact(
        A, Y, sample_weight=w, fit_intercept=True, rcond=rcond, feature_names=names[1:]
    )
    keep = [0] + [j + 1 for j in range(degree) if j not in set(sol.aliased)]
    R = state.r_factor().to(torch.float64)[:p, :p]
    Rk = torch.linalg.qr(R[:, keep], mode="r").R if len(keep) < p else R
    b0 = torch.cat([sol.intercept.to(torch.float64)[None], sol.coef.to(torch.float64).T])
    b0[[j for j in range(p) if j not in keep]] = 0.0

    def full(xk: DD) -> DD:
        hi, lo = torch.zeros_like(b0), torch.zeros_like(b0)
        hi[keep], lo[keep] = xk[0], xk[1]
        return hi, lo

    def residual(xk: DD) -> DD:
        return dd_sub(dd_from(Y), _horner(full(xk), t))

    # NOTE [the gradient of exact powers]: A.T r with the powers of t in double-double
    cols = [j - 1 for j in keep[1:]]
    P_hi, P_lo = _powers_dd(t, degree)
    Ak, Ak_lo = P_hi[:, cols], P_lo[:, cols]

    def rhs(xk: DD) -> Tensor:
        wr = _weighted(residual(xk), w)
        g = _gradient(Ak, wr, True)
        g[1:] += Ak_lo.T @ (wr[0] + wr[1])  # the powers' low parts: a correction of eps
        return g

    xk, _, _ = refine_core(rhs, Rk, dd_from(b0[keep]), max_steps=max_steps)
    r = residual(xk)
    b = full(xk)
    B = _to_monomials(b, c, s)
    params = _np(B[0] + B[1])
    aliased = [j for j in range(p) if j not in keep]  # the engine has warned about them
    params[aliased] = np.nan
    M = _map_matrix(degree, c, s).to(x.device)
    bk = (b[0] + b[1])[keep]

    def design(xn: Tensor | None) -> Tensor:
        tn = t if xn is None else _t_of(xn.to(x).reshape(-1), c, s)
        P = _powers(tn[0] + tn[1], degree)
        return torch.cat([torch.ones_like(P[:, :1]), P], 1)[:, keep]

    def rows() -> tuple[Tensor, Tensor]:
        sw = torch.ones_like(x) if w is None else w.sqrt()
        rr = r[0] + r[1]
        return sw[:, None] * design(None), sw[:, None] * rr

    sv = torch.linalg.svdvals(Rk @ torch.linalg.inv(M[:, keep][keep]))
    return OLSResults(
        params=params,
        basis_params=bk,
        basis_r=Rk,
        basis_map=M[:, keep],
        design=design,
        rows=rows,
        endog=Y,
        sums={k: _np(v) for k, v in sums_of_squares(Y, r, w, True).items()},
        nobs=int(x.shape[0]),
        k_constant=1,
        weights=None if w is None else _np(w),
        aliased_params=aliased,
        param_names=names,
        target_names=[f"y{j + 1}" for j in range(Y.shape[1])],
        squeeze=squeeze,
        cov_type=cov_type,
        condition_number=float(sv[0] / sv[-1]),
    )
