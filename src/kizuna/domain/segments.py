"""Segments as a rule tree: parse, validate and describe, with no I/O.

A segment definition is plain data (YAML or JSON) written by marketers, so
it is validated here node by node and every error names the node with a
JSON-pointer path (``/rule/and/1/value``): "invalid segment" alone would send
people hunting through a long file. The tree is compiled to parameterised
SQL elsewhere (:mod:`kizuna.automation.segments_sql`); this module only
decides what a rule *means*.

Node shapes::

    {"and": [rule, ...]}   {"or": [rule, ...]}   {"not": rule}
    {"field": "region", "op": "eq", "value": "東京都"}
    {"field": "attributes.plan", "op": "in", "value": ["gold", "silver"]}
    {"consent": "email"}                       # granted; "granted": false for the opposite
    {"aggregate": "orders", "op": "gte", "value": 3, "days": 90}
    {"aggregate": "category_spend", "category": "CAT-1", "op": "gte", "value": 10000}
    {"aggregate": "attended_events", "op": "gte", "value": 1, "days": 365}
    {"survey": "nps", "op": "lte", "value": 6, "days": 30}   # any such answer

Fields and aggregates are looked up in registries (:data:`FIELDS`,
:data:`AGGREGATES`) so that later feature areas (scoring runs, tiers, points)
add theirs with :func:`register_field` / :func:`register_aggregate` instead
of editing the parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from kizuna.domain.clock import local_date, local_day_range
from kizuna.domain.vocabulary import CONSENT_CHANNELS, SURVEY_KINDS, SURVEY_SCALES
from kizuna.errors import SegmentError

ValueType = Literal["string", "number", "bool", "date", "datetime"]

#: Operators by the kind of value they compare.
ORDER_OPS = ("eq", "ne", "lt", "lte", "gt", "gte")
SET_OPS = ("in", "not_in")
PRESENCE_OPS = ("is_set", "is_not_set")
TEXT_OPS = ("contains", "starts_with")
OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "string": ("eq", "ne", *SET_OPS, *TEXT_OPS, *PRESENCE_OPS),
    "number": (*ORDER_OPS, *SET_OPS, *PRESENCE_OPS),
    "bool": ("eq", "ne", *PRESENCE_OPS),
    "date": (*ORDER_OPS, *PRESENCE_OPS, "within_last_days"),
    "datetime": (*ORDER_OPS, *PRESENCE_OPS, "within_last_days"),
}

#: Attribute keys are user data; restricting their spelling keeps them from
#: being mistaken for JSON paths or anything stranger.
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_DEPTH = 32
MAX_LIST = 1000


@dataclass(frozen=True)
class FieldSpec:
    """A field a rule may compare: its value type and a line for ``--help`` and docs."""

    name: str
    type: ValueType
    help: str = ""


@dataclass(frozen=True)
class AggregateSpec:
    """A per-customer aggregate: a numeric measure over a window of local days.

    ``params`` names extra required string parameters (e.g. ``category``).
    """

    name: str
    help: str
    params: tuple[str, ...] = ()
    windowed: bool = True


FIELDS: dict[str, FieldSpec] = {}
AGGREGATES: dict[str, AggregateSpec] = {}


def register_field(spec: FieldSpec) -> None:
    """Make ``spec.name`` usable in rules (its SQL lives in the compiler's registry)."""
    FIELDS[spec.name] = spec


def register_aggregate(spec: AggregateSpec) -> None:
    """Make an aggregate usable in rules (its SQL lives in the compiler's registry)."""
    AGGREGATES[spec.name] = spec


for _spec in (
    FieldSpec("external_id", "string", "the customer id of the source system"),
    FieldSpec("name", "string", "full name"),
    FieldSpec("email", "string", "email address"),
    FieldSpec("phone", "string", "phone number"),
    FieldSpec("gender", "string", "female, male, other or unknown"),
    FieldSpec("region", "string", "prefecture or region"),
    FieldSpec("postal_code", "string", "postal code"),
    FieldSpec("occupation", "string", "occupation"),
    FieldSpec("language", "string", "preferred language (ja, en)"),
    FieldSpec("timezone", "string", "the customer's IANA timezone"),
    FieldSpec("birthday", "date", "date of birth"),
    FieldSpec("signup_at", "datetime", "when the customer signed up"),
):
    register_field(_spec)

for _agg in (
    AggregateSpec("orders", "number of completed orders"),
    AggregateSpec("spend", "sum of completed order totals, in minor units"),
    AggregateSpec(
        "category_spend",
        "spend on order lines of a category (by external id) or its subcategories",
        params=("category",),
    ),
    AggregateSpec("attended_events", "community events attended"),
    AggregateSpec("events", "behaviour events of a type (page_view, login, ...)", ("type",)),
    AggregateSpec("reviews", "reviews and UGC posted"),
):
    register_aggregate(_agg)


# --- the tree -----------------------------------------------------------------


@dataclass(frozen=True)
class And:
    children: tuple[Rule, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Rule, ...]


@dataclass(frozen=True)
class Not:
    child: Rule


@dataclass(frozen=True)
class Compare:
    """``field op value``; ``attribute`` is set for ``attributes.<key>`` fields."""

    field: str
    op: str
    value: Any
    type: ValueType
    attribute: str | None = None


@dataclass(frozen=True)
class Consent:
    channel: str
    granted: bool = True


@dataclass(frozen=True)
class Aggregate:
    """``measure(params) over the last `days` local days  op  value``; no days = all time."""

    measure: str
    op: str
    value: float
    days: int | None = None
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SurveyAnswer:
    """The customer gave at least one ``kind`` answer with ``score op value`` in the window."""

    kind: str
    op: str
    value: int
    days: int | None = None


Rule = And | Or | Not | Compare | Consent | Aggregate | SurveyAnswer


@dataclass(frozen=True)
class SegmentDefinition:
    name: str
    rule: Rule
    description: str = ""
    document: Mapping[str, Any] = field(default_factory=dict)


# --- parsing ------------------------------------------------------------------


def _fail(path: str, message: str) -> SegmentError:
    return SegmentError(path or "/", message)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_keys(node: Mapping[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(set(node) - allowed)
    if extra:
        raise _fail(f"{path}/{extra[0]}", f"unknown key {extra[0]!r}; allowed: {sorted(allowed)}")


def _window(node: Mapping[str, Any], path: str) -> int | None:
    days = node.get("days")
    if days is None:
        return None
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 36600:
        raise _fail(f"{path}/days", f"days must be a whole number from 1 to 36600, got {days!r}")
    return days


def _scalar(value: Any, vtype: ValueType, path: str, op: str) -> Any:
    if op == "within_last_days":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _fail(path, f"within_last_days needs a whole number of days, got {value!r}")
        return value
    if vtype == "string":
        if not isinstance(value, str):
            raise _fail(path, f"expected a string, got {type(value).__name__} {value!r}")
        return value
    if vtype == "number":
        if not _is_number(value):
            raise _fail(path, f"expected a number, got {type(value).__name__} {value!r}")
        return value
    if vtype == "bool":
        if not isinstance(value, bool):
            raise _fail(path, f"expected true or false, got {value!r}")
        return value
    if vtype == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return date.fromisoformat(str(value)) if isinstance(value, str) else _bad()
        except ValueError:
            raise _fail(path, f"expected a date such as 2025-04-01, got {value!r}") from None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else _bad()
        except ValueError:
            raise _fail(
                path, f"expected a date-time such as 2025-04-01T09:00+09:00, got {value!r}"
            ) from None
    if moment.tzinfo is None:
        raise _fail(path, f"date-time {value!r} has no UTC offset; add one such as +09:00")
    return moment


def _bad() -> Any:
    raise ValueError


def _value_type_of(value: Any, path: str) -> ValueType:
    """Attribute values are untyped JSON, so the rule's value says how to compare."""
    probe = value[0] if isinstance(value, list) and value else value
    if isinstance(probe, bool):
        return "bool"
    if _is_number(probe):
        return "number"
    if isinstance(probe, str):
        return "string"
    raise _fail(path, f"expected a string, number or boolean, got {probe!r}")


def _parse_compare(node: Mapping[str, Any], path: str) -> Compare:
    _check_keys(node, {"field", "op", "value"}, path)
    name = node["field"]
    if not isinstance(name, str):
        raise _fail(f"{path}/field", f"field must be a string, got {name!r}")
    op = node.get("op", "eq")
    if not isinstance(op, str):
        raise _fail(f"{path}/op", f"op must be a string, got {op!r}")
    attribute: str | None = None
    if name.startswith("attributes."):
        attribute = name.removeprefix("attributes.")
        if not ATTRIBUTE_KEY.match(attribute):
            raise _fail(
                f"{path}/field",
                f"attribute key {attribute!r} is not allowed; use letters, digits and _ "
                "(up to 64, not starting with a digit)",
            )
        if op in PRESENCE_OPS:
            vtype: ValueType = "string"
        elif "value" not in node:
            raise _fail(f"{path}/value", f"op {op!r} needs a value")
        else:
            vtype = _value_type_of(node["value"], f"{path}/value")
    else:
        spec = FIELDS.get(name)
        if spec is None:
            raise _fail(
                f"{path}/field",
                f"unknown field {name!r}; known: {sorted(FIELDS)} or attributes.<key>",
            )
        vtype = spec.type
    if op not in OPS_BY_TYPE[vtype]:
        raise _fail(
            f"{path}/op",
            f"op {op!r} does not apply to {vtype} field {name!r}; use one of {list(OPS_BY_TYPE[vtype])}",
        )
    if op in PRESENCE_OPS:
        if "value" in node:
            raise _fail(f"{path}/value", f"op {op!r} takes no value")
        return Compare(name, op, None, vtype, attribute)
    if "value" not in node:
        raise _fail(f"{path}/value", f"op {op!r} needs a value")
    value = node["value"]
    if op in SET_OPS:
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise _fail(f"{path}/value", f"op {op!r} needs a list of 1 to {MAX_LIST} values")
        items = tuple(_scalar(v, vtype, f"{path}/value/{i}", "eq") for i, v in enumerate(value))
        return Compare(name, op, items, vtype, attribute)
    return Compare(name, op, _scalar(value, vtype, f"{path}/value", op), vtype, attribute)


def _parse_consent(node: Mapping[str, Any], path: str) -> Consent:
    _check_keys(node, {"consent", "granted"}, path)
    channel = node["consent"]
    if channel not in CONSENT_CHANNELS:
        raise _fail(
            f"{path}/consent",
            f"unknown consent channel {channel!r}; use one of {list(CONSENT_CHANNELS)}",
        )
    granted = node.get("granted", True)
    if not isinstance(granted, bool):
        raise _fail(f"{path}/granted", f"granted must be true or false, got {granted!r}")
    return Consent(channel, granted)


def _parse_number_op(node: Mapping[str, Any], path: str) -> tuple[str, Any]:
    op = node.get("op", "gte")
    if op not in ORDER_OPS:
        raise _fail(f"{path}/op", f"op {op!r} is not a comparison; use one of {list(ORDER_OPS)}")
    if "value" not in node:
        raise _fail(f"{path}/value", "a value to compare with is required")
    value = node["value"]
    if not _is_number(value):
        raise _fail(f"{path}/value", f"expected a number, got {type(value).__name__} {value!r}")
    return op, value


def _parse_aggregate(node: Mapping[str, Any], path: str) -> Aggregate:
    measure = node["aggregate"]
    spec = AGGREGATES.get(measure) if isinstance(measure, str) else None
    if spec is None:
        raise _fail(
            f"{path}/aggregate", f"unknown aggregate {measure!r}; known: {sorted(AGGREGATES)}"
        )
    _check_keys(node, {"aggregate", "op", "value", "days", *spec.params}, path)
    params = []
    for name in spec.params:
        param = node.get(name)
        if not isinstance(param, str) or not param:
            raise _fail(f"{path}/{name}", f"aggregate {measure!r} needs {name!r} (a string)")
        params.append((name, param))
    op, value = _parse_number_op(node, path)
    days = _window(node, path)
    if days is not None and not spec.windowed:
        raise _fail(f"{path}/days", f"aggregate {measure!r} has no time window")
    return Aggregate(measure, op, value, days, tuple(params))


def _parse_survey(node: Mapping[str, Any], path: str) -> SurveyAnswer:
    _check_keys(node, {"survey", "op", "value", "days"}, path)
    kind = node["survey"]
    if kind not in SURVEY_KINDS:
        raise _fail(
            f"{path}/survey", f"unknown survey kind {kind!r}; use one of {list(SURVEY_KINDS)}"
        )
    op, value = _parse_number_op(node, path)
    low, high = SURVEY_SCALES[kind]
    if not low <= value <= high:
        raise _fail(f"{path}/value", f"{kind} scores run from {low} to {high}; got {value!r}")
    return SurveyAnswer(kind, op, value, _window(node, path))


def parse_rule(node: Any, path: str = "", depth: int = 0) -> Rule:
    """The rule tree of ``node``; :class:`SegmentError` names the first bad node."""
    if depth > MAX_DEPTH:
        raise _fail(path, f"rules nest deeper than {MAX_DEPTH} levels")
    if not isinstance(node, Mapping):
        raise _fail(path, f"expected a rule object, got {type(node).__name__} {node!r}")
    for combinator in ("and", "or"):
        if combinator in node:
            _check_keys(node, {combinator}, path)
            items = node[combinator]
            if not isinstance(items, list) or not items:
                raise _fail(
                    f"{path}/{combinator}", f"{combinator!r} needs a non-empty list of rules"
                )
            children = tuple(
                parse_rule(child, f"{path}/{combinator}/{i}", depth + 1)
                for i, child in enumerate(items)
            )
            return And(children) if combinator == "and" else Or(children)
    if "not" in node:
        _check_keys(node, {"not"}, path)
        return Not(parse_rule(node["not"], f"{path}/not", depth + 1))
    if "field" in node:
        return _parse_compare(node, path)
    if "consent" in node:
        return _parse_consent(node, path)
    if "aggregate" in node:
        return _parse_aggregate(node, path)
    if "survey" in node:
        return _parse_survey(node, path)
    raise _fail(
        path,
        f"cannot tell what kind of rule this is (keys {sorted(node)}); "
        "expected one of and, or, not, field, consent, aggregate, survey",
    )


SEGMENT_NAME = re.compile(r"^[\w][\w .:-]{0,99}$")


def parse_segment(doc: Any) -> SegmentDefinition:
    """A whole definition: ``{"name": ..., "description": ..., "rule": {...}}``."""
    if not isinstance(doc, Mapping):
        raise _fail("", "a segment definition is an object with name and rule")
    _check_keys(doc, {"name", "description", "rule"}, "")
    name = doc.get("name")
    if not isinstance(name, str) or not SEGMENT_NAME.match(name):
        raise _fail("/name", f"name must be 1-100 letters, digits, spaces or ._:- , got {name!r}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise _fail("/description", "description must be a string")
    if "rule" not in doc:
        raise _fail("/rule", "a segment needs a rule")
    return SegmentDefinition(name, parse_rule(doc["rule"], "/rule"), description, dict(doc))


def window_bounds(days: int, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC half-open bounds of "the last ``days`` local days", today included.

    A marketer's "last 30 days" means 30 business days on the calendar, so the
    window starts at local midnight rather than exactly 30×24 h ago; across a
    DST change the two differ.
    """
    today = local_date(now, tz)
    return local_day_range(today - timedelta(days=days - 1), today, tz)


def walk(rule: Rule) -> Sequence[Rule]:
    """Every node of the tree, depth first (for inspection and tests)."""
    out: list[Rule] = [rule]
    if isinstance(rule, And | Or):
        for child in rule.children:
            out.extend(walk(child))
    elif isinstance(rule, Not):
        out.extend(walk(rule.child))
    return out
