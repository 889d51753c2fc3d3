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

from typing import TYPE_CHECKING

import numpy as np
import torch

from .batchstats import BatchStatistics

if TYPE_CHECKING:
    from .groupfit import GroupedFit


def _np(t) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


class GroupedOLSResults(BatchStatistics):
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
        super().__init__(
            params=_np(fit.params),
            cov_unscaled=_np(fit.cov_unscaled),
            ssr=_np(fit.ssr),
            centered_tss=_np(fit.centered_tss),
            uncentered_tss=_np(fit.uncentered_tss),
            nobs=_np(fit.seg.counts),
            sum_log_w=_np(fit.sum_log_w),
            bad=_np(fit.bad).astype(bool),
            k_constant=int(fit.fit_intercept),
            param_names=param_names,
            cov_type=cov_type,
            use_t=use_t,
        )
        self._fit = fit
        self.groups = fit.seg.labels

    def _hc(self, kind: str) -> np.ndarray:
        from .robust import hc_covariance

        return hc_covariance(self._fit, kind, self.df_resid)

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
