"""torchlinreg: linear regression on PyTorch, from the walk-through to many machines.

Example:
    >>> import torchlinreg as tlr
    >>> crops = tlr.datasets.load_crops()
    >>> tlr.LinearRegression().fit(crops.data, crops.target).coef_.shape
    (2, 3)
"""

__version__ = "0.1.0"

from . import datasets, tutorial
from .errors import (
    ConvergenceWarning,
    DataError,
    DegenerateWarning,
    DivergenceError,
    ModelFileError,
    NotFittedError,
    RankWarning,
    TorchLinRegError,
)
from .estimator.linear import LinearRegression, Ridge
from .estimator.modelfile import load, save
from .exact.state import LeastSquaresState, fit_exact
from .files.tables import open_table
from .iterative.callbacks import Callback, Checkpoint, DivergenceGuard, EarlyStopping, TrainState
from .iterative.fit import IterativeResult, fit_iterative
from .model import LinearModel
from .stats.polyfit import polyfit
from .stats.results import OLSResults, ols

__all__ = [
    "Callback",
    "Checkpoint",
    "ConvergenceWarning",
    "DataError",
    "DegenerateWarning",
    "DivergenceError",
    "DivergenceGuard",
    "EarlyStopping",
    "IterativeResult",
    "LeastSquaresState",
    "LinearModel",
    "LinearRegression",
    "ModelFileError",
    "NotFittedError",
    "OLSResults",
    "RankWarning",
    "Ridge",
    "TorchLinRegError",
    "TrainState",
    "__version__",
    "datasets",
    "fit_exact",
    "fit_iterative",
    "load",
    "ols",
    "open_table",
    "polyfit",
    "save",
    "tutorial",
]
