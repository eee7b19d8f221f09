"""Check a Cargo filter completely before any credit is spent.

Cargo drops unknown keys inside filter JSON silently (CARGO-DOCS 9.1-9.4): a misspelled
``conjonction``, a nested group, ``value`` where ``values`` is expected or a condition kind that
does not fit its column all *degrade* the filter (to nothing, or to the whole model) with HTTP
200, and the batch then runs, and is charged, on the wrong records. So every level is checked
against the filter grammar of REFERENCE 9.12: known keys only, ``conjonction`` stated, operators
that fit the condition's kind, the value fields each operator needs, and (given the model's
columns) column slugs that exist with a type that fits the condition.

Example:
    >>> check_filter({"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
    ...     {"kind": "string", "columnSlug": "name", "operator": "is", "values": ["x"]}]}]}, {"name": "string"})
    >>> check_filter({"conjonction": "and", "groups": [{"conjonction": "and", "condition": []}]})
    Traceback (most recent call last):
    ...
    cargo_gtm.errors.CargoInputError: Filter at filter.groups[0] has unknown key 'condition' (did you mean 'conditions'?); Cargo would drop it silently and run the batch on other records than intended. Allowed keys: conditions, conjonction.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

from ..errors import CargoInputError

__all__ = ["check_filter", "check_condition"]

_VALUE_OPS = ("is", "isNot", "contains", "doesNotContain", "startsWith", "endsWith")
_NULL_OPS = ("isNull", "isNotNull")
_EMPTY_OPS = ("isEmpty", "isNotEmpty")
_CMP_OPS = ("is", "isNot", "greaterThan", "lowerThan")

# kind -> operator -> (required extra fields, optional extra fields)
_OPERATORS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "string": {**{op: (("values",), ()) for op in _VALUE_OPS}, **{op: ((), ()) for op in _NULL_OPS + _EMPTY_OPS}},
    "number": {**{op: (("value",), ()) for op in _CMP_OPS}, "between": (("firstValue", "lastValue"), ()),
               **{op: ((), ()) for op in _NULL_OPS}},
    "date": {**{op: (("value",), ()) for op in _CMP_OPS}, "between": (("firstValue", "lastValue"), ()),
             **{op: ((), ()) for op in _NULL_OPS}},
    "boolean": {op: ((), ()) for op in ("isTrue", "isFalse", *_NULL_OPS)},
    "objectProperty": {**{op: (("value",), ()) for op in (*_VALUE_OPS, "greaterThan", "lowerThan")},
                       **{op: ((), ()) for op in _NULL_OPS + _EMPTY_OPS}, "between": (("value", "otherValue"), ())},
    "object": {**{op: ((), ()) for op in _NULL_OPS}, "matchConditions": (("conjonction", "propertyConditions"), ())},
    "array": {**{op: ((), ()) for op in _NULL_OPS}, "matchConditions": (("conjonction", "propertyConditions"), ())},
    "vector": {op: ((), ()) for op in _NULL_OPS},
    "any": {op: ((), ()) for op in _NULL_OPS},
    "segment": {op: (("segmentUuid",), ()) for op in ("in", "notIn")},
}
# kinds with a column, and the column types each fits (CARGO-DOCS 9.3: a mismatch matches nothing)
_COLUMN_KINDS = {"string": {"string"}, "number": {"number"}, "date": {"date"}, "boolean": {"boolean"},
                 "object": {"object"}, "array": {"array"}, "vector": {"vector"}, "any": {"any"},
                 "objectProperty": {"object", "array", "any"}}
_OTHER_KEYS = {"sql": {"kind", "name", "clause"},
               "occurrence": {"kind", "relatedModelUuid", "frequency", "period", "conjonction", "conditions"},
               "enrollment": {"kind", "workflowUuid", "activityKind", "nodeSlug", "frequency", "period"}}
_REQUIRED_OTHER = {"sql": ("name", "clause"), "occurrence": ("relatedModelUuid", "conditions", "conjonction"),
                   "enrollment": ("workflowUuid", "activityKind")}
ALL_KINDS = sorted({*_OPERATORS, *_OTHER_KEYS})


def _fail(path: str, problem: str) -> CargoInputError:
    return CargoInputError(f"Filter at {path} {problem}")


def _keys(obj: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in obj:
        if key in allowed:
            continue
        if key == "conjunction":
            raise _fail(path, "uses 'conjunction'; Cargo spells it 'conjonction' and silently ignores the "
                              "misspelling. Rename the key to 'conjonction'.")
        close = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _fail(path, f"has unknown key {key!r}{hint}; Cargo would drop it silently and run the batch on "
                          f"other records than intended. Allowed keys: {', '.join(sorted(allowed))}.")


def _conjonction(obj: Mapping[str, Any], path: str) -> None:
    if "conjonction" not in obj:
        raise _fail(path, "has no 'conjonction'. State it ('and' or 'or'): Cargo's default is 'or', which is "
                          "rarely what is meant.")
    if obj["conjonction"] not in ("and", "or"):
        raise _fail(path, f"has 'conjonction' {obj['conjonction']!r}; use 'and' or 'or'.")


def check_filter(filter: Any, columns: Mapping[str, str] | None = None, path: str = "filter") -> None:
    """Raise :class:`CargoInputError` for anything Cargo would silently misread in ``filter``.

    ``columns`` maps the model's column slugs to their types; with it, slugs and kinds are checked.
    """
    if not isinstance(filter, Mapping):
        raise _fail(path, "must be an object with 'conjonction' and 'groups'.")
    if "conditions" in filter:
        raise _fail(path, "has top-level 'conditions'; Cargo ignores them and matches the whole model. Put "
                          "conditions inside 'groups': {'conjonction': 'and', 'groups': [{'conjonction': 'and', "
                          "'conditions': [...]}]}.")
    _keys(filter, {"conjonction", "groups"}, path)
    _conjonction(filter, path)
    groups = filter.get("groups", [])
    if not isinstance(groups, list):
        raise _fail(path, "has 'groups' that is not a list.")
    for i, group in enumerate(groups):
        gpath = f"{path}.groups[{i}]"
        if not isinstance(group, Mapping):
            raise _fail(gpath, "must be an object with 'conjonction' and 'conditions'.")
        if "groups" in group:
            raise _fail(gpath, "nests 'groups' inside a group; Cargo filters have two levels (filter → groups → "
                               "conditions) and would drop the nested group. Flatten it into conditions.")
        _keys(group, {"conjonction", "conditions"}, gpath)
        _conjonction(group, gpath)
        conditions = group.get("conditions")
        if not isinstance(conditions, list):
            raise _fail(gpath, "needs 'conditions', a list of conditions.")
        for j, cond in enumerate(conditions):
            check_condition(cond, columns, f"{gpath}.conditions[{j}]")


def check_condition(cond: Any, columns: Mapping[str, str] | None = None, path: str = "condition",
                    default_kind: str | None = None) -> None:
    """Check one filter condition (see :func:`check_filter`)."""
    if not isinstance(cond, Mapping):
        raise _fail(path, "must be a condition object with a 'kind'.")
    if "conditions" in cond and cond.get("kind") != "occurrence" or "groups" in cond:
        raise _fail(path, "is a group nested inside a group; Cargo filters have two levels and would drop "
                          "it. Move its conditions up into the group, or into another group of the filter.")
    _check_finite(cond, path)
    kind = cond.get("kind", default_kind)
    if kind not in ALL_KINDS:
        raise _fail(path, f"has kind {kind!r}; use one of {', '.join(ALL_KINDS)}.")
    if kind in _OTHER_KEYS:
        _check_other(cond, kind, path)
        return
    operator = _check_fields(cond, kind, path)
    _check_values(cond, kind, path)
    if kind in ("object", "array") and operator == "matchConditions":
        _check_properties(cond, path)
    if columns is not None and kind in _COLUMN_KINDS and "relatedModelUuid" not in cond and default_kind is None:
        _check_column(cond["columnSlug"], kind, columns, path)


def _check_finite(cond: Mapping[str, Any], path: str) -> None:
    """No NaN or infinite number among the condition's values: JSON has no such number, and a comparison
    with one matches no record (the batch would run, and be charged, on nothing)."""
    for key, value in cond.items():
        values = value if isinstance(value, list) else [value]
        bad = next((v for v in values if isinstance(v, float) and not math.isfinite(v)), None)
        if bad is not None:
            raise _fail(path, f"has {key!r} {bad!r}, which is not a finite number; JSON cannot carry it and no "
                              "record compares equal, greater or lower to it. Use a finite number, or "
                              "isNull/isNotNull to select records without a value.")


def _check_other(cond: Mapping[str, Any], kind: str, path: str) -> None:
    """A ``sql``, ``occurrence`` or ``enrollment`` condition: its keys, and an occurrence's inner conditions."""
    _keys(cond, _OTHER_KEYS[kind], path)
    missing = [k for k in _REQUIRED_OTHER[kind] if k not in cond]
    if missing:
        raise _fail(path, f"({kind}) needs {', '.join(missing)}.")
    if kind != "occurrence":
        return
    _conjonction(cond, path)
    if not isinstance(cond["conditions"], list):
        raise _fail(path, "(occurrence) needs 'conditions', a list.")
    for j, inner in enumerate(cond["conditions"]):
        check_condition(inner, None, f"{path}.conditions[{j}]")  # related model: columns unknown here


def _check_fields(cond: Mapping[str, Any], kind: str, path: str) -> str:
    """The condition's operator, after checking that it fits ``kind`` and that the keys are the ones it takes."""
    operator = cond.get("operator")
    ops = _OPERATORS[kind]
    if operator not in ops:
        raise _fail(path, f"has operator {operator!r}, which does not fit a {kind!r} condition; use one of "
                          f"{', '.join(ops)}.")
    required, optional = ops[operator]
    base = {"kind", "operator"} | ({"columnSlug", "relatedModelUuid"} if kind != "segment" else set())
    if kind == "objectProperty":
        base.add("propertyName")
    _keys(cond, base | set(required) | set(optional), path)
    missing = [k for k in required if k not in cond]
    if kind != "segment" and "columnSlug" not in cond:
        missing.insert(0, "columnSlug")
    if kind == "objectProperty" and "propertyName" not in cond:
        missing.append("propertyName")
    if missing:
        raise _fail(path, f"({kind} {operator}) needs {', '.join(missing)}.")
    return str(operator)


def _check_properties(cond: Mapping[str, Any], path: str) -> None:
    """The ``propertyConditions`` of an object/array ``matchConditions`` condition."""
    _conjonction(cond, path)
    props = cond["propertyConditions"]
    if not isinstance(props, list):
        raise _fail(path, "needs 'propertyConditions', a list.")
    for j, inner in enumerate(props):
        if isinstance(inner, Mapping) and inner.get("kind", "objectProperty") != "objectProperty":
            raise _fail(f"{path}.propertyConditions[{j}]", "must be an objectProperty condition.")
        check_condition(inner, None, f"{path}.propertyConditions[{j}]", default_kind="objectProperty")


def _check_column(slug: Any, kind: str, columns: Mapping[str, str], path: str) -> None:
    """The condition's column exists in the model and its type fits ``kind``."""
    if slug not in columns and str(slug).startswith("_"):
        return  # Cargo's own record columns (_id, _title, _time) are not among the model's columns
    if slug not in columns:
        close = difflib.get_close_matches(str(slug), list(columns), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
        raise _fail(path, f"names column {slug!r}, which the model does not have; Cargo would match no "
                          f"record (or, negated, every record).{hint}")
    if str(columns[slug]) not in _COLUMN_KINDS[kind]:
        raise _fail(path, f"is a {kind!r} condition on column {slug!r} of type {columns[slug]!r}; Cargo "
                          f"matches nothing when they differ. Use kind {str(columns[slug])!r}.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_strings(value: Any) -> bool:
    return isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)


# kind -> (value keys, the check each value must pass, what the value must be)
_VALUE_CHECKS: dict[str, tuple[tuple[str, ...], Any, str]] = {
    "string": (("values",), _is_strings, "a string or a list of strings"),
    "number": (("value", "firstValue", "lastValue"), _is_number, "a number"),
    "date": (("value", "firstValue", "lastValue"), lambda v: isinstance(v, str), "date text (ISO 8601)"),
}


def _check_values(cond: Mapping[str, Any], kind: str, path: str) -> None:
    """The value fields have the JSON type ``kind`` needs (Cargo would compare otherwise, and match nothing)."""
    keys, fits, what = _VALUE_CHECKS.get(kind, ((), None, ""))
    for key in keys:
        if key in cond and not fits(cond[key]):
            if kind == "string":
                raise _fail(path, f"needs {key!r} as {what}.")
            raise _fail(path, f"needs {key!r} as {what}, not {cond[key]!r}.")
