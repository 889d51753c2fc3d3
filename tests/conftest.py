"""Shared test set-up: the NIST reader (tests/nist.py) is importable as ``nist``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
