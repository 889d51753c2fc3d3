"""scikit-learn estimators over the two engines, and their model files."""

from .linear import LinearRegression, Ridge

__all__ = ["LinearRegression", "Ridge"]
