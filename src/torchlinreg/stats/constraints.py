"""Linear constraints ``R b = q`` from strings over parameter names (patsy's syntax).

``"x1 = 0"``, ``"x1 = x2, x3 = 0"``, ``"2*x1 + x2/3 = 1"``, ``"(x1 - x2) * 2 = 0"``,
``"x1 = x2 = x3"`` (a chain: two constraints), ``"x1"`` (``= 0``); several constraints
are separated by commas or given as a list of strings. Names are matched longest first,
so names with spaces or brackets work. A matrix (or a vector: one constraint) or a tuple
``(R, q)`` passes through. Products and quotients need a number on one side (the
constraints must be linear).

Example:
    >>> R, q = linear_constraints("x1 = 2*x2, const = 1", ["const", "x1", "x2"])
    >>> R.tolist(), q.tolist()
    ([[0.0, 1.0, -2.0], [1.0, 0.0, 0.0]], [0.0, 1.0])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from ..errors import DataError

_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_OPS = "+-*/()=,"


def linear_constraints(spec, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(R, q)`` with ``R`` ``(m, p)`` and ``q`` ``(m,)`` for the parameters ``names``."""
    p = len(names)
    if isinstance(spec, str) or (
        isinstance(spec, (list, tuple)) and spec and all(isinstance(s, str) for s in spec)
    ):
        text = spec if isinstance(spec, str) else ", ".join(spec)
        return _Parser(text, list(names)).constraints()
    if isinstance(spec, tuple) and len(spec) == 2:
        R = np.atleast_2d(np.asarray(spec[0], dtype=np.float64))
        q = np.broadcast_to(np.asarray(spec[1], dtype=np.float64).reshape(-1), (R.shape[0],))
    else:
        R = np.atleast_2d(np.asarray(spec, dtype=np.float64))
        q = np.zeros(R.shape[0])
    if R.ndim != 2 or R.shape[1] != p:
        raise DataError(
            f"the constraint matrix has shape {R.shape}; it needs one column per parameter "
            f"({p}: {', '.join(names)})"
        )
    return R, np.array(q, dtype=np.float64)


class _Parser:
    """Recursive descent over tokens; each expression is a pair (coefficients, constant)."""

    def __init__(self, text: str, names: list[str]) -> None:
        self.text, self.names = text, names
        by_length = sorted(names, key=len, reverse=True)
        alternatives = [re.escape(n) for n in by_length] + [_NUMBER, "[" + re.escape(_OPS) + "]"]
        pattern = re.compile(r"\s*(" + "|".join(alternatives) + ")")
        self.tokens, pos = [], 0
        while pos < len(text):
            if not text[pos:].strip():
                break
            m = pattern.match(text, pos)
            if m is None:
                word = text[pos:].split()[0]
                raise DataError(
                    f"cannot read {word!r} at character {pos + 1} of {text!r}; "
                    f"parameters are {', '.join(names)}"
                )
            self.tokens.append(m.group(1))
            pos = m.end()
        self.i = 0

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self) -> str:
        tok = self._peek()
        if tok is None:
            raise DataError(f"the constraint {self.text!r} ends too early")
        self.i += 1
        return tok

    def constraints(self) -> tuple[np.ndarray, np.ndarray]:
        rows, values = self._list(closing=None)
        R = np.array(rows, dtype=np.float64)
        empty = ~R.any(axis=1)
        if empty.any():
            raise DataError(
                f"constraint {int(np.flatnonzero(empty)[0]) + 1} of {self.text!r} involves no "
                "parameter; name at least one of " + ", ".join(self.names)
            )
        return R, np.array(values, dtype=np.float64)

    def _list(self, closing: str | None) -> tuple[list, list]:
        """Constraints separated by commas, up to ``closing`` (a ")" or the end)."""
        rows, values = [], []
        while True:
            r, v = self._grouped()
            rows += r
            values += v
            tok = self._peek()
            if tok == closing:
                return rows, values
            if tok != ",":
                raise DataError(f"unexpected {tok!r} in the constraint {self.text!r}")
            self._take()

    def _grouped(self) -> tuple[list, list]:
        """``(a = b, c = 0)``: parenthesised constraints (patsy's syntax), else one."""
        if self._peek() == "(":
            start = self.i
            self._take()
            try:
                out = self._list(closing=")")
                self._take()
                if self._peek() in (None, ","):
                    return out
            except DataError:
                pass
            self.i = start  # an expression in parentheses, e.g. (x1 - x2) * 2 = 0
        return self._equation()

    def _equation(self) -> tuple[list, list]:
        sides = [self._sum()]
        while self._peek() == "=":
            self._take()
            sides.append(self._sum())
        if len(sides) == 1:
            sides.append((np.zeros(len(self.names)), 0.0))
        rows = [lc - rc for (lc, _), (rc, _) in pairwise(sides)]
        values = [rk - lk for (_, lk), (_, rk) in pairwise(sides)]
        return rows, values

    def _sum(self):
        coef, const = self._product()
        while self._peek() in ("+", "-"):
            sign = 1.0 if self._take() == "+" else -1.0
            c, k = self._product()
            coef, const = coef + sign * c, const + sign * k
        return coef, const

    def _product(self):
        coef, const = self._unary()
        while self._peek() in ("*", "/"):
            op = self._take()
            c, k = self._unary()
            if op == "*":
                if coef.any() and c.any():
                    raise DataError(f"{self.text!r} multiplies two parameters; not linear")
                coef, const = (coef * k, const * k) if not c.any() else (c * const, k * const)
            else:
                if c.any():
                    raise DataError(f"{self.text!r} divides by a parameter; not linear")
                coef, const = coef / k, const / k
        return coef, const

    def _unary(self):
        tok = self._peek()
        if tok in ("+", "-"):
            self._take()
            c, k = self._unary()
            return (c, k) if tok == "+" else (-c, -k)
        return self._atom()

    def _atom(self):
        tok = self._take()
        zero = np.zeros(len(self.names))
        if tok == "(":
            out = self._sum()
            if self._take() != ")":
                raise DataError(f"a parenthesis is not closed in {self.text!r}")
            return out
        if tok in self.names:
            coef = zero.copy()
            coef[self.names.index(tok)] = 1.0
            return coef, 0.0
        if re.fullmatch(_NUMBER, tok):
            return zero, float(tok)
        raise DataError(f"unexpected {tok!r} in the constraint {self.text!r}")
