"""OLS / WLS statistics over an exact fit, named and shaped as in statsmodels.

:func:`ols` fits and returns an :class:`OLSResults`; the estimator builds the same object
from its own fit with :meth:`OLSResults.from_fit`. Statistics are lazy: ``(X'WX)^-1`` comes
from the R factor (``R^-1 R^-T``), sums of squares from double-double residuals when the
fit was refined (or from R when it did not need to be), and HC covariances and leverage
from a second pass over the rows kept in memory.

Shapes: ``params`` is ``(p,)`` for one 1-D target and ``(p, k)`` for ``k`` targets; every
statistic gains the same last axis, and each target equals a separate fit. Weights are
WLS weights (inverse variances), as in statsmodels' ``WLS``.

Example:
    >>> import torch
    >>> X = torch.arange(10.0, dtype=torch.float64)[:, None]
    >>> y = 1 + 2 * X[:, 0] + torch.tensor([0.1, -0.1] * 5, dtype=torch.float64)
    >>> res = ols(X, y)
    >>> [round(float(v), 6) for v in res.params]
    [1.027273, 1.993939]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from ..data import as_matrix, as_problem, as_weights
from ..errors import DataError, DegenerateWarning, RankWarning
from ..exact.linalg import inverse_and_kappa
from ..exact.solve import ACCURACY_WARNING
from ..exact.threads import with_fit_threads
from . import hypothesis
from .covariance import about_reference, hc_covariance, project_out, user_stacklevel
from .fitstats import as_tensor, results_from_fit, results_from_state
from .hypothesis import ContrastResults, wald_statistics
from .levels import two_sided
from .prediction import PredictionResults, prediction
from .robust import normalize_cov_kwds, robust_covariance

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster", "HAC")


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


class OLSResults:
    """Results of a least-squares fit (statsmodels ``RegressionResults`` names).

    Build it with :func:`ols`, :meth:`from_fit` or :func:`torchlinreg.stats.polyfit.polyfit`.
    Internally the model is ``y = A b`` in a basis ``A`` (kept columns only) with
    ``params = M b``; for plain OLS ``A = [1 | X]`` and ``M`` (None) selects the kept columns.

    Example:
        >>> import numpy as np
        >>> x = np.arange(10.0); y = 1 + 2 * x + np.tile([0.1, -0.1], 5)
        >>> res = ols(x[:, None], y)
        >>> np.round(res.params, 3), res.df_resid
        (array([1.027, 1.994]), 8.0)
    """

    def __init__(
        self,
        *,
        params: np.ndarray,
        basis_params: Tensor,
        basis_r: Tensor,
        basis_map: Tensor | None,
        design: Callable[[Tensor | None], Tensor],
        rows: Callable[[], tuple[Tensor, Tensor]] | None,
        sums: dict[str, np.ndarray],
        nobs: int,
        k_constant: int,
        weights: np.ndarray | None,
        aliased_params: Sequence[int],
        param_names: Sequence[str],
        target_names: Sequence[str],
        squeeze: bool,
        cov_type: str = "nonrobust",
        condition_number: float | Callable[[], float] = math.nan,
        use_t: bool | None = None,
        endog: Tensor | None = None,
        exog_names: Sequence[str] | None = None,
        n_exog: int | None = None,
        weighted: bool | None = None,
        sum_log_weights: float | None = None,
        cov_kwds: dict | None = None,
        basis_rinv: Callable[[], tuple[Tensor, float]] | None = None,
        gram_factor: bool = False,
        robust_shift: Callable[[], object] | None = None,
        robust_reference: Callable[[], object] | None = None,
        aliasing: tuple[list[int], list[int], Tensor] | None = None,
    ) -> None:
        # what get_robustcov_results needs to build the same fit with another covariance
        self._init_kwargs = {
            k: v for k, v in locals().items() if k not in ("self", "cov_kwds", "__class__")
        }
        cov_type = "HAC" if str(cov_type).lower() == "hac" else cov_type
        if cov_type not in COV_TYPES:
            raise ValueError(f"cov_type must be one of {COV_TYPES}; got {cov_type!r}")
        if use_t is None and cov_kwds and "use_t" in cov_kwds:  # statsmodels takes it there
            use_t = cov_kwds["use_t"]
        self.cov_kwds = normalize_cov_kwds(cov_type, cov_kwds, nobs)
        self._params = params
        self._b = basis_params
        self._r = basis_r
        # computes R^-1 more accurately than inverting R, where the fit has one (offsets
        # far from the data: NOTE [refinement about the shift] in exact/refine.py)
        self._rinv = basis_rinv
        # basis_r came from a Gram (Cholesky of X'X): its inverse carries eps kappa^2
        self._gram_factor = gram_factor
        # the offsets the rows are factored about for robust covariances, where they
        # dominate the spread (None: the raw rows)
        self._shift = robust_shift
        # without an intercept: the reference column the rows are taken about for robust
        # covariances, where offsets dominate (NOTE [columns about a reference column])
        self._reference = robust_reference
        # a robust covariance of the parameters about the offsets from a second pass over
        # the blocks (robust_from_blocks): predictions take it, there are no rows to redo it
        self._robust_about_offsets: Tensor | None = None
        # kept and aliased parameters, and C with A_aliased = A_kept C in training (NOTE
        # [rows that break the aliasing])
        self._aliasing = aliasing
        self._map = basis_map  # None: the kept parameters themselves (see _m)
        self._design = design
        self._rows = rows
        self._endog = endog
        self._sums = sums
        self.nobs = nobs
        self.k_constant = k_constant
        self._weights = weights
        # WLS (statsmodels' title and llf) when weights were given, in memory or in a state
        self.weighted = weights is not None if weighted is None else bool(weighted)
        if sum_log_weights is None:
            with np.errstate(divide="ignore"):  # a zero weight: -inf, as statsmodels' WLS
                sum_log_weights = 0.0 if weights is None else float(np.log(weights).sum())
        self._sum_log_w = sum_log_weights
        self.aliased = tuple(aliased_params)
        self.param_names = list(param_names)
        self.target_names = list(target_names)
        # what new rows must look like (None: the design takes its own input, as polyfit's)
        self._exog_names = None if exog_names is None else list(exog_names)
        self._n_exog = n_exog
        self._squeeze = squeeze
        self.cov_type = cov_type
        # statsmodels: t and F for the classical covariance, normal for robust ones
        self.use_t = cov_type == "nonrobust" if use_t is None else use_t
        self._condition_number = condition_number  # a float, or what computes it when read
        self.nobs_dropped = 0  # rows left out for missing values (ols(missing="drop"))

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_fit(
        cls,
        X: Tensor,
        Y: Tensor,
        sample_weight: Tensor | None,
        fit_intercept: bool,
        state: object,
        solution: object,
        *,
        cov_type: str = "nonrobust",
        feature_names: Sequence[str] | None = None,
        target_names: Sequence[str] | None = None,
        refine: bool | None = None,
        warn: bool = False,
        use_t: bool | None = None,
        cov_kwds: dict | None = None,
    ) -> OLSResults:
        """Results of an exact fit, refined where :func:`needs_refinement` says digits are at risk.

        ``X`` ``(n, d)``, ``Y`` ``(n,)`` or ``(n, k)`` and ``sample_weight`` are the rows the
        ``state`` absorbed; ``solution`` is its ExactSolution. ``refine=None`` decides by the
        condition estimate (small problems always refine); True/False force it. The exact
        engine already warns about aliased columns; ``warn=True`` repeats it here.
        """
        kwargs = results_from_fit(
            X,
            Y,
            sample_weight,
            fit_intercept,
            state,
            solution,
            feature_names=feature_names,
            target_names=target_names,
            refine=refine,
            warn=warn,
        )
        return cls(**kwargs, cov_type=cov_type, use_t=use_t, cov_kwds=cov_kwds)

    @classmethod
    def from_state(
        cls,
        state: object,
        solution: object,
        *,
        weighted: bool = False,
        y_was_1d: bool = False,
        cov_type: str = "nonrobust",
        feature_names: Sequence[str] | None = None,
        target_names: Sequence[str] | None = None,
        use_t: bool | None = None,
        cov_kwds: dict | None = None,
    ) -> OLSResults:
        """Non-robust results from a least-squares state alone (streamed or loaded fits).

        No refinement (it needs the rows again); HC covariances and residuals raise a
        DataError that says so.
        """
        kwargs = results_from_state(
            state,
            solution,
            weighted=weighted,
            y_was_1d=y_was_1d,
            feature_names=feature_names,
            target_names=target_names,
        )
        return cls(**kwargs, cov_type=cov_type, use_t=use_t, cov_kwds=cov_kwds)

    @property
    def condition_number(self) -> float:
        """statsmodels' condition number of the design, computed when first read (above 512
        columns it is an estimate and costs seconds at 10,000 columns)."""
        if callable(self._condition_number):
            self._condition_number = float(self._condition_number())
        return self._condition_number

    def _kept(self) -> list[int]:
        return [j for j in range(self._params.shape[0]) if j not in set(self.aliased)]

    @property
    def _m(self) -> Tensor:
        """``M`` of ``params = M b`` (p x q); for plain OLS the columns of eye(p) kept, made
        when asked (it is p x p: 800 MB at 10,000 columns)."""
        if self._map is None:
            eye = torch.eye(self._params.shape[0], dtype=self._r.dtype, device=self._r.device)
            return eye[:, self._kept()]
        return self._map

    # ---- helpers ------------------------------------------------------------------------
    def _out(self, a: np.ndarray) -> np.ndarray:
        # one 1-D target: drop the target axis; a scalar statistic becomes a numpy float
        # (np.float64, a float), as statsmodels returns it, not a 0-d array
        return a[..., 0][()] if self._squeeze else a

    @cached_property
    def _cov_unscaled_basis(self) -> Tensor:
        rinv, kappa = self._rinv() if self._rinv is not None else inverse_and_kappa(self._r)
        _warn_covariance(kappa, self._gram_factor)
        return rinv @ rinv.T

    def _embed(self, cov_basis: Tensor) -> np.ndarray:
        """Map a basis covariance ``(q, q[, k])`` to the parameters, NaN for aliased ones."""
        m = self._map
        if m is None:  # the basis is the kept parameters: placed, not multiplied by eye(p)
            p, keep = self._params.shape[0], self._kept()
            if len(keep) == p:
                return _np(cov_basis)
            out = np.full((p, p, *cov_basis.shape[2:]), np.nan)
            out[np.ix_(keep, keep)] = _np(cov_basis)
            return out
        if cov_basis.ndim == 2:
            out = _np(m @ cov_basis @ m.T)
        else:
            out = _np(torch.einsum("ia,abk,jb->ijk", m, cov_basis, m))
        out[list(self.aliased)] = np.nan
        out[:, list(self.aliased)] = np.nan
        return out

    # ---- sums of squares and degrees of freedom -----------------------------------------
    @property
    def params(self) -> np.ndarray:
        """Estimated parameters, intercept first; NaN for aliased columns."""
        return self._out(self._params)

    @property
    def rank(self) -> int:
        """Numerical rank of the design (intercept included)."""
        return int(self._r.shape[0])

    @property
    def df_model(self) -> float:
        """Model degrees of freedom: rank minus the constant."""
        return float(self.rank - self.k_constant)

    @property
    def df_resid(self) -> float:
        """Residual degrees of freedom: nobs minus rank."""
        return float(self.nobs - self.rank)

    @property
    def ssr(self) -> np.ndarray:
        """Sum of squared (weighted) residuals."""
        return self._out(self._sums["rss"])

    @property
    def centered_tss(self) -> np.ndarray:
        """Total sum of squares about the (weighted) mean."""
        return self._out(self._sums["centered_tss"])

    @property
    def uncentered_tss(self) -> np.ndarray:
        """Total sum of squares about zero."""
        return self._out(self._sums["uncentered_tss"])

    @property
    def ess(self) -> np.ndarray:
        """Explained (regression) sum of squares, computed directly, not as tss - ssr."""
        return self._out(self._sums["ess"])

    @property
    def _has_intercept(self) -> bool:
        """Whether the first parameter is a fitted intercept: ``k_constant`` also counts a
        constant the columns hold (NOTE [a constant in the columns] in frames.py), which
        the row passes must not take for one (robust HC from blocks then quoted no bound
        where 1.4e-9 was off)."""
        return bool(self.k_constant) and not getattr(self, "_implicit_constant", False)

    @cached_property
    def _tss(self) -> np.ndarray:
        return self._sums["centered_tss" if self.k_constant else "uncentered_tss"]

    @cached_property
    def rsquared(self) -> np.ndarray:
        """R-squared = ess / tss (uncentered tss without an intercept)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._out(self._sums["ess"] / self._tss)

    @cached_property
    def rsquared_adj(self) -> np.ndarray:
        """Adjusted R-squared: 1 - (nobs - k_constant) / df_resid * (1 - rsquared)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            f = (self.nobs - self.k_constant) / self.df_resid if self.df_resid else np.nan
            return 1 - f * (1 - self.rsquared)

    @cached_property
    def _scale(self) -> np.ndarray:
        rss = self._sums["rss"]
        if self.df_resid <= 0:
            warnings.warn(
                f"no residual degrees of freedom (nobs={self.nobs}, rank={self.rank}); "
                "variance-based statistics are NaN; add observations or drop columns",
                DegenerateWarning,
                stacklevel=3,
            )
            return np.full_like(rss, np.nan)
        self._warn_perfect_fit(rss)
        return rss / self.df_resid

    def _warn_perfect_fit(self, rss: np.ndarray) -> None:
        """NOTE [an essentially perfect fit]"""
        utss = self._sums["uncentered_tss"]
        exact = np.flatnonzero(np.asarray((rss > 0) & at_rounding_level(rss, utss, self.rank)))
        if exact.size == 0:
            return
        names = [str(self.target_names[t]) for t in exact]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        warnings.warn(
            f"{shown} fitted exactly, to the rounding level of the data (residual sum of "
            f"squares {float(rss[exact].max()):.1e} against "
            f"{float(self._sums['uncentered_tss'][exact].max()):.1e} for y): the residual "
            "sum of squares is rounding noise, and the standard errors, t and p-values, "
            "intervals and F built on it (an essentially perfect fit)",
            DegenerateWarning,
            stacklevel=user_stacklevel(),
        )

    @property
    def scale(self) -> np.ndarray:
        """Residual variance estimate ssr / df_resid (0 for an exact fit, NaN without df)."""
        return self._out(self._scale)

    @property
    def mse_resid(self) -> np.ndarray:
        """Mean squared error of the residuals: ssr / df_resid."""
        return self.scale

    @cached_property
    def mse_model(self) -> np.ndarray:
        """Mean squared error of the model: ess / df_model."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._out(self._sums["ess"] / self.df_model)

    @cached_property
    def mse_total(self) -> np.ndarray:
        """Total mean squared error: tss / (nobs - k_constant)."""
        return self._out(self._tss / (self.nobs - self.k_constant))

    # ---- covariance and tests -----------------------------------------------------------
    @cached_property
    def _cov(self) -> np.ndarray:
        """Parameter covariance, ``(p, p, k)``."""
        basis = self._cov_unscaled_basis  # and its accuracy warning (robust ones too)
        if self.cov_type == "nonrobust":
            base = self._embed(basis)
            # inf times 0 where the squares left float64: warned of at the fit (NOTE
            # [squares out of range] in fitstats.py)
            with np.errstate(invalid="ignore"):
                return base[:, :, None] * self._scale[None, None, :]
        return self._embed(self._robust_cov_basis)

    @cached_property
    def _robust_cov_basis(self) -> Tensor:
        if self._rows is None:
            second = "cluster_from_blocks" if self.cov_type == "cluster" else "robust_from_blocks"
            raise DataError(
                f"cov_type={self.cov_type!r} needs the rows; refit in memory, or pass the "
                f"blocks again to {second} (a second pass)"
            )
        return self._robust(shifted=False)

    def _robust(self, shifted: bool) -> Tensor:
        """The robust covariance of the parameters, or (``shifted``) of those about the
        offsets, where they dominate (NOTE [refinement about the shift] in exact/refine.py:
        the rows are factored about them either way)."""
        if shifted and self._robust_about_offsets is not None:
            return self._robust_about_offsets
        factor = self._shifted_factor()
        shift = None if factor is None else factor.shift
        if shift is None and self._reference is not None:
            shift = self._reference()  # no intercept: a Reference, or None
        if self._rows is None:  # NOTE [robust covariances in model files] in robust_blocks.py
            raise DataError(
                f"the prediction standard errors of this {self.cov_type} fit take its "
                "covariance about the columns' offsets (far from zero for their spread), "
                "which it does not hold and has no rows to take again: the covariance of the "
                "raw parameters (a model file saved before it was kept) has lost those "
                "digits. Re-train and save again (train --cov-type), or fit in memory"
            )
        A, e = self._rows() if shift is None else self._rows(shift)
        back = None if shifted else shift  # the map back to the raw parameters, or none
        return self._robust_of_rows(A, e, back)

    def _robust_of_rows(self, A: Tensor, e: Tensor, back) -> Tensor:
        """This fit's robust covariance of whitened rows ``A`` and residuals ``e``, mapped
        back by ``back`` (a shift, a Reference or None; see ``_robust``)."""
        # NOTE [the residuals HC squares] in covariance.py: the least-squares residuals
        if self.cov_type in ("cluster", "HAC"):
            e = project_out(torch.linalg.qr(A, mode="reduced").Q, e)
            return robust_covariance(A, e, self.cov_type, self.cov_kwds, self.rank, back)
        return hc_covariance(A, e, self.cov_type, self.nobs, self.df_resid, back, True)

    def _shifted_factor(self):
        """The design's factor about its offsets where they dominate the spread, else None."""
        return None if self._shift is None else self._shift()

    def cluster_from_blocks(
        self,
        blocks,
        groups,
        *,
        use_correction: bool = True,
        df_correction: bool = True,
        use_t: bool | None = None,
    ) -> OLSResults:
        """Cluster-robust results of a streamed (or any) fit by a second pass over the rows.

        ``blocks`` yields the fitted rows again (``(X, y)``, ``(X, y, w)`` or Block objects,
        in any order and blocking) and ``groups`` each block's cluster labels (``(b,)``, or
        ``(b, 2)`` / a pair for two-way); a cluster may span blocks. Equals
        ``get_robustcov_results("cluster", groups=...)`` of an in-memory fit
        (``stats/robust_blocks.py``).
        """
        from .robust_blocks import accumulate

        return self.with_cluster_sums(
            accumulate(self, blocks, groups, use_correction),
            use_correction=use_correction,
            df_correction=df_correction,
            use_t=use_t,
        )

    def robust_from_blocks(
        self, blocks, cov_type: str = "HC1", use_t: bool | None = None, **cov_kwds
    ) -> OLSResults:
        """HC0-HC3 or HAC results of a streamed (or any) fit by a second pass over the rows.

        ``blocks`` yields the fitted rows again in their order (HAC's lags follow it);
        equals ``get_robustcov_results(cov_type, **cov_kwds)`` of an in-memory fit.
        For ``cov_type="cluster"`` use :meth:`cluster_from_blocks`.
        """
        from .robust_blocks import robust_from_blocks

        return robust_from_blocks(self, blocks, cov_type, self._rebuilt, use_t, cov_kwds)

    def with_cluster_sums(
        self, sums, *, use_correction: bool = True, df_correction: bool = True, use_t=None
    ) -> OLSResults:
        """Cluster-robust results from accumulated ``robust_blocks.ClusterSums`` (merged
        over blocks or ranks)."""
        from .robust_blocks import cluster_from_sums

        kw = {"groups": sums.groups(), "use_correction": use_correction}
        new = self._rebuilt("cluster", use_t, {**kw, "df_correction": df_correction})
        raw, shifted = cluster_from_sums(self, sums, use_correction)
        new._robust_cov_basis = raw
        if shifted is not None:  # predictions take their variances about the offsets
            new._robust_about_offsets = shifted
        return new

    def _rebuilt(self, cov_type: str, use_t: bool | None, cov_kwds: dict) -> OLSResults:
        """The same fit with another covariance; ``use_t`` None keeps this one's."""
        use_t = self.use_t if use_t is None and "use_t" not in cov_kwds else use_t
        kwargs = {**self._init_kwargs, "cov_type": cov_type, "use_t": use_t}
        return type(self)(**kwargs, cov_kwds=cov_kwds)

    @property
    def df_resid_inference(self) -> float:
        """Degrees of freedom of t and F tests: ``df_resid``, or with clustered errors the
        number of clusters minus one (the smaller count two-way), as statsmodels."""
        kw = self.cov_kwds
        if self.cov_type == "cluster" and kw["df_correction"]:
            return float(kw["groups"].inference_groups - 1)
        return self.df_resid

    def get_robustcov_results(
        self, cov_type: str = "HC1", use_t: bool | None = None, **cov_kwds
    ) -> OLSResults:
        """The same fit with another covariance (statsmodels' name): a new results object.

        Example:
            >>> import numpy as np
            >>> x = np.arange(8.0); y = x + np.tile([0.1, -0.1], 4)
            >>> res = ols(x[:, None], y).get_robustcov_results("cluster", groups=x // 2)
            >>> res.cov_type, res.df_resid_inference
            ('cluster', 3.0)
        """
        return self._rebuilt(cov_type, use_t, cov_kwds)  # statsmodels keeps the fit's use_t

    def cov_params(self) -> np.ndarray:
        """Covariance of the parameters (``cov_type``): ``(p, p)`` or ``(p, p, k)``."""
        return self._out(self._cov)

    @cached_property
    def normalized_cov_params(self) -> np.ndarray:
        """(X'WX)^-1 from the R factor, NaN rows/columns for aliased parameters."""
        return self._embed(self._cov_unscaled_basis)

    @cached_property
    def bse(self) -> np.ndarray:
        """Standard errors: sqrt(diag(cov_params))."""
        return self._out(np.sqrt(np.diagonal(self._cov, axis1=0, axis2=1).T))

    @cached_property
    def tvalues(self) -> np.ndarray:
        """t statistics: params / bse."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.params / self.bse

    @cached_property
    def pvalues(self) -> np.ndarray:
        """Two-sided p-values of the t statistics with df_resid degrees of freedom."""
        return 2 * self._dist.sf(np.abs(self.tvalues))

    @property
    def _dist(self):
        if not self.use_t:
            return stats.norm()
        df = self.df_resid_inference
        return stats.t(df) if df > 0 else stats.t(np.nan)

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """Confidence intervals ``(p, 2)`` (or ``(p, 2, k)``): params -+ t_{1-alpha/2} bse."""
        q = two_sided(self._dist, alpha)
        return np.stack([self.params - q * self.bse, self.params + q * self.bse], axis=1)

    @cached_property
    def _f(self) -> tuple[np.ndarray, np.ndarray]:
        dfm, dfr = self.df_model, self.df_resid_inference
        if self.cov_type == "nonrobust":
            with np.errstate(divide="ignore", invalid="ignore"):
                f = self._sums["ess"] / dfm / self._scale
        else:  # Wald test that all non-constant parameters are zero (statsmodels' rule)
            idx = [j for j in range(self._params.shape[0]) if j >= self.k_constant]
            idx = [j for j in idx if j not in self.aliased]
            if not idx:
                f = np.full(self._params.shape[1], np.nan)
            else:  # a singular robust covariance counts its rank (few clusters), as statsmodels
                R = np.eye(self._params.shape[0])[idx][:, idx]
                cov = self._cov[np.ix_(idx, idx)]
                w, dfm = wald_statistics(self._params[idx], cov, R, np.zeros(len(idx)))
                f = w / dfm
        if self.df_model <= 0 or dfr <= 0:
            return np.full_like(f, np.nan), np.full_like(f, np.nan)
        return f, stats.f.sf(f, dfm, dfr)

    @property
    def fvalue(self) -> np.ndarray:
        """F statistic of the model against the constant-only (or empty) model."""
        return self._out(self._f[0])

    @property
    def f_pvalue(self) -> np.ndarray:
        """p-value of the F statistic."""
        return self._out(self._f[1])

    @cached_property
    def llf(self) -> np.ndarray:
        """Gaussian log-likelihood (WLS: plus 0.5 * sum(log w))."""
        n2 = self.nobs / 2.0
        with np.errstate(divide="ignore"):
            llf = -np.log(self._sums["rss"]) * n2 - (1 + np.log(np.pi / n2)) * n2
        return self._out(llf + 0.5 * self._sum_log_w)

    @property
    def aic(self) -> np.ndarray:
        """Akaike information criterion: -2 llf + 2 rank."""
        return -2 * self.llf + 2 * self.rank

    @property
    def bic(self) -> np.ndarray:
        """Bayesian information criterion: -2 llf + log(nobs) rank."""
        return -2 * self.llf + np.log(self.nobs) * self.rank

    def info_criteria(self, crit: str, dk_params: float = 0) -> np.ndarray:
        """An information criterion, as statsmodels' ``RegressionResults.info_criteria``.

        ``crit`` is ``"aic"``, ``"bic"``, ``"aicc"`` or ``"hqic"``; the parameter count is
        the rank plus ``dk_params`` (``dk_params=1`` counts the scale too). AICc is inf
        when ``nobs - count - 1 <= 0``.

        Example:
            >>> import numpy as np
            >>> res = ols(np.arange(10.0)[:, None], np.arange(10.0) + np.tile([0.1, -0.1], 5))
            >>> bool(np.isclose(res.info_criteria("aic"), res.aic))
            True
        """
        k = self.rank + dk_params
        crit = str(crit).lower()  # statsmodels takes "AIC" too
        penalty = {
            "aic": 2.0 * k,
            "bic": np.log(self.nobs) * k,
            "hqic": 2.0 * np.log(np.log(self.nobs)) * k,
        }
        if crit == "aicc":
            dof = self.nobs - k - 1.0
            penalty["aicc"] = 2.0 * k * self.nobs / dof if dof > 0 else np.inf
        if crit not in penalty:
            raise ValueError(f"crit must be 'aic', 'bic', 'aicc' or 'hqic'; got {crit!r}")
        return -2 * self.llf + penalty[crit]

    # ---- hypothesis tests (stats/hypothesis.py) -----------------------------------------
    def t_test(self, r_matrix, use_t: bool | None = None) -> ContrastResults:
        """t test of each linear hypothesis ``R b = q`` (statsmodels' ``t_test``).

        ``r_matrix`` is a string over ``param_names`` (``"x1 = 0"``, ``"x1 = x2, x3 = 1"``), a
        matrix ``R`` (``q = 0``) or ``(R, q)``; the results' covariance is used.

        Example:
            >>> import numpy as np
            >>> x = np.arange(10.0); y = x + np.tile([0.3, -0.3], 5)
            >>> tt = ols(x[:, None], y).t_test("x1 = 1")
            >>> bool(abs(tt.effect - 1) < 0.1), bool(tt.pvalue > 0.05)
            (True, True)
        """
        return hypothesis.t_test(self, r_matrix, use_t=use_t)

    def f_test(self, r_matrix) -> ContrastResults:
        """F test of the joint hypothesis ``R b = q`` (``wald_test`` with ``use_f=True``)."""
        return hypothesis.wald_test(self, r_matrix, use_f=True)

    def wald_test(self, r_matrix, use_f: bool | None = None, scalar: bool = True):
        """Wald test of ``R b = q``: F when ``use_f`` (default ``use_t``), else chi2."""
        return hypothesis.wald_test(self, r_matrix, use_f=use_f, scalar=scalar)

    def compare_f_test(self, restricted: OLSResults):
        """``(F, p-value, df_diff)`` against a restricted model nested in this one."""
        return hypothesis.compare_f_test(self, restricted)

    def compare_lr_test(self, restricted: OLSResults):
        """``(LR statistic, p-value, df_diff)`` against a nested restricted model."""
        return hypothesis.compare_lr_test(self, restricted)

    # ---- influence and residual diagnostics (stats/influence.py, stats/diagnostics.py) ---
    def get_influence(self):
        """Leverage, Cook's distance, DFFITS, studentized residuals (statsmodels' names).

        Example:
            >>> import numpy as np
            >>> x = np.arange(6.0); y = x + np.array([0.1, -0.1, 0.2, 0.0, -0.2, 0.3])
            >>> infl = ols(x[:, None], y).get_influence()
            >>> infl.hat_matrix_diag.shape, infl.cooks_distance[0].shape
            ((6,), (6,))
        """
        from .influence import OLSInfluence

        return OLSInfluence(self)

    @cached_property
    def _diagnostics(self) -> dict[str, np.ndarray]:
        from .diagnostics import residual_diagnostics

        return residual_diagnostics(self.wresid)

    @property
    def diagnostics(self) -> dict[str, np.ndarray]:
        """Omnibus, skew, kurtosis, Durbin-Watson, Jarque-Bera of the whitened residuals
        (statsmodels' summary block; needs the fitted rows)."""
        return {key: self._out(v) for key, v in self._diagnostics.items()}

    # ---- prediction, reporting ----------------------------------------------------------
    @cached_property
    def fittedvalues(self) -> np.ndarray:
        """Fitted values of the rows the model was fitted on (unweighted scale)."""
        return self._out(_np(self._design(None) @ self._b))

    @cached_property
    def resid(self) -> np.ndarray:
        """Residuals y - fitted of the fitted rows (unweighted scale), of the least-squares
        solution (NOTE [residuals of the least-squares solution])."""
        if self._endog is None:
            raise DataError("resid needs the fitted rows; refit in memory")
        return self._out(_np(self._least_squares_residuals()))

    def _least_squares_residuals(self) -> Tensor:
        """NOTE [residuals of the least-squares solution]
        ``y - A b`` in float64 cancelled where the columns sit far from zero, and carried
        the returned parameters' rounding besides: copper + 1e9 with weights over 16
        decades had residuals 2.3e-4 off, and the summary's skew, Jarque-Bera and
        Durbin-Watson with them, silently, while get_influence's were right to 1e-15 (a
        diagnostics hunt). They are now taken in double-double where float64 would cancel
        (``fitstats.residuals``), and the part the parameters' error puts in the columns'
        span is taken off: ``e - A delta``, ``delta = R^-1 R^-T A'We`` with the rows and
        factor about the offsets where the fit has them, or (no intercept) a Householder
        factor of the rows about a reference column, as HC and influence take them.
        """
        from .fitstats import residuals

        A = self._design(None)
        Y = torch.as_tensor(_np(self._endog)).to(A).reshape(A.shape[0], -1)
        b = self._b.to(A)
        e = residuals(A, Y, b)
        if self.aliased:
            return e
        w = None if self._weights is None else torch.as_tensor(self._weights).to(A)[:, None]
        ref = None if self._reference is None else self._reference()
        if ref is not None:
            # no intercept, offsets dominating: the raw factor cannot resolve delta (copper
            # + 1e9 was 1e-6 off through it); a Householder factor of the rows about the
            # reference column can, as the influence measures take it
            A = about_reference(A, ref)
            Aw, ew = (A, e) if w is None else (A * w.sqrt(), e * w.sqrt())
            Q, R = torch.linalg.qr(Aw, mode="reduced")
            return e - A @ torch.linalg.solve_triangular(R, Q.T @ ew, upper=True)
        factor = self._shifted_factor()
        R = (self._r if factor is None else factor.r).to(A)
        if factor is not None:
            A[:, 1:] -= factor.shift.to(A)
        g = A.T @ (e if w is None else e * w)
        delta = torch.linalg.solve_triangular(
            R, torch.linalg.solve_triangular(R.T, g, upper=False), upper=True
        )
        return e - A @ delta

    @cached_property
    def wresid(self) -> np.ndarray:
        """Whitened residuals ``sqrt(w) * resid`` (the residuals themselves for OLS)."""
        if self._weights is None:
            return self.resid
        root_w = np.sqrt(self._weights)
        return self.resid * (root_w if self.resid.ndim == 1 else root_w[:, None])

    @cached_property
    def resid_pearson(self) -> np.ndarray:
        """``wresid / sqrt(scale)``: unit-variance residuals (statsmodels' definition).

        A target whose residuals are all zero to rounding keeps them unscaled, with a
        DegenerateWarning, as statsmodels does.

        Example:
            >>> import numpy as np
            >>> x = np.arange(10.0); y = 1 + 2 * x + np.tile([0.1, -0.1], 5)
            >>> res = ols(x[:, None], y)
            >>> round(float((res.resid_pearson**2).sum()), 9) == res.df_resid
            True
        """
        wresid = self.wresid.reshape(self.nobs, -1)
        root_scale = np.sqrt(self._scale)
        level = np.abs(_np(self._endog).reshape(self.nobs, -1).mean(axis=0))
        zero = root_scale < 10 * np.finfo(np.float64).eps * level
        if zero.any():
            warnings.warn(
                "all residuals are 0 to rounding; resid_pearson returns them unscaled",
                DegenerateWarning,
                stacklevel=2,
            )
        return self._out(wresid / np.where(zero, 1.0, root_scale))

    def get_prediction(
        self, exog: Tensor | np.ndarray | None = None, weights: np.ndarray | None = None
    ) -> PredictionResults:
        """Predicted means with their standard errors and the observation variance.

        ``exog`` holds new rows of X (without the constant); ``None`` reuses the fitted
        rows. ``weights`` are WLS weights of the new observations (default 1).
        """
        labels = None
        if exog is None:
            A, weights = self._design(None), self._weights if weights is None else weights
        else:
            rows, labels = self._new_rows(exog)
            self._warn_off_span(rows)
            A = self._design(rows)
        if weights is not None and not (exog is None and weights is self._weights):
            weights = _np(as_weights(weights, A.shape[0], allow_all_zero=True))
        robust = None if self.cov_type == "nonrobust" else self._robust_cov_basis
        if robust is None:  # its accuracy warning, as bse gives it
            _ = self._cov_unscaled_basis
        rows, factor, cov = self._prediction_basis(A, robust)
        return prediction(
            A,
            self._b,
            cov,
            robust is not None,
            self._scale,
            weights,
            self._dist,
            squeeze=self._squeeze,
            row_labels=labels,
            target_names=self.target_names,
            variance_rows=rows,
            factor=factor,
        )

    def _prediction_basis(self, A: Tensor, robust: Tensor | None):
        """What ``prediction`` takes the variances of the rows ``A`` from (NOTE [prediction
        variances as sums of squares] in prediction.py): the rows about the offsets (or a
        reference column) where they dominate the spread, the R factor of the fitted rows
        taken the same way, and the covariance of the coefficients on their orthonormal
        basis (None: the identity, nonrobust). Without the rows to take a robust one again
        (a second pass over blocks gave it) the factor is None and the covariance is that
        of the parameters of those rows: ``a'Va``, as before."""
        factor = self._shifted_factor()
        ref = None if factor is not None or self._reference is None else self._reference()
        shift = ref if factor is None else factor.shift
        rows = A
        if ref is not None:
            rows = about_reference(A, ref)
        elif shift is not None:  # cancelled from the raw rows: mean_se 900x off near 1e9
            rows = A.clone()
            rows[:, 1:] -= shift
        if robust is None and ref is None:
            return rows, self._r if factor is None else factor.r, None
        if robust is None and self._rows is None:  # no rows to factor about the reference
            return A, None, self._cov_unscaled_basis
        if robust is not None and not self._robust_rows_kept():
            return (A, None, robust) if factor is None else (rows, None, self._robust(True))
        R, cov = self._fitted_rows_factor
        return rows, R, cov

    @cached_property
    def _fitted_rows_factor(self) -> tuple[Tensor, Tensor | None]:
        """R of the whitened fitted rows about the offsets or the reference column (as
        ``_prediction_basis`` takes them) and, robust, the covariance of the coefficients
        on their orthonormal Q: a QR and a robust covariance, once per results object."""
        factor = self._shifted_factor()
        shift = factor.shift if factor is not None else None
        if factor is None and self._reference is not None:
            shift = self._reference()
        fitted, e = self._rows() if shift is None else self._rows(shift)
        Q, R = torch.linalg.qr(fitted, mode="reduced")
        if self.cov_type == "nonrobust":
            return R, None
        with warnings.catch_warnings():  # the covariance warned already, of the same rows
            warnings.simplefilter("ignore", DegenerateWarning)
            return R, self._robust_of_rows(Q, e, None)

    def _robust_rows_kept(self) -> bool:
        """Whether the robust covariance can be taken again from the fitted rows: they are
        kept, and (cluster) the groups' codes too; a cluster covariance from a second pass
        over the blocks has only their counts."""
        if self._rows is None:
            return False
        if self.cov_type != "cluster":
            return True
        return all(len(c) == self.nobs for c in self.cov_kwds["groups"].codes)

    def _warn_off_span(self, rows: Tensor) -> None:
        """NOTE [rows that break the aliasing]: say where new rows leave the relation
        the aliased columns had with the others in training.

        In training an aliased column is a combination of the kept ones, so every solution
        predicts the fitted rows alike; a new row that breaks the relation has no prediction
        the data determine. ``predict`` gives the minimum-norm solution's (statsmodels' pinv,
        scikit-learn), ``get_prediction`` the model without the aliased columns' (R's lm):
        x3 = x1 + 2 x2 in training and a row off it gave 0.98 and 3.05, and `predict
        --interval` a point outside its own interval, silently (a rank-deficiency hunt).
        R warns for it; so does this.
        """
        if self._aliasing is None or rows.ndim != 2:
            return
        keep, gone, C = self._aliasing
        full = rows.to(torch.float64)
        if len(self.param_names) == full.shape[1] + 1:  # the intercept's column
            full = torch.cat([torch.ones_like(full[:, :1]), full], 1)
        C = C.to(full.device)
        off = (full[:, gone] - full[:, keep] @ C).abs()
        size = full[:, gone].abs() + full[:, keep].abs() @ C.abs()
        bad = torch.nonzero((off > 1e-8 * size).any(1)).reshape(-1)
        if bad.numel():
            from .covariance import user_stacklevel

            warnings.warn(
                RankWarning(
                    f"{bad.numel()} of the new rows (the first: row {int(bad[0]) + 1}, counting "
                    f"from 1) break the relation the aliased columns "
                    f"{[self.param_names[j] for j in gone]} had with the others in training: "
                    "their prediction is not determined by the data (predict gives the "
                    "minimum-norm fit's, get_prediction the fit's without the aliased "
                    "columns); drop the aliased columns to choose"
                ),
                stacklevel=user_stacklevel(),
            )

    def _new_rows(self, exog) -> tuple[Tensor, object]:
        """New rows of X, validated as ``predict`` validates them, and their row labels."""
        if self._n_exog is None:  # a design of its own (polyfit: x values)
            return as_tensor(exog).to(torch.float64), None
        d = self._n_exog
        ndim = getattr(exog, "ndim", None)
        ndim = np.ndim(exog) if ndim is None else ndim
        if ndim == 0:  # one value: one row of a one-feature model (statsmodels takes it)
            exog = as_tensor(np.asarray(exog, dtype=np.float64)).reshape(1, 1)
        flat = ndim == 1
        Xm = as_matrix(exog, name="exog", min_features=0, allow_1d=True)
        X = Xm.values
        if flat and d > 1 and X.shape[0] == d:  # one row given as a flat sequence
            X = X.T
        names = self._exog_names
        labels = getattr(exog, "index", None) if flat else None  # one row as a Series
        if names is not None and labels is not None and d > 1 and len(labels) == d:
            labels = [str(v) for v in labels]
            if labels != list(names):  # taken by position before: 1.94 for 0.38 (a hunt)
                raise DataError(
                    f"exog's labels {labels} are not the features the model was fitted on, "
                    f"{names}; select and order them as in the fit"
                )
        if names is not None and Xm.columns is not None and not flat and Xm.columns != names:
            raise DataError(
                f"exog's columns {Xm.columns} are not the features the model was fitted on, "
                f"{names}; select and order the columns as in the fit"
            )
        if X.shape[1] != d:
            raise DataError(
                f"exog has {X.shape[1]} columns, but the model was fitted on {d} features"
                + (f" ({names})" if names else "")
                + "; pass one column per feature, without a constant"
            )
        labels = getattr(exog, "index", None) if Xm.kind == "pandas" else None
        if flat and X.shape[0] == 1 and labels is not None and len(labels) != 1:
            # one row as a Series: its index names the features, not rows (the frame had
            # one identical row per feature, labelled by them; statsmodels' too)
            labels = [getattr(exog, "name", None) or 0]
        return X, labels

    def summary(self, alpha: float = 0.05) -> str:
        """A text table in the spirit of statsmodels' summary (one block per target)."""
        from .summary_table import summary_text

        return summary_text(self, alpha)

    def to_dict(self) -> dict:
        """Plain-Python statistics for JSON (lists, floats; NaN/inf as None)."""
        from .summary_table import results_dict

        return results_dict(self)


@with_fit_threads
def ols(
    X,
    y=None,
    *,
    data=None,
    missing: str = "raise",
    fit_intercept: bool = True,
    sample_weight=None,
    cov_type: str = "nonrobust",
    rcond: float | None = None,
    feature_names: Sequence[str] | None = None,
    target_names: Sequence[str] | None = None,
    use_t: bool | None = None,
    cov_kwds: dict | None = None,
) -> OLSResults:
    """Fit ordinary (or weighted) least squares exactly and return its statistics.

    ``X`` is ``(n, d)`` without a constant column (``d`` may be 0: the intercept-only
    model; a 1-D X is one column); ``y`` is ``(n,)`` or ``(n, k)``; ``sample_weight`` are WLS
    weights (1/variance), one per row or a scalar. Inputs are validated as the estimators
    validate them (numpy, torch, pandas, polars, pyarrow); DataFrame and Series names become
    the parameter and target names unless ``feature_names``/``target_names`` are given.
    Aliased columns (rank below ``rcond``) are reported with a RankWarning and get NaN.
    ``use_t`` (as statsmodels' ``fit(use_t=...)``) picks Student's t (True) or the normal
    (False) for the parameters' p-values and intervals; by default t for
    ``cov_type="nonrobust"``, normal for HC.

    ``X`` may be a formula instead, ``ols("y ~ x1 + C(g)", data=df)``: see
    :mod:`torchlinreg.formula.encoding`. ``missing="drop"`` leaves out the rows with a
    missing value (statsmodels' ``missing="drop"``; ``nobs_dropped`` counts them), the
    default ``"raise"`` refuses them. With pandas input or a formula the statistics are
    labelled by name (:class:`torchlinreg.stats.frames.LabelledResults`).

    Example:
        >>> import torch
        >>> X = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
        >>> res = ols(X, torch.tensor([1.0, 3.1, 4.9, 7.0]))
        >>> round(float(res.rsquared), 4)
        0.9991
    """
    from ..exact.state import fit_exact
    from . import frames

    if isinstance(X, str):  # a formula; ols("y ~ x", df) as statsmodels' smf.ols
        given = {"feature_names": feature_names, "target_names": target_names}
        given["fit_intercept"] = None if fit_intercept is True else fit_intercept
        problem = frames.FormulaProblem(
            X, y if data is None else data, sample_weight, missing, given
        )
        # NOTE [cluster labels of the rows kept]; labels by the table's index, as the rows
        frames.check_aligned(y if data is None else data, groups=(cov_kwds or {}).get("groups"))
        cov_kwds = frames.rows_of_cov_kwds(cov_kwds, problem.positions, problem.table_rows)
        res = ols(problem.X, problem.y, cov_type=cov_type, rcond=rcond, use_t=use_t,
                  cov_kwds=cov_kwds, **problem.kwargs())  # fmt: skip
        return problem.finish(res)
    if missing not in frames.MISSING:
        raise ValueError(f"missing must be one of {frames.MISSING}; got {missing!r}")
    dropped = 0
    groups = (cov_kwds or {}).get("groups")  # cluster labels by X's index too
    frames.check_aligned(
        X, y=y, sample_weight=sample_weight, groups=groups
    )  # NOTE [rows matched by index]
    if missing == "drop":
        keep = frames.complete_rows(X, y, sample_weight)
        if keep is not None:
            cov_kwds = frames.rows_of_cov_kwds(cov_kwds, keep, len(keep))
        X, y, sample_weight, dropped = frames.drop_incomplete(X, y, sample_weight)
    index = frames.row_index(X, y)
    Xm, Ym, w = as_problem(
        X, y, sample_weight, min_features=0 if fit_intercept else 1, allow_1d_x=True
    )
    # float32 input stays float32: the state and the statistics convert it block by block
    X = Xm.values
    Y = Ym.values.to(device=X.device)
    w = None if w is None else w.to(device=X.device, dtype=torch.float64)
    feature_names = _names(feature_names, Xm.columns, X.shape[1], "feature_names")
    target_names = _names(target_names, Ym.columns, Y.shape[1], "target_names")
    state, solution = fit_exact(
        X,
        Y,
        sample_weight=w,
        fit_intercept=fit_intercept,
        rcond=rcond,
        feature_names=feature_names,
    )
    res = OLSResults.from_fit(
        X,
        # statsmodels' convention: a y of one column is one 1-D target, whatever its shape
        Y[:, 0] if Y.shape[1] == 1 else Y,
        w,
        fit_intercept,
        state,
        solution,
        cov_type=cov_type,
        feature_names=feature_names,
        target_names=target_names,
        use_t=use_t,
        cov_kwds=cov_kwds,
    )
    res.nobs_dropped = dropped
    if not fit_intercept and frames.spans_the_constant(X):  # NOTE [a constant in the columns]
        frames.count_the_constant(res)
    return res if index is None else frames.label(res, row_index=index)


def _names(given, found, count: int, what: str) -> list[str] | None:
    """Names given by the caller, else the data's own (DataFrame columns, a Series name)."""
    names = given if given is not None else found
    if names is None:
        return None
    names = [str(n) for n in names]
    if len(names) != count:
        raise DataError(f"{len(names)} {what} for {count} columns; give one name per column")
    return names


# NOTE [an essentially perfect fit]
# Where the residuals sit at the rounding level of y (y = 2x + 1 in float64, or a level of
# 1e9 with an exact linear relation in its spread), the rss is rounding noise: a
# Householder factor's, the rows' at the float64 coefficients and the exact rational one
# of the stored data disagree by 20-150% (a hunt's cases, |y - s| / |r| ~ 1e15), and the
# standard errors, t and p-values and F inherit it; a QR fit is not refined for it (nothing
# to gain) and a streamed one does not warn about its sums. R's summary.lm says "essentially
# perfect fit: summary may be unreliable" where rss / df < 1e-30 mean(fitted^2); here the
# first variance-based statistic read says so where 0 < rss <= (2 rank eps)^2 y'y, the
# resolution of a Householder factor of p columns (NOTE [sums at risk]), once per fit. An
# rss of exactly 0 is not noise: refined, it is the double-double residuals' at the float64
# coefficients, so the exact rss is 0 too (NIST Wampler1, certified 0; Wampler2's decimal
# y is not exact in binary, its rss is not 0 and it says so). Grouped fits are not refined:
# there an rss of 0 counts too (models/grouped.py).

_EPS = float(np.finfo(np.float64).eps)


def at_rounding_level(rss, uncentered_tss, rank: int):
    """Where ``rss`` is at the rounding level of y (``<= (2 rank eps)^2 y'y``, with y'y
    above 0): NOTE [an essentially perfect fit]. Arrays or tensors alike."""
    return (rss <= (2 * rank * _EPS) ** 2 * uncentered_tss) & (uncentered_tss > 0)


# NOTE [covariance accuracy]
# Refinement gives the coefficients their digits; the covariance (X'WX)^-1 = R^-1 R^-T keeps
# those of its factor: an error of about eps kappa (kappa^2 for a factor from the Gram
# matrix), kappa the condition number of the column-scaled design. On a design with three
# columns one a sum of the others plus 1e-11 noise (kappa ~3e11) the standard errors were
# 6e-7 off without a word. Where 4 eps kappa (the grouped fits' estimate, measured within
# 0.56x of the actual error there) passes ACCURACY_WARNING, the first statistic that reads
# the covariance says so, once. kappa is bounded from the inverse the covariance takes
# anyway (``inverse_and_kappa``): no extra factorisation.
_COV_FACTOR = 4.0


def _warn_covariance(kappa: float, squared: bool) -> None:
    error = (
        _COV_FACTOR * float(torch.finfo(torch.float64).eps) * (kappa * kappa if squared else kappa)
    )
    if not error > ACCURACY_WARNING:
        return
    warnings.warn(
        RankWarning(
            f"the design is nearly collinear (condition number up to {kappa:.1e}): standard "
            f"errors, t and p-values, intervals and covariances may be off by up to "
            f"{min(error, 1.0):.1e} (relative; the coefficients are refined against the rows, "
            "the covariance is not); drop or combine nearly collinear columns, or centre "
            "and rescale them",
            error=error,
            method="qr",
        ),
        stacklevel=user_stacklevel(),
    )
