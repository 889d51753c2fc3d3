"""torchlinreg: linear regression on PyTorch, from the walk-through to many machines."""

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
from .model import LinearModel

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "DegenerateWarning",
    "DivergenceError",
    "LinearModel",
    "ModelFileError",
    "NotFittedError",
    "RankWarning",
    "TorchLinRegError",
    "__version__",
    "datasets",
    "tutorial",
]
