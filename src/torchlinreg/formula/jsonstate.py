"""formulaic's encoder and transform states as plain JSON, and back (validated, no pickle).

Scalars (str, bool, int, finite float, None) stay themselves; everything else is a one-key
object naming its type, so decoding rebuilds exactly the Python values formulaic stored:
``{"float": "nan"}``, ``{"array": [...]}`` (a float64 numpy array), ``{"list": [...]}``,
``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}`` (keys of any scalar type, as
``poly``'s integer keys). Decoding refuses anything else, and bounds depth and size.

Example:
    >>> import numpy as np
    >>> state = {"alpha": {0: np.float64(3.5)}, "scale": None, "v": np.array([1.0, np.nan])}
    >>> back = decode(encode(state))
    >>> back["alpha"], back["scale"], back["v"]
    ({0: 3.5}, None, array([ 1., nan]))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DataError

MAX_DEPTH = 12
MAX_ITEMS = 1_000_000  # levels or numbers in one state: a model file stays small
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class StateError(ValueError):
    """A state that cannot be written as plain JSON, or a JSON value that is not one."""


def encode(value: Any) -> Any:
    """A JSON-ready form of ``value`` (StateError for types that have none)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise StateError(f"an array of {value.dtype} values")
        return {"array": [encode(v) for v in value.astype(np.float64).ravel().tolist()]}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    raise StateError(f"a value of type {type(value).__name__}")


def decode(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """The Python value :func:`encode` wrote; DataError for anything else."""
    budget = [MAX_ITEMS] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise DataError("the encoding's state is too large or too deeply nested")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataError("the encoding's state holds a non-finite number outside a tag")
        return value
    if not (isinstance(value, dict) and len(value) == 1):
        raise DataError(f"the encoding's state holds an untagged {type(value).__name__}")
    ((tag, inner),) = value.items()
    if tag == "float" and inner in _SPECIAL:
        return _SPECIAL[inner]
    if tag == "dict" and isinstance(inner, list):
        if not all(isinstance(kv, list) and len(kv) == 2 for kv in inner):
            raise DataError("the encoding's state holds a dict that is not key-value pairs")
        pairs = [(decode(k, depth + 1, budget), decode(v, depth + 1, budget)) for k, v in inner]
        if not all(k is None or isinstance(k, (str, int, float, bool)) for k, _ in pairs):
            raise DataError("the encoding's state holds a dict key that is not a scalar")
        return dict(pairs)
    if tag in ("list", "tuple", "array") and isinstance(inner, list):
        items = [decode(v, depth + 1, budget) for v in inner]
        if tag == "list":
            return items
        if tag == "tuple":
            return tuple(items)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            raise DataError("the encoding's state holds an array of non-numbers")
        return np.asarray(items, dtype=np.float64)
    raise DataError(f"the encoding's state holds an unknown tag {str(tag)[:40]!r}")
