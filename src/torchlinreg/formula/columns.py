"""Which table columns a formula reads, and which rows it can use (missing values, levels).

Example:
    >>> from formulaic import Formula
    >>> used_names(Formula("np.log(y) ~ x + C(g) + center(z) + a:b"))
    ['y', 'x', 'g', 'z', 'a', 'b']
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import DataError


def _variables(table, spec) -> list[str]:
    """The table's columns a side of the formula reads."""
    return [c for c in used_names(spec.formula) if c in table.columns]


def used_names(parsed) -> list[str]:
    """Every name a parsed formula (or one side) may read from the data, in order: lookups
    and the names inside evaluated terms (formulaic's own list misses ``center(z)``'s z)."""
    import ast

    from .safety import _factors

    names: dict[str, None] = {}
    for factor in _factors(parsed):
        method = getattr(factor.eval_method, "value", factor.eval_method)
        if method == "lookup":
            names[factor.expr.strip("`")] = None
        elif method == "python":
            for quoted in re.findall(r"`([^`]+)`", factor.expr):
                names[quoted] = None
            try:  # a quoted name, collected above, stands as a name that is not a column
                tree = ast.parse(re.sub(r"`[^`]*`", _QUOTED, factor.expr), mode="eval")
            except SyntaxError:
                continue
            called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
            called |= {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
            # C(g, Sum) / C(g, contr.treatment): a contrast, not a column of the data
            for n in ast.walk(tree):
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "C":
                    for arg in [*n.args[1:], *(k.value for k in n.keywords)]:
                        called |= {id(m) for m in ast.walk(arg)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and id(node) not in called and node.id != _QUOTED:
                    names[node.id] = None
    return list(names)


_QUOTED = "__torchlinreg_quoted__"  # was "_": then collected as a column named "_"


_C_OF_COLUMN = re.compile(r"^C\(\s*(?:`([^`]+)`|([A-Za-z_][\w.]*))\s*[,)]")


def _categories(spec) -> list[tuple[str, list]]:
    """(table column, levels) of each categorical factor that reads one column directly:
    a bare column (``g``, `` `a b` ``) or ``C(column, ...)``."""
    out = []
    for expr, (kind, state) in spec.encoder_state.items():
        if getattr(kind, "value", kind) != "categorical" or "categories" not in state:
            continue
        match = _C_OF_COLUMN.match(expr)
        name = (match.group(1) or match.group(2)) if match else expr.strip("`")
        out.append((name, list(state["categories"])))
    return out


def _complete_rows(table, spec, *, raise_: bool) -> np.ndarray:
    """Rows with every value the side reads and only levels seen in training."""
    ok = np.ones(len(table), dtype=bool)
    for col in _variables(table, spec):
        isna = table[col].isna().to_numpy()
        if isna.any() and raise_:
            i = int(np.flatnonzero(isna)[0])
            raise _located(
                f"column {col!r} has a missing value at row {i + 1} (counting from 1); leave "
                "such rows out (the CLI: --missing drop), or predict them as NaN (the CLI's "
                "predict --missing keep)",
                i + 1,
                col,
            )
        ok &= ~isna
    for col, levels in _categories(spec):
        if col not in table.columns:
            continue
        values = table[col]
        unseen = (~values.isin(levels) & values.notna()).to_numpy()
        if unseen.any() and raise_:
            i = int(np.flatnonzero(unseen)[0])
            shown = ", ".join(repr(v) for v in levels[:10]) + (", ..." if len(levels) > 10 else "")
            raise _located(
                f"column {col!r} has level {values.iloc[i]!r} at row {i + 1} (counting from "
                f"1), unseen in training (levels: {shown}); leave such rows out (the CLI: "
                "--missing drop), or predict them as NaN (the CLI's predict --missing keep)",
                i + 1,
                col,
            )
        ok &= ~unseen
    return ok


def _raise_missing(table, rows: np.ndarray, *specs) -> None:
    """The first row formulaic dropped, and why, as one line."""
    kept = np.zeros(len(table), dtype=bool)
    kept[rows] = True
    i = int(np.flatnonzero(~kept)[0])
    for spec in specs:
        for col in _variables(table, spec):
            if table[col].isna().iloc[i]:
                raise _located(
                    f"column {col!r} has a missing value at row {i + 1} (counting from 1); "
                    "pass missing='drop' to leave incomplete rows out",
                    i + 1,
                    col,
                )
    raise _located(
        f"a term of the formula is NaN at row {i + 1} (counting from 1; e.g. the log of a "
        "value <= 0); pass missing='drop' to leave such rows out, or change the formula",
        i + 1,
    )


def _located(message: str, row: int, column: str | None = None) -> DataError:
    """A DataError whose message says where; ``row`` and ``column`` kept for callers."""
    err = DataError(message)
    err.row, err.column = row, column
    return err
