"""Evaluation of Cargo ``Filter`` / ``Sort`` objects (REFERENCE §9.12) against flat records.

Implemented condition kinds: ``string``, ``number``, ``date``, ``boolean``, ``any``, ``vector``,
``object``/``array`` (``isNull``/``isNotNull``), ``segment`` (needs a resolver).

Filter JSON is **lenient** (CARGO-DOCS 9.1–9.4): unknown keys are dropped at every level, and the filter
degrades as the docs describe instead of failing:

* a filter or group without ``conjonction`` (e.g. spelled ``conjunction``) matches nothing;
* a top-level ``conditions`` array beside ``groups`` is ignored (``{"conjonction":"and","groups":[]}`` matches
  the whole model);
* a group nested in a group (a ``groups`` key on a group) or a group keyed ``condition`` loses those keys, so
  it has no conditions and matches everything;
* a ``string``/``array`` condition with ``value`` instead of ``values`` (or a ``number``/``date``/``boolean``
  one with ``values`` instead of ``value``) is dropped;
* a condition whose ``kind`` does not match the column's ``type``, or on a column the model lacks, matches
  nothing.

Structurally unusable input (a filter that is not an object, an unknown operator, a ``conjonction`` other than
``and``/``or``) still raises :class:`FilterError` (→ ``invalidFilter`` / ``invalidData``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import Any

from .util import parse_datetime

SegmentResolver = Callable[[str], set[str]]


class FilterError(ValueError):
    """The filter is malformed or uses an unsupported condition."""


def _is_null(v: Any) -> bool:
    return v is None


def _as_list(values: Any) -> list[str]:
    if isinstance(values, list):
        return [str(v) for v in values]
    if values is None:
        raise FilterError("missing values")
    return [str(values)]


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _null_check(op: Any, v: Any) -> bool | None:
    """The result of an ``isNull`` / ``isNotNull`` operator, else ``None`` (not a null check)."""
    if op == "isNull":
        return _is_null(v)
    if op == "isNotNull":
        return not _is_null(v)
    return None


#: string operators with an operand: (value is None → result, lower-cased value, operand list) → result
_STRING_OPS: dict[str, tuple[bool, Callable[[str, list[str]], bool]]] = {
    "is": (False, lambda s, xs: s in xs),
    "isNot": (True, lambda s, xs: s not in xs),
    "contains": (False, lambda s, xs: any(x in s for x in xs)),
    "doesNotContain": (True, lambda s, xs: not any(x in s for x in xs)),
    "startsWith": (False, lambda s, xs: any(s.startswith(x) for x in xs)),
    "endsWith": (False, lambda s, xs: any(s.endswith(x) for x in xs)),
}


def _string_cond(cond: dict[str, Any], v: Any) -> bool:
    op = cond.get("operator")
    null = _null_check(op, v)
    if null is not None:
        return null
    if op == "isEmpty":
        return v is None or str(v) == ""
    if op == "isNotEmpty":
        return v is not None and str(v) != ""
    if op not in _STRING_OPS:
        raise FilterError(f"unknown string operator {op!r}")
    values = [x.lower() for x in _as_list(cond.get("values"))]
    when_null, test = _STRING_OPS[str(op)]
    return when_null if v is None else test(str(v).lower(), values)


#: ordered operators with a ``value``: (value is None → result, comparison)
_ORDERED_OPS: dict[str, tuple[bool, Callable[[float, float], bool]]] = {
    "is": (False, lambda x, t: x == t),
    "isNot": (True, lambda x, t: x != t),
    "greaterThan": (False, lambda x, t: x > t),
    "lowerThan": (False, lambda x, t: x < t),
}


def _between(cond: dict[str, Any], x: float | None, conv: Callable[[Any], float | None]) -> bool:
    lo, hi = conv(cond.get("firstValue")), conv(cond.get("lastValue"))
    if lo is None or hi is None:
        raise FilterError("between needs firstValue and lastValue")
    return x is not None and lo <= x <= hi


def _ordered_cond(cond: dict[str, Any], v: Any, conv: Callable[[Any], float | None]) -> bool:
    op = cond.get("operator")
    null = _null_check(op, v)
    if null is not None:
        return null
    x = conv(v)
    if op == "between":
        return _between(cond, x, conv)
    target = conv(cond.get("value"))
    if target is None:
        raise FilterError(f"operator {op!r} needs a value")
    if op not in _ORDERED_OPS:
        raise FilterError(f"unknown operator {op!r}")
    when_null, test = _ORDERED_OPS[str(op)]
    return when_null if x is None else test(x, target)


#: the ``date_precision`` variant in force while :func:`apply` runs ("ms" or "us")
DATE_PRECISION: ContextVar[str] = ContextVar("date_precision", default="ms")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _date_value(v: Any) -> float | None:
    """A date as an integer count of milliseconds (truncated) or microseconds, per ``DATE_PRECISION``."""
    if v is None or v == "":
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        micros = int(float(v) * 1_000_000)
    else:
        text = str(v).strip()
        text = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return parse_datetime(v)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return micros // 1000 if DATE_PRECISION.get() == "ms" else micros


def _date_cond(cond: dict[str, Any], v: Any) -> bool:
    op = cond.get("operator")
    if op in ("is", "isNot"):
        # Date equality compares calendar days (UTC).
        day = str(cond.get("value", ""))[:10]
        if not day:
            raise FilterError("date is/isNot needs a value")
        same = v is not None and str(v)[:10] == day
        return same if op == "is" else not same
    return _ordered_cond(cond, v, _date_value)


def _boolean_cond(cond: dict[str, Any], v: Any) -> bool:
    op = cond.get("operator")
    if op == "isTrue":
        return v is True or v == "true"
    if op == "isFalse":
        return v is False or v == "false"
    if op == "isNull":
        return v is None
    if op == "isNotNull":
        return v is not None
    raise FilterError(f"unknown boolean operator {op!r}")


VALUES_KINDS = ("string", "array")
VALUE_KINDS = ("number", "date", "boolean")
KNOWN_KINDS = (*VALUES_KINDS, *VALUE_KINDS, "any", "vector", "object", "segment")
_NO_OPERAND = ("isNull", "isNotNull", "isEmpty", "isNotEmpty", "isTrue", "isFalse", "between")


def _dropped(cond: Any) -> bool:
    """Whether a lenient parser drops this element of ``conditions`` (CARGO-DOCS 9.3, 9.4)."""
    if not isinstance(cond, dict) or cond.get("kind") not in KNOWN_KINDS:
        return False  # not a condition at all: eval_condition rejects it (an invalid discriminator)
    kind, op = cond["kind"], cond.get("operator")
    if op in _NO_OPERAND or kind == "segment":
        return False
    if kind in VALUES_KINDS:
        return "values" not in cond  # "value" given where "values" is expected
    if kind in VALUE_KINDS:
        return "value" not in cond  # "values" given where "value" is expected
    return False


_TYPE_OF_KIND = {"string": "string", "number": "number", "date": "date", "boolean": "boolean",
                 "array": "array", "object": "object", "vector": "vector"}


def _segment_cond(cond: dict[str, Any], record: dict[str, Any], segments: SegmentResolver | None) -> bool:
    if segments is None:
        raise FilterError("segment conditions are not supported here")
    inside = record.get("_id") in segments(str(cond.get("segmentUuid")))
    if cond.get("operator") == "in":
        return inside
    if cond.get("operator") == "notIn":
        return not inside
    raise FilterError("segment operator must be in|notIn")


def _null_only_cond(cond: dict[str, Any], v: Any) -> bool:
    """``any`` / ``vector`` / ``object`` / ``array`` conditions: the emulator evaluates null checks only."""
    null = _null_check(cond.get("operator"), v)
    if null is None:
        raise FilterError(f"operator {cond.get('operator')!r} is not supported for {cond.get('kind')} conditions "
                          "in the emulator")
    return null


_COLUMN_CONDS: dict[str, Callable[[dict[str, Any], Any], bool]] = {
    "string": _string_cond,
    "number": lambda cond, v: _ordered_cond(cond, v, _num),
    "date": lambda cond, v: _date_cond(cond, v),
    "boolean": lambda cond, v: _boolean_cond(cond, v),
    "any": _null_only_cond, "vector": _null_only_cond, "object": _null_only_cond, "array": _null_only_cond,
}


def _type_mismatch(cond: dict[str, Any], columns: dict[str, str] | None) -> bool:
    """Whether the condition names a column the model lacks, or one of another type (CARGO-DOCS 9.3)."""
    kind = cond.get("kind")
    if columns is None or kind in ("segment", "any"):
        return False
    col_type = columns.get(str(cond.get("columnSlug")))
    return col_type is None or _TYPE_OF_KIND.get(str(kind)) != col_type


def eval_condition(cond: Any, record: dict[str, Any], segments: SegmentResolver | None = None,
                   columns: dict[str, str] | None = None) -> bool:
    """Evaluate one FilterCondition against a record. With ``columns`` (slug → type), a condition on an
    unknown column or whose kind does not match the column type matches nothing."""
    if not isinstance(cond, dict):
        raise FilterError("condition must be an object")
    kind = cond.get("kind")
    if kind not in KNOWN_KINDS:
        raise FilterError(f"condition kind {kind!r} is not supported by the emulator")
    if _type_mismatch(cond, columns):
        return False
    if kind == "segment":
        return _segment_cond(cond, record, segments)
    column = cond.get("columnSlug")
    if not isinstance(column, str):
        raise FilterError("columnSlug is required")
    return _COLUMN_CONDS[str(kind)](cond, record.get(column))


def _combine(conjonction: Any, results: list[bool]) -> bool:
    if conjonction is None:
        return False  # the key was missing or misspelled: the filter degenerates (CARGO-DOCS 9.1)
    if conjonction not in ("and", "or"):
        raise FilterError("conjonction must be 'and' or 'or'")
    if not results:
        return True
    return all(results) if conjonction == "and" else any(results)


def validate_filter(flt: Any) -> None:
    """Raise :class:`FilterError` if ``flt`` is not a usable Filter (unknown keys are not an error)."""
    if not isinstance(flt, dict) or not isinstance(flt.get("groups", []), list):
        raise FilterError("filter must be {conjonction, groups}")
    if flt.get("conjonction") not in ("and", "or", None):
        raise FilterError("conjonction must be 'and' or 'or'")
    for group in flt.get("groups", []):
        if not isinstance(group, dict) or not isinstance(group.get("conditions", []), list):
            raise FilterError("group must be {conjonction, conditions}")
        if group.get("conjonction") not in ("and", "or", None):
            raise FilterError("conjonction must be 'and' or 'or'")


def matches(flt: Any, record: dict[str, Any], segments: SegmentResolver | None = None,
            columns: dict[str, str] | None = None) -> bool:
    """True when ``record`` satisfies ``flt`` (``None`` matches everything), parsed leniently (module doc)."""
    if flt is None:
        return True
    validate_filter(flt)
    group_results = []
    for group in flt.get("groups", []):
        conds = [eval_condition(c, record, segments, columns) for c in group.get("conditions", [])
                 if not _dropped(c)]
        group_results.append(_combine(group.get("conjonction"), conds))
    return _combine(flt.get("conjonction"), group_results)


def _sorted(records: list[dict[str, Any]], sort: Any) -> list[dict[str, Any]]:
    """Stable sort by each ``{columnSlug, kind: asc|desc}`` (the first one wins), nulls last."""
    if not isinstance(sort, list):
        raise FilterError("sort must be an array")
    out = records
    for spec in reversed(sort):
        if not isinstance(spec, dict) or spec.get("kind") not in ("asc", "desc"):
            raise FilterError("sort items must be {columnSlug, kind: asc|desc}")
        col = str(spec.get("columnSlug"))
        present = [r for r in out if r.get(col) is not None]
        missing = [r for r in out if r.get(col) is None]
        present.sort(key=lambda r: (str(type(r.get(col))), r.get(col)), reverse=spec["kind"] == "desc")
        out = present + missing
    return out


def _selected(records: list[dict[str, Any]], flt: Any, segments: SegmentResolver | None,
              columns: dict[str, str] | None, date_precision: str | None) -> list[dict[str, Any]]:
    """The records ``flt`` matches, dates compared at ``date_precision`` (None: the context's)."""
    token = DATE_PRECISION.set(date_precision) if date_precision is not None else None
    try:
        return [r for r in records if matches(flt, r, segments, columns)]
    finally:
        if token is not None:
            DATE_PRECISION.reset(token)


def apply(
    records: list[dict[str, Any]],
    flt: Any = None,
    sort: Any = None,
    limit: Any = None,
    segments: SegmentResolver | None = None,
    columns: dict[str, str] | None = None,
    date_precision: str | None = None,
) -> list[dict[str, Any]]:
    """Filter, sort (stable; nulls last) and cap ``records``; ``columns`` = the model's slug → type;
    ``date_precision``: the variant dates are compared at (default: as set by the caller's context, "ms")."""
    validate_filter(flt) if flt is not None else None
    out = _selected(records, flt, segments, columns, date_precision)
    if sort:
        out = _sorted(out, sort)
    if limit is not None:
        if not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit < 0:
            raise FilterError("limit must be a non-negative number")
        out = out[: int(limit)]
    return out
