"""The `torchlinreg` command, a thin face over the library; the one user of click and rich."""

from .app import main, run

__all__ = ["main", "run"]
