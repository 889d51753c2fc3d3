"""Shared test set-up."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

try:
    import torchlinreg.exact  # noqa: F401
except ImportError:  # branch `exact` not merged yet: use the API-compatible stand-in
    import _exact_standin

    sys.modules["torchlinreg.exact"] = _exact_standin
