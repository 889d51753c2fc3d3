"""The fitted linear model every engine produces: ``Y = X @ weight.T + bias``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class LinearModel:
    """Weights ``(k, d)``, biases ``(k,)`` and the column names they belong to.

    Example:
        >>> m = LinearModel(torch.tensor([[2.0, 0.0]]), torch.tensor([1.0]))
        >>> m.predict(torch.tensor([[1.0, 5.0]]))
        tensor([[3.]])
    """

    weight: Tensor
    bias: Tensor
    feature_names: Sequence[str] | None = field(default=None)
    target_names: Sequence[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.weight.ndim != 2:
            shape = tuple(self.weight.shape)
            raise ValueError(f"weight must be (n_targets, n_features), got {shape}")
        if self.bias.shape != (self.weight.shape[0],):
            raise ValueError(
                f"bias must have shape ({self.weight.shape[0]},), got {tuple(self.bias.shape)}"
            )

    @property
    def n_features(self) -> int:
        return self.weight.shape[1]

    @property
    def n_targets(self) -> int:
        return self.weight.shape[0]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """A copy on another device or dtype."""
        return LinearModel(
            self.weight.to(device=device, dtype=dtype),
            self.bias.to(device=device, dtype=dtype),
            self.feature_names,
            self.target_names,
        )

    def predict(self, X: Tensor) -> Tensor:
        """``X @ weight.T + bias`` computed in the model's dtype on X's device, shape (n, k)."""
        w = self.weight.to(device=X.device)
        b = self.bias.to(device=X.device)
        return torch.addmm(b, X.to(w.dtype), w.T)
