"""Journeys as a step state machine: definitions, hold-outs, waits. No I/O.

A journey is plain data (YAML), validated here with JSON-pointer paths like
segments. The runner (:mod:`kizuna.automation.runner`) keeps one row per
customer run and asks this module *what* happens next; nothing here knows
about tables or SMTP, so the timing rules (local time of day, weekdays, DST)
are tested as plain functions.

Definition shape::

    name: birthday
    priority: 10              # lower wins when a frequency cap must choose
    holdout_percent: 10       # stable per customer and journey
    reentry: once_per_key     # once (ever) | once_per_key (once per trigger key)
    trigger: {birthday: {offset_days: 0}}
             # or {segment_entry: NAME}, {segment_exit: NAME},
             #    {days_after_last_purchase: 30}
    goal: {purchase_within_days: 7}       # optional exit goal / conversion
    steps:
      - {id: morning, wait: {until: "09:00", weekdays: [mon, tue, wed, thu, fri]}}
      - {id: greet, action: email, template: birthday}
      - {id: pause, wait: {days: 3}}
      - {id: bought, wait: {event: order_placed, days: 7, timeout: done}}  # or time runs out
      - {id: check, if: {consent: email}, then: thanks, else: done}
      - {id: thanks, action: set_attribute, key: greeted, value: true}
      - {id: done, exit: true}
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kizuna.domain.clock import birthday_in_year
from kizuna.domain.segments import Rule, parse_rule
from kizuna.errors import JourneyError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REENTRY = ("once", "once_per_key")
#: Events a journey can start on; each new row of its table starts one run,
#: keyed by the row (e.g. the order), so a re-read never starts a second one.
EVENT_TRIGGERS = ("order_placed", "survey_answered", "event_attended")
#: Any other event name starts runs on rows of the ``events`` table with that
#: ``type``: behaviour events from the shop and the system events Kizuna
#: records itself (points expiring, tier changed, detractor answered, …).
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.]{0,31}$")
STEP_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
JOURNEY_NAME = re.compile(r"^[\w][\w .:-]{0,99}$")


def _fail(path: str, message: str) -> JourneyError:
    return JourneyError(f"journey {path or '/'}: {message}")


@dataclass(frozen=True)
class Trigger:
    """What starts a run.

    ``kind`` is birthday, anniversary (of signing up), segment_entry,
    segment_exit, days_after_last_purchase or event; ``segment`` holds the
    segment name, or the event name for event triggers.
    """

    kind: str
    segment: str | None = None
    offset_days: int = 0


@dataclass(frozen=True)
class Step:
    """One step; exactly one of wait / action / condition / split / exit applies."""

    id: str
    kind: str  # wait | action | branch | split | exit
    params: Mapping[str, Any] = field(default_factory=dict)
    condition: Rule | None = None
    then: str | None = None
    otherwise: str | None = None
    branches: tuple[tuple[str, int], ...] = ()  # (next step id, weight) for splits


@dataclass(frozen=True)
class Journey:
    name: str
    trigger: Trigger
    steps: tuple[Step, ...]
    priority: int = 100
    holdout_percent: float = 10.0
    reentry: str = "once_per_key"
    goal_days: int | None = None
    document: Mapping[str, Any] = field(default_factory=dict)

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise _fail("/steps", f"no step {step_id!r}")

    def next_after(self, step_id: str) -> str | None:
        """The step that follows ``step_id`` in the list, or None at the end."""
        ids = [s.id for s in self.steps]
        i = ids.index(step_id)
        return ids[i + 1] if i + 1 < len(ids) else None


def _int(value: Any, path: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(path, f"expected a whole number from {low} to {high}, got {value!r}")
    return value


def _parse_trigger(node: Any, path: str) -> Trigger:
    if not isinstance(node, Mapping) or len(node) != 1:
        raise _fail(
            path,
            "a trigger is one of birthday, anniversary, segment_entry, segment_exit, "
            "days_after_last_purchase, event",
        )
    ((kind, arg),) = node.items()
    if kind in ("birthday", "anniversary"):
        arg = arg or {}
        if not isinstance(arg, Mapping) or set(arg) - {"offset_days"}:
            raise _fail(f"{path}/{kind}", f"{kind} takes {{offset_days: N}}")
        return Trigger(
            kind,
            offset_days=_int(arg.get("offset_days", 0), f"{path}/{kind}/offset_days", -366, 366),
        )
    if kind == "event":
        if arg not in EVENT_TRIGGERS and not (isinstance(arg, str) and EVENT_TYPE.match(arg)):
            raise _fail(
                f"{path}/event",
                f"event must be one of {list(EVENT_TRIGGERS)} or an event type "
                f"(lower-case letters, digits, '_' or '.', at most 32), got {arg!r}",
            )
        return Trigger("event", segment=arg)
    if kind in ("segment_entry", "segment_exit"):
        if not isinstance(arg, str) or not arg:
            raise _fail(f"{path}/{kind}", f"{kind} needs a segment name")
        return Trigger(kind, segment=arg)
    if kind == "days_after_last_purchase":
        return Trigger(kind, offset_days=_int(arg, f"{path}/{kind}", 1, 3660))
    raise _fail(f"{path}/{kind}", f"unknown trigger {kind!r}")


def _parse_wait(arg: Any, path: str) -> dict[str, Any]:
    if not isinstance(arg, Mapping) or not arg:
        raise _fail(path, "wait takes {days|hours|minutes: N} or {until: 'HH:MM', weekdays: [...]}")
    extra = set(arg) - {"days", "hours", "minutes", "until", "weekdays", "event", "timeout"}
    if extra:
        raise _fail(f"{path}/{sorted(extra)[0]}", "unknown wait option")
    out: dict[str, Any] = {}
    if "event" in arg:
        # Wait until the customer does something, at most the given time.
        event = arg["event"]
        if event not in EVENT_TRIGGERS and not (isinstance(event, str) and EVENT_TYPE.match(event)):
            raise _fail(
                f"{path}/event",
                f"event must be one of {list(EVENT_TRIGGERS)} or an event type, got {event!r}",
            )
        if not any(unit in arg for unit in ("days", "hours", "minutes", "until")):
            raise _fail(path, "waiting for an event needs a limit: days, hours, minutes or until")
        out["event"] = event
        if "timeout" in arg:
            if not isinstance(arg["timeout"], str):
                raise _fail(f"{path}/timeout", "timeout is the id of the step to go to")
            out["timeout"] = arg["timeout"]
    elif "timeout" in arg:
        raise _fail(f"{path}/timeout", "timeout belongs to a wait for an event")
    for unit in ("days", "hours", "minutes"):
        if unit in arg:
            out[unit] = _int(arg[unit], f"{path}/{unit}", 0, 100000)
    if "until" in arg:
        try:
            out["until"] = time.fromisoformat(str(arg["until"])).isoformat("minutes")
        except ValueError:
            raise _fail(
                f"{path}/until", f"expected a local time such as '09:00', got {arg['until']!r}"
            ) from None
    days = arg.get("weekdays", list(WEEKDAYS))
    if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
        raise _fail(f"{path}/weekdays", f"weekdays must be a non-empty list of {list(WEEKDAYS)}")
    if "weekdays" in arg and "until" not in arg:
        raise _fail(f"{path}/weekdays", "weekdays needs until (the local time to wait for)")
    out["weekdays"] = list(days)
    return out


def _parse_step(node: Any, path: str, actions: set[str]) -> Step:
    if not isinstance(node, Mapping):
        raise _fail(path, "a step is an object with an id")
    step_id = node.get("id")
    if not isinstance(step_id, str) or not STEP_ID.match(step_id):
        raise _fail(f"{path}/id", f"step id must be letters, digits, _ or -, got {step_id!r}")
    if "wait" in node:
        return Step(step_id, "wait", _parse_wait(node["wait"], f"{path}/wait"))
    if "action" in node:
        if node["action"] not in actions:
            raise _fail(
                f"{path}/action", f"unknown action {node['action']!r}; known: {sorted(actions)}"
            )
        params = {k: v for k, v in node.items() if k not in ("id", "action")}
        return Step(step_id, "action", {"action": node["action"], **params})
    if "if" in node:
        rule = parse_rule(node["if"], f"{path}/if")
        for key in ("then", "else"):
            if not isinstance(node.get(key), str):
                raise _fail(f"{path}/{key}", f"a condition needs {key!r}: a step id")
        return Step(step_id, "branch", condition=rule, then=node["then"], otherwise=node["else"])
    if "split" in node:
        branches = node["split"]
        if not isinstance(branches, list) or len(branches) < 2:
            raise _fail(f"{path}/split", "split needs a list of at least two {next, weight}")
        parsed = []
        for i, b in enumerate(branches):
            if not isinstance(b, Mapping) or not isinstance(b.get("next"), str):
                raise _fail(f"{path}/split/{i}", "each branch needs next (a step id)")
            parsed.append(
                (b["next"], _int(b.get("weight", 1), f"{path}/split/{i}/weight", 1, 10000))
            )
        return Step(step_id, "split", branches=tuple(parsed))
    if node.get("exit") is True:
        return Step(step_id, "exit")
    raise _fail(path, "a step needs one of wait, action, if, split or exit: true")


def parse_journey(doc: Any, actions: set[str]) -> Journey:
    """Validate a journey document; ``actions`` is the set of registered action names."""
    if not isinstance(doc, Mapping):
        raise _fail("", "a journey definition is an object")
    allowed = {
        "name",
        "description",
        "priority",
        "holdout_percent",
        "reentry",
        "trigger",
        "goal",
        "steps",
    }
    extra = sorted(set(doc) - allowed)
    if extra:
        raise _fail(f"/{extra[0]}", f"unknown key; allowed: {sorted(allowed)}")
    name = doc.get("name")
    if not isinstance(name, str) or not JOURNEY_NAME.match(name):
        raise _fail("/name", f"name must be 1-100 letters, digits, spaces or ._:- , got {name!r}")
    holdout = doc.get("holdout_percent", 10)
    if not isinstance(holdout, int | float) or isinstance(holdout, bool) or not 0 <= holdout <= 90:
        raise _fail("/holdout_percent", f"holdout_percent must be from 0 to 90, got {holdout!r}")
    reentry = doc.get("reentry", "once_per_key")
    if reentry not in REENTRY:
        raise _fail("/reentry", f"reentry must be one of {list(REENTRY)}")
    goal_days = None
    if "goal" in doc:
        goal = doc["goal"]
        if not isinstance(goal, Mapping) or set(goal) != {"purchase_within_days"}:
            raise _fail("/goal", "goal takes {purchase_within_days: N}")
        goal_days = _int(goal["purchase_within_days"], "/goal/purchase_within_days", 1, 3660)
    if "trigger" not in doc:
        raise _fail("/trigger", "a journey needs a trigger")
    trigger = _parse_trigger(doc["trigger"], "/trigger")
    raw = doc.get("steps")
    if not isinstance(raw, list) or not raw:
        raise _fail("/steps", "a journey needs a non-empty list of steps")
    steps = tuple(_parse_step(s, f"/steps/{i}", actions) for i, s in enumerate(raw))
    ids = [s.id for s in steps]
    for i, s in enumerate(steps):
        if ids.count(s.id) > 1:
            raise _fail(f"/steps/{i}/id", f"step id {s.id!r} is used twice")
        targets = [s.then, s.otherwise, s.params.get("timeout"), *(b for b, _ in s.branches)]
        for target in targets:
            if target is not None and target not in ids:
                raise _fail(f"/steps/{i}", f"points at unknown step {target!r}")
    return Journey(
        name=name,
        trigger=trigger,
        steps=steps,
        priority=_int(doc.get("priority", 100), "/priority", 0, 10000),
        holdout_percent=float(holdout),
        reentry=reentry,
        goal_days=goal_days,
        document=dict(doc),
    )


# --- pure decisions -------------------------------------------------------------


def _unit(*parts: object) -> float:
    """A stable number in [0, 1) from the parts: the same on every machine and run."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_holdout(customer_id: int, journey: str, percent: float) -> bool:
    """Whether a customer is in the journey's hold-out: stable, so re-entries agree."""
    return _unit("holdout", journey, customer_id) * 100 < percent


def in_global_control(customer_id: int, percent: float) -> bool:
    """Whether a customer is in the workspace-wide control group (no marketing from any journey).

    Independent of every journey's own hold-out (a different hash), and
    stable: the same customers stay out of all campaigns, so their spend is
    what the whole marketing programme is measured against.
    """
    return percent > 0 and _unit("global-control", customer_id) * 100 < percent


def choose_branch(step: Step, customer_id: int, journey: str) -> str:
    """The A/B branch of a customer: weighted, stable per customer, journey and step."""
    total = sum(w for _, w in step.branches)
    point = _unit("split", journey, step.id, customer_id) * total
    for target, weight in step.branches:
        if point < weight:
            return target
        point -= weight
    return step.branches[-1][0]


def instance_key(journey: str, customer_id: int, business_key: str) -> str:
    """The run's identity; a unique constraint on it makes a trigger start at most one run."""
    return f"{journey}:{customer_id}:{business_key}"


def zone_of(customer_tz: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The customer's own zone when known and valid, else the workspace's."""
    if customer_tz:
        try:
            return ZoneInfo(customer_tz)
        except (ZoneInfoNotFoundError, ValueError):
            return fallback
    return fallback


def wait_until(params: Mapping[str, Any], now: datetime, tz: ZoneInfo) -> datetime:
    """When a wait step ends (UTC).

    A duration is added first; then, with ``until``, the first allowed local
    weekday at that local time not before it. Local times that do not exist
    (skipped by a DST change) move forward by the gap, as people expect: a
    02:30 send on the spring-forward day goes out at 03:30.
    """
    moment = now + timedelta(
        days=params.get("days", 0), hours=params.get("hours", 0), minutes=params.get("minutes", 0)
    )
    if "until" not in params:
        return moment
    at = time.fromisoformat(params["until"])
    allowed = {WEEKDAYS.index(d) for d in params.get("weekdays", WEEKDAYS)}
    local = moment.astimezone(tz)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in allowed:
            continue
        candidate = _local_instant(day, at, tz)
        if candidate >= moment:
            return candidate
    raise _fail("/wait", "no allowed weekday found")  # unreachable: weekdays is non-empty


def _local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    # fold=0 reads a skipped wall time with the offset before the change, which
    # lands it after the gap; a repeated wall time gets its first occurrence.
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def anniversary_due(signed_up: date, offset_days: int, today: date) -> int | None:
    """The membership year completed on ``today`` (1, 2, ...) if it is the anniversary."""
    for year in (today.year - 1, today.year, today.year + 1):
        if (
            year > signed_up.year
            and birthday_in_year(signed_up, year) + timedelta(days=offset_days) == today
        ):
            return year - signed_up.year
    return None


def birthday_due(birthday: date, offset_days: int, today: date) -> date | None:
    """The business day ``today`` if it is this customer's (offset) birthday, else None."""
    for year in (today.year - 1, today.year, today.year + 1):
        if birthday_in_year(birthday, year) + timedelta(days=offset_days) == today:
            return today
    return None
