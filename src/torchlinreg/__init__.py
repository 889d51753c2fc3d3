"""torchlinreg: linear regression on PyTorch, from the walk-through to many machines.

Example:
    >>> import torchlinreg as tlr
    >>> crops = tlr.datasets.load_crops()
    >>> tlr.LinearRegression().fit(crops.data, crops.target).coef_.shape
    (2, 3)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConvergenceWarning,
    DataError,
    DegenerateWarning,
    DivergenceError,
    InvalidTestWarning,
    ModelFileError,
    NotFittedError,
    RankWarning,
    TorchLinRegError,
)

__version__ = "0.1.0"

# NOTE [lazy imports]
# `import torchlinreg` imports no torch: each public name is imported from its module the
# first time it is used. So `torchlinreg --help` and `--version` answer at once (the
# command imports this package), and a program pays for torch, pyarrow and scipy only
# when it uses them. The errors above are plain Python and come at once.
_LAZY = {
    "Callback": "iterative.callbacks",
    "Checkpoint": "iterative.callbacks",
    "DivergenceGuard": "iterative.callbacks",
    "ElasticNet": "estimator.penalized",
    "ElasticNetCV": "estimator.penalized_cv",
    "HuberRegressor": "estimator.robust",
    "Lasso": "estimator.penalized",
    "LassoCV": "estimator.penalized_cv",
    "EarlyStopping": "iterative.callbacks",
    "GroupedOLSResults": "models.grouped_results",
    "IterativeResult": "iterative.fit",
    "LeastSquaresState": "exact.state",
    "LinearModel": "model",
    "LinearRegression": "estimator.linear",
    "OLSResults": "stats.results",
    "Ridge": "estimator.linear",
    "RidgeCV": "estimator.penalized_cv",
    "TrainState": "iterative.callbacks",
    "anova_lm": "stats.hypothesis",
    "enet_path": "models.paths",
    "fit_exact": "exact.state",
    "fit_iterative": "iterative.fit",
    "lasso_path": "models.paths",
    "load": "estimator.modelfile",
    "ols": "models.grouped",  # stats.results.ols, or one fit per group with groups=
    "open_table": "files.tables",
    "polyfit": "stats.polyfit",
    "rolling_ols": "models.rolling",
    "save": "estimator.modelfile",
}
_SUBMODULES = ("datasets", "tutorial")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # the same names for type checkers and editors, imported eagerly
    from . import datasets, tutorial
    from .estimator.linear import LinearRegression, Ridge
    from .estimator.modelfile import load, save
    from .estimator.penalized import ElasticNet, Lasso
    from .estimator.penalized_cv import ElasticNetCV, LassoCV, RidgeCV
    from .estimator.robust import HuberRegressor
    from .exact.state import LeastSquaresState, fit_exact
    from .files.tables import open_table
    from .iterative.callbacks import (
        Callback,
        Checkpoint,
        DivergenceGuard,
        EarlyStopping,
        TrainState,
    )
    from .iterative.fit import IterativeResult, fit_iterative
    from .model import LinearModel
    from .models.grouped import ols
    from .models.grouped_results import GroupedOLSResults
    from .models.paths import enet_path, lasso_path
    from .models.rolling import rolling_ols
    from .stats.hypothesis import anova_lm
    from .stats.polyfit import polyfit
    from .stats.results import OLSResults

__all__ = [
    "Callback",
    "Checkpoint",
    "ConvergenceWarning",
    "DataError",
    "DegenerateWarning",
    "DivergenceError",
    "DivergenceGuard",
    "EarlyStopping",
    "ElasticNet",
    "ElasticNetCV",
    "GroupedOLSResults",
    "HuberRegressor",
    "InvalidTestWarning",
    "IterativeResult",
    "Lasso",
    "LassoCV",
    "LeastSquaresState",
    "LinearModel",
    "LinearRegression",
    "ModelFileError",
    "NotFittedError",
    "OLSResults",
    "RankWarning",
    "Ridge",
    "RidgeCV",
    "TorchLinRegError",
    "TrainState",
    "__version__",
    "anova_lm",
    "datasets",
    "enet_path",
    "fit_exact",
    "fit_iterative",
    "lasso_path",
    "load",
    "ols",
    "open_table",
    "polyfit",
    "rolling_ols",
    "save",
    "tutorial",
]
