"""What a formula may evaluate: data columns, numpy and formulaic's transforms, nothing else.

formulaic evaluates the Python in a formula's terms (``np.log(x)``, ``I(x ** 2)``) with
``eval``. A formula read back from a model file is untrusted input, so every term is
parsed with :mod:`ast` and checked against a whitelist before anything evaluates it, at
fit time too (a model that fits can always be loaded again).

Example (the error message shortened):
    >>> check_formula("y ~ x + C(g) + np.log(z) + I(x ** 2)")
    >>> check_formula("y ~ x + {open('f')}")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    torchlinreg.errors.DataError: formula term "open('f')" uses 'open', which formulas ...
"""

from __future__ import annotations

import ast
import re

from ..errors import DataError

# formulaic's transforms that compute only from their arguments (no lookups by name, no I/O)
FUNCTIONS = frozenset(
    {
        *("C", "I", "Q", "center", "scale", "standardize", "poly", "bs", "cs", "cr", "cc"),
        *("log", "log2", "log10", "exp", "exp2", "exp10", "lag"),
        *("Treatment", "Sum", "Helmert", "Diff", "Poly"),
    }
)
# module-like roots: numpy (its ufuncs and a few element-wise functions), formulaic's contrasts
ROOTS = frozenset({"np", "numpy", "contr"})
NUMPY_FUNCTIONS = frozenset({"round", "around", "clip", "where", "abs", "sign", "isnan"})
CONTRASTS = frozenset({"treatment", "sum", "helmert", "diff", "poly"})
_NODES = (
    ast.Expression,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.BoolOp,
    ast.Call,
    ast.keyword,
    ast.Attribute,
    ast.List,
    ast.Tuple,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
    ast.boolop,
)
_BACKTICKS = re.compile(r"`[^`]*`")
_SHOWN = "numpy's element-wise functions (np.log, np.power) and C, I, center, scale, poly, Q"


def check_expression(expr: str) -> None:
    """Refuse a term whose Python is more than arithmetic on columns and allowed calls."""
    source = _BACKTICKS.sub("_quoted_name", expr)  # `a column` is one name
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise DataError(f"formula term {expr!r} is not valid Python; check the formula") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise DataError(
                f"formula term {expr!r} uses {type(node).__name__}, which formulas may not "
                "use; use arithmetic, data columns and function calls"
            )
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise DataError(_refused(expr, node.id))
        if isinstance(node, ast.Attribute):
            _check_attribute(expr, node)
        if isinstance(node, ast.Call):
            _check_call(expr, node.func)


def _refused(expr: str, name: str) -> str:
    return (
        f"formula term {expr!r} uses {name!r}, which formulas may not call; use data "
        f"columns, {_SHOWN}"
    )


def _check_attribute(expr: str, node: ast.Attribute) -> None:
    """Only ``np.f`` for numpy's element-wise functions (``np.log``; never ``np.save``,
    which writes files) and ``contr.treatment`` and its kin: no attributes of values."""
    root = node.value
    if not (isinstance(root, ast.Name) and root.id in ROOTS):
        raise DataError(_refused(expr, ast.unparse(node)))
    if root.id == "contr":
        if node.attr not in CONTRASTS:
            raise DataError(_refused(expr, ast.unparse(node)))
    elif not _numpy_elementwise(node.attr):
        raise DataError(_refused(expr, ast.unparse(node)))


def _numpy_elementwise(name: str) -> bool:
    import numpy as np

    if name.startswith("_") or not hasattr(np, name):
        return False
    return isinstance(getattr(np, name), (np.ufunc, float)) or name in NUMPY_FUNCTIONS


def _check_call(expr: str, func: ast.expr) -> None:
    if isinstance(func, ast.Name) and func.id not in FUNCTIONS:
        raise DataError(_refused(expr, func.id))
    if not isinstance(func, (ast.Name, ast.Attribute)):
        raise DataError(_refused(expr, ast.unparse(func)))


def check_formula(formula: str) -> None:
    """Check every evaluated term of ``formula`` (both sides) before formulaic runs it."""
    from formulaic import Formula

    if not isinstance(formula, str) or not formula.strip():
        raise DataError(f"a formula is a non-empty string such as 'y ~ x1 + C(g)'; got {formula!r}")
    if len(formula) > 10_000:
        raise DataError(f"the formula is {len(formula)} characters long; at most 10000")
    try:
        parsed = Formula(formula)
    except Exception as exc:  # formulaic's parser errors have no common base
        raise DataError(f"cannot parse formula {formula!r}: {_first_line(exc)}") from None
    check_parsed(parsed)


def check_parsed(parsed) -> None:
    """Check the terms of a formula formulaic has parsed (one side or both)."""
    for factor in _factors(parsed):
        method = getattr(factor.eval_method, "value", factor.eval_method)
        if method == "python":
            check_expression(factor.expr)
        elif method == "lookup" and "__" in factor.expr:
            # a lookup may walk attributes (`x.__class__`): no dunder names at all
            raise DataError(_refused(factor.expr, factor.expr))


def _factors(parsed) -> list:
    sides = [parsed.lhs, parsed.rhs] if hasattr(parsed, "lhs") else [parsed]
    out = []
    for side in sides:
        for term in side:
            out.extend(term.factors)
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
