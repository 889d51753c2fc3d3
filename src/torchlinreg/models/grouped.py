"""One least-squares fit per group, all groups in one batched computation: ``ols(groups=)``.

See NOTE [grouped fit] in ``groupfit.py`` for how the fit keeps its digits.

Example:
    >>> import numpy as np
    >>> x = np.arange(8.0); g = np.repeat(["a", "b"], 4)
    >>> y = np.where(g == "a", 1 + 2 * x, 3 - x) + np.tile([0.1, -0.1], 4)
    >>> res = ols(x, y, groups=g)
    >>> res.groups.tolist(), np.round(res.params[:, 1], 2).tolist()
    (['a', 'b'], [1.96, -1.04])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ..data import as_problem, check_finite
from ..errors import DataError, DegenerateWarning, RankWarning
from ..exact.solve import ACCURACY_WARNING
from ..exact.threads import with_fit_threads
from ..stats import results as single
from .grouped_results import GroupedOLSResults
from .groupfit import GroupedFit, fit_groups
from .segments import Segments, encode_groups_on

_NAMED = 5  # group labels named in a warning
_CHUNK_VALUES = 1 << 20  # values (rows x columns) of one chunk of groups: 8 MiB

# NOTE [no scan for NaN]
# The rows are not scanned for NaN and infinity before the fit: that scan read all of X
# once more (57 ms of 1.0 s at 100 groups x 100,000 rows x 20). Every row enters its
# group's sums and X'y, weighted or not (a zero weight or a zero x times infinity is NaN),
# so a non-finite value makes them non-finite; only then are the rows scanned, and the
# error names the first such row and column as before. Sums that overflowed from finite
# data pass the scan, and the fit goes on to the checks that handle them.


def ols(X, y=None, *, groups=None, **kwargs):
    """:func:`torchlinreg.stats.results.ols`, or with ``groups=`` one fit per group.

    Without ``groups`` this is the single fit (every keyword as there). With ``groups``
    (one label per row, or the name of a column of a DataFrame ``X``) it returns a
    :class:`GroupedOLSResults` whose statistics carry a leading group axis; see
    :func:`grouped_ols`. A formula works too: ``ols("y ~ x1 + x2", data=df, groups="g")``
    (``groups`` a column of ``df`` or one label per row of it).

    Example:
        >>> import numpy as np
        >>> res = ols(np.arange(6.0), np.arange(6.0) ** 2, groups=[0, 0, 0, 1, 1, 1])
        >>> res.params.round(6).tolist()
        [[-0.333333, 2.0], [-15.333333, 8.0]]
    """
    if groups is None:
        return single.ols(X, y, **kwargs)
    if isinstance(X, str):
        return _grouped_formula(X, y, groups, **kwargs)
    return grouped_ols(X, y, groups=groups, **kwargs)


def _grouped_formula(formula: str, y, groups, *, sample_weight=None, missing="raise", **kw):
    """``ols("y ~ x", data=df, groups="g")``: the formula's design, one fit per group."""
    from ..stats.frames import FormulaProblem

    table = kw.pop("data", None)
    table = y if table is None else table  # ols(formula, df) as statsmodels' smf.ols
    problem = FormulaProblem(formula, table, sample_weight, missing, {})
    labels = table[groups] if isinstance(groups, str) else groups
    from ..stats.frames import check_aligned

    check_aligned(table, groups=labels)  # NOTE [rows matched by index]: taken by position
    labels = np.asarray(labels)[problem.positions]
    enc = problem.encoding
    if len(enc.targets) != 1:
        raise DataError("a grouped fit takes one target; fit each target's formula apart")
    res = grouped_ols(
        problem.X, problem.y, groups=labels, fit_intercept=enc.fit_intercept,
        sample_weight=problem.sample_weight, feature_names=enc.features, **kw,
    )  # fmt: skip
    res.nobs_dropped = problem.dropped
    if not enc.fit_intercept and enc.constant_columns:  # NOTE [an implicit constant]
        res._count_implicit_constant(_centred_tss(problem.y, problem.sample_weight, labels, res))
    return res


def _centred_tss(y, w, labels, res) -> np.ndarray:
    """Each group's ``sum w (y - ybar)^2`` about its own weighted mean, in two passes."""
    import pandas as pd

    codes = pd.Index(res.groups).get_indexer(labels)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    w = np.ones_like(y) if w is None else np.broadcast_to(np.asarray(w, np.float64), y.shape)
    size = len(res.groups)
    sw = np.bincount(codes, w, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(codes, w * y, size) / sw
    return np.bincount(codes, w * (y - mean[codes]) ** 2, size)


@with_fit_threads
def grouped_ols(
    X,
    y,
    *,
    groups,
    fit_intercept: bool = True,
    sample_weight=None,
    cov_type: str = "nonrobust",
    feature_names: Sequence[str] | None = None,
    use_t: bool | None = None,
    missing: str = "raise",
) -> GroupedOLSResults:
    """Fit OLS (or WLS with ``sample_weight``) separately for each group, batched.

    ``X`` ``(n, d)`` without a constant, ``y`` ``(n,)``, ``groups`` one label per row (any
    labels numpy can sort; a column name when ``X`` is a DataFrame). ``missing="drop"``
    leaves out rows with NaN in X, y or the weights (``nobs_dropped`` counts them). Each group's
    statistics equal a statsmodels ``OLS``/``WLS`` fit of that group's rows
    (NOTE [grouped fit]); rows of a group may be anywhere. Runs where the data lies.

    Example:
        >>> import numpy as np
        >>> res = grouped_ols(np.arange(6.0), np.arange(6.0) ** 2, groups=[1, 1, 1, 2, 2, 2])
        >>> res.rsquared.round(4).tolist()
        [0.9231, 0.9948]
    """
    if isinstance(groups, str) and hasattr(X, "columns") and groups in list(X.columns):
        # pandas' drop takes columns=, polars' the names (a TypeError before)
        polars = type(X).__module__.split(".")[0] == "polars"
        X, groups = (X.drop(groups) if polars else X.drop(columns=[groups])), X[groups]
    from ..stats.frames import MISSING, _take, check_aligned, complete_rows

    # as statsmodels: NOTE [rows matched by index]
    check_aligned(X, y=y, sample_weight=sample_weight, groups=groups)
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}; got {missing!r}")
    dropped = 0
    if missing == "drop":  # as the single fit's (it was a TypeError here)
        keep = complete_rows(X, y, sample_weight)
        if keep is not None and not keep.all():
            dropped = int(len(keep) - keep.sum())
            X, y, sample_weight, groups = (_take(a, keep) for a in (X, y, sample_weight, groups))
    # NaN and infinity are found in the groups' sums (NOTE [no scan for NaN])
    Xm, Ym, w = as_problem(
        X,
        y,
        sample_weight,
        min_features=0 if fit_intercept else 1,
        allow_1d_x=True,
        check_finite=False,
    )
    if Ym.values.shape[1] != 1:
        raise DataError(
            f"grouped fits take one target; y has {Ym.values.shape[1]} columns: "
            "fit each target separately"
        )
    Xt = Xm.values.to(torch.float64)
    yt = Ym.values[:, 0].to(device=Xt.device, dtype=torch.float64)
    w = None if w is None else w.to(device=Xt.device, dtype=torch.float64)
    labels, codes, counts = encode_groups_on(groups, Xt.shape[0], Xt.device)
    seg = Segments(labels, codes, counts)
    names = single._names(feature_names, Xm.columns, Xt.shape[1], "feature_names")
    names = names or [f"x{j + 1}" for j in range(Xt.shape[1])]
    fit = fit_groups(
        seg, Xt, yt, w, fit_intercept, _CHUNK_VALUES, check=lambda: check_finite(Xm, Ym)
    )
    _warn_bad(fit, Xt.shape[1] + fit_intercept)
    _warn_out_of_range(fit)
    _warn_inaccurate(fit)
    _warn_exact(fit, Xt.shape[1] + fit_intercept)
    res = GroupedOLSResults(
        fit,
        param_names=(["const"] if fit_intercept else []) + names,
        cov_type=cov_type,
        use_t=use_t,
    )
    res.nobs_dropped = dropped
    return res


def _warn_out_of_range(fit: GroupedFit) -> None:
    """One warning for the groups whose sums of squares leave float64 (NOTE [squares out
    of range] in groupfit.py)."""
    if fit.out_of_range is None:
        return
    flagged = fit.out_of_range.cpu().numpy()
    if not flagged.any():
        return
    named = _named(fit.seg, flagged)
    warnings.warn(
        f"{int(flagged.sum())} of {len(flagged)} groups have centred values beyond about "
        f"1e150 or below 1e-150, e.g. {named}: their sums of squares over- or underflow "
        "float64, so standard errors, t and p-values, R2, F and the log-likelihood may be "
        "inf, NaN or off by any amount (the parameters are right); rescale y and X (e.g. by "
        "a power of ten) and fit again",
        DegenerateWarning,
        stacklevel=3,
    )


def _warn_inaccurate(fit: GroupedFit) -> None:
    """One warning for the groups whose coefficients or covariances may be off by more
    than ACCURACY_WARNING (NOTE [grouped accuracy] in groupfit.py)."""
    if fit.error is None:
        return
    error, cov_error = fit.error.cpu().numpy(), fit.cov_error.cpu().numpy()
    flagged = (error > ACCURACY_WARNING) | (cov_error > ACCURACY_WARNING)
    if not flagged.any():
        return
    named = _named(fit.seg, flagged)
    worst = float(error[flagged].max())
    warnings.warn(
        RankWarning(
            f"{int(flagged.sum())} of {len(flagged)} groups are ill-conditioned or fitted "
            f"almost exactly, e.g. "
            f"{named}: their coefficients may be off by up to {_size(worst)} and "
            f"their covariances by up to {_size(float(cov_error[flagged].max()))} (relative; "
            "first-order estimates: grouped fits are not refined against the rows). Fit "
            "those groups one at a time with torchlinreg.ols(X[g == label], y[g == label]), "
            "which refines them, or fit an intercept / centre the columns",
            error=worst,
            method="qr",
        ),
        stacklevel=3,
    )


def _named(seg, flagged) -> str:
    """The first flagged groups' labels, and how many more, for a warning."""
    count = int(flagged.sum())
    more = f" and {count - _NAMED} more" if count > _NAMED else ""
    return f"{seg.labels[flagged][:_NAMED].tolist()}{more}"


def _warn_exact(fit: GroupedFit, p: int) -> None:
    """One warning for the groups fitted exactly, to the rounding level of their data
    (NOTE [an essentially perfect fit] in stats/results.py): their rss is rounding noise.
    Unrefined, an rss of exactly 0 is no proof of an exact fit (a recheck found groups
    with ssr and standard errors of 0 where the exact ssr was 1e-13), so it counts too."""
    exact = ~fit.bad & single.at_rounding_level(fit.ssr, fit.uncentered_tss, p)
    if fit.out_of_range is not None:  # their sums of squares are said to be off already
        exact = exact & ~fit.out_of_range
    if not bool(exact.any()):
        return
    flagged = exact.cpu().numpy()
    named = _named(fit.seg, flagged)
    warnings.warn(
        f"{int(flagged.sum())} of {len(flagged)} groups are fitted exactly, to the rounding "
        f"level of their data, e.g. {named}: their residual sums of squares are "
        "rounding noise, and the standard errors, t and p-values, intervals and F built on "
        "them (an essentially perfect fit)",
        DegenerateWarning,
        stacklevel=3,
    )


def _size(error: float) -> str:
    """An estimate as a warning quotes it: past 0.1 a first-order estimate says nothing
    (a group's standard errors were 2,400x off where it said 68)."""
    return f"{error:.1e}" if error < 0.1 else "any amount (no correct digit)"


def _warn_bad(fit: GroupedFit, p: int) -> None:
    """One warning that counts the groups left NaN and says why."""
    bad = fit.bad.cpu().numpy()
    if not bad.any():
        return
    counts = fit.seg.counts.cpu().numpy()
    few = bad & (counts <= p)
    labels = fit.seg.labels[bad][:_NAMED].tolist()
    more = f" and {int(bad.sum()) - _NAMED} more" if bad.sum() > _NAMED else ""
    warnings.warn(
        f"{int(bad.sum())} of {len(bad)} groups get NaN statistics ({int(few.sum())} with at "
        f"most {p} rows for {p} parameters, {int((bad & ~few).sum())} rank-deficient: a "
        f"column constant or collinear within the group, or too few rows of nonzero weight), "
        f"e.g. {labels}{more}; "
        "drop those groups or columns to fit them",
        DegenerateWarning,
        stacklevel=3,
    )
