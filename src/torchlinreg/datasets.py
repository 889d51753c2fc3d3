"""Built-in data: the crop-yield walk-through and synthetic regression problems."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROP_FEATURES = ("temperature", "rainfall", "humidity")
CROP_TARGETS = ("apples", "oranges")


@dataclass(frozen=True)
class Dataset:
    """Inputs, targets and their column names."""

    data: np.ndarray
    target: np.ndarray
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]


def load_crops() -> Dataset:
    """The walk-through's crop yields: 5 regions, 3 inputs, 2 targets, float32.

    Example:
        >>> crops = load_crops()
        >>> crops.data.shape, crops.target.shape
        ((5, 3), (5, 2))
    """
    inputs = np.array(
        [[20, 31, 48], [74, 82, 11], [56, 73, 36], [94, 75, 29], [63, 88, 17]],
        dtype=np.float32,
    )
    targets = np.array(
        [[25, 112], [71, 97], [117, 131], [48, 58], [107, 114]],
        dtype=np.float32,
    )
    return Dataset(inputs, targets, CROP_FEATURES, CROP_TARGETS)


def make_regression(
    n_samples: int = 1000,
    n_features: int = 10,
    n_targets: int = 1,
    *,
    noise: float = 0.1,
    scales: bool = True,
    seed: int = 0,
    dtype: np.dtype | type = np.float64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A well-posed synthetic problem ``Y = X @ W.T + b + noise``.

    With ``scales=True`` the columns get different scales and means, as real data has,
    which is what exposes uncentred or unscaled solvers.

    Returns ``X (n, d)``, ``Y (n, k)`` (``(n,)`` when ``n_targets == 1``), the true
    ``W (k, d)`` and ``b (k,)``.

    Example:
        >>> X, y, W, b = make_regression(100, 3, seed=1)
        >>> X.shape, y.shape, W.shape
        ((100, 3), (100,), (1, 3))
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    if scales:
        X = X * rng.uniform(0.5, 20.0, n_features) + rng.uniform(-10.0, 10.0, n_features)
    W = rng.standard_normal((n_targets, n_features))
    b = rng.standard_normal(n_targets) * 5
    Y = X @ W.T + b + noise * rng.standard_normal((n_samples, n_targets))
    if n_targets == 1:
        Y = Y[:, 0]
    return X.astype(dtype), Y.astype(dtype), W, b
