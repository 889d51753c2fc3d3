"""Minimum coefficient LRE per NIST StRD linear-regression set, side by side.

Prints a markdown table (rows: methods, columns: the 11 sets) for the README:
torchlinreg default (ols: exact QR + adaptive double-double refinement), torchlinreg
polyfit (polynomial sets), numpy.linalg.lstsq, statsmodels OLS, scikit-learn
LinearRegression; every solver gets the same float64 design (powers of x prebuilt).

    PYTHONPATH=src python benchmarks/nist_lre.py
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from nist import NAMES, POLYNOMIAL, load, lre
from torchlinreg.stats.polyfit import polyfit
from torchlinreg.stats.results import ols


def _estimates(name: str) -> dict[str, np.ndarray]:
    import statsmodels.api as sm
    from sklearn.linear_model import LinearRegression

    from torchlinreg import LinearRegression as TorchLinearRegression

    s = load(name)
    X = s.design()
    A = np.column_stack([np.ones(len(X)), X]) if s.intercept else X
    ours = TorchLinearRegression(fit_intercept=s.intercept).fit(X, s.y)
    out = {
        "torchlinreg LinearRegression (default)": (
            np.r_[ours.intercept_, ours.coef_] if s.intercept else ours.coef_
        ),
        "torchlinreg.ols": ols(X, s.y, fit_intercept=s.intercept).params,
    }
    if name in POLYNOMIAL:
        out["torchlinreg polyfit"] = polyfit(s.x[:, 0], s.y, s.degree).params
    out["numpy lstsq"] = np.linalg.lstsq(A, s.y, rcond=None)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["statsmodels OLS"] = sm.OLS(s.y, A).fit().params
    lr = LinearRegression(fit_intercept=s.intercept).fit(X, s.y)
    out["scikit-learn LinearRegression"] = (
        np.r_[lr.intercept_, lr.coef_] if s.intercept else lr.coef_
    )
    return out


def main() -> None:
    table: dict[str, dict[str, float]] = {}
    for name in NAMES:
        certified = load(name).params
        for method, est in _estimates(name).items():
            table.setdefault(method, {})[name] = float(lre(est, certified).min())
    print("| method | " + " | ".join(NAMES) + " |")
    print("|---|" + "---:|" * len(NAMES))
    for method, scores in table.items():
        cells = [f"{scores[n]:.1f}" if n in scores else "" for n in NAMES]
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
