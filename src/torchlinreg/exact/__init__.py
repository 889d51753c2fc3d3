"""The exact engine: a mergeable least-squares state, small dense kernels, refinement."""

from .state import LeastSquaresState, fit_exact

__all__ = ["LeastSquaresState", "fit_exact"]
