"""k-fold cross-validation from one pass: one least-squares state per fold.

NOTE [one-pass cross-validation]
A row's fold is a seeded hash of its index (or of its group's value, so a group never
straddles folds, as GroupKFold), so rows can be dealt to fold states as they stream past.
Fold ``i`` trains on the merge of the other folds' states (a merge costs ``(d + k)^2``, no
rows) and is scored exactly from its own state: for any coefficients ``c`` and intercept
``b`` the held-out weighted residual sum of squares is
``||R [c; -1]||^2 + W (m_y - m_x c - b)^2`` with ``R``, ``m``, ``W`` the fold's centred factor,
means and weight. The same code scores given splits (``cv=`` an iterable of ``(train,
test)`` index arrays, in memory), which is how results are checked against scikit-learn.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..exact.state import LeastSquaresState
from .moments import moments
from .paths import path_from_moments

_MASK = (1 << 64) - 1


def hash_folds(keys: np.ndarray, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold of each integer key: splitmix64 of ``key + seed``, modulo ``n_folds``.

    Example:
        >>> f = hash_folds(np.arange(10_000), 5, seed=0)
        >>> sorted(set(f.tolist())), bool(abs(np.bincount(f) - 2000).max() < 150)
        ([0, 1, 2, 3, 4], True)
    """
    z = np.asarray(keys).astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += np.uint64((seed * 0x9E3779B97F4A7C15 + 0x9E3779B97F4A7C15) & _MASK)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z % np.uint64(n_folds)).astype(np.int64)


def group_keys(groups: Any) -> np.ndarray:
    """Integer keys of group labels: integers as they are, anything else by CRC-32 of its
    text (stable across processes, unlike Python's ``hash``)."""
    g = np.asarray(groups)
    if g.dtype.kind in "iub":
        return g.astype(np.int64)
    labels, inverse = np.unique(g.astype(str), return_inverse=True)
    codes = np.array([zlib.crc32(s.encode()) for s in labels], dtype=np.int64)
    return codes[inverse]


class FoldStates:
    """``n_folds`` least-squares states, rows dealt by :func:`hash_folds`.

    Example:
        >>> X = torch.randn(100, 2, dtype=torch.float64); y = X.sum(dim=1)
        >>> folds = FoldStates(5, seed=0).absorb(X, y[:, None])
        >>> sum(s.n_samples for s in folds.states)
        100
    """

    def __init__(self, n_folds: int, *, seed: int = 0, **state_kwargs: Any) -> None:
        if n_folds < 2:
            raise ValueError(f"cross-validation needs at least 2 folds, got cv={n_folds}")
        self.n_folds, self.seed, self.state_kwargs = n_folds, seed, state_kwargs
        self.states: list[LeastSquaresState] = []
        # NOTE [held-out R2 about the fold's mean]: without an intercept each fold's rows
        # also go to a state with one, which only scores the fold
        self.heldout: list[LeastSquaresState] | None = None
        self.rows_seen = 0

    def absorb(
        self, X: torch.Tensor, Y: torch.Tensor, w=None, groups=None, *, balanced: bool = False
    ) -> FoldStates:
        """Deal the rows of ``X`` (n, d), ``Y`` (n, k) (weights ``w``) to their folds.

        ``balanced`` (one block holding all rows, as an in-memory fit): the rows are ordered
        by their hash and cut into folds of ``n // n_folds`` or one more rows, so no fold is
        empty by chance; streamed blocks take the hash modulo ``n_folds``.
        """
        n = X.shape[0]
        if balanced and groups is None and n < self.n_folds:
            raise DataError(
                f"cannot have cv={self.n_folds} folds with n_samples={n}: lower cv or add rows"
            )
        if not self.states:
            self.states = [
                LeastSquaresState(X.shape[1], Y.shape[1], device=X.device, **self.state_kwargs)
                for _ in range(self.n_folds)
            ]
            if not self.state_kwargs.get("fit_intercept", True):
                kwargs = heldout_kwargs(self.state_kwargs)
                self.heldout = [
                    LeastSquaresState(X.shape[1], Y.shape[1], device=X.device, **kwargs)
                    for _ in range(self.n_folds)
                ]
        if groups is not None:
            keys = group_keys(groups)
            if keys.shape != (n,):
                raise DataError(f"groups must have shape ({n},), got {keys.shape}")
        else:
            keys = np.arange(self.rows_seen, self.rows_seen + n)
        if balanced and groups is None:
            order = np.argsort(hash_folds(keys, 1 << 62, self.seed), kind="stable")
            folds = np.empty(n, dtype=np.int64)
            folds[order] = np.arange(n) * self.n_folds // n
        else:
            folds = hash_folds(keys, self.n_folds, self.seed)
        for i, state in enumerate(self.states):
            idx = torch.as_tensor(np.flatnonzero(folds == i), device=X.device)
            if idx.numel():
                state.absorb(X[idx], Y[idx], None if w is None else w[idx])
                if self.heldout is not None:
                    self.heldout[i].absorb(X[idx], Y[idx], None if w is None else w[idx])
        self.rows_seen += n
        return self

    def pairs(self) -> list[tuple[LeastSquaresState, LeastSquaresState]]:
        """(training state, held-out state) per fold; training is the merge of the others."""
        for i, s in enumerate(self.states):
            if s.n_samples == 0 or not s.sum_weights > 0:
                raise DataError(
                    f"fold {i} of {self.n_folds} got no rows (or only zero weights): too few "
                    "rows or groups for this many folds; lower cv"
                )
        scoring = self.states if self.heldout is None else self.heldout
        return [
            (LeastSquaresState.merge_all([t for j, t in enumerate(self.states) if j != i]), h)
            for i, h in enumerate(scoring)
        ]

    def merged(self) -> LeastSquaresState:
        """The state of all rows."""
        return LeastSquaresState.merge_all(self.states)


def heldout_kwargs(state_kwargs: dict) -> dict:
    """The keywords of a state that scores held-out rows: the model's, with an intercept.

    NOTE [held-out R2 about the fold's mean]
    scikit-learn's r2 scoring centres every fold on its own mean, with or without an
    intercept in the model. A held-out state without one holds only uncentred sums, and
    RidgeCV(fit_intercept=False, cv=...) scored folds by the uncentred R2: diabetes best
    score 0.068 where scikit-learn has -3.63, and alpha_ 0.032 for 0.1 on shifted columns
    (coefficients 31 apart), silently (a scikit-learn hunt). The held-out side now always
    keeps the intercept's column: its residual sums stay those of any coefficients (the
    intercept given as 0), and its total sum is centred.
    """
    return {**state_kwargs, "fit_intercept": True}


def split_pairs(
    X: torch.Tensor, Y: torch.Tensor, w, splits, **state_kwargs: Any
) -> list[tuple[LeastSquaresState, LeastSquaresState]]:
    """(training, held-out) states of given ``(train, test)`` index arrays (rows in memory)."""
    out = []
    for train, test in splits:
        pair = []
        for idx, kwargs in ((train, state_kwargs), (test, heldout_kwargs(state_kwargs))):
            idx = torch.as_tensor(np.asarray(idx), device=X.device)
            if idx.dtype == torch.bool:
                idx = idx.nonzero()[:, 0]
            s = LeastSquaresState(X.shape[1], Y.shape[1], device=X.device, **kwargs)
            pair.append(s.absorb(X[idx], Y[idx], None if w is None else w[idx]))
        out.append(tuple(pair))
    if not out:
        raise DataError("cv gave no splits; pass an int >= 2 or a non-empty list of splits")
    return out


def heldout_sums(state: LeastSquaresState, coef: np.ndarray, intercept: np.ndarray):
    """Weighted residual and total sums of squares on ``state``'s rows, one target.

    ``coef`` is ``(n_models, d)`` and ``intercept`` ``(n_models,)``; returns ``(sse
    (n_models,), sst, W)``, ``sst`` about the rows' own weighted mean (NOTE [held-out R2
    about the fold's mean]: held-out states keep an intercept).
    """
    summ = state.centred_summary()
    r = summ.r.detach().cpu().double().numpy()
    means = summ.means.detach().cpu().double().numpy()
    d, w = coef.shape[1], float(summ.sum_weights)
    offset = means[d] - coef @ means[:d] - intercept
    sse = ((r[:, :d] @ coef.T - r[:, d : d + 1]) ** 2).sum(axis=0) + w * offset**2
    return sse, float((r[:, d] ** 2).sum()), w


def enet_cv_mse(
    pairs: Sequence[tuple[LeastSquaresState, LeastSquaresState]],
    alphas: np.ndarray,
    l1_ratio: float,
    *,
    fit_intercept: bool = True,
    **path_kwargs: Any,
) -> np.ndarray:
    """Held-out weighted MSE ``(n_alphas, n_folds)`` of the elastic-net path of each pair."""
    out = np.zeros((len(alphas), len(pairs)))
    for f, (train, test) in enumerate(pairs):
        m = moments(train)
        coefs = path_from_moments(m, alphas, l1_ratio, **path_kwargs)[0][0].T  # (n_alphas, d)
        b = m.y_mean[0] - coefs @ m.x_mean if fit_intercept else np.zeros(len(alphas))
        sse, _, w = heldout_sums(test, coefs, b)
        out[:, f] = sse / w
    return out


def ridge_cv_scores(
    pairs: Sequence[tuple[LeastSquaresState, LeastSquaresState]], alphas: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out MSE and R2 ``(n_alphas, n_folds)`` of ridge (scikit-learn's Ridge alpha),
    averaged over targets as scikit-learn's ``score`` does."""
    mse = np.zeros((len(alphas), len(pairs)))
    r2 = np.zeros_like(mse)
    for f, (train, test) in enumerate(pairs):
        for i, alpha in enumerate(alphas):
            sol = train.solve(alpha=float(alpha))
            coef = sol.coef.detach().cpu().double().numpy()
            b = sol.intercept.detach().cpu().double().numpy()
            for t in range(coef.shape[0]):
                sse, sst, w = heldout_sums(_target(test, t), coef[t : t + 1], b[t : t + 1])
                mse[i, f] += sse[0] / w / coef.shape[0]
                r2[i, f] += (1.0 - sse[0] / sst if sst > 0 else 0.0) / coef.shape[0]
    return mse, r2


def _target(state: LeastSquaresState, t: int) -> LeastSquaresState:
    """A view of one target's columns of ``state`` for :func:`heldout_sums`."""
    if state.n_targets == 1:
        return state
    return _OneTarget(state, t)


class _OneTarget:
    def __init__(self, state: LeastSquaresState, t: int) -> None:
        self._state, self._t = state, t

    def centred_summary(self):
        summ = self._state.centred_summary()
        d = self._state.n_features
        cols = [*range(d), d + self._t]
        return type(summ)(summ.sum_weights, summ.means[cols], summ.r[:, cols])


@torch.no_grad()
def ridge_loo_mse(
    X: torch.Tensor, Y: torch.Tensor, w, alphas: np.ndarray, fit_intercept: bool = True
) -> np.ndarray:
    """Leave-one-out mean squared error ``(n_alphas,)`` of ridge, as scikit-learn's RidgeCV
    with ``cv=None`` scores it (errors of the ``sqrt(w)``-scaled problem, averaged over rows
    and targets). Needs the rows: one thin SVD of the weighted-centred X, then per alpha
    ``e_i / (1 - h_ii)`` with the hat matrix's diagonal (the unpenalised intercept adds
    ``w_i / W``).
    """
    X, Y = X.to(torch.float64), Y.to(torch.float64)
    sw = torch.ones(X.shape[0], dtype=X.dtype, device=X.device) if w is None else w.to(X)
    total = sw.sum()
    if fit_intercept:
        X = X - (sw @ X) / total
        Y = Y - (sw @ Y) / total
    root = sw.sqrt()
    Xs, Ys = X * root[:, None], Y * root[:, None]
    U, s, _ = torch.linalg.svd(Xs, full_matrices=False)
    tol = float(s.max()) * max(Xs.shape) * torch.finfo(s.dtype).eps if s.numel() else 0.0
    keep = s > tol
    U, s2 = U[:, keep], s[keep] ** 2
    Uty = U.T @ Ys
    base = sw / total if fit_intercept else torch.zeros_like(sw)
    out = np.zeros(len(alphas))
    for i, alpha in enumerate(alphas):
        if not _svd_resolves(s, tol, float(alpha)):  # NOTE [leave-one-out at any scale]
            resid, h = _hat_by_qr(Xs, Ys, float(alpha))
        else:
            shrink = s2 / (s2 + float(alpha))
            resid = Ys - U @ (shrink[:, None] * Uty)
            h = (U**2) @ shrink
        out[i] = float(((resid / (1 - h - base)[:, None]) ** 2).mean())
    return out


# NOTE [leave-one-out at any scale]
# The hat matrix's diagonal came from one SVD of X for every alpha: each direction weighs
# s^2 / (s^2 + alpha). An SVD resolves singular values only to about eps s_max, and those
# below were dropped; with stackloss's columns in units 1e-5, 3e2 and 1e10, the direction
# of the small column weighs 0.6 at alpha = 1e-8, and the leave-one-out error came out
# 30.9 against 13.7 (exact, 80 digits), RidgeCV choosing alpha = 1000 for 1e-8, silently.
# Each alpha now checks what the SVD's error can move a weight by (at most about
# 2 s alpha / (s^2 + alpha)^2 times the error, and a dropped direction's whole weight);
# past 1e-10 that alpha's hat matrix comes from a QR factor of [X D^-1; sqrt(alpha) D^-1]
# with D the columns' norms (powers of two: the same problem, each column at unit scale),
# whose Q's first rows give H = Q1 Q1' at the accuracy of a least-squares solve.
_WEIGHT_TOL = 1e-10


def _svd_resolves(s: torch.Tensor, tol: float, alpha: float) -> bool:
    """Whether every direction's weight ``s^2 / (s^2 + alpha)`` is known to _WEIGHT_TOL
    from singular values accurate to ``tol`` (NOTE [leave-one-out at any scale])."""
    if not s.numel() or tol == 0.0 or not alpha > 0:  # alpha 0: the minimum-norm hat matrix
        return True
    sv = s.double()
    moved = (2 * tol * sv * alpha / (sv * sv + alpha) ** 2).max()
    # a direction below tol (dropped) may truly be up to about tol: it weighs at most this
    dropped = tol * tol / (tol * tol + alpha) if bool((sv <= tol).any()) else 0.0
    return float(moved) <= _WEIGHT_TOL and dropped <= _WEIGHT_TOL


def _hat_by_qr(Xs: torch.Tensor, Ys: torch.Tensor, alpha: float):
    """Ridge residuals and the hat matrix's diagonal for one ``alpha`` from a QR factor of
    ``[X D^-1; sqrt(alpha) D^-1]`` (NOTE [leave-one-out at any scale])."""
    n = Xs.shape[0]
    norms = torch.linalg.vector_norm(Xs, dim=0)
    ok = (norms > 0) & torch.isfinite(norms)
    D = torch.exp2(torch.round(torch.log2(torch.where(ok, norms, 1.0))))
    A = torch.cat([Xs / D, torch.diag(alpha**0.5 / D)])
    Q = torch.linalg.qr(A, mode="reduced").Q[:n]
    return Ys - Q @ (Q.T @ Ys), (Q * Q).sum(1)
