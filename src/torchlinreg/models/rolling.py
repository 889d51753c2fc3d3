"""Rolling and expanding window regressions: ``rolling_ols``, statsmodels' ``RollingOLS``.

Each window's centred moments come from NOTE [rolling moments] (``windows.py``); the
parameters from a Cholesky factor of the window's correlation matrix (columns scaled to
unit length, so only the correlation's condition number counts), the intercept as
``mean(y) - mean(x) b``. Windows whose columns are collinear (a column constant within
the window, a combination of others) are NaN, and one warning counts them; windows near
that, where the moments' route may have lost digits, are counted in a warning too.

Example:
    >>> import numpy as np
    >>> x = np.arange(6.0); y = 2 * x + np.array([0.0, 0.1, -0.1, 0.0, 0.2, -0.2])
    >>> res = rolling_ols(x, y, window=4)
    >>> np.round(res.params[:, 1], 3).tolist()
    [nan, nan, nan, 1.98, 2.04, 1.99]
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from ..data import as_problem
from ..errors import DataError, RankWarning
from ..exact.threads import fit_threads, with_fit_threads
from ..stats import results as single
from .batchstats import BatchStatistics
from .momentsolve import (
    _SMALL,
    _warn,
    no_fit_where,
    solve_batch,
    solve_packed,
    warn_values_out_of_range,
)
from .rollinghc import KINDS, hc_cov, window_rows
from .segments import encode_groups
from .windows import Moments, WindowLayout

_CHUNK = 1 << 22  # elements of one gather of window rows
_EPS64 = torch.finfo(torch.float64).eps
_ERR = (
    "err_params",
    "err_params_se",
    "err_bse",
    "err_ssr",
    "err_r2",
)  # momentsolve.error_bounds, per window


class RollingOLSResults(BatchStatistics):
    """One fit per window end (row), statsmodels ``RollingRegressionResults`` names.

    Row ``t`` of every statistic is the fit of the window ending at row ``t`` (NaN before
    the first full window, or before ``min_nobs`` rows when expanding). ``groups`` holds
    each row's group label (None without groups).

    Example:
        >>> import numpy as np
        >>> res = rolling_ols(np.arange(5.0), np.arange(5.0) ** 2, window=3)
        >>> res.rsquared.round(4).tolist()
        [nan, nan, 0.9231, 0.9796, 0.9908]
    """

    def __init__(self, groups, row_labels, full_cov, *, cov_unscaled, **kwargs) -> None:
        # only the diagonal of each window's (X'WX)^-1 is kept (what bse needs): the base
        # class gets an empty matrix per window, and normalized_cov_params recomputes the
        # (n, p, p) matrices when asked (NOTE [rolling moments])
        super().__init__(cov_unscaled=np.empty((len(cov_unscaled), 0, 0)), **kwargs)
        del self.normalized_cov_params
        bad = np.isnan(self.rank)
        cov_unscaled[bad] = np.nan  # in place: the array is ours (_fit_windows made it)
        self._cov_diag = cov_unscaled
        self._full_cov = full_cov
        self._hc_full: dict = {}
        self._hc_diag: dict = {}
        self._at_risk = 0  # windows the fit warned of (NOTE [HC of windows at risk])
        self.groups = groups
        self.row_labels = row_labels

    @cached_property
    def normalized_cov_params(self) -> np.ndarray:
        """``(X'WX)^-1`` of every window ``(n, p, p)``, computed again from the rows."""
        return np.where(np.isnan(self.rank)[:, None, None], np.nan, self._full_cov())

    @cached_property
    def bse(self) -> np.ndarray:
        """Standard errors ``(n, p)`` of ``cov_type``, from the covariances' diagonals."""
        if self.cov_type != "nonrobust":
            return self._hc_se(self.cov_type)
        with np.errstate(invalid="ignore"):  # inf times 0: NOTE [values out of range]
            return np.sqrt(self._cov_diag * self.scale[:, None])

    def _hc(self, kind: str) -> np.ndarray:
        """HC covariances ``(n, p, p)`` of every window, from the windows' rows."""
        if kind not in self._hc_full:
            self._warn_hc(kind)
            self._hc_full[kind] = self._nan_bad(self._full_cov(kind))
        return self._hc_full[kind]

    # NOTE [HC of windows at risk]
    # The bounds a nearly collinear window's warning states are the moments' (NOTE
    # [moments' error]): its HC standard errors square residuals that carry the
    # parameters' error, and went 20x past the stated bound (1.6e6 offsets, two columns
    # 5e-5 apart: HC0 4e-4 off where the warning said 2e-5). No bound is claimed for them.

    def _warn_hc(self, kind: str) -> None:
        if self._at_risk and kind not in self._hc_diag and kind not in self._hc_full:
            warnings.warn(
                RankWarning(
                    f"the {self._at_risk} nearly collinear windows' {kind} standard errors "
                    "are not covered by the bounds stated for them: they square residuals "
                    "that carry the parameters' error and may be off by any amount; use "
                    "cov_type='nonrobust' there, or fit those windows one at a time"
                ),
                stacklevel=4,
            )

    def _hc_se(self, kind: str) -> np.ndarray:
        if kind not in self._hc_diag:
            self._warn_hc(kind)
            # a diagonal of the sandwich is a sum of squares: below 0 only by rounding
            v = self._nan_bad(self._full_cov(kind, diag=True))
            self._hc_diag[kind] = np.sqrt(np.where(v < 0, 0.0, v))
        return self._hc_diag[kind]

    def _nan_bad(self, a: np.ndarray) -> np.ndarray:
        a[np.isnan(self.rank)] = np.nan
        return a

    @property
    def HC0_se(self) -> np.ndarray:
        """White's standard errors (statsmodels' rolling ``cov_type="HC0"``)."""
        return self._hc_se("HC0")

    @property
    def HC1_se(self) -> np.ndarray:
        """HC0 times ``sqrt(nobs / df_resid)``."""
        return self._hc_se("HC1")

    @property
    def HC2_se(self) -> np.ndarray:
        """Each row's squared residual over ``1 - h`` (its leverage in the window)."""
        return self._hc_se("HC2")

    @property
    def HC3_se(self) -> np.ndarray:
        """Each row's squared residual over ``(1 - h)^2``."""
        return self._hc_se("HC3")

    def path_columns(self) -> dict[str, np.ndarray]:
        """The coefficient paths as columns: nobs, each parameter, ``se_`` of each, R2."""
        cols = {"nobs": self.nobs}
        for j, name in enumerate(self.param_names):
            cols[name] = self.params[:, j]
        for j, name in enumerate(self.param_names):
            cols[f"se_{name}"] = self.bse[:, j]
        cols["rsquared"] = self.rsquared
        return cols

    def to_frame(self):
        """Coefficient paths: one row per window end (group, nobs, params, bse, R2)."""
        import pandas as pd

        cols = {} if self.groups is None else {"group": self.groups}
        return pd.DataFrame({**cols, **self.path_columns()}, index=self.row_labels)


@with_fit_threads
def rolling_ols(
    X,
    y,
    *,
    window: int | None = None,
    min_nobs: int | None = None,
    expanding: bool = False,
    groups=None,
    fit_intercept: bool = True,
    sample_weight=None,
    feature_names: Sequence[str] | None = None,
    use_t: bool = False,
    cov_type: str = "nonrobust",
) -> RollingOLSResults:
    """OLS (WLS with ``sample_weight``) over every window of ``window`` consecutive rows.

    As statsmodels' ``RollingOLS(y, add_constant(X), window, min_nobs=, expanding=)``:
    the window ending at row ``t`` holds rows ``t - window + 1 .. t``; before the first full
    window the results are NaN, unless ``expanding`` (then windows grow from the first row
    and start at ``min_nobs`` rows, by default the number of parameters; ``window=None``
    with ``expanding`` never drops a row). With ``groups`` (one label per row) windows
    run over each group's rows in their order and never cross groups. p-values use the
    normal distribution unless ``use_t`` (statsmodels' default). Rows must be in time order.
    ``cov_type`` ``"HC0"`` (statsmodels' ``"HCCM"`` too) to ``"HC3"`` gives robust standard
    errors from each window's rows (``rollinghc.py``); ``HC0_se`` .. ``HC3_se`` are there
    whatever ``cov_type``.

    Example:
        >>> import numpy as np
        >>> res = rolling_ols(np.arange(6.0), np.arange(6.0) ** 2, window=None, expanding=True)
        >>> res.params[:, 1].round(3).tolist()
        [nan, 1.0, 2.0, 3.0, 4.0, 5.0]
    """
    index = getattr(X, "index", None)  # a DataFrame's row labels label the windows
    from ..stats.frames import check_aligned

    check_aligned(X, y=y, sample_weight=sample_weight, groups=groups)  # as statsmodels
    cov_type = "HC0" if cov_type == "HCCM" else cov_type
    if cov_type not in ("nonrobust", *KINDS):
        raise DataError(f"cov_type must be 'nonrobust' or one of {KINDS}; got {cov_type!r}")
    Xm, Ym, w = as_problem(
        X, y, sample_weight, min_features=0 if fit_intercept else 1, allow_1d_x=True,
        allow_all_zero=True,
    )  # fmt: skip
    if Ym.values.shape[1] != 1:
        raise DataError(f"rolling fits take one target; y has {Ym.values.shape[1]} columns")
    X = Xm.values.to(torch.float64)
    yt = Ym.values[:, 0].to(device=X.device, dtype=torch.float64)
    n, d = X.shape
    p = d + fit_intercept
    window = _check_window(window, min_nobs, expanding, n, p)
    min_nobs = p if min_nobs is None else int(min_nobs)
    if groups is None:
        labels, codes = None, torch.zeros(n, dtype=torch.int64, device=X.device)
    else:
        names_g, c = encode_groups(groups, n)
        labels, codes = names_g[c], torch.as_tensor(c, device=X.device)
    wt = torch.ones_like(yt) if w is None else w.to(device=X.device, dtype=torch.float64)
    Z = torch.cat([X, yt[:, None]], dim=1)
    layout = WindowLayout(codes, window)
    need = min_nobs if expanding else window
    fit = _fit_windows(layout, Z, wt, need, fit_intercept, cov="diag")
    if w is None:
        sum_log_w = np.zeros(n)
    else:  # WLS's llf adds 0.5 * sum(log w) over the window
        # a zero weight makes the sum -inf (statsmodels' WLS): counted apart, not summed
        zero = wt == 0
        logw = torch.stack([torch.log(torch.where(zero, 1.0, wt)), zero.to(wt.dtype)], 1)
        sums = np.zeros((n, 2))
        for rows, m in layout.chunks(logw, torch.ones_like(wt)):
            sums[_np(rows).astype(np.int64)] = _np(m.mean * m.w[:, None])
        sum_log_w = np.where(sums[:, 1] > 0.5, -np.inf, sums[:, 0])
        # fewer rows of nonzero weight than parameters: no fit, whatever the pivots say
        no_fit_where(fit, (fit["count"] >= need) & (fit["count"] - np.rint(sums[:, 1]) < p))
    err = {k[4:]: torch.as_tensor(fit.pop(k)) for k in _ERR}
    at_risk = fit.pop("at_risk")
    names = single._names(feature_names, Xm.columns, d, "feature_names")
    names = names or [f"x{j + 1}" for j in range(d)]
    warn_values_out_of_range(Z, [*names, "y"], "windows")
    _warn(fit.pop("aliased"), at_risk, fit.pop("low"), "windows", err, fit["bad"])

    def full_cov(kind: str = "nonrobust", diag: bool = False) -> np.ndarray:
        with fit_threads():
            if kind == "nonrobust":
                return _fit_windows(layout, Z, wt, need, fit_intercept, cov="full")["cov"]
            return _np(hc_cov(layout, Z, wt, need, fit_intercept, kind, diag))

    res = RollingOLSResults(
        labels,
        index,
        full_cov,
        params=fit["params"],
        cov_unscaled=fit["cov"],
        ssr=fit["ssr"],
        centered_tss=fit["ctss"],
        uncentered_tss=fit["utss"],
        nobs=np.where(fit["bad"], 0.0, fit["count"]),
        sum_log_w=sum_log_w,
        bad=fit["bad"],
        k_constant=int(fit_intercept),
        param_names=(["const"] if fit_intercept else []) + names,
        use_t=use_t,
        cov_type=cov_type,
    )
    res._at_risk = int(np.asarray(at_risk).sum())
    return res


def _fit_windows(
    layout: WindowLayout, Z: Tensor, w: Tensor, need: int, fit_intercept: bool, cov: str
) -> dict:
    """Every window's fit, a run of window ends at a time (NOTE [rolling moments]).

    Only the outputs are one row per window: ``cov="diag"`` keeps the diagonal of each
    unscaled covariance, ``cov="full"`` the ``(n, p, p)`` matrices. Runs go in parallel
    over the fit's threads, each run's kernels on one thread (NOTE [rolling threads]).
    """
    n, q = Z.shape
    p = q - 1 + fit_intercept
    out = {key: np.zeros(n) for key in ("ssr", "ctss", "utss", "count", "low", *_ERR)}
    out["params"] = np.zeros((n, p))
    out["cov"] = np.zeros((n, p) if cov == "diag" else (n, p, p))
    for key in ("bad", "aliased", "at_risk"):
        out[key] = np.zeros(n, dtype=bool)
    risky: list = []
    if n == 0:
        return out
    prep = layout.prepare(Z, w)
    # only the bounds read them, and only the diagonal fit states bounds
    offsets = _offset_sums(layout, Z, prep.ref, w) if cov == "diag" else None

    def one(k: int) -> None:
        got = layout.run(prep, k)
        if got is not None:
            _fit_run(layout, *got, need, fit_intercept, cov, out, risky, offsets)

    before = torch.get_num_threads()
    workers = _workers() if Z.device.type == "cpu" else 1
    torch.set_num_threads(1)
    try:
        if workers > 1 and prep.runs > 1:
            with ThreadPoolExecutor(min(workers, prep.runs)) as pool:
                list(pool.map(one, range(prep.runs)))
        else:
            for k in range(prep.runs):
                one(k)
    finally:
        torch.set_num_threads(before)
    if risky:
        ends, count, centre, b = (torch.cat(parts) for parts in zip(*risky, strict=True))
        out["ssr"][_np(ends).astype(np.int64)] = _np(
            _exact_ssr(Z, w, layout, ends, count, centre, b)
        )
    return out


def _workers() -> int:
    """Threads for the runs: the fit's intra-op threads (``fit_threads``: the idle cores).

    NOTE [rolling threads]
    A run is about a hundred small kernels (a few hundred thousand numbers each). Over
    intra-op threads each kernel would end at a barrier, and beside a busy process one
    thread misses its time slice at every barrier (NOTE [threads on shared cores]: 200,000
    rows took 3 to 49 s with two intra-op threads under load, 0.7 s with one). So kernels
    run on one thread, and runs go in parallel on Python threads (torch drops the GIL in
    its kernels): no barrier between them, and a thread that lost its core holds up only
    its own run. Runs write disjoint rows, so the answer does not depend on the order.
    """
    return torch.get_num_threads()


def _offset_sums(layout: WindowLayout, Z: Tensor, ref: Tensor, w: Tensor) -> Tensor:
    """Per window end (rows in order), each column's sum of squares about its group's
    reference row over the window (NOTE [a far row] in momentsolve.py), rows of weight
    zero left out (NOTE [rows of weight zero] in windows.py): ``(n, q)``."""
    one = ref.shape[1] == 1  # one group: rows already in order
    dead = not bool((w > 0).all())
    if one:
        S = Z - ref.T  # row-major all through: a transpose of the rows cost more than this
        if dead:
            S.mul_((w > 0).to(S.dtype)[:, None])
    else:
        S = Z[layout.order] - torch.index_select(ref, 1, layout.codes[layout.order]).T
        if dead:
            S.mul_((w[layout.order] > 0).to(S.dtype)[:, None])
    S.mul_(S)
    torch.cumsum(S, 0, out=S)
    n, W = S.shape[0], layout.window
    sums = S.clone()
    if one:  # the running sum before row i's window is the one at i - W
        if n > W:
            sums[W:] -= S[: n - W]
    else:
        start = torch.arange(n, device=Z.device) - layout.count  # -1: none before
        sums -= torch.where((start >= 0)[:, None], S[start.clamp(min=0)], 0.0)
    # the running sums' own rounding (eps of the total so far) kept on the safe side
    sums.clamp_(min=0).add_(S, alpha=4 * _EPS64)
    return sums if one else torch.empty_like(sums).index_copy_(0, layout.order, sums)


def _fit_run(layout, rows, pk, need, fit_intercept, cov, out, risky, offsets=None) -> None:
    """Solve one run's windows and write them into ``out`` (rows no other run writes)."""
    q = pk.mean.shape[0]
    off = None if offsets is None else offsets[rows]
    if cov == "diag" and 0 < q - 1 <= _SMALL:  # feature-major all through
        M = layout.tri.square(pk.T)
        fit = solve_packed(pk.w, pk.mean, M, pk.raw, pk.count >= need, fit_intercept, pk.count, off)
        mom = Moments(pk.w, pk.mean.T, None, pk.count, None)
    else:
        mom = Moments(*pk.unpack(layout.tri))
        fit = solve_batch(mom, mom.count >= need, fit_intercept, cov=cov, offsets=off)
    r = _np(rows).astype(np.int64)
    if r.size and r[-1] - r[0] == r.size - 1 and bool((np.diff(r) == 1).all()):
        r = slice(int(r[0]), int(r[-1]) + 1)  # rows in order (no groups): no scatter
    for key in ("params", "cov", "ssr", "ctss", "utss", "low"):
        out[key][r] = _np(fit[key])
    for key in _ERR:
        out[key][r] = _np(fit["err"][key[4:]])
    for key in ("bad", "aliased", "at_risk"):
        out[key][r] = _np(fit[key]).astype(bool)
    out["count"][r] = _np(mom.count)
    if bool(fit["risk"].any()):
        k = fit["risk"]
        centre = mom.mean[k] if fit_intercept else torch.zeros_like(mom.mean[k])
        risky.append((rows[k], mom.count[k], centre, fit["b"][k]))


def _exact_ssr(
    Z: Tensor,
    w: Tensor,
    layout: WindowLayout,
    ends: Tensor,
    count: Tensor,
    centre: Tensor,
    b: Tensor,
) -> Tensor:
    """Weighted residual sums of squares of the windows ending at rows ``ends``, from rows."""
    d = Z.shape[1] - 1
    out = []
    step = max(1, _CHUNK // max(1, int(count.max()) * (d + 1)))
    for lo in range(0, ends.numel(), step):
        sl = slice(lo, lo + step)
        idx, inside = window_rows(layout, ends[sl], count[sl])
        D = Z[idx] - centre[sl][:, None, :]
        e = D[..., d] - (D[..., :d] * b[sl][:, None, :]).sum(-1)
        out.append((w[idx] * e * e * inside).sum(1))
    return torch.cat(out)


def _check_window(window, min_nobs, expanding, n, p) -> int:
    if window is None:
        if not expanding:
            raise DataError("rolling_ols needs window=W, or expanding=True for growing windows")
        return max(n, 1)
    window = int(window)
    if window < p + 1 and not expanding:
        raise DataError(f"window={window} is too short for {p} parameters; use at least {p + 1}")
    if min_nobs is not None and not p <= int(min_nobs) <= window:
        raise DataError(f"min_nobs={min_nobs} must be between {p} (the parameters) and {window}")
    return window


def _np(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()
