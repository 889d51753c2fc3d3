"""Residual diagnostics of statsmodels' summary: Omnibus, skew, kurtosis, Durbin-Watson,
Jarque-Bera and the condition number, from the whitened residuals.

Definitions are statsmodels' (``statsmodels.stats.stattools``): Omnibus is D'Agostino and
Pearson's K^2 (``scipy.stats.normaltest``, NaN below 8 rows), skew and kurtosis are the
biased moment estimates (kurtosis not in excess), ``JB = n/6 (S^2 + (K - 3)^2 / 4)``
against chi2(2), Durbin-Watson ``sum(diff(e)^2) / sum(e^2)`` in row order.

Example:
    >>> import numpy as np
    >>> d = residual_diagnostics(np.array([0.1, -0.2, 0.3, -0.1, 0.0, 0.2, -0.3, 0.1, 0.05]))
    >>> sorted(d)[:3], round(float(d["durbin_watson"][0]), 4)
    (['durbin_watson', 'jarque_bera', 'jarque_bera_pvalue'], 3.2906)
"""

from __future__ import annotations

import numpy as np
from scipy import stats

MIN_OMNIBUS_ROWS = 8  # scipy's normaltest (kurtosistest) needs at least 8 (statsmodels' rule)


def residual_diagnostics(wresid: np.ndarray) -> dict[str, np.ndarray]:
    """The diagnostics of each target's residuals ``(n,)`` or ``(n, k)``: arrays ``(k,)``."""
    e = np.asarray(wresid, dtype=np.float64).reshape(len(wresid), -1)
    n = e.shape[0]
    skew = stats.skew(e, axis=0)
    kurtosis = stats.kurtosis(e, axis=0, fisher=False)
    jb = n / 6.0 * (skew**2 + (kurtosis - 3) ** 2 / 4.0)
    if n >= MIN_OMNIBUS_ROWS:
        omni, omni_p = stats.normaltest(e, axis=0)
    else:
        omni = omni_p = np.full(e.shape[1], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        dw = (np.diff(e, axis=0) ** 2).sum(0) / (e**2).sum(0)
    return {
        "omnibus": np.asarray(omni, dtype=np.float64),
        "omnibus_pvalue": np.asarray(omni_p, dtype=np.float64),
        "skew": skew,
        "kurtosis": kurtosis,
        "durbin_watson": dw,
        "jarque_bera": jb,
        "jarque_bera_pvalue": stats.chi2.sf(jb, 2),
    }


def diagnostics_lines(diag: dict[str, np.ndarray], t: int, condition_number: float) -> list[str]:
    """statsmodels' two-column diagnostics block for target ``t`` (80 characters wide)."""

    def v(key: str) -> float:
        return float(diag[key][t])

    rows = [
        ("Omnibus:", f"{v('omnibus'):#6.3f}", "Durbin-Watson:", f"{v('durbin_watson'):#8.3f}"),
        (
            "Prob(Omnibus):",
            f"{v('omnibus_pvalue'):#6.3f}",
            "Jarque-Bera (JB):",
            f"{v('jarque_bera'):#8.3f}",
        ),
        ("Skew:", f"{v('skew'):#6.3f}", "Prob(JB):", f"{v('jarque_bera_pvalue'):#8.3g}"),
        ("Kurtosis:", f"{v('kurtosis'):#6.3f}", "Cond. No.", f"{condition_number:#8.3g}"),
    ]
    return [f"{a:<20}{b:>18}   {c:<24}{d:>12}" for a, b, c, d in rows]
