"""Text summary and JSON-ready dict of an OLSResults (the reporting half of results.py).

Example:
    >>> import torch
    >>> from torchlinreg.stats.results import ols
    >>> X = torch.arange(8.0, dtype=torch.float64)[:, None]
    >>> res = ols(X, 2 * X[:, 0] + torch.tensor([0.1, -0.1] * 4, dtype=torch.float64))
    >>> "R-squared" in res.summary()
    True
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np

# An OLSResults (results.py), typed loosely: results.py imports this module for summary(),
# so importing it back would make a cycle.
OLSResults = Any

_WIDTH = 80
_LARGE_CONDITION = 1e8  # of the raw design; statsmodels flags 1000, too eager for real units


def _fmt(v: float, width: int = 10) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan".rjust(width)
    if math.isinf(v):
        return ("inf" if v > 0 else "-inf").rjust(width)
    a = abs(v)
    text = f"{v:.4g}" if (a >= 1e5 or (0 < a < 1e-3)) else f"{v:.4f}"
    return text.rjust(width)


def _target(res: OLSResults, t: int):
    """Statistics of target ``t`` as plain arrays/floats."""

    def pick(a):
        a = np.asarray(a, dtype=np.float64)
        return a if res._squeeze else a[..., t]

    return pick


def statistic_name(res: OLSResults) -> str:
    """``"t"`` when the tests use Student's t, ``"z"`` when the normal (statsmodels' labels)."""
    return "t" if res.use_t else "z"


def _header(res: OLSResults, pick, name: str) -> list[str]:
    left = [
        ("Dep. Variable:", name),
        ("No. Observations:", str(res.nobs)),
        ("Df Residuals:", f"{res.df_resid:g}"),
        ("Df Model:", f"{res.df_model:g}"),
        ("Covariance Type:", res.cov_type),
    ]
    right = [
        ("R-squared:" if res.k_constant else "R-squared (uncentered):", float(pick(res.rsquared))),
        ("Adj. R-squared:", float(pick(res.rsquared_adj))),
        ("F-statistic:", float(pick(res.fvalue))),
        ("Prob (F-statistic):", float(pick(res.f_pvalue))),
        ("Log-Likelihood:", float(pick(res.llf))),
        ("AIC:", float(pick(res.aic))),
        ("BIC:", float(pick(res.bic))),
    ]
    lines = []
    for i in range(max(len(left), len(right))):
        lk, lv = left[i] if i < len(left) else ("", "")
        rk, rv = right[i] if i < len(right) else ("", None)
        rtext = "" if rv is None else _fmt(rv, 12)
        lines.append(f"{lk:<20}{lv:>18}   {rk:<24}{rtext}")
    return lines


def summary_text(res: OLSResults, alpha: float = 0.05) -> str:
    """statsmodels-like text: header, coefficient table, notes and warnings per target."""
    blocks = []
    ci = res.conf_int(alpha)
    lo_name, hi_name = f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"
    for t, name in enumerate(res.target_names):
        pick = _target(res, t)
        title = f"{'WLS' if res.weighted else 'OLS'} Regression Results"
        lines = [title.center(_WIDTH), "=" * _WIDTH]
        lines += _header(res, pick, name)
        lines.append("=" * _WIDTH)
        stat = statistic_name(res)
        head = ["coef", "std err", stat, f"P>|{stat}|", lo_name, hi_name]
        # names whole, as statsmodels prints them (C(occupation)[T.2.0] and its siblings
        # were cut to one 14-character stem)
        nw = max([14, *(len(str(n)) for n in res.param_names)])
        lines.append(f"{'':<{nw}}" + "".join(" " + h.rjust(10) for h in head))
        lines.append("-" * max(_WIDTH, nw + 66))
        params, bse, tv, pv = (pick(a) for a in (res.params, res.bse, res.tvalues, res.pvalues))
        low, high = pick(ci[:, 0]), pick(ci[:, 1])
        for j, pname in enumerate(res.param_names):
            cells = [_fmt(float(v)) for v in (params[j], bse[j], tv[j], pv[j], low[j], high[j])]
            cells[3] = "nan".rjust(10) if np.isnan(pv[j]) else f"{pv[j]:.3f}".rjust(10)
            lines.append(f"{pname:<{nw}}" + "".join(" " + cell for cell in cells))
        lines.append("=" * max(_WIDTH, nw + 66))
        if res._endog is not None:  # the residuals are at hand: statsmodels' diagnostics
            from .diagnostics import diagnostics_lines

            lines += diagnostics_lines(res._diagnostics, t, res.condition_number)
            lines.append("=" * _WIDTH)
        lines += _notes(res)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _notes(res: OLSResults) -> list[str]:
    notes = [f"Condition No. {res.condition_number:.3g}", "Notes:"]
    notes.append(f"[1] Standard errors: {res.cov_type} covariance{_cov_detail(res)}.")
    dropped = getattr(res, "nobs_dropped", 0)
    if dropped:
        notes.append(f"[-] {dropped} rows with missing values were dropped (missing='drop').")
    if res.aliased:
        names = [res.param_names[a] for a in res.aliased]
        notes.append(
            f"[2] The design is rank-deficient (rank {res.rank} of {len(res.param_names)}); "
            f"aliased: {', '.join(names)} (NaN)."
        )
    elif res.condition_number > _LARGE_CONDITION:
        notes.append(
            f"[2] The condition number is large ({res.condition_number:.2g}): strong "
            "multicollinearity or badly scaled columns; the fit is computed to full "
            "precision, but the estimates are sensitive to small changes in the data."
        )
    return [line for note in notes for line in textwrap.wrap(note, _WIDTH)]


def _cov_detail(res: OLSResults) -> str:
    """What a clustered or HAC covariance was computed with (statsmodels' description)."""
    kw = getattr(res, "cov_kwds", {}) or {}
    if res.cov_type == "cluster":
        counts = " and ".join(str(g) for g in kw["groups"].n_groups[:2])
        return f", clustered on {counts} groups, t/F with {res.df_resid_inference:g} df"
    if res.cov_type == "HAC":
        fix = "with" if kw["use_correction"] else "without"
        return f", {kw['maxlags']} lags ({kw['weights_func']}), {fix} small-sample correction"
    return ""


def _plain(a):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        v = float(a)
        return v if math.isfinite(v) else None
    return [_plain(v) for v in a]


def results_dict(res: OLSResults) -> dict:
    """Statistics as lists and floats (NaN and inf become None), ready for json.dumps."""
    out = {
        "param_names": list(res.param_names),
        "target_names": list(res.target_names),
        "nobs": res.nobs,
        "nobs_dropped": int(getattr(res, "nobs_dropped", 0)),
        "rank": res.rank,
        "aliased": [res.param_names[a] for a in res.aliased],
        "df_model": res.df_model,
        "df_resid": res.df_resid,
        "cov_type": res.cov_type,
        # tvalues/pvalues keep statsmodels' attribute names; these say which they are
        "use_t": bool(res.use_t),
        "statistic": statistic_name(res),
        "weighted": res.weighted,
        "condition_number": _plain(res.condition_number),
        "df_resid_inference": res.df_resid_inference,
        # without a constant (k_constant 0) rsquared, ess and F are uncentred, as statsmodels
        # gives them: said here, as the text summary says "R-squared (uncentered)"
        "k_constant": int(res.k_constant),
        "rsquared_centered": bool(res.k_constant),
    }
    kw = getattr(res, "cov_kwds", {}) or {}
    if res.cov_type == "cluster":
        out["n_groups"] = list(kw["groups"].n_groups[:2])
    elif res.cov_type == "HAC":
        out["maxlags"] = kw["maxlags"]
    for name in (
        "params",
        "bse",
        "tvalues",
        "pvalues",
        "rsquared",
        "rsquared_adj",
        "fvalue",
        "f_pvalue",
        "ssr",
        "ess",
        "mse_resid",
        "llf",
        "aic",
        "bic",
    ):
        out[name] = _plain(getattr(res, name))
    out["conf_int"] = _plain(res.conf_int())
    return out
