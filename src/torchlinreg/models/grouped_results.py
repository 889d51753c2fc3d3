"""Results of a grouped fit: statsmodels' statistics with a leading group axis.

Every statistic of a single fit's results (``OLSResults``) is here for all groups at once:
``params`` ``(G, p)``, ``rsquared`` ``(G,)``, ``conf_int()`` ``(G, p, 2)``, ...; row ``g``
is the fit of the rows labelled ``groups[g]``. Groups that could not be fitted are NaN.
``to_frame()`` gives the tidy table.

Example:
    >>> import numpy as np
    >>> from torchlinreg.models.grouped import grouped_ols
    >>> res = grouped_ols(np.arange(6.0), np.arange(6.0) ** 2, groups=list("aaabbb"))
    >>> res.to_frame().shape
    (4, 8)
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import stats

if TYPE_CHECKING:
    from .groupfit import GroupedFit

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")


def _np(t) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


class GroupedOLSResults:
    """One OLS/WLS fit per group (statsmodels ``RegressionResults`` names, group axis first).

    Built by :func:`torchlinreg.ols` with ``groups=``. ``groups`` holds the labels, in
    sorted order; ``param_names`` the parameters (``const`` first with an intercept).

    Example:
        >>> import numpy as np, torchlinreg
        >>> res = torchlinreg.ols(np.arange(6.0), np.arange(6.0) ** 2, groups=[0, 0, 0, 1, 1, 1])
        >>> res.bse.shape, res.nobs.tolist()
        ((2, 2), [3.0, 3.0])
    """

    def __init__(self, fit: GroupedFit, *, param_names, cov_type="nonrobust", use_t=None):
        if cov_type not in COV_TYPES:
            raise ValueError(f"cov_type must be one of {COV_TYPES}; got {cov_type!r}")
        self._fit = fit
        self.groups = fit.seg.labels
        self.param_names = list(param_names)
        self.cov_type = cov_type
        self.use_t = cov_type == "nonrobust" if use_t is None else bool(use_t)
        self.k_constant = int(fit.fit_intercept)
        self.nobs = _np(fit.seg.counts)
        p = len(self.param_names)
        bad = _np(fit.bad).astype(bool)
        self.rank = np.where(bad, np.nan, float(p))
        self.df_model = self.rank - self.k_constant
        self.df_resid = self.nobs - self.rank
        self.params = _np(fit.params)
        self.ssr = _np(fit.ssr)
        self.centered_tss = np.where(bad, np.nan, _np(fit.centered_tss))
        self.uncentered_tss = np.where(bad, np.nan, _np(fit.uncentered_tss))
        self.normalized_cov_params = _np(fit.cov_unscaled)

    # ---- sums of squares ----------------------------------------------------------------
    @property
    def _tss(self) -> np.ndarray:
        return self.centered_tss if self.k_constant else self.uncentered_tss

    @property
    def ess(self) -> np.ndarray:
        """Explained sum of squares, tss - ssr."""
        return self._tss - self.ssr

    @cached_property
    def rsquared(self) -> np.ndarray:
        """R-squared per group: 1 - ssr / tss (uncentred tss without an intercept)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1 - self.ssr / self._tss

    @cached_property
    def rsquared_adj(self) -> np.ndarray:
        """Adjusted R-squared: 1 - (nobs - k_constant) / df_resid * (1 - rsquared)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1 - (self.nobs - self.k_constant) / self.df_resid * (1 - self.rsquared)

    @cached_property
    def scale(self) -> np.ndarray:
        """Residual variance ssr / df_resid per group."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.ssr / self.df_resid

    @property
    def mse_resid(self) -> np.ndarray:
        """ssr / df_resid."""
        return self.scale

    @property
    def mse_model(self) -> np.ndarray:
        """ess / df_model."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.ess / self.df_model

    @property
    def mse_total(self) -> np.ndarray:
        """tss / (nobs - k_constant)."""
        return self._tss / (self.nobs - self.k_constant)

    # ---- covariances --------------------------------------------------------------------
    def cov_params(self) -> np.ndarray:
        """Parameter covariance per group ``(G, p, p)`` of ``cov_type``."""
        if self.cov_type == "nonrobust":
            return self.normalized_cov_params * self.scale[:, None, None]
        return self._hc(self.cov_type)

    def _hc(self, kind: str) -> np.ndarray:
        from .robust import hc_covariance

        return hc_covariance(self._fit, kind, self.df_resid)

    @cached_property
    def _cov(self) -> np.ndarray:
        return self.cov_params()

    @cached_property
    def bse(self) -> np.ndarray:
        """Standard errors ``(G, p)``."""
        return np.sqrt(np.diagonal(self._cov, axis1=1, axis2=2))

    @property
    def HC0_se(self) -> np.ndarray:
        """White's heteroscedasticity-robust standard errors."""
        return np.sqrt(np.diagonal(self._hc("HC0"), axis1=1, axis2=2))

    @property
    def HC1_se(self) -> np.ndarray:
        """HC0 times nobs / df_resid."""
        return np.sqrt(np.diagonal(self._hc("HC1"), axis1=1, axis2=2))

    @property
    def HC2_se(self) -> np.ndarray:
        """Residuals divided by sqrt(1 - leverage)."""
        return np.sqrt(np.diagonal(self._hc("HC2"), axis1=1, axis2=2))

    @property
    def HC3_se(self) -> np.ndarray:
        """Residuals divided by (1 - leverage)."""
        return np.sqrt(np.diagonal(self._hc("HC3"), axis1=1, axis2=2))

    # ---- tests --------------------------------------------------------------------------
    @cached_property
    def tvalues(self) -> np.ndarray:
        """params / bse."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.params / self.bse

    def _sf(self, x: np.ndarray) -> np.ndarray:
        if self.use_t:
            return stats.t.sf(x, self.df_resid[:, None])
        return stats.norm.sf(x)

    def _q(self, prob: float) -> np.ndarray:
        if self.use_t:
            return stats.t.ppf(prob, self.df_resid)[:, None]
        return np.full((len(self.nobs), 1), stats.norm.ppf(prob))

    @cached_property
    def pvalues(self) -> np.ndarray:
        """Two-sided p-values of the t statistics ``(G, p)``."""
        return 2 * self._sf(np.abs(self.tvalues))

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """Confidence intervals ``(G, p, 2)``: params -+ q_{1-alpha/2} bse."""
        q = self._q(1 - alpha / 2)
        return np.stack([self.params - q * self.bse, self.params + q * self.bse], axis=2)

    @cached_property
    def fvalue(self) -> np.ndarray:
        """F statistic against the constant-only model (a Wald test for HC covariances)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.cov_type == "nonrobust":
                return self.ess / self.df_model / self.scale
            k = self.k_constant
            b = self.params[:, k:]
            cov = self._cov[:, k:, k:]
            ok = np.isfinite(cov).all(axis=(1, 2)) & np.isfinite(b).all(1)
            out = np.full(len(b), np.nan)
            if ok.any():
                sol = np.linalg.solve(cov[ok], b[ok][..., None])[..., 0]
                out[ok] = (b[ok] * sol).sum(1) / b.shape[1]
            return out

    @cached_property
    def f_pvalue(self) -> np.ndarray:
        """p-value of the F statistic."""
        return stats.f.sf(self.fvalue, self.df_model, self.df_resid)

    @cached_property
    def llf(self) -> np.ndarray:
        """Gaussian log-likelihood per group (WLS: plus 0.5 * sum(log w))."""
        n2 = self.nobs / 2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            llf = -np.log(self.ssr) * n2 - (1 + np.log(np.pi / n2)) * n2
        return llf + 0.5 * _np(self._fit.sum_log_w)

    @property
    def aic(self) -> np.ndarray:
        """-2 llf + 2 rank."""
        return -2 * self.llf + 2 * self.rank

    @property
    def bic(self) -> np.ndarray:
        """-2 llf + log(nobs) rank."""
        return -2 * self.llf + np.log(self.nobs) * self.rank

    # ---- reporting ----------------------------------------------------------------------
    def to_frame(self, alpha: float = 0.05):
        """Tidy pandas table: one row per (group, parameter) with estimate, se, t, p, CI."""
        import pandas as pd

        G, p = self.params.shape
        ci = self.conf_int(alpha)
        return pd.DataFrame(
            {
                "group": np.repeat(self.groups, p),
                "parameter": np.tile(np.asarray(self.param_names, dtype=object), G),
                "estimate": self.params.reshape(-1),
                "se": self.bse.reshape(-1),
                "t": self.tvalues.reshape(-1),
                "p": self.pvalues.reshape(-1),
                "lower": ci[..., 0].reshape(-1),
                "upper": ci[..., 1].reshape(-1),
            }
        )

    def __repr__(self) -> str:
        return (
            f"<GroupedOLSResults: {len(self.groups)} groups, {len(self.param_names)} "
            f"parameters, cov_type={self.cov_type!r}>"
        )
