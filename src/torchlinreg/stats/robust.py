"""Cluster-robust (one- and two-way) and HAC (Newey-West) covariances, as statsmodels.

Both are sandwiches ``C S C`` with ``C = (A'A)^-1`` over the whitened rows ``A`` and their
whitened residuals ``e`` (statsmodels' ``wexog * wresid`` scores). As for HC
(``covariance.py``), ``C`` is never formed: with ``A = Q R`` the scores are taken in the
``Q`` basis, ``S_Q = Q' ... Q``, and ``cov = R^-1 S_Q R^-T`` by triangular solves.

- cluster: ``S = sum_g s_g s_g'`` with ``s_g`` the sum of the scores of cluster ``g``;
  by default (statsmodels' ``use_correction=True``) times
  ``G / (G - 1) * (n - 1) / (n - k)``. Two-way: ``V_1 + V_2 - V_12`` (Cameron, Gelbach
  and Miller), ``V_12`` clustered on the intersections, each with its own correction.
  Inference uses ``G - 1`` degrees of freedom (``min(G_1, G_2) - 1`` two-way) unless
  ``df_correction=False``, as statsmodels' ``df_resid_inference``.
- HAC: ``S = sum_l w_l (Gamma_l + Gamma_l')`` with ``Gamma_l = sum_i x_i x_{i-l}'`` and the
  Bartlett weights ``1 - l / (L + 1)`` (or uniform); statsmodels' default
  ``use_correction=False`` (``True`` multiplies by ``n / (n - k)``).

Streamed rows give the per-cluster score sums block by block (a cluster's rows may come in
any block): :func:`cluster_score_sums` adds one block's sums in the ``A`` basis and
:func:`cluster_covariance_from_sums` turns them into the covariance with the state's R.

Example:
    >>> import torch
    >>> A = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0], [1.0, 3.0]], dtype=torch.float64)
    >>> e = torch.tensor([[0.1], [-0.2], [0.1], [0.0]], dtype=torch.float64)
    >>> g = cluster_codes([0, 0, 1, 1], 4)
    >>> cluster_covariance(A, e, g, rank=2).shape
    torch.Size([2, 2, 1])
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data import missing_labels
from ..errors import DataError, RankWarning
from .covariance import _sandwich, q_basis

KERNELS = ("bartlett", "uniform")


@dataclass(frozen=True)
class ClusterCodes:
    """Cluster labels as codes ``0..G-1``: one column per clustering variable (1 or 2)."""

    codes: tuple[np.ndarray, ...]  # each (n,) int64
    n_groups: tuple[int, ...]

    @property
    def inference_groups(self) -> int:
        """The cluster count that sets the degrees of freedom (the smaller one two-way)."""
        return min(self.n_groups)


def unique_labels(col: np.ndarray, j: int, first_row: int = 0) -> tuple[list, np.ndarray]:
    """A clustering variable's distinct labels (plain Python values) and each row's code
    into them. A missing label (NaN, None, pd.NA, NaT) is refused naming its row (text
    labels with one gave numpy's "'<' not supported between 'float' and 'str'");
    labels of mixed types (1 and "a") are told apart by type and value, unsorted."""
    import pandas as pd

    missing = missing_labels(col)
    if missing.any():
        row = first_row + int(np.flatnonzero(missing)[0])
        raise DataError(
            f"clustering variable {j + 1} is missing at row {row + 1} (counting from 1); "
            "give every observation a cluster or drop the row"
        )
    try:
        uniq, inv = np.unique(col, return_inverse=True)
    except TypeError:  # mixed types do not sort
        inv, uniq = pd.factorize(col)
    labels = [u.item() if isinstance(u, np.generic) else u for u in uniq]
    return labels, np.asarray(inv).reshape(-1).astype(np.int64)


def cluster_codes(groups, nobs: int) -> ClusterCodes:
    """Codes of one or two clustering variables, as statsmodels' ``cov_kwds["groups"]``.

    ``groups`` is one label per row (any hashable labels: ints, strings), an ``(n, 1)`` or
    ``(n, 2)`` array or DataFrame, or a tuple/list of two label arrays.
    """
    if isinstance(groups, ClusterCodes):  # already coded (e.g. counted over streamed blocks)
        return groups
    if isinstance(groups, (tuple, list)) and len(groups) in (1, 2) and np.ndim(groups[0]) >= 1:
        cols = [np.asarray(g).reshape(-1) for g in groups]
    else:
        arr = np.asarray(groups)
        if arr.ndim == 1:
            cols = [arr]
        elif arr.ndim == 2 and arr.shape[1] in (1, 2):
            cols = [arr[:, j] for j in range(arr.shape[1])]
        else:
            raise DataError(
                f"groups has shape {arr.shape}; give one or two clustering variables "
                "(one label per row, or an (n, 2) array); more than two are not supported"
            )
    codes, counts = [], []
    for j, col in enumerate(cols):
        if col.shape[0] != nobs:
            raise DataError(
                f"clustering variable {j + 1} has {col.shape[0]} labels for {nobs} rows; "
                "give one cluster label per observation"
            )
        uniq, inv = unique_labels(col, j)
        codes.append(inv)
        counts.append(len(uniq))
    if len(codes) == 2:  # the intersections, for V_12
        _, inter = np.unique(codes[0] * counts[1] + codes[1], return_inverse=True)
        codes.append(inter.reshape(-1).astype(np.int64))
        counts.append(int(inter.max()) + 1 if inter.size else 0)
    return ClusterCodes(tuple(codes), tuple(counts))


def _group_sums(X: Tensor, e: Tensor, codes: Tensor, n_groups: int) -> Tensor:
    """Per target, per cluster sums of the scores ``X_i e_i``: ``(k, G, q)``."""
    out = X.new_zeros(e.shape[1], n_groups, X.shape[1])
    for t in range(e.shape[1]):
        out[t].index_add_(0, codes, X * e[:, t : t + 1])
    return out


def _correction(n_groups: int, nobs: int, rank: int, use_correction: bool) -> float:
    if not use_correction:
        return 1.0
    if n_groups < 2 or nobs <= rank:
        return math.nan
    return n_groups / (n_groups - 1.0) * (nobs - 1.0) / (nobs - rank)


def _two_way(parts: list[Tensor], groups: ClusterCodes, nobs, rank, use_correction) -> Tensor:
    signs = (1.0,) if len(parts) == 1 else (1.0, 1.0, -1.0)
    cov = 0
    for sign, part, ng in zip(signs, parts, groups.n_groups, strict=True):
        cov = cov + sign * _correction(ng, nobs, rank, use_correction) * part
    return cov


def cluster_covariance(
    A: Tensor,
    e: Tensor,
    groups: ClusterCodes,
    *,
    rank: int,
    use_correction: bool = True,
    shift: Tensor | None = None,
) -> Tensor:
    """Cluster-robust covariance ``(q, q, k)`` of whitened rows ``A`` ``(n, q)`` and
    whitened residuals ``e`` ``(n, k)`` (one- or two-way, see the module docstring)."""
    Q, sandwich = q_basis(A, shift)
    parts = []
    for codes, ng in zip(groups.codes, groups.n_groups, strict=True):
        s = _group_sums(Q, e, torch.from_numpy(codes).to(Q.device), ng)
        parts.append(sandwich(s.transpose(-1, -2) @ s))
    nobs = A.shape[0]
    return _two_way(parts, groups, nobs, rank, use_correction).permute(1, 2, 0)


def cluster_score_sums(
    A: Tensor, e: Tensor, groups: ClusterCodes, rows: slice, sums: list[Tensor] | None
) -> list[Tensor]:
    """Add one block's per-cluster score sums (``A`` basis) to ``sums`` (None: start).

    ``A`` and ``e`` are the block's whitened rows and residuals, ``rows`` their place in
    ``groups``' codes. Sums of several blocks (or ranks) simply add.
    """
    out = []
    for j, (codes, ng) in enumerate(zip(groups.codes, groups.n_groups, strict=True)):
        c = torch.from_numpy(codes[rows]).to(A.device)
        s = _group_sums(A, e, c, ng)
        out.append(s if sums is None else sums[j] + s)
    return out


def cluster_covariance_from_sums(
    R: Tensor,
    sums: list[Tensor],
    groups: ClusterCodes,
    *,
    nobs: int,
    use_correction=True,
    inverse: Tensor | None = None,
) -> Tensor:
    """The cluster covariance ``(q, q, k)`` from score sums in the ``A`` basis and the R
    factor of ``A`` (``s_Q = R^-T s_A``, no rows needed). With ``inverse`` (``P``: the
    sums' rows about the offsets, NOTE [blocks about the offsets] in robust_blocks.py)
    the covariance is ``P S_Q P'``, that of the raw parameters."""
    parts = []
    for s in sums:
        sq = torch.linalg.solve_triangular(R.T, s.transpose(-1, -2), upper=False)
        meat = sq @ sq.transpose(-1, -2)
        if inverse is None:
            parts.append(_sandwich(R, meat))
        else:
            cov = inverse @ meat @ inverse.T
            parts.append((cov + cov.transpose(-1, -2)) / 2)
    return _two_way(parts, groups, nobs, R.shape[0], use_correction).permute(1, 2, 0)


def default_maxlags(nobs: int) -> int:
    """Newey-West's rule ``floor(4 (n / 100)^(2/9))`` (statsmodels' ``S_hac_simple``)."""
    return int(np.floor(4 * (nobs / 100.0) ** (2.0 / 9.0)))


def kernel_weights(kernel: str, maxlags: int) -> np.ndarray:
    """Weights of lags ``0..maxlags``: Bartlett ``1 - l / (L + 1)`` or uniform ones."""
    if kernel == "bartlett":
        return 1 - np.arange(maxlags + 1) / (maxlags + 1.0)
    if kernel == "uniform":
        return np.ones(maxlags + 1)
    raise ValueError(f"kernel must be one of {KERNELS}; got {kernel!r}")


def hac_covariance(
    A: Tensor,
    e: Tensor,
    *,
    maxlags: int,
    kernel: str = "bartlett",
    use_correction: bool = False,
    shift: Tensor | None = None,
) -> Tensor:
    """Newey-West covariance ``(q, q, k)``; the rows must be in time order."""
    Q, sandwich = q_basis(A, shift)
    w = kernel_weights(kernel, maxlags)
    meats = []
    for t in range(e.shape[1]):
        x = Q * e[:, t : t + 1]
        S = x.T @ x
        for lag in range(1, min(maxlags, x.shape[0] - 1) + 1):
            g = x[lag:].T @ x[:-lag]
            S = S + float(w[lag]) * (g + g.T)
        meats.append(S)
    cov = sandwich(torch.stack(meats))
    if use_correction:
        n, q = A.shape
        cov = cov * (n / (n - q) if n > q else math.nan)
    return cov.permute(1, 2, 0)


def robust_covariance(
    A: Tensor, e: Tensor, cov_type: str, kw: dict, rank: int, shift: Tensor | None = None
) -> Tensor:
    """``cov_type`` "cluster" or "HAC" with its normalized keywords, ``(q, q, k)``;
    ``shift`` as :func:`~torchlinreg.stats.covariance.q_basis` takes it."""
    if cov_type == "cluster":
        return cluster_covariance(
            A, e, kw["groups"], rank=rank, use_correction=kw["use_correction"], shift=shift
        )
    return hac_covariance(
        A,
        e,
        maxlags=kw["maxlags"],
        kernel=kw["weights_func"],
        use_correction=kw["use_correction"],
        shift=shift,
    )


def normalize_cov_kwds(cov_type: str, cov_kwds: dict | None, nobs: int) -> dict:
    """Checked keywords of ``cov_type`` (statsmodels' names); groups become codes."""
    kw = dict(cov_kwds or {})
    kw.pop("use_t", None)  # read by the caller, as statsmodels' fit does
    if "kernel" in kw:
        kw["weights_func"] = kw.pop("kernel")
    allowed = {
        "cluster": {"groups", "use_correction", "df_correction"},
        "HAC": {"maxlags", "weights_func", "use_correction"},
    }.get(cov_type, set())
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise ValueError(
            f"cov_kwds {unknown} are not used by cov_type={cov_type!r}; "
            f"it takes {sorted(allowed) or 'none'}"
        )
    if cov_type == "cluster":
        if "groups" not in kw:
            raise ValueError('cov_type="cluster" needs cov_kwds={"groups": labels}')
        kw["groups"] = cluster_codes(kw["groups"], nobs)
        if kw["groups"].inference_groups < 2:
            # the scores of one cluster sum to X'e = 0 with an intercept: a covariance of
            # rounding noise (t ~ 1e16, p = 0) or, corrected by G / (G - 1), NaN; silent
            # before (a robust-covariance hunt), as in statsmodels
            warnings.warn(
                "cov_type='cluster' with one cluster: a clustered covariance needs two "
                "clusters at least (and many more than the parameters); its standard errors "
                "are 0 or NaN here, not estimates: cluster on a finer variable, or use HC1",
                RankWarning,
                stacklevel=3,
            )
        kw.setdefault("use_correction", True)
        kw.setdefault("df_correction", True)
    elif cov_type == "HAC":
        maxlags = kw.get("maxlags")
        kw["maxlags"] = default_maxlags(nobs) if maxlags is None else int(maxlags)
        if kw["maxlags"] < 0:
            raise ValueError(f"maxlags must be >= 0; got {maxlags}")
        kw["weights_func"] = str(kw.get("weights_func", "bartlett")).lower()
        kernel_weights(kw["weights_func"], 0)  # checks the name
        if kw["maxlags"] >= nobs - 1:
            # lags across the whole sample: as the weights near 1 the estimate shrinks to the
            # scores' sum, 0 with an intercept (uniform at n - 1: bse 1e-9, p = 0, NaN; the
            # same from statsmodels, silently)
            warnings.warn(
                f"HAC with maxlags={kw['maxlags']} over {nobs} rows spans the whole sample: "
                "the estimate shrinks toward the scores' sum (0 with an intercept), and its "
                "standard errors toward 0 or NaN; use maxlags well below the rows (by "
                f"default {default_maxlags(nobs)})",
                RankWarning,
                stacklevel=3,
            )
        kw.setdefault("use_correction", False)
    return kw
