"""Minimal stand-in for torchlinreg.exact (QR only), used until branch `exact` is merged.

It follows the fixed API of the exact engine so that refine/inference/polyfit can be tested
on their own branch. conftest.py installs it only when torchlinreg.exact cannot be imported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ExactSolution:
    coef: torch.Tensor
    intercept: torch.Tensor
    rank: int
    aliased: tuple[int, ...]
    rss: torch.Tensor
    singular_values: torch.Tensor


class LeastSquaresState:
    def __init__(
        self,
        n_features,
        n_targets,
        *,
        fit_intercept=True,
        method="qr",
        dtype=torch.float64,
        device=None,
    ):
        self.d, self.k, self.fit_intercept = n_features, n_targets, fit_intercept
        self.dtype, self.n_samples, self.sum_weights = dtype, 0, 0.0
        m = int(fit_intercept) + n_features + n_targets
        self._R = torch.zeros(0, m, dtype=dtype, device=device)

    def absorb(self, X, Y, sample_weight=None):
        X = torch.as_tensor(X).to(self.dtype)
        Y = torch.as_tensor(Y).to(self.dtype).reshape(X.shape[0], -1)
        w = (
            torch.ones(X.shape[0], dtype=self.dtype)
            if sample_weight is None
            else torch.as_tensor(sample_weight).to(self.dtype)
        )
        s = w.sqrt()[:, None]
        cols = [s] if self.fit_intercept else []
        block = torch.cat([*cols, s * X, s * Y], 1)
        self._R = torch.linalg.qr(torch.cat([self._R, block]), mode="r").R
        self.n_samples += X.shape[0]
        self.sum_weights += float(w.sum())
        return self

    def r_factor(self):
        m = self._R.shape[1]
        R = self._R.new_zeros(m, m)
        R[: self._R.shape[0]] = self._R[:m]
        return R

    def solve(self, *, alpha=0.0, rcond=None, feature_names=None):
        R = self.r_factor()
        c = int(self.fit_intercept)
        p = c + self.d
        rxx, rxy = R[:p, :p], R[:p, p:]
        # centred, column-scaled feature block: drop the intercept row/column of R
        F = R[c:p, c:p]
        scale = torch.linalg.vector_norm(F, dim=0).clamp_min(1e-300)
        sv = torch.linalg.svdvals(F / scale)
        rcond = torch.finfo(R.dtype).eps * max(self.n_samples, p) if rcond is None else rcond
        keep, aliased = list(range(c)), []
        for j in range(self.d):
            trial = [*keep, c + j]
            r = torch.linalg.qr(
                (rxx / torch.linalg.vector_norm(rxx, dim=0).clamp_min(1e-300))[:, trial], mode="r"
            ).R
            if abs(float(r[-1, -1])) > rcond:
                keep = trial
            else:
                aliased.append(j)
        rk = torch.linalg.qr(rxx[:, keep], mode="r").R
        qty = torch.linalg.qr(torch.cat([rxx[:, keep], rxy], 1), mode="r").R
        b = torch.linalg.solve_triangular(rk, qty[: len(keep), len(keep) :], upper=True)
        full = R.new_zeros(p, self.k)
        full[keep] = b
        rss = (qty[len(keep) :, len(keep) :] ** 2).sum(0) + (R[p:, p:] ** 2).sum(0)
        return ExactSolution(
            coef=full[c:].T.contiguous(),
            intercept=full[0] if c else R.new_zeros(self.k),
            rank=len(keep),
            aliased=tuple(aliased),
            rss=rss,
            singular_values=sv,
        )


def fit_exact(
    X,
    Y,
    *,
    sample_weight=None,
    fit_intercept=True,
    alpha=0.0,
    method="qr",
    dtype=torch.float64,
    rcond=None,
):
    X = torch.as_tensor(X)
    Y = torch.as_tensor(Y)
    Y2 = Y.reshape(X.shape[0], -1)
    state = LeastSquaresState(
        X.shape[1],
        Y2.shape[1],
        fit_intercept=fit_intercept,
        method=method,
        dtype=dtype,
        device=X.device,
    )
    state.absorb(X, Y2, sample_weight)
    return state, state.solve(alpha=alpha, rcond=rcond)
