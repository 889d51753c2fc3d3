"""Real data sets in raw units, for the iterative solvers' defaults (issue 10).

Every set is loaded from the installed statsmodels and scikit-learn packages (their bundled
files: no download), plus synthetic near-collinear problems. Each loader returns float64
``X (n, d)`` and ``y (n,)`` (``(n, k)`` for Linnerud's three targets) as a user would pass
them: raw units, no scaling. ``benchmarks/iterative_corpus.py`` prints the README's table
from the same list.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _sm(name: str, target: str | None = None, drop: tuple[str, ...] = ()):
    def load():
        import statsmodels.api as sm

        frame = getattr(sm.datasets, name).load_pandas().data
        frame = frame.drop(columns=list(drop)).select_dtypes("number").dropna()
        y_name = target or frame.columns[0]
        return frame.drop(columns=[y_name]).to_numpy(float), frame[y_name].to_numpy(float)

    return load


def _diabetes():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, scaled=False)
    return X.astype(float), y.astype(float)


def _linnerud():
    from sklearn.datasets import load_linnerud

    X, Y = load_linnerud(return_X_y=True)
    return X.astype(float), Y.astype(float)


def _wine_alcohol():
    from sklearn.datasets import load_wine

    X = load_wine().data.astype(float)
    return X[:, 1:], X[:, 0]


def _breast_cancer_radius():
    # mean radius from the 29 other measurements: perimeter and area are near functions of it
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data.astype(float)
    return X[:, 1:], X[:, 0]


def _sklearn_check_data():
    # scikit-learn's check_estimator regression data (estimator_checks._regression_dataset)
    from sklearn.datasets import make_regression

    X, y = make_regression(200, 10, n_informative=1, bias=5.0, noise=20, random_state=42)
    return X, y


def _near_collinear(eps: float, seed: int):
    def load():
        rng = np.random.default_rng(seed)
        n = 500
        base = rng.normal(size=(n, 3)) * [2.0, 50.0, 0.1] + [100.0, -3.0, 7.0]
        twin = base[:, :1] + eps * rng.normal(size=(n, 1)) * 2.0
        X = np.hstack(
            [base, twin, base[:, 1:2] * 3.0 + base[:, 2:3] + eps * rng.normal(size=(n, 1))]
        )
        y = X @ [1.0, 0.5, -2.0, 3.0, 0.1] + rng.normal(size=n)
        return X, y

    return load


def _raw_polynomial():
    # year, year^2, year^3: Longley-style columns of 1e3, 1e6, 1e9 that are nearly collinear
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(1950.0, 2000.0, 300))
    X = np.column_stack([t, t**2, t**3])
    y = 1e-4 * (t - 1975.0) ** 3 + 0.3 * t + rng.normal(size=300)
    return X, y


CORPUS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "longley": _sm("longley"),
    "stackloss": _sm("stackloss"),
    "statecrime": _sm("statecrime", "murder"),
    "fair": _sm("fair", "affairs"),
    "randhie": _sm("randhie", "mdvis"),
    "macrodata": _sm("macrodata", "realgdp", drop=("year", "quarter")),
    "copper": _sm("copper"),
    "cpunish": _sm("cpunish"),
    "star98": _sm("star98", "NABOVE"),
    "scotland": _sm("scotland"),
    "ccard": _sm("ccard"),
    "anes96": _sm("anes96", "PID"),
    "modechoice": _sm("modechoice", "choice"),
    "diabetes": _diabetes,
    "linnerud": _linnerud,
    "wine": _wine_alcohol,
    "breast_cancer": _breast_cancer_radius,
    "sklearn_check": _sklearn_check_data,
    "collinear_1e-3": _near_collinear(1e-3, 0),
    "collinear_1e-4": _near_collinear(1e-4, 1),
    "raw_cubic": _raw_polynomial,
}


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    return CORPUS[name]()


def exact_r2(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-target R2 of the least-squares fit with intercept, by numpy lstsq on centred data."""
    Y = y.reshape(len(X), -1)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    scale = np.abs(Xc).max(0)
    scale[scale == 0] = 1.0
    coef = np.linalg.lstsq(Xc / scale, Yc, rcond=None)[0]
    resid = Yc - (Xc / scale) @ coef
    return 1 - (resid**2).sum(0) / (Yc**2).sum(0)


def r2_of(model, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    Y = y.reshape(len(X), -1)
    pred = np.asarray(model.predict(X)).reshape(len(X), -1)
    Yc = Y - Y.mean(0)
    return 1 - ((Y - pred) ** 2).sum(0) / (Yc**2).sum(0)
