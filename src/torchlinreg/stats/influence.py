"""Influence measures of an OLS/WLS fit, as statsmodels' ``OLSInfluence``, from R.

Leverage ``h_i = ||R^-T a_i||^2`` is computed a block of rows at a time from the fit's R
factor (``A = QR``, so ``Q_i = a_i R^-1``): memory is a block, never an ``n x n`` hat
matrix. Everything else follows in closed form, without refitting: with ``e`` the
(whitened) residuals, ``s^2 = ssr / df_resid`` and ``p`` the rank,

- internally studentized residuals ``r_i = e_i / (s sqrt(1 - h_i))``;
- the leave-one-out variance ``s_(i)^2 = (ssr - e_i^2 / (1 - h_i)) / (df_resid - 1)``
  (statsmodels refits n times for it) and the externally studentized ``t_i = e_i /
  (s_(i) sqrt(1 - h_i))``;
- Cook's distance ``D_i = r_i^2 h_i / (p (1 - h_i))`` with its ``F(p, df_resid)`` p-value;
- DFFITS ``t_i sqrt(h_i / (1 - h_i))`` and its threshold ``2 sqrt(p / n)``.

A weighted fit uses the whitened rows ``sqrt(w) x_i`` and residuals ``sqrt(w) e_i`` (R's
``influence.measures`` of a weighted ``lm``; statsmodels' ``OLSInfluence`` of a WLS mixes
whitened and raw quantities, so the reference is its OLS on the whitened rows). Several
targets: the leverage is shared, the rest gains a last axis.

Example:
    >>> import numpy as np
    >>> from torchlinreg.stats.results import ols
    >>> x = np.arange(8.0); y = 1 + x + np.array([0.1, -0.2, 0.1, 0.0, 0.2, -0.1, 0.0, 1.0])
    >>> infl = ols(x[:, None], y).get_influence()
    >>> round(float(infl.hat_matrix_diag.sum()), 10)  # the trace of the hat matrix: p
    2.0
"""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from ..errors import DataError, DegenerateWarning
from .covariance import leverage_one_rows, one_minus_leverage

BLOCK_ROWS = 4096


def leverage_from_r(A: Tensor, R: Tensor, block_rows: int = BLOCK_ROWS) -> Tensor:
    """``diag(A (A'A)^-1 A')`` block by block: ``||a_i R^-1||^2`` for ``A'A = R'R``."""
    out = A.new_empty(A.shape[0])
    for start in range(0, A.shape[0], block_rows):
        block = A[start : start + block_rows]
        q = torch.linalg.solve_triangular(R, block, upper=True, left=False)
        out[start : start + block.shape[0]] = (q * q).sum(1)
    return out


def _leverage_and_residuals(results) -> tuple[Tensor, Tensor, Tensor]:
    """Leverage and the whitened residuals of the least-squares solution (NOTE [influence
    about the offsets]): both from a Householder Q of the rows, taken about the columns'
    offsets (or a reference column) where the fit has them; and those rows."""
    factor = results._shifted_factor()
    shift = None if factor is None else factor.shift
    if shift is None and results._reference is not None:
        shift = results._reference()  # no intercept: a Reference, or None
    A, e = results._rows() if shift is None else results._rows(shift)
    Q = torch.linalg.qr(A, mode="reduced").Q
    return (Q * Q).sum(1), e - Q @ (Q.T @ e), A


# NOTE [influence about the offsets]
# Leverage is the same for the columns about any shift (with an intercept) or about a
# reference column (without one: an invertible map of the columns), but not its rounding:
# from the raw rows and factor, copper's columns + 1e9 gave leverage 4.9e-7 off and Cook's
# distance 7e-5 (longley 2e-5, cpunish 1e-5; from offsets of 1e7), WLS over 16 decades at
# + 1e6 Cook's distance 8-11% off, all silently, while get_prediction of the same fit,
# about the offsets, was right to 1e-15. The rows are taken as the covariances and
# predictions take them, and leverage is ||q_i||^2 of their Householder Q. The residuals
# were those of the float64 parameters, which with such offsets differ from the least-
# squares residuals by A (b* - b), up to 1e-4 relative (NOTE [the least-squares rss] in
# exact/refine.py): that part lies in the columns' span, and e - Q(Q'e) takes it off (as
# the HC covariances do without an intercept, NOTE [the residuals HC squares]).


class OLSInfluence:
    """Influence and outlier measures of the fitted rows (statsmodels' names).

    ``cooks_distance`` and ``dffits`` are ``(values, p-values)`` and ``(values,
    threshold)`` pairs, as in statsmodels.
    """

    def __init__(self, results) -> None:
        if results._rows is None:
            raise DataError(
                "influence measures need the fitted rows, which a streamed or loaded fit does "
                "not keep; refit in memory (ols or LinearRegression.fit)"
            )
        self.results = results
        self._h, e, A = _leverage_and_residuals(results)
        q = A.shape[1]
        self._e = e.detach().cpu().to(torch.float64).numpy()  # (n, k) whitened residuals
        self.nobs = int(self._h.shape[0])
        self.k_vars = results.rank
        ones = leverage_one_rows(self._h, q)
        if ones:
            shown = ", ".join(str(i + 1) for i in ones[:5])
            warnings.warn(
                f"row(s) {shown} (counting from 1) have leverage 1: their studentized "
                "residuals, Cook's distance and DFFITS divide 0 by 0 and are NaN",
                DegenerateWarning,
                stacklevel=3,
            )
        self._one = np.zeros(self.nobs, dtype=bool)
        self._one[ones] = True
        # NOTE [one minus leverage] in covariance.py
        omh = one_minus_leverage(
            A, self._h, ones, "the studentized residuals, Cook's distance and DFFITS"
        )
        self._omh = omh.detach().cpu().double().numpy()

    def _out(self, a: np.ndarray) -> np.ndarray:
        return a[:, 0] if self.results._squeeze else a

    @cached_property
    def hat_matrix_diag(self) -> np.ndarray:
        """Leverage ``h_i``, ``(n,)`` (shared by every target)."""
        return self._h.detach().cpu().to(torch.float64).numpy()

    @cached_property
    def _one_minus_h(self) -> np.ndarray:
        omh = self._omh.copy()
        omh[self._one] = np.nan  # 0/0: undefined, not a huge number from rounding
        return omh[:, None]

    @cached_property
    def resid_studentized_internal(self) -> np.ndarray:
        """``e_i / (s sqrt(1 - h_i))``."""
        scale = np.asarray(self.results._scale, dtype=np.float64)[None, :]
        return self._out(self._e / np.sqrt(scale * self._one_minus_h))

    @cached_property
    def sigma2_not_obsi(self) -> np.ndarray:
        """Residual variance with row ``i`` left out (closed form, no refits); NaN where
        leaving a row out leaves no residual degrees of freedom (``n = p + 1``)."""
        ssr = np.asarray(self.results._sums["rss"], dtype=np.float64)[None, :]
        df = self.results.df_resid - 1
        if not df > 0:  # 0 / 0: came out 0 or +-inf, read as "no influence" downstream
            warnings.warn(
                f"{self.nobs} rows for {self.k_vars} parameters: leaving a row out leaves no "
                "residual degrees of freedom, so sigma2_not_obsi, the externally studentized "
                "residuals, DFFITS, dfbetas and cov_ratio are NaN (as statsmodels')",
                DegenerateWarning,
                stacklevel=3,
            )
            return self._out(np.full_like(self._e, np.nan))
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._out((ssr - self._e**2 / self._one_minus_h) / df)

    @cached_property
    def resid_studentized_external(self) -> np.ndarray:
        """``e_i / (s_(i) sqrt(1 - h_i))``."""
        s2 = self.sigma2_not_obsi.reshape(self.nobs, -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._out(self._e / np.sqrt(s2 * self._one_minus_h))

    @cached_property
    def cooks_distance(self) -> tuple[np.ndarray, np.ndarray]:
        """Cook's distance and its ``F(p, df_resid)`` survival value."""
        r = self.resid_studentized_internal.reshape(self.nobs, -1)
        h = self.hat_matrix_diag[:, None]
        d = r**2 / self.k_vars * h / self._one_minus_h
        return self._out(d), self._out(stats.f.sf(d, self.k_vars, self.results.df_resid))

    @cached_property
    def dffits(self) -> tuple[np.ndarray, float]:
        """DFFITS (external studentization) and the threshold ``2 sqrt(p / n)``."""
        t = self.resid_studentized_external.reshape(self.nobs, -1)
        values = t * np.sqrt(self.hat_matrix_diag[:, None] / self._one_minus_h)
        return self._out(values), 2 * np.sqrt(self.k_vars / self.nobs)

    @cached_property
    def dffits_internal(self) -> tuple[np.ndarray, float]:
        """DFFITS with the internal studentization."""
        r = self.resid_studentized_internal.reshape(self.nobs, -1)
        values = r * np.sqrt(self.hat_matrix_diag[:, None] / self._one_minus_h)
        return self._out(values), 2 * np.sqrt(self.k_vars / self.nobs)

    @cached_property
    def dfbeta(self) -> np.ndarray:
        """``b - b_(i)``, ``(n, p)`` (or ``(n, p, k)``): ``(A'A)^-1 a_i e_i / (1 - h_i)``,
        NaN for aliased parameters."""
        res = self.results
        A, _ = res._rows()
        R = res._r
        ca = torch.empty_like(A)
        for start in range(0, A.shape[0], BLOCK_ROWS):
            block = A[start : start + BLOCK_ROWS]
            q = torch.linalg.solve_triangular(R, block, upper=True, left=False)
            ca[start : start + block.shape[0]] = torch.linalg.solve_triangular(R, q.T, upper=True).T
        ca_params = (ca @ res._m.T).detach().cpu().to(torch.float64).numpy()  # (n, p)
        ca_params[:, list(res.aliased)] = np.nan
        out = ca_params[:, :, None] * (self._e / self._one_minus_h)[:, None, :]
        return out[..., 0] if res._squeeze else out

    @cached_property
    def dfbetas(self) -> np.ndarray:
        """DFBETA scaled by ``s_(i) sqrt(diag((A'A)^-1))`` (R's ``dfbetas``)."""
        s = np.sqrt(self.sigma2_not_obsi.reshape(self.nobs, 1, -1))
        c = np.sqrt(np.diagonal(self.results.normalized_cov_params))[None, :, None]
        out = self.dfbeta.reshape(self.nobs, c.shape[1], -1) / s / c
        return out[..., 0] if self.results._squeeze else out

    @cached_property
    def cov_ratio(self) -> np.ndarray:
        """``det(cov without row i) / det(cov)`` = ``(s_(i)^2 / s^2)^p / (1 - h_i)``."""
        s2 = np.asarray(self.results._scale, dtype=np.float64)[None, :]
        ratio = self.sigma2_not_obsi.reshape(self.nobs, -1) / s2
        return self._out(ratio**self.k_vars / self._one_minus_h)

    @cached_property
    def resid_press(self) -> np.ndarray:
        """PRESS residuals ``e_i / (1 - h_i)``."""
        return self._out(self._e / self._one_minus_h)

    def summary_frame(self):
        """A pandas DataFrame of the per-row measures (one target)."""
        import pandas as pd

        if not self.results._squeeze and self._e.shape[1] > 1:
            raise DataError("summary_frame shows one target; fit the target alone")
        return pd.DataFrame(
            {
                "cooks_d": np.ravel(self.cooks_distance[0]),
                "standard_resid": np.ravel(self.resid_studentized_internal),
                "hat_diag": self.hat_matrix_diag,
                "dffits_internal": np.ravel(self.dffits_internal[0]),
                "student_resid": np.ravel(self.resid_studentized_external),
                "dffits": np.ravel(self.dffits[0]),
            },
            # the fitted rows' labels, as statsmodels keeps them: after missing="drop" a
            # default index 0, 1, 2, ... put the measures on the wrong rows of a join
            index=getattr(self.results, "_row_index", None),
        )


def influence_of_rows(results, X, Y, w=None) -> dict[str, np.ndarray]:
    """Fitted values, residuals, standardized residuals, leverage and Cook's distance of
    some of the fitted rows (e.g. the rows a plot shows), from the fit's R and scale alone:
    works for streamed fits too. Arrays are ``(n, k)`` (leverage ``(n,)``).

    Example:
        >>> import numpy as np
        >>> from torchlinreg.stats.results import ols
        >>> x = np.arange(8.0)[:, None]; y = x[:, 0] + np.tile([0.2, -0.2], 4)
        >>> d = influence_of_rows(ols(x, y), x, y)
        >>> bool(np.allclose(d["cooks"][:, 0], ols(x, y).get_influence().cooks_distance[0]))
        True
    """
    from .robust_blocks import whitened_rows

    block = (X, Y) if w is None else (X, Y, w)
    A, e = whitened_rows(results, block)
    h = leverage_from_r(A, results._r)
    raw = whitened_rows(results, (X, Y))[1]  # unweighted residuals for the plots' axes
    scale = torch.as_tensor(np.asarray(results._scale, dtype=np.float64)).to(e)
    one_minus_h = (1 - h)[:, None]
    std = e / (scale[None, :] * one_minus_h).sqrt()
    cooks = std**2 / results.rank * h[:, None] / one_minus_h
    to_np = lambda t: t.detach().cpu().to(torch.float64).numpy()  # noqa: E731
    return {
        "fitted": to_np(_targets(Y, raw) - raw),
        "resid": to_np(raw),
        "std_resid": to_np(std),
        "leverage": to_np(h),
        "cooks": to_np(cooks),
    }


def _targets(Y, like: Tensor) -> Tensor:
    t = Y if isinstance(Y, Tensor) else torch.from_numpy(np.asarray(Y, dtype=np.float64))
    return t.to(like).reshape(like.shape[0], -1)
