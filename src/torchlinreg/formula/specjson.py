"""A formulaic ModelSpec as plain JSON, and back: formula, encoder and transform states.

Only what formulaic needs to encode new rows the same way is kept: the side's formula
(formulaic's normalised text, terms in the model's order), each factor's kind and state
(levels; contrasts by name and parameters) and each stateful transform's parameters
(``center``'s mean, ``scale``'s scale, ``poly``'s recurrence). Reading checks the types
of everything and re-checks every term (:mod:`.safety`).

Example:
    >>> import pandas as pd
    >>> from formulaic import model_matrix
    >>> df = pd.DataFrame({"y": [1.0, 2], "g": ["a", "b"]})
    >>> record = spec_to_json(model_matrix("y ~ C(g, contr.treatment('b'))", df).rhs.model_spec)
    >>> record["encoder_state"][0][1][1]["contrasts"]
    ['treatment', {'base': 'b'}, ['a', 'b']]
    >>> list(spec_from_json(record, "rhs").get_model_matrix(pd.DataFrame({"g": ["a"]})).columns)
    ['Intercept', "C(g, contr.treatment('b'))[T.a]"]
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import DataError
from . import jsonstate
from .safety import check_parsed

_CONTRASTS = {
    "treatment": "TreatmentContrasts",
    "sum": "SumContrasts",
    "helmert": "HelmertContrasts",
    "diff": "DiffContrasts",
    "poly": "PolyContrasts",
}
_KINDS = ("numerical", "categorical", "constant")
_MAX_LEVELS = 100_000


def _contrasts_json(cs) -> list:
    import formulaic.transforms.contrasts as fc

    contrasts = cs.contrasts
    for name, cls in _CONTRASTS.items():
        if type(contrasts) is getattr(fc, cls):
            fields = {}
            for f in dataclasses.fields(contrasts):
                value = getattr(contrasts, f.name)
                if type(value).__name__ == "Sentinel":  # UNSET: formulaic picks the first level
                    continue
                fields[f.name] = jsonstate.encode(value)
            return [name, fields, [jsonstate.encode(v) for v in cs.levels]]
    raise jsonstate.StateError(f"contrasts {type(contrasts).__name__}")


def _contrasts_from(record: Any):
    import formulaic.transforms.contrasts as fc

    if not (isinstance(record, list) and len(record) == 3 and record[0] in _CONTRASTS):
        raise DataError("the formula encoding names unknown contrasts")
    name, fields, levels = record
    if not isinstance(fields, dict) or not isinstance(levels, list):
        raise DataError("the formula encoding's contrasts are malformed")
    cls = getattr(fc, _CONTRASTS[name])
    allowed = {f.name for f in dataclasses.fields(cls)}
    if set(fields) - allowed:
        raise DataError(f"the formula encoding's {name} contrasts have unknown fields")
    try:
        contrasts = cls(**{k: jsonstate.decode(v) for k, v in fields.items()})
    except (TypeError, ValueError) as exc:
        raise DataError(f"the formula encoding's {name} contrasts are invalid ({exc})") from None
    return fc.ContrastsState(contrasts=contrasts, levels=_levels(levels))


def _levels(values: Any) -> list:
    if not isinstance(values, list) or len(values) > _MAX_LEVELS:
        raise DataError("the formula encoding's levels are not a list")
    levels = [jsonstate.decode(v) for v in values]
    if not all(isinstance(v, (str, int, float, bool)) for v in levels):
        raise DataError("the formula encoding's levels are not strings or numbers")
    if len(set(levels)) != len(levels):
        raise DataError("the formula encoding's levels repeat")
    return levels


def _state_json(kind: str, state: dict) -> dict:
    out = {}
    for key, value in state.items():
        if key == "contrasts":
            out[key] = _contrasts_json(value)
        elif key == "categories":
            out[key] = [jsonstate.encode(v) for v in value]
        else:
            out[str(key)] = jsonstate.encode(value)
    return out


def spec_to_json(spec) -> dict:
    """formula, encoder_state and transform_state of a ModelSpec as plain JSON."""
    encoders = []
    for expr, (kind, state) in spec.encoder_state.items():
        kind = getattr(kind, "value", str(kind))
        encoders.append([str(expr), [kind, _state_json(kind, state)]])
    transforms = [[str(k), jsonstate.encode(v)] for k, v in spec.transform_state.items()]
    return {
        # the terms, not the text: formulaic's text drops "- 1", and would add an intercept
        "terms": [str(term) for term in spec.formula],
        "ensure_full_rank": bool(spec.ensure_full_rank),
        "encoder_state": encoders,
        "transform_state": transforms,
    }


def spec_from_json(record: Any, side: str):
    """A ModelSpec from :func:`spec_to_json`'s record, every part type-checked."""
    from formulaic import ModelSpec
    from formulaic.parser.types import Factor

    if not isinstance(record, dict) or set(record) != {
        "terms",
        "ensure_full_rank",
        "encoder_state",
        "transform_state",
    }:
        raise DataError(f"the formula encoding's {side} side is malformed")
    terms = record["terms"]
    if not (
        isinstance(terms, list)
        and all(isinstance(t, str) and len(t) < 10_000 for t in terms)
        and len(terms) < 100_000
        and isinstance(record["ensure_full_rank"], bool)
    ):
        raise DataError(f"the formula encoding's {side} terms are malformed")
    formula = _parse_terms(terms, side)
    encoders = {}
    for item in _pairs(record["encoder_state"], side):
        expr, value = item
        if not (isinstance(value, list) and len(value) == 2 and value[0] in _KINDS):
            raise DataError(f"the formula encoding's state of {expr[:60]!r} is malformed")
        kind, state = value
        if not isinstance(state, dict):
            raise DataError(f"the formula encoding's state of {expr[:60]!r} is malformed")
        decoded = {}
        for key, v in state.items():
            if key == "contrasts":
                decoded[key] = _contrasts_from(v)
            elif key == "categories":
                decoded[key] = _levels(v)
            else:
                decoded[key] = jsonstate.decode(v)
        encoders[expr] = (Factor.Kind(kind), decoded)
    transforms = {k: jsonstate.decode(v) for k, v in _pairs(record["transform_state"], side)}
    try:
        return ModelSpec(
            formula=formula,
            ensure_full_rank=record["ensure_full_rank"],
            encoder_state=encoders,
            transform_state=transforms,
        )
    except Exception as exc:
        raise DataError(f"the formula encoding's {side} side is invalid ({exc})") from None


def _parse_terms(terms: list[str], side: str):
    from formulaic import Formula

    try:
        parsed = Formula(terms)
    except Exception as exc:
        raise DataError(f"the formula encoding's {side} terms do not parse ({exc})") from None
    check_parsed(parsed)
    if [str(t) for t in parsed] != terms:
        raise DataError(f"the formula encoding's {side} terms are not formulaic's own")
    return parsed


def _pairs(items: Any, side: str) -> list:
    if not isinstance(items, list) or not all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in items
    ):
        raise DataError(f"the formula encoding's {side} states are not (name, state) pairs")
    return items
