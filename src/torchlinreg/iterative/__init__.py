"""The iterative engine: one training loop, solvers, batches, scaling, callbacks, checkpoints."""

from .fit import IterativeResult, fit_iterative

__all__ = ["IterativeResult", "fit_iterative"]
