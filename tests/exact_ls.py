"""Exact least squares of float64 data: the Gram in Python integers, solved in fractions.

Every float64 value is an integer times a power of two, so ``A'WA``, ``A'Wy`` and ``y'Wy``
are exact integer dot products (numpy object arrays), and Gauss-Jordan on them in
``Fraction`` gives the exact solution, residual sum of squares and the diagonal of the
inverse: the reference the statistics are checked against. 20,000 rows x 5 parameters
take about a tenth of a second, some 40x faster than fractions row by row.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def _as_integers(v) -> tuple[np.ndarray, int]:
    """A float64 column as Python integers ``m`` and one exponent ``E``: ``v = m 2^E``."""
    v = np.asarray(v, dtype=np.float64)
    mant, e = np.frexp(v)
    mant = (mant * 2.0**53).astype(np.int64)
    e = e.astype(np.int64) - 53
    nonzero = mant != 0
    out = np.empty(len(v), dtype=object)
    if not nonzero.any():
        out[:] = [0] * len(v)
        return out, 0
    E = int(e[nonzero].min())
    shift = np.where(nonzero, e - E, 0).tolist()
    out[:] = [a << b if a >= 0 else -((-a) << b) for a, b in zip(mant.tolist(), shift, strict=True)]
    return out, E


def _fraction(i: int, E: int) -> Fraction:
    return Fraction(i) * Fraction(2) ** E


def exact_fit(X, y, w=None, intercept=True) -> dict:
    """Exact ``params`` (p,), ``rss``, ``centered_tss``, ``uncentered_tss`` (Fractions) and
    ``inverse_diagonal`` (p Fractions) of the weighted least-squares fit of one target."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64).reshape(-1)
    n = X.shape[0]
    cols = ([np.ones(n)] if intercept else []) + [X[:, j] for j in range(X.shape[1])]
    A = [_as_integers(c) for c in cols]
    Y = _as_integers(y)
    W, Ew = (None, 0) if w is None else _as_integers(w)

    def dot(a, b, weighted=True) -> Fraction:
        (ia, ea), (ib, eb) = a, b
        if W is None or not weighted:
            return _fraction(int(np.dot(ia, ib)), ea + eb)
        return _fraction(int(np.dot(ia * W, ib)), ea + eb + Ew)

    p = len(A)
    G = [[dot(A[a], A[b]) for b in range(p)] for a in range(p)]
    v = [dot(A[a], Y) for a in range(p)]
    yy = dot(Y, Y)
    ones = (np.array([1] * n, dtype=object), 0)
    sw = Fraction(n) if W is None else _fraction(int(np.sum(W)), Ew)
    sy = dot(ones, Y)
    M = [G[a] + [v[a]] + [Fraction(int(a == b)) for b in range(p)] for a in range(p)]
    for c in range(p):  # Gauss-Jordan, exact
        pivot = next(r for r in range(c, p) if M[r][c] != 0)
        M[c], M[pivot] = M[pivot], M[c]
        M[c] = [x / M[c][c] for x in M[c]]
        for r in range(p):
            if r != c and M[r][c] != 0:
                f = M[r][c]
                M[r] = [a - f * b for a, b in zip(M[r], M[c], strict=True)]
    params = [M[a][p] for a in range(p)]
    return {
        "params": params,
        "rss": yy - sum(b * t for b, t in zip(params, v, strict=True)),
        "centered_tss": yy - sy * sy / sw,
        "uncentered_tss": yy,
        "inverse_diagonal": [M[a][p + 1 + a] for a in range(p)],
    }


def exact_statistics(X, y, w=None, intercept=True) -> dict:
    """float64 ``params``, ``bse``, ``ssr``, ``rsquared`` and ``fvalue`` of the exact fit
    (``df_resid = n - p``), each correctly rounded up to the final square root."""
    fit = exact_fit(X, y, w, intercept)
    p, n = len(fit["params"]), np.asarray(X).shape[0]
    scale = fit["rss"] / (n - p)
    tss = fit["centered_tss"] if intercept else fit["uncentered_tss"]
    dfm = p - int(intercept)
    return {
        "params": np.array([float(b) for b in fit["params"]]),
        "bse": np.array([float(scale * d) ** 0.5 for d in fit["inverse_diagonal"]]),
        "ssr": float(fit["rss"]),
        "rsquared": float(1 - fit["rss"] / tss),
        "fvalue": float((tss - fit["rss"]) / dfm / scale) if fit["rss"] else np.inf,
    }
