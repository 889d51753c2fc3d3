"""Tests of linear hypotheses and of nested models, with statsmodels' names and numbers.

``t_test``, ``f_test`` and ``wald_test`` take ``R b = q`` as a string over the parameter
names, a matrix, or ``(R, q)`` (``constraints.py``) and use the results' covariance, robust
when the fit is robust, and its inference degrees of freedom (clusters minus one for
clustered errors). Several targets: the same hypothesis on each target, one test per
target (a last axis, as every statistic of the results). ``compare_f_test``,
``compare_lr_test`` and :func:`anova_lm` compare nested fits of the same rows.

Example:
    >>> import numpy as np
    >>> from torchlinreg.stats.results import ols
    >>> t = np.arange(10.0); x = np.c_[t, t**2]; y = x @ [1.0, 0.1] + np.tile([0.3, -0.3], 5)
    >>> res = ols(x, y, feature_names=["a", "b"])
    >>> bool(np.isclose(res.t_test("a = 0").tvalue, res.tvalues[1]))
    True
    >>> round(float(res.f_test("a = 1, b = 0.1").df_num))
    2
"""

from __future__ import annotations

import warnings
from itertools import pairwise
from typing import Any

import numpy as np
from scipy import stats

from ..errors import DataError, DegenerateWarning, InvalidTestWarning
from .constraints import linear_constraints
from .levels import two_sided

OLSResults = Any  # results.py imports this module: a loose type avoids a cycle


class ContrastResults:
    """One test: ``t`` (``effect``, ``sd``, ``tvalue``), ``F`` (``fvalue``, ``df_num``) or
    ``chi2`` (``statistic``); ``pvalue`` and ``df_denom`` in every case (statsmodels'
    ``ContrastResults`` names). With several targets each array gains a last axis."""

    def __init__(self, kind: str, **values) -> None:
        self.distribution = kind
        for key, value in values.items():
            setattr(self, key, value)

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """Intervals of the effects of a t test: ``(m, 2)`` (or ``(m, 2, k)``)."""
        if self.distribution not in ("t", "norm"):
            raise ValueError("conf_int is defined for t tests only")
        dist = stats.t(self.df_denom) if self.distribution == "t" else stats.norm()
        q = two_sided(dist, alpha)
        return np.stack([self.effect - q * self.sd, self.effect + q * self.sd], axis=1)

    def summary(self) -> str:
        """A short text: the statistic, its p-value and degrees of freedom."""
        if self.distribution in ("t", "norm"):
            head = "t" if self.distribution == "t" else "z"
            rows = [f"{'':6}{'coef':>12}{'std err':>12}{head:>10}{'P>|' + head + '|':>10}"]
            arrays = [np.atleast_1d(a) for a in (self.effect, self.sd, self.tvalue, self.pvalue)]
            # several targets: a block each (only the first target's row was shown before,
            # unlabelled; a several-targets hunt)
            k = arrays[0].shape[1] if arrays[0].ndim == 2 else 1
            names = getattr(self, "target_names", None) or [str(t) for t in range(k)]
            blocks = []
            for t in range(k):
                lines = list(rows) if k == 1 else [f"target {names[t]}", *rows]
                for i in range(arrays[0].shape[0]):
                    cells = [a[i, t] if a.ndim == 2 else a[i] for a in arrays]
                    lines.append(f"c{i:<5}" + "".join(f"{float(c):>12.6g}" for c in cells))
                blocks.append("\n".join(lines))
            return "\n\n".join(blocks)
        name = "F" if self.distribution == "F" else "chi2"
        return f"<{name} test: {name}={self.statistic}, p={self.pvalue}, df_denom={self.df_denom}>"

    def __repr__(self) -> str:
        return self.summary()


def _target_params_cov(res: OLSResults, R: np.ndarray):
    """Parameters ``(p, k)``, covariance ``(p, p, k)`` and ``R`` restricted to the estimable
    parameters; a constraint on an aliased parameter is an error."""
    aliased = [a for a in res.aliased if np.any(R[:, a] != 0)]
    if aliased:
        names = ", ".join(res.param_names[a] for a in aliased)
        raise DataError(
            f"the hypothesis involves aliased parameters ({names}), which the data cannot "
            "estimate; drop them from the hypothesis or the collinear columns from the fit"
        )
    keep = [j for j in range(len(res.param_names)) if j not in res.aliased]
    return res._params[keep], res._cov[np.ix_(keep, keep)], R[:, keep]


def _squeeze(res: OLSResults, a: np.ndarray):
    return a[..., 0][()] if res._squeeze else a


def t_test(res: OLSResults, r_matrix, use_t: bool | None = None) -> ContrastResults:
    """t test of each row of ``R b = q`` (statsmodels' ``t_test``)."""
    R, q = linear_constraints(r_matrix, res.param_names)
    params, cov, Rk = _target_params_cov(res, R)
    effect = Rk @ params  # (m, k)
    var = np.einsum("ia,abk,ib->ik", Rk, cov, Rk)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(var)
        tvalue = (effect - q[:, None]) / sd
    use_t = res.use_t if use_t is None else use_t
    df = res.df_resid_inference
    dist = stats.t(df) if use_t else stats.norm()
    kind = "t" if use_t else "norm"
    return ContrastResults(
        kind,
        effect=_squeeze(res, effect),
        sd=_squeeze(res, sd),
        tvalue=_squeeze(res, tvalue),
        statistic=_squeeze(res, tvalue),
        pvalue=_squeeze(res, 2 * dist.sf(np.abs(tvalue))),
        df_denom=df,
        target_names=None if res._squeeze else [str(t) for t in res.target_names],
    )


# NOTE [constraints at one scale]
# pinv and matrix_rank cut singular values relative to the largest, so the covariance of
# constraints on parameters of different sizes (a column in units of 1e-8 beside one in
# 1e8: a change of units, which no test statistic notices) read as rank 1: f_test of
# "AIRFLOW = WATERTEMP = 0" on stackloss so scaled gave F = 28.2 on 1 df (p 5.8e-5)
# against 74.1 on 2 (p 4e-9), HC1's fvalue 16.4 against 66.3, under a warning about
# "fewer clusters than constraints"; an intercept with slopes of columns near 1e6..1e9:
# F 50-100% off. The constraints are taken in units of their standard deviations first
# (the covariance as a correlation matrix, the same W in exact arithmetic): the rank cut
# then sees collinearity, not units, and W is more accurate too (Longley's F of all
# slopes, cond 1e10: 4.8e-13 from the ess-based F, was 1.3e-9, as statsmodels' 1.4e-9).
# A covariance that is singular after all (fewer clusters than constraints) keeps
# statsmodels' W, the raw pinv's.


def wald_statistics(params, cov, R, q) -> tuple[np.ndarray, np.ndarray]:
    """``(W, J)`` per target: ``W = (Rb - q)' pinv(R V R') (Rb - q)`` and ``J`` the rank of
    ``R V R'`` (statsmodels' rule: a singular covariance of the constraints, e.g. fewer
    clusters than constraints, counts only its rank, with a warning)."""
    k = params.shape[1]
    W, J = np.full(k, np.nan), np.full(k, float(R.shape[0]))
    for t in range(k):
        v = R @ cov[..., t] @ R.T
        if not np.isfinite(v).all():  # e.g. HC3 with a leverage-1 row
            continue
        d = R @ params[:, t] - q
        # NOTE [constraints at one scale]: as a correlation matrix, whatever the units
        sd = np.sqrt(np.clip(np.diagonal(v), 0.0, None))
        sd = np.where(sd > 0, sd, 1.0)
        vs, ds = v / np.outer(sd, sd), d / sd
        W[t] = ds @ np.linalg.pinv(vs) @ ds
        rank = np.linalg.matrix_rank(vs)
        if rank < R.shape[0]:
            # a generalised inverse depends on the units: statsmodels' (the raw pinv)
            W[t] = d @ np.linalg.pinv(v) @ d
            warnings.warn(
                f"the covariance of the {R.shape[0]} constraints has rank {rank} (e.g. fewer "
                f"clusters than constraints); the test counts {rank} degrees of freedom",
                DegenerateWarning,
                stacklevel=3,
            )
            J[t] = rank
    return W, J


def wald_test(
    res: OLSResults, r_matrix, use_f: bool | None = None, scalar: bool = True
) -> ContrastResults:
    """Joint Wald test of ``R b = q``: F (``use_f``, default the results' ``use_t``) with
    ``(J, df_resid_inference)`` degrees of freedom, else chi2 with ``J``."""
    del scalar  # statistics are always numpy scalars (one target) or arrays, as statsmodels'
    R, q = linear_constraints(r_matrix, res.param_names)
    params, cov, Rk = _target_params_cov(res, R)
    W, J = wald_statistics(params, cov, Rk, q)
    use_f = res.use_t if use_f is None else use_f
    if use_f:
        df = res.df_resid_inference
        F = W / J
        return ContrastResults(
            "F",
            fvalue=_squeeze(res, F),
            statistic=_squeeze(res, F),
            pvalue=_squeeze(res, stats.f.sf(F, J, df)),
            df_num=_squeeze(res, J),
            df_denom=df,
        )
    return ContrastResults(
        "chi2",
        statistic=_squeeze(res, W),
        pvalue=_squeeze(res, stats.chi2.sf(W, J)),
        df_denom=_squeeze(res, J),
    )


def _check_nested(full: OLSResults, restricted: OLSResults) -> float:
    if full.nobs != restricted.nobs:
        raise DataError(
            f"the models were fitted on {full.nobs} and {restricted.nobs} rows; nested "
            "models must be fitted on the same rows"
        )
    # the same rows, targets and weights leave y'Wy the same to rounding: an OLS fit
    # against a WLS one of the same rows gave F = 21215, p = 0 (statsmodels' too), silently
    a = np.asarray(full._sums["uncentered_tss"], dtype=np.float64)
    b = np.asarray(restricted._sums["uncentered_tss"], dtype=np.float64)
    if a.shape != b.shape or not np.allclose(a, b, rtol=1e-9, atol=0):
        raise DataError(
            "the models were not fitted on the same targets and weights (their sums y'Wy "
            f"differ: {np.ravel(a)[:3]} and {np.ravel(b)[:3]}); fit both on the same rows, "
            "targets and sample_weight"
        )
    if full.cov_type != "nonrobust" or restricted.cov_type != "nonrobust":
        warnings.warn(
            "F and LR tests between models assume homoscedastic, uncorrelated errors; with a "
            "robust covariance they are likely invalid (use wald_test on the larger model)",
            InvalidTestWarning,
            stacklevel=3,
        )
    return restricted.df_resid - full.df_resid


def _check_larger(full: OLSResults, restricted: OLSResults, df_diff: float) -> None:
    if not df_diff > 0:  # statsmodels gives df_diff -1 and p NaN
        raise DataError(
            f"the restricted model has {restricted.df_model:g} parameters beside the "
            f"constant and the full one {full.df_model:g}: call it on the larger model, "
            "larger.compare_f_test(smaller)"
        )


def compare_f_test(full: OLSResults, restricted: OLSResults):
    """``(F, p-value, df_diff)`` for the restricted model nested in ``full``."""
    df_diff = _check_nested(full, restricted)
    _check_larger(full, restricted, df_diff)
    ssr_f, ssr_r = full._sums["rss"], restricted._sums["rss"]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ssr_r - ssr_f) / df_diff / ssr_f * full.df_resid
    p = stats.f.sf(f, df_diff, full.df_resid)
    return _squeeze(full, f), _squeeze(full, p), df_diff


def compare_lr_test(full: OLSResults, restricted: OLSResults):
    """``(LR, p-value, df_diff)``: ``-2 (llf_restricted - llf_full)`` against chi2."""
    df_diff = _check_nested(full, restricted)
    _check_larger(full, restricted, df_diff)
    lr = -2.0 * (np.asarray(restricted.llf) - np.asarray(full.llf))
    return lr, stats.chi2.sf(lr, df_diff), df_diff


class AnovaTable:
    """The table of :func:`anova_lm`: columns by name (numpy arrays, one row per model;
    several targets add a last axis); ``to_frame()`` gives a pandas DataFrame."""

    columns = ("df_resid", "ssr", "df_diff", "ss_diff", "F", "Pr(>F)")

    def __init__(self, values: dict[str, np.ndarray], target_names: list[str] | None) -> None:
        self._values = values
        self.target_names = target_names

    def __getitem__(self, name: str) -> np.ndarray:
        return self._values[name]

    def to_frame(self, target: int = 0):
        """One target's table as a pandas DataFrame (statsmodels' ``anova_lm`` layout)."""
        import pandas as pd

        cols = {c: (v if v.ndim == 1 else v[:, target]) for c, v in self._values.items()}
        return pd.DataFrame(cols)

    def __str__(self) -> str:
        blocks = []
        for t in range(1 if self.target_names is None else len(self.target_names)):
            lines = ["" if self.target_names is None else f"target {self.target_names[t]}"]
            lines.append(f"{'':4}" + "".join(f"{c:>14}" for c in self.columns))
            for i in range(len(self._values["ssr"])):
                row = [
                    self._values[c] if self._values[c].ndim == 1 else self._values[c][:, t]
                    for c in self.columns
                ]
                lines.append(f"{i:<4}" + "".join(f"{r[i]:>14.6g}" for r in row))
            blocks.append("\n".join(line for line in lines if line))
        return "\n\n".join(blocks)

    __repr__ = __str__


def anova_lm(*models: OLSResults, scale: float | None = None, typ=None) -> AnovaTable:
    """Compare nested fits, smallest first, as R's ``anova(m1, m2, ...)``.

    Row ``i`` tests model ``i`` against model ``i - 1``: ``F = ss_diff / df_diff / scale``
    with ``scale`` the largest (last) model's unless given. p-values use ``(df_diff,
    df_resid of the last model)`` as R does; statsmodels' ``anova_lm`` takes each row's
    own ``df_resid`` instead, which differs from three models on (for two it is the same).

    Example:
        >>> import numpy as np
        >>> from torchlinreg.stats.results import ols
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(30, 2))
        >>> y = X[:, 0] + rng.normal(size=30)
        >>> table = anova_lm(ols(X[:, :1], y), ols(X, y))
        >>> table["df_diff"].tolist()
        [0.0, 1.0]
    """
    if typ is not None:  # statsmodels' one-model tables (typ=1, 2, 3): a TypeError before
        raise ValueError(
            f"anova_lm(model, typ={typ!r}) (a table of one model's terms, statsmodels' "
            "typ=1/2/3) is not supported; compare nested fits instead: anova_lm(smaller, "
            "larger), one fit per set of terms"
        )
    if len(models) < 2:
        raise ValueError("anova_lm compares two or more nested models; pass them smallest first")
    for small, big in pairwise(models):
        _check_nested(big, small)
    df_resid = np.array([m.df_resid for m in models])
    if np.any(np.diff(df_resid) > 0):
        raise ValueError(
            "models must come in order of increasing size (decreasing df_resid); pass the "
            "most restricted model first"
        )
    ssr = np.stack([np.asarray(m._sums["rss"], dtype=np.float64) for m in models])  # (M, k)
    last = models[-1]
    s = last._scale if scale is None else np.full(ssr.shape[1], float(scale))
    df_diff = np.r_[0.0, -np.diff(df_resid)][:, None]  # statsmodels: 0 on the first row
    ss_diff = np.vstack([np.full((1, ssr.shape[1]), np.nan), -np.diff(ssr, axis=0)])
    with np.errstate(divide="ignore", invalid="ignore"):
        f = ss_diff / df_diff / s[None, :]
    p = stats.f.sf(f, df_diff, last.df_resid)
    p[np.isnan(f)] = np.nan
    cols = {
        "df_resid": df_resid,
        "ssr": ssr,
        "df_diff": df_diff[:, 0],
        "ss_diff": ss_diff,
        "F": f,
        "Pr(>F)": p,
    }
    if last._squeeze:
        cols = {c: (v[:, 0] if v.ndim == 2 else v) for c, v in cols.items()}
    return AnovaTable(cols, None if last._squeeze else list(last.target_names))
