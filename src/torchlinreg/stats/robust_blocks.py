"""Cluster-robust covariance of a streamed fit: a second pass over the row blocks.

The first pass (``fit_blocks``, files, ranks) leaves the R factor and the parameters; the
scores ``a_i e_i`` need the residuals, so the rows are read again. :class:`ClusterSums`
adds each block's scores into per-cluster sums keyed by the cluster labels themselves, so
a cluster's rows may come in any block, in any order, or on any rank (:meth:`merge`);
memory is one ``q``-vector per cluster and target. The covariance then follows from the
sums and R alone (``robust.cluster_covariance_from_sums``) and equals the in-memory one.

Example:
    >>> import numpy as np
    >>> from torchlinreg.stats.results import ols
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(40, 2))
    >>> y = X[:, 0] + rng.normal(size=40)
    >>> g = np.arange(40) % 5
    >>> res = ols(X, y)
    >>> blocks = [(X[:25], y[:25]), (X[25:], y[25:])]
    >>> cl = res.cluster_from_blocks(blocks, [g[:25], g[25:]])
    >>> bool(np.allclose(cl.bse, ols(X, y, cov_type="cluster", cov_kwds={"groups": g}).bse))
    True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from ..data import unpack_block
from ..errors import DataError, RankWarning
from ..exact.linalg import inverse_and_kappa
from ..exact.solve import ACCURACY_WARNING
from .covariance import _RECOMPUTE, LEVERAGE_ONE_FACTOR
from .robust import ClusterCodes, cluster_covariance_from_sums, unique_labels

HC_TYPES = ("HC0", "HC1", "HC2", "HC3")


class ClusterSums:
    """Per-cluster sums of the whitened scores ``a_i e_i`` for one or two clusterings."""

    def __init__(self) -> None:
        self.labels: list[dict] = []  # per clustering (and the intersections): label -> code
        self.sums: list[Tensor] = []  # per clustering: (k, G, q)
        self.nobs = 0
        # the offsets add_blocks took the rows about (NOTE [blocks about the offsets]);
        # None: the raw rows, or sums merged from parts that did not say
        self.shift: Tensor | None = None
        # without an intercept (NOTE [blocks without an intercept]), as MeatSums keeps them
        self.size: Tensor | None = None
        self.sum_squares: Tensor | None = None
        # per clustering: each cluster's sum of leverages h_i (G,), where add() was given the
        # fit's factor; None: sums that cannot bound their residuals' move (NOTE [blocks at
        # the least-squares residuals]). ``corrected``: taken at the least-squares residuals,
        # or found within RESIDUALS_TOL of them (nothing left to say)
        self.leverage: list[Tensor] | None = None
        self.corrected = False

    def _codes(self, j: int, labels: np.ndarray) -> np.ndarray:
        # labels as plain values: text in an object array (pandas) has no .item()
        uniq, inv = unique_labels(labels, min(j, 1), self.nobs)
        table = self.labels[j]
        codes = np.array([table.setdefault(u, len(table)) for u in uniq], dtype=np.int64)
        return codes[inv]

    def add(self, A: Tensor, e: Tensor, groups, R: Tensor | None = None) -> None:
        """Add one block: whitened rows ``A`` ``(b, q)``, residuals ``e`` ``(b, k)`` and
        the block's cluster labels (``(b,)``, ``(b, 2)`` or a pair of arrays). ``A`` is
        taken about the fit's offsets where it has them (:func:`whitened_rows` with the
        fit's shift, as :func:`add_blocks` takes it): the sums are read that way. With the
        fit's factor ``R`` each cluster's leverages are summed too (NOTE [blocks at the
        least-squares residuals])."""
        cols = _label_columns(groups, A.shape[0])
        if not self.labels:
            n_sets = 1 if len(cols) == 1 else 3
            self.labels = [{} for _ in range(n_sets)]
            self.sums = [A.new_zeros(e.shape[1], 0, A.shape[1]) for _ in range(n_sets)]
            if R is not None and not self.nobs:
                self.leverage = [A.new_zeros(0) for _ in range(n_sets)]
        h = None
        if R is not None and self.leverage is not None:
            q = torch.linalg.solve_triangular(R, A, upper=True, left=False)
            h = (q * q).sum(1)
        else:
            self.leverage = None
        if (len(cols) == 1) != (len(self.labels) == 1):
            raise DataError("every block needs the same number of clustering variables")
        codes = [self._codes(j, c) for j, c in enumerate(cols)]
        if len(cols) == 2:  # the intersections, keyed by both codes
            codes.append(self._codes(2, codes[0] * (1 << 32) + codes[1]))
        for j, c in enumerate(codes):
            self._grow(j, len(self.labels[j]))
            idx = torch.from_numpy(c).to(A.device)
            for t in range(e.shape[1]):
                self.sums[j][t].index_add_(0, idx, A * e[:, t : t + 1])
            if h is not None:
                self.leverage[j].index_add_(0, idx, h)
        self.nobs += A.shape[0]

    def _grow(self, j: int, size: int) -> None:
        s = self.sums[j]
        if s.shape[1] < size:
            more = max(size, 2 * s.shape[1]) - s.shape[1]
            self.sums[j] = torch.cat([s, s.new_zeros(s.shape[0], more, s.shape[2])], 1)
            if self.leverage is not None:
                lev = self.leverage[j]
                self.leverage[j] = torch.cat([lev, lev.new_zeros(more)])

    def merge(self, other: ClusterSums) -> ClusterSums:
        """Add another accumulator's sums (another rank's rows), matching labels."""
        if not other.labels:
            return self
        if other.size is not None and (self.size is not None or not self.nobs):
            self.size = other.size if self.size is None else torch.maximum(self.size, other.size)
            ss = other.sum_squares
            self.sum_squares = ss if self.sum_squares is None else self.sum_squares + ss
        elif self.nobs:  # a part without its sizes: the merge has none
            self.size = self.sum_squares = None
        if not self.labels:
            self.shift = other.shift if self.shift is None else self.shift
            self.labels = [{} for _ in other.labels]
            self.sums = [s.new_zeros(s.shape[0], 0, s.shape[2]) for s in other.sums]
            if other.leverage is not None and not self.nobs:
                self.leverage = [v.new_zeros(0) for v in other.leverage]
        if other.leverage is None:
            self.leverage = None
        self.corrected = self.corrected and other.corrected if self.nobs else other.corrected
        lev = self.leverage
        for j, (table, s) in enumerate(zip(other.labels, other.sums, strict=True)):
            if j == 2:  # intersections: re-key by this accumulator's codes
                continue
            codes = np.array([self.labels[j].setdefault(lab, len(self.labels[j])) for lab in table])
            self._grow(j, len(self.labels[j]))
            order = torch.from_numpy(np.array(list(table.values()), dtype=np.int64))
            self.sums[j][:, torch.from_numpy(codes)] += s[:, order]
            if lev is not None:
                self.leverage[j][torch.from_numpy(codes)] += other.leverage[j][order]
        if len(other.labels) == 3:
            inverse = [{code: lab for lab, code in other.labels[j].items()} for j in (0, 1)]
            for key, code in other.labels[2].items():
                c0, c1 = divmod(int(key), 1 << 32)
                mine = self.labels[0][inverse[0][c0]] * (1 << 32) + self.labels[1][inverse[1][c1]]
                new = self.labels[2].setdefault(mine, len(self.labels[2]))
                self._grow(2, len(self.labels[2]))
                self.sums[2][:, new] += other.sums[2][:, code]
                if lev is not None:
                    self.leverage[2][new] += other.leverage[2][code]
        self.nobs += other.nobs
        return self

    def groups(self) -> ClusterCodes:
        """The cluster counts (no per-row codes: the rows are gone)."""
        counts = tuple(len(t) for t in self.labels)
        return ClusterCodes(tuple(np.empty(0, np.int64) for _ in counts), counts)

    def covariance(
        self, R: Tensor, *, use_correction: bool = True, inverse: Tensor | None = None
    ) -> Tensor:
        """The cluster covariance ``(q, q, k)`` in the basis of ``R``, or with ``inverse``
        (``P``, NOTE [blocks about the offsets]) ``P S_Q P'``."""
        sums = [s[:, : len(t)] for s, t in zip(self.sums, self.labels, strict=True)]
        return cluster_covariance_from_sums(
            R,
            sums,
            self.groups(),
            nobs=self.nobs,
            use_correction=use_correction,
            inverse=inverse,
        )


class MeatSums:
    """The meat of HC0-HC3 and HAC accumulated block by block, rows in their order.

    Scores are taken in the ``Q`` basis, ``q_i = a_i R^-1`` (a triangular solve per block
    with the fit's R), so the leverage ``h_i = ||q_i||^2`` of HC2/HC3 comes with them; HAC
    keeps the last ``maxlags`` scores of the previous block for the lags that span blocks.
    ``inverse`` (``P``, the map of the parameters about the offsets back to the raw ones:
    NOTE [blocks about the offsets]) makes the covariance ``P meat P'``; None: ``R^-1``.
    """

    def __init__(
        self,
        R: Tensor,
        cov_type: str,
        maxlags: int = 0,
        kernel: str = "bartlett",
        inverse: Tensor | None = None,
    ):
        from .robust import kernel_weights

        self.R, self.cov_type, self.inverse = R, cov_type, inverse
        self.maxlags = maxlags if cov_type == "HAC" else 0
        self.weights = kernel_weights(kernel, self.maxlags)
        self.meat: Tensor | None = None  # (k, q, q)
        self.tail: Tensor | None = None  # (k, <= maxlags, q): the previous rows' scores
        self.nobs = 0
        self.leverage_one: list[int] = []
        # without an intercept (NOTE [blocks without an intercept]): the largest
        # |a_i| . |b| and the sum of squared residuals, per target
        self.size: Tensor | None = None
        self.sum_squares: Tensor | None = None
        # NOTE [blocks at the least-squares residuals]: A'e (q, k), and the sum of
        # h_i^2 / s_i^2 (s_i what HC2/HC3 divide the residuals by) that bounds the meat's move
        self.gradient: Tensor | None = None
        self.leverage_squares = 0.0
        # HC2/HC3: rows whose 1 - h is below _RECOMPUTE, and the least 1 - h (NOTE [one
        # minus leverage] in covariance.py: here there are no other rows to take it from)
        self.near_one = 0
        self.least_one_minus_h = math.inf

    def track(self, fitted_size: Tensor, e: Tensor) -> None:
        """Add a block's ``|a_i| . |b|`` ``(b, k)`` and residuals ``(b, k)`` to the sizes
        the warning of NOTE [blocks without an intercept] reads."""
        track_sizes(self, fitted_size, e)

    def add(self, A: Tensor, e: Tensor) -> None:
        """Add the next rows in order: whitened ``A`` ``(b, q)`` and residuals ``(b, k)``."""
        from .covariance import leverage_one_rows

        q = torch.linalg.solve_triangular(self.R, A, upper=True, left=False)
        u = e
        h = (q * q).sum(1, keepdim=True)
        scale = torch.ones_like(h)
        if self.cov_type in ("HC2", "HC3"):
            scale = (1 - h).sqrt() if self.cov_type == "HC2" else 1 - h
            u = e / scale
            ones = leverage_one_rows(h[:, 0], A.shape[1])
            if ones:
                u[ones] = float("nan")
                self.leverage_one += [self.nobs + i for i in ones]
            omh = (1 - h[:, 0]).clone()
            omh[ones] = math.inf
            self.near_one += int((omh < _RECOMPUTE).sum())
            if omh.numel():
                self.least_one_minus_h = min(self.least_one_minus_h, float(omh.min()))
        grad = A.T @ e
        self.gradient = grad if self.gradient is None else self.gradient + grad
        self.leverage_squares += float(((h / scale) ** 2).nan_to_num(nan=0.0).sum())
        x = u.T[:, :, None] * q[None]  # (k, b, q)
        if self.meat is None:
            self.meat = x.new_zeros(x.shape[0], x.shape[2], x.shape[2])
        self.meat += x.transpose(1, 2) @ x
        if self.maxlags:
            full = x if self.tail is None else torch.cat([self.tail, x], 1)
            start = full.shape[1] - x.shape[1]  # where this block's rows begin in ``full``
            for lag in range(1, self.maxlags + 1):
                lo = max(start, lag)
                if lo >= full.shape[1]:
                    break
                g = full[:, lo:].transpose(1, 2) @ full[:, lo - lag : full.shape[1] - lag]
                self.meat += float(self.weights[lag]) * (g + g.transpose(1, 2))
            self.tail = full[:, -self.maxlags :]
        self.nobs += A.shape[0]

    def correction(self) -> tuple[Tensor, float]:
        """The coefficients' correction ``delta`` ``(q, k)`` to the least-squares
        solution, ``R^-1 R^-T A'e``, and a bound on the relative move of any variance were
        the meat taken at the residuals ``e - A delta`` (NOTE [blocks at the least-squares
        residuals])."""
        R = self.R
        c = torch.linalg.solve_triangular(R.T, self.gradient, upper=False)  # Q'e
        delta = torch.linalg.solve_triangular(R, c, upper=True)
        lags = float(self.weights[1:].sum()) if self.maxlags else 0.0
        sh = self.leverage_squares
        trace = torch.diagonal(self.meat, dim1=1, dim2=2).sum(1).clamp(min=0)  # (k,)
        cn = torch.linalg.vector_norm(c, dim=0)
        move = (1 + 2 * lags) * (2 * cn * (trace * sh).sqrt() + cn * cn * sh)
        bound = 0.0
        for inv in (self.inverse, torch.linalg.inv(R)):
            if inv is None:
                continue
            rows = (inv * inv).sum(1)  # |p_j|^2
            var = torch.diagonal(inv @ self.meat @ inv.T, dim1=1, dim2=2)  # (k, q)
            rel = rows[None, :] * move[:, None] / var.clamp(min=torch.finfo(var.dtype).tiny)
            bound = max(bound, float(rel.nan_to_num(nan=math.inf).max()) if rel.numel() else 0.0)
        return delta, bound

    def covariance(
        self, *, df_resid: float, use_correction: bool = False, raw: bool = True
    ) -> Tensor:
        """``(q, q, k)``: ``R^-1 meat R^-T`` (``P meat P'`` with an ``inverse``, unless
        ``raw`` is False: then the parameters' about the offsets) with HC1's
        ``n / df_resid`` or HAC's ``use_correction`` factor ``n / (n - q)``."""
        from .robust import _sandwich

        if self.inverse is None or not raw:
            cov = _sandwich(self.R, self.meat)
        else:
            cov = self.inverse @ self.meat @ self.inverse.T
            cov = (cov + cov.transpose(-1, -2)) / 2
        n, q = self.nobs, self.R.shape[0]
        if self.cov_type == "HC1":
            cov = cov * (n / df_resid if df_resid > 0 else float("nan"))
        if self.cov_type == "HAC" and use_correction:
            cov = cov * (n / (n - q) if n > q else float("nan"))
        return cov.permute(1, 2, 0)


def track_sizes(acc, fitted_size: Tensor, e: Tensor) -> None:
    """:meth:`MeatSums.track` for either accumulator (ClusterSums keeps the same sizes)."""
    size = fitted_size.amax(0) if fitted_size.shape[0] else fitted_size.new_zeros(e.shape[1])
    ss = (e * e).sum(0)
    acc.size = size if acc.size is None else torch.maximum(acc.size, size)
    acc.sum_squares = ss if acc.sum_squares is None else acc.sum_squares + ss


def _label_columns(groups, rows: int) -> list[np.ndarray]:
    if isinstance(groups, (tuple, list)) and len(groups) == 2 and np.ndim(groups[0]) >= 1:
        cols = [np.asarray(g).reshape(-1) for g in groups]
    else:
        arr = np.asarray(groups)
        if arr.ndim == 2 and arr.shape[1] in (1, 2):
            cols = [arr[:, j] for j in range(arr.shape[1])]
        elif arr.ndim == 1:
            cols = [arr]
        else:
            raise DataError(
                f"a block's cluster labels have shape {arr.shape}; give one label per row, "
                "or an (n, 2) array for two-way clustering"
            )
    for c in cols:
        if c.shape[0] != rows:
            raise DataError(
                f"a block has {rows} rows but {c.shape[0]} cluster labels; give one per row"
            )
    return cols


def accumulate(
    results, blocks: Iterable, groups: Iterable, use_correction: bool = True
) -> ClusterSums:
    """The second pass over every fitted row: the sums, checked to cover ``nobs`` rows;
    read again at the least-squares residuals where the first pass's may be off and both
    ``blocks`` and ``groups`` can be read twice (NOTE [blocks at the least-squares
    residuals])."""
    acc = add_blocks(results, blocks, groups)
    check_rows(results, acc)
    if isinstance(blocks, Iterator) or isinstance(groups, Iterator):
        return acc
    delta, move = cluster_move(results, acc, use_correction)
    if move > RESIDUALS_TOL:
        acc = add_blocks(results, blocks, groups, delta=delta)
        check_rows(results, acc)
    acc.corrected = True  # checked: with_cluster_sums need not bound it again
    return acc


def _factor_and_inverse(results) -> tuple[Tensor, Tensor | None]:
    """The factor the blocks' rows are read with, and P (None: R^-1) for the raw
    parameters (NOTE [blocks about the offsets])."""
    factor = results._shifted_factor()
    if factor is None:
        return results._r, None
    return factor.r, factor.raw_inverse()[0]


def cluster_move(results, sums: ClusterSums, use_correction: bool) -> tuple[Tensor, float]:
    """The correction ``delta`` ``(q, k)`` to the least-squares solution and a bound on
    the relative move of any cluster variance at its residuals (NOTE [blocks at the
    least-squares residuals]; 0 where the sums keep no leverages)."""
    from .robust import _correction

    R, P = _factor_and_inverse(results)
    if sums.leverage is None or not sums.labels or not sums.nobs:
        return R.new_zeros(R.shape[0], 0), 0.0
    lower = R.T
    grad = sums.sums[0][:, : len(sums.labels[0])].sum(1)  # (k, q): A'e over every row
    c = torch.linalg.solve_triangular(lower, grad.T, upper=False)  # (q, k): Q'e
    delta = torch.linalg.solve_triangular(R, c, upper=True)
    cn = torch.linalg.vector_norm(c, dim=0)  # (k,)
    inv = torch.linalg.inv(R) if P is None else P
    rows = (inv * inv).sum(1)  # |p_j|^2
    signs = (1.0,) if len(sums.sums) == 1 else (1.0, 1.0, -1.0)
    total, moved = 0.0, 0.0
    for sign, s, lev, table in zip(signs, sums.sums, sums.leverage, sums.labels, strict=True):
        g = len(table)
        sq = torch.linalg.solve_triangular(lower, s[:, :g].transpose(-1, -2), upper=False)
        meat = sq @ sq.transpose(-1, -2)  # (k, q, q), Q basis
        corr = abs(_correction(g, sums.nobs, R.shape[0], use_correction))
        hh = float((lev[:g] * lev[:g]).sum())
        trace = torch.diagonal(meat, dim1=1, dim2=2).sum(1).clamp(min=0)
        move = 2 * cn * (trace * hh).sqrt() + cn * cn * hh  # (k,)
        total = total + sign * corr * torch.diagonal(inv @ meat @ inv.T, dim1=1, dim2=2)
        moved = moved + corr * rows[None, :] * move[:, None]
    tiny = torch.finfo(torch.float64).tiny
    rel = moved / total.abs().clamp(min=tiny)
    bound = float(rel.nan_to_num(nan=math.inf).max()) if rel.numel() else 0.0
    return delta, bound


def check_rows(results, acc: ClusterSums | MeatSums) -> None:
    """The sums must cover the fitted rows (after merging every rank's share)."""
    if acc.nobs != results.nobs:
        raise DataError(
            f"the blocks hold {acc.nobs} rows but the fit has {results.nobs}; pass the same "
            "rows (in any order) with one cluster label each"
        )


def whitened_rows(results, block, shift: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """A block's whitened design ``A`` (kept columns) and residuals at the fitted
    parameters (double-double where float64 would cancel, ``fitstats.residuals``); with
    ``shift`` the columns after the intercept about it, subtracted before the weights
    (NOTE [blocks about the offsets])."""
    from .fitstats import residuals

    X, Y, w = unpack_block(block)
    X = torch.as_tensor(np.asarray(X, dtype=np.float64) if not isinstance(X, Tensor) else X)
    X = X.to(device=results._b.device, dtype=torch.float64).reshape(X.shape[0], -1)
    Y = torch.as_tensor(np.asarray(Y, dtype=np.float64) if not isinstance(Y, Tensor) else Y)
    Y = Y.to(X).reshape(X.shape[0], -1)
    A = results._design(X)
    e = residuals(A, Y, results._b)
    if shift is not None:
        A[:, 1:] -= shift
    if w is not None:
        root = torch.as_tensor(np.asarray(w, dtype=np.float64)).to(X).reshape(-1, 1).sqrt()
        A, e = A * root, e * root
    return A, e


def add_blocks(
    results,
    blocks: Iterable,
    groups: Iterable,
    acc: ClusterSums | None = None,
    delta: Tensor | None = None,
):
    """Add each block's whitened scores at the fitted parameters (one rank's share),
    about the fit's offsets where it takes them (NOTE [blocks about the offsets]); with
    ``delta`` at the residuals ``e - A delta`` (NOTE [blocks at the least-squares
    residuals])."""
    acc = ClusterSums() if acc is None else acc
    factor = results._shifted_factor()
    shift = None if factor is None else factor.shift
    if acc.nobs and not _same_shift(acc.shift, shift):
        raise DataError("these cluster sums were taken about other offsets: another fit's")
    acc.shift = shift
    R = results._r if factor is None else factor.r
    for block, labels in zip(blocks, groups, strict=True):
        A, e = whitened_rows(results, block, shift)
        if delta is not None:
            e = e - A @ delta
        acc.add(A, e, labels, R)
        if not results._has_intercept:  # NOTE [blocks without an intercept]
            track_sizes(acc, A.abs() @ results._b.abs(), e)
    return acc


def _same_shift(a: Tensor | None, b: Tensor | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(torch.equal(a.cpu(), b.cpu()))


def cluster_from_sums(results, sums: ClusterSums, use_correction: bool):
    """``(q, q, k)`` cluster covariances of ``results``' raw parameters and (None where
    the fit takes no offsets) of those about its offsets, from the second pass's sums.

    Sums without a shift are read as add_blocks makes them, about the fit's offsets: a
    merge of parts that did not say (distributed.clusters' gathered sums) keeps none."""
    if not results._has_intercept:
        _warn_without_intercept(results, sums, "cluster", results._r, sums.nobs)
    factor = results._shifted_factor()
    if factor is None and sums.shift is not None:
        raise DataError("these cluster sums were taken about offsets this fit does not take")
    if factor is not None and sums.shift is not None and not _same_shift(sums.shift, factor.shift):
        raise DataError("these cluster sums were taken about other offsets: another fit's")
    if not sums.corrected:
        _warn_residuals_move(cluster_move(results, sums, use_correction)[1], "cluster")
    if factor is None:
        return sums.covariance(results._r, use_correction=use_correction), None
    P = factor.raw_inverse()[0]
    raw = sums.covariance(factor.r, use_correction=use_correction, inverse=P)
    return raw, sums.covariance(factor.r, use_correction=use_correction)


# NOTE [blocks about the offsets]
# The in-memory path takes the rows about the state's offsets where they dominate the
# spread (NOTE [refinement about the shift] in exact/refine.py, stats/covariance.py's
# q_basis); the second pass over the blocks took the raw rows and the raw factor, whose
# R holds the spread only to eps times the offsets: a column near 1e9 with a spread of
# 0.01 gave HC0-HC3 and HAC standard errors 2e-7 to 1.8e-6 from the in-memory ones (which
# are exact there), without a word. The blocks now take the same offsets: each block's
# columns after the intercept less the shift, before the weights (exact near the offset),
# scores q_i = a_i R_s^-1 with the factor about the offsets, and the covariance P meat P'
# with P = M R_s^-1 (ShiftedFactor.raw_inverse): no cancellation left.


def meat_from_blocks(results, blocks: Iterable, cov_type: str, cov_kwds: dict) -> MeatSums:
    """The second pass for HC0-HC3 and HAC (rows in their order for HAC), about the
    offsets where the fit's factor is taken about them (NOTE [blocks about the offsets])."""
    factor = results._shifted_factor()
    shift, R, P = None, results._r, None
    if factor is not None:
        shift, R, P = factor.shift, factor.r, factor.raw_inverse()[0]

    def meat(delta: Tensor | None) -> MeatSums:
        acc = MeatSums(
            R,
            cov_type,
            cov_kwds.get("maxlags", 0),
            cov_kwds.get("weights_func", "bartlett"),
            inverse=P,
        )
        for block in blocks:
            A, e = whitened_rows(results, block, shift)
            if delta is not None:
                e = e - A @ delta
            acc.add(A, e)
            if not results._has_intercept:  # NOTE [blocks without an intercept]
                acc.track(A.abs() @ results._b.abs(), e)
        check_rows(results, acc)
        return acc

    acc = meat(None)
    if not acc.nobs:
        return acc
    delta, move = acc.correction()
    if move <= RESIDUALS_TOL:
        return acc
    if not isinstance(blocks, Iterator):  # NOTE [blocks at the least-squares residuals]
        return meat(delta)
    _warn_residuals_move(move, cov_type)
    return acc


def _warn_residuals_move(move: float, cov_type: str) -> None:
    """Say how far one pass's covariance may be off where it could not be read again at
    the least-squares residuals (NOTE [blocks at the least-squares residuals])."""
    from .covariance import user_stacklevel

    if not move > ACCURACY_WARNING:
        return
    warnings.warn(
        RankWarning(
            f"{cov_type} from one pass over the blocks takes the residuals of the "
            "coefficients as returned, not of the least-squares solution: its variances "
            f"may be off by up to {min(move, 1.0):.1e} (relative); pass blocks that can be "
            "read twice (a list, or an object whose __iter__ reads them again) to take "
            "them at the least-squares residuals",
            error=move if math.isfinite(move) else math.inf,
            method="qr",
        ),
        stacklevel=user_stacklevel(),
    )


# NOTE [blocks at the least-squares residuals]
# In memory, HC and HAC take the exact least-squares solution's residuals, e - Q (Q'e)
# (NOTE [the residuals HC squares] in covariance.py); a pass over the blocks took those of
# the coefficients as returned, which squared the coefficients' error into the meat:
# Longley with weights over 16 decades and a column near 1e9 gave HC3 standard errors 7%
# off and HC0 1.8e-8, silently. The pass now also sums A'e, so that at its end
# delta = R^-1 R^-T A'e is the correction to the least-squares solution (e - A delta its
# residuals, up to eps kappa, as Q'e in memory) and c = R^-T A'e = Q'e bounds the move:
# |a_i delta| = |q_i c| <= sqrt(h_i) |c|, so the meat moves by at most
# 2 |c| sqrt(tr(M) sum h_i^2 / s_i^2) + |c|^2 sum h_i^2 / s_i^2 (Cauchy-Schwarz; times
# 1 + 2 sum of the lag weights for HAC), and a variance p_j' M p_j by |p_j|^2 times that.
# Past RESIDUALS_TOL of every variance the blocks are read again at e - A delta where they
# can be (a list, anything not an iterator: the CLI's passes read the file again); one
# iterator can be read once, and past ACCURACY_WARNING the result says how far off it may
# be. Ordinary fits stay well below (a fit's error is eps kappa, the bound |c| of it).
RESIDUALS_TOL = ACCURACY_WARNING


# NOTE [blocks without an intercept]
# In memory, a fit without an intercept takes HC from the exact least-squares solution's
# residuals (a projection: NOTE [the residuals HC squares] in covariance.py) and its rows
# about a reference column where offsets dominate (NOTE [columns about a reference
# column]); one pass over the blocks, in order, can take neither (the projection needs
# Q'e of all rows first, the reference the columns' means), and its Q = A R^-1 from the
# raw factor loses more than a Householder Q. Columns near 1e4 to 1e10, residuals of 1 or
# 1e-3, gave standard errors 1e-9 to 3.2e-3 off (a streamed fit's coefficients carry more
# than the rounding), quoted nowhere beyond the covariance's 4 eps kappa (1.7e-7 where
# 7e-7 was measured). Where it passes ACCURACY_WARNING the pass says so, quoting
# 4 eps kappa + 2 rho + rho^2 with rho = 4 eps max_i |a_i| . |b| / rms(e) (the residuals'
# move under a backward-stable perturbation of the coefficients): the measured errors
# were at most 0.25 of it over 128 fits (offsets, spreads 1 and 0.01, 2 and 3 columns,
# streamed and in memory). Clustered sums add the residuals' errors of a cluster's rows,
# which move together (delta e = -A delta b) while the scores may cancel: the unscaled
# quote was reached to 0.79 over 128 such fits, so cluster_from_sums takes rho times
# sqrt(n) (Cauchy-Schwarz over a cluster of at most n rows).


def _warn_without_intercept(
    results, acc, cov_type: str, R: Tensor | None = None, rows_per_sum: int = 1
) -> None:
    """NOTE [blocks without an intercept]: say how far the pass may be off, where it
    passes ACCURACY_WARNING (``acc`` a MeatSums, or ClusterSums with the fit's ``R``)."""
    from .covariance import user_stacklevel

    if not acc.nobs or (acc.size is None and R is None):  # MeatSums of a fit with one
        return
    if acc.size is None:  # cluster sums merged from parts that kept no sizes
        warnings.warn(
            RankWarning(
                f"{cov_type} from blocks of a fit without an intercept: these sums were "
                "merged without the sizes that bound their error (NOTE [blocks without an "
                "intercept]); the standard errors may be off by an unknown amount",
                error=math.inf,
                method="qr",
            ),
            stacklevel=user_stacklevel(),
        )
        return
    eps = torch.finfo(torch.float64).eps
    kappa = inverse_and_kappa(acc.R if R is None else R)[1]
    rms = (acc.sum_squares / acc.nobs).sqrt()
    tiny = torch.finfo(torch.float64).tiny
    rho = float((4 * eps * acc.size / rms.clamp(min=tiny)).max()) * math.sqrt(rows_per_sum)
    error = 4 * eps * kappa + 2 * rho + rho * rho
    if not error > ACCURACY_WARNING:
        return
    warnings.warn(
        RankWarning(
            f"{cov_type} from blocks of a fit without an intercept takes neither the exact "
            "least-squares solution's residuals nor the rows about a reference column (one "
            f"pass, in order): its standard errors may be off by up to {min(error, 1.0):.1e} "
            "(relative); get_robustcov_results of an in-memory fit takes both",
            error=error if math.isfinite(error) else math.inf,
            method="qr",
        ),
        stacklevel=user_stacklevel(),
    )


def _warn_near_one(meat: MeatSums, cov_type: str) -> None:
    """HC2/HC3 of rows with leverage near 1: 1 - h keeps about eps sqrt(n q) / (1 - h) of
    itself, which memory mends from the other rows (NOTE [one minus leverage] in
    covariance.py) and one pass cannot."""
    from .covariance import user_stacklevel

    if not meat.near_one:
        return
    q = meat.R.shape[0]
    err = LEVERAGE_ONE_FACTOR * math.sqrt(meat.nobs * max(q, 1)) * torch.finfo(torch.float64).eps
    worst = 2 * err / meat.least_one_minus_h
    if worst > ACCURACY_WARNING:
        warnings.warn(
            RankWarning(
                f"{meat.near_one} rows have leverage within {_RECOMPUTE:g} of 1 (the closest "
                f"{1 - meat.least_one_minus_h:.12g}): {cov_type} from blocks divides by 1 - h, "
                f"which may be off by up to {min(worst, 1.0):.1e} (relative); an in-memory fit "
                "(get_robustcov_results) takes it from the other rows, or use HC0/HC1",
                error=worst,
                method="qr",
            ),
            stacklevel=user_stacklevel(),
        )


def blocks_covariance(results, blocks, cov_type: str, kw: dict) -> tuple[Tensor, Tensor | None]:
    """HC0-HC3 or HAC ``(q, q, k)`` from a second pass, with its warnings: that of the raw
    parameters, and that of the parameters about the offsets where the fit takes them
    (predictions read it), else None. ``kw`` holds HAC's normalized keywords."""
    meat = meat_from_blocks(results, blocks, cov_type, kw)
    _warn_without_intercept(results, meat, cov_type)
    if meat.leverage_one:
        from .covariance import _warn_leverage_one

        _warn_leverage_one(meat.leverage_one, cov_type)
    _warn_near_one(meat, cov_type)
    correction = kw.get("use_correction", False)
    raw = meat.covariance(df_resid=results.df_resid, use_correction=correction)
    if meat.inverse is None:
        return raw, None
    shifted = meat.covariance(df_resid=results.df_resid, use_correction=correction, raw=False)
    return raw, shifted


def robust_from_blocks(results, blocks, cov_type, rebuild, use_t, cov_kwds: dict):
    """``OLSResults.robust_from_blocks``: HC0-HC3 or HAC from a second pass (``rebuild``
    makes the results object with the new covariance type)."""
    if cov_type not in ("HC0", "HC1", "HC2", "HC3", "HAC", "hac"):
        raise ValueError(
            f"robust_from_blocks takes HC0-HC3 or HAC; got {cov_type!r} "
            "(cluster: cluster_from_blocks(blocks, groups))"
        )
    new = rebuild(cov_type, use_t, cov_kwds)
    raw, shifted = blocks_covariance(results, blocks, new.cov_type, new.cov_kwds)
    new._robust_cov_basis = raw
    if shifted is not None:  # predictions take their variances about the offsets
        new._robust_about_offsets = shifted
    return new


def hc_covariances(results, blocks, cov_type: str) -> tuple[Tensor, Tensor | None]:
    """``streamhc.hc_from_blocks`` keeping both covariances of :func:`blocks_covariance`:
    a model file stores the one about the offsets too (NOTE [robust covariances in model
    files]), having no rows to redo it from."""
    if cov_type not in HC_TYPES:
        raise ValueError(f"cov_type must be one of {HC_TYPES}; got {cov_type!r}")
    if results.aliased:
        raise DataError(
            f"{cov_type} covariances need a full-rank design; columns "
            f"{[results.param_names[a] for a in results.aliased]} are aliased: drop them"
        )
    return blocks_covariance(results, blocks, cov_type, {})


# NOTE [robust covariances in model files]
# Predictions of a fit about its offsets take a'Va with the rows and the covariance about the
# offsets (get_prediction): with the raw rows a column near 1e9 with a spread of 0.01 left
# mean_se 900x off. A model file of `train --cov-type` held only the raw covariance V, so a
# loaded model had no rows and no V_s: get_prediction raised a TypeError. Files now store V_s
# and the offsets it was taken about; the loader uses it where the state gives the same ones.
# A file without it (or with other offsets) maps V back, V_s = T V T' with T = [[1, s'],
# [0, I]]: V's first row and column hold s times the slopes' entries, so V_s's leading ones
# cancel to about gamma (|T| |V| |T|') with gamma = 8 q eps (q-term sums twice, and V's own
# rounding, which is relative to the same products). Where that passes ACCURACY_WARNING of
# sqrt(V_s,ii V_s,jj) the digits are gone (near 1e9: V_s,00 is below V_00's rounding) and
# predictions raise instead (OLSResults._robust); the standard errors of the raw parameters
# need only V and stay.


def offsets_covariance_from_raw(cov: Tensor, shift: Tensor) -> Tensor | None:
    """``(q, q, k)`` covariance about the offsets ``shift`` ``(q - 1,)`` from that of the raw
    parameters, or None where it cannot keep ACCURACY_WARNING (NOTE [robust covariances in
    model files])."""
    cov = cov.to(torch.float64)
    q = cov.shape[0]
    T = torch.eye(q, dtype=torch.float64, device=cov.device)
    T[0, 1:] = shift.to(cov)
    V = cov.permute(2, 0, 1)
    shifted = T @ V @ T.T
    shifted = (shifted + shifted.transpose(-1, -2)) / 2
    bound = 8 * q * torch.finfo(torch.float64).eps * (T.abs() @ V.abs() @ T.abs().T)
    diag = torch.diagonal(shifted, dim1=-2, dim2=-1)
    scale = (diag[:, :, None] * diag[:, None, :]).sqrt()  # NaN where a variance cancelled < 0
    if not bool((bound <= ACCURACY_WARNING * scale).all()):  # NaN and inf fail too
        return None
    return shifted.permute(1, 2, 0)
