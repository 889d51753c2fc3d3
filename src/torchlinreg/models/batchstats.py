"""Statistics of many least-squares fits at once, one per row of a batch axis.

The formulas of ``OLSResults`` (statsmodels' names) over arrays whose first axis is the
fit: a group (grouped fits) or a window end (rolling fits). Built from per-fit parameters,
unscaled covariances ``(X'WX)^-1`` and sums of squares; NaN rows are fits left out.

Example:
    >>> import numpy as np
    >>> st = BatchStatistics(
    ...     params=np.array([[1.0, 2.0]]), cov_unscaled=np.array([[[0.5, 0.0], [0.0, 0.25]]]),
    ...     ssr=np.array([2.0]), centered_tss=np.array([10.0]), uncentered_tss=np.array([20.0]),
    ...     nobs=np.array([6.0]), sum_log_w=np.array([0.0]), bad=np.array([False]),
    ...     k_constant=1, param_names=["const", "x"])
    >>> st.rsquared.tolist(), st.bse.round(4).tolist()
    ([0.8], [[0.5, 0.3536]])
"""

from __future__ import annotations

import itertools
from functools import cached_property

import numpy as np
from scipy import special, stats

from ..exact.threads import threads_for_a_fit
from ..stats.levels import check_alpha

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")


class BatchStatistics:
    """statsmodels ``RegressionResults`` statistics with a leading batch axis."""

    def __init__(
        self,
        *,
        params,
        cov_unscaled,
        ssr,
        centered_tss,
        uncentered_tss,
        nobs,
        sum_log_w,
        bad,
        k_constant: int,
        param_names,
        cov_type: str = "nonrobust",
        use_t: bool | None = None,
    ) -> None:
        if cov_type not in COV_TYPES:
            raise ValueError(f"cov_type must be one of {COV_TYPES}; got {cov_type!r}")
        self.param_names = list(param_names)
        self.cov_type = cov_type
        self.use_t = cov_type == "nonrobust" if use_t is None else bool(use_t)
        self.k_constant = int(k_constant)
        self.nobs = np.asarray(nobs, dtype=np.float64)
        bad = np.asarray(bad, dtype=bool)
        self.rank = np.where(bad, np.nan, float(len(self.param_names)))
        self.df_model = self.rank - self.k_constant
        self.df_resid = self.nobs - self.rank
        nan = np.nan
        self.params = np.where(bad[:, None], nan, params)
        self.ssr = np.where(bad, nan, ssr)
        self.centered_tss = np.where(bad, nan, centered_tss)
        self.uncentered_tss = np.where(bad, nan, uncentered_tss)
        self.normalized_cov_params = np.where(bad[:, None, None], nan, cov_unscaled)
        self._sum_log_w = np.asarray(sum_log_w, dtype=np.float64)

    def _count_implicit_constant(self, centered_tss: np.ndarray) -> None:
        """Columns that span the constant without naming it (``C(g) - 1`` in a formula):
        statsmodels' centred statistics, df_model = rank - 1 and a robust F of NaN, as the
        single fit gives them (``stats.frames.count_the_constant``). The grouped formula
        path reported the uncentred R2 (0.113 for 0.011 on fair by religion) and F 32 for
        3.7, silently (a grouped hunt). ``centered_tss``: each batch's, about its own
        weighted mean (a fit without an intercept has only the uncentred one)."""
        self.k_constant = 1
        self.df_model = self.rank - 1
        self._implicit_constant = True
        self.centered_tss = np.where(np.isnan(self.rank), np.nan, centered_tss)

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
            # inf x 0 where squares left float64: the fit has said so (DegenerateWarning)
            with np.errstate(invalid="ignore", over="ignore"):
                return self.normalized_cov_params * self.scale[:, None, None]
        return self._hc(self.cov_type)

    def _hc(self, kind: str) -> np.ndarray:
        raise ValueError(f"cov_type={kind!r} is not available for these fits; use 'nonrobust'")

    @cached_property
    def _cov(self) -> np.ndarray:
        return self.cov_params()

    @cached_property
    def bse(self) -> np.ndarray:
        """Standard errors ``(G, p)``."""
        return np.sqrt(np.diagonal(self._cov, axis1=1, axis2=2))

    # ---- tests --------------------------------------------------------------------------
    @cached_property
    def tvalues(self) -> np.ndarray:
        """params / bse."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.params / self.bse

    def _sf(self, x: np.ndarray) -> np.ndarray:
        # scipy's own kernels (t.sf is stdtr(df, -x), norm.sf is ndtr(-x)) without the
        # distribution machinery's argument checks, which cost a third as much again
        if self.use_t:
            df = self.df_resid[:, None]
            with np.errstate(invalid="ignore"):
                sf = _on_idle_cores(special.stdtr, np.where(df > 0, df, 1.0), -x)
                return np.where(df > 0, sf, np.nan)
        return special.ndtr(-x)

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
        q = self._q(1 - check_alpha(alpha) / 2)
        return np.stack([self.params - q * self.bse, self.params + q * self.bse], axis=2)

    @cached_property
    def fvalue(self) -> np.ndarray:
        """F statistic against the constant-only model (a Wald test for HC covariances)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.cov_type == "nonrobust":
                return self.ess / self.df_model / self.scale
            if getattr(self, "_implicit_constant", False):  # statsmodels' #2444
                return np.full(len(self.params), np.nan)
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
        return llf + 0.5 * self._sum_log_w

    @property
    def aic(self) -> np.ndarray:
        """-2 llf + 2 rank."""
        return -2 * self.llf + 2 * self.rank

    @property
    def bic(self) -> np.ndarray:
        """-2 llf + log(nobs) rank."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return -2 * self.llf + np.log(self.nobs) * self.rank


# The incomplete beta behind each t p-value costs ~200 ns: 10,000 groups x 6 parameters
# took 14 ms, a fifth of the whole grouped fit. scipy's kernels release the GIL, so the
# rows are cut into one part per idle core (NOTE [threads on shared cores]), each on a
# Python thread: no barrier to stall on a busy machine, where it takes one part.
_PARALLEL_SF_VALUES = 1 << 15


def _on_idle_cores(kernel, df: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``kernel(df, x)`` (df ``(G, 1)``, x ``(G, p)``), split by rows over the idle cores."""
    parts = min(threads_for_a_fit(), max(1, x.size // _PARALLEL_SF_VALUES))
    if parts < 2:
        return kernel(df, x)
    from concurrent.futures import ThreadPoolExecutor

    cuts = np.linspace(0, len(x), parts + 1).astype(int)
    with ThreadPoolExecutor(parts) as pool:
        done = [pool.submit(kernel, df[a:b], x[a:b]) for a, b in itertools.pairwise(cuts)]
        return np.concatenate([f.result() for f in done])
