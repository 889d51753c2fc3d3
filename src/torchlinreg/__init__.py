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
from .estimator import LinearRegression, Ridge
from .exact import LeastSquaresState
from .model import LinearModel
from .modelfile import load, save
from .tables import open_table

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "DegenerateWarning",
    "DivergenceError",
    "LeastSquaresState",
    "LinearModel",
    "LinearRegression",
    "ModelFileError",
    "NotFittedError",
    "RankWarning",
    "Ridge",
    "TorchLinRegError",
    "__version__",
    "datasets",
    "load",
    "open_table",
    "save",
    "tutorial",
]
