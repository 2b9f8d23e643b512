"""The programme configuration: what earns points, how many, and when they lapse.

A programme is plain data parsed from ``programme.toml`` (or the API) and
validated once, so a typo in a multiplier is refused before any order earns
with it. Its :attr:`Programme.digest` identifies the exact rules, which is
how every ledger entry can name the programme version that computed it.

Earning lives in :mod:`kizuna.domain.earning`; this module is only the shape
of the rules and their validation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kizuna.errors import ValidationError

ROUNDING = ("floor", "round", "ceil")
EXPIRY_KINDS = ("never", "months_after", "end_of_month", "end_of_year", "inactivity")
NEGATIVE_POLICIES = ("allow_negative", "claw_back")
TIER_BASES = ("points", "spend", "orders")
TIER_WINDOWS = ("rolling", "calendar_year", "anniversary")
DOWNGRADES = ("one_level", "reevaluate")
#: Actions a programme may reward; anything else must be named ``custom:<name>``.
ACTIONS = (
    "signup",
    "first_purchase",
    "birthday",
    "review",
    "referral",
    "survey",
    "event_attended",
)
#: Multipliers above this are almost certainly a typo (``20`` meant ``2.0``).
MAX_MULTIPLIER = Decimal(100)


@dataclass(frozen=True)
class Promo:
    """A multiplier on every line ordered on local days ``starts`` .. ``ends``."""

    name: str
    factor: Decimal
    starts: date
    ends: date
    categories: tuple[str, ...] = ()

    def applies(self, day: date, category: str | None) -> bool:
        if not self.starts <= day <= self.ends:
            return False
        return not self.categories or (category is not None and category in self.categories)


@dataclass(frozen=True)
class Tier:
    """A membership level reached at ``threshold`` of the programme's tier basis."""

    name: str
    threshold: int
    multiplier: Decimal = Decimal(1)
    benefits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Programme:
    """Validated rules of one loyalty programme. Build it with :func:`parse_programme`."""

    name: str = "Kizuna Points"
    point_name: str = "points"
    timezone: str = "Asia/Tokyo"
    currency: str = "JPY"
    #: ``base_points`` points per ``per_amount`` minor units spent.
    base_points: int = 1
    per_amount: int = 100
    rounding: str = "floor"
    min_spend: int = 0
    category_multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    product_multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    promos: tuple[Promo, ...] = ()
    cap_per_order: int | None = None
    cap_per_day: int | None = None
    #: Caps per local calendar week (Monday to Sunday), month, and programme
    #: year (starting on ``year_starts`` (month, day) each year).
    cap_per_week: int | None = None
    cap_per_month: int | None = None
    cap_per_year: int | None = None
    year_starts: tuple[int, int] = (1, 1)
    #: Grant the ``signup`` action's points when the member's account is
    #: created (the first earn, action or scheduled enrolment), once.
    automatic_signup: bool = False
    #: ``member``: each contact keeps their own points; ``account``: points
    #: earned by any contact of a company (``customers.account_id``) pool to
    #: the company's wallet (B2B).
    pool: str = "member"
    pending_days: int = 0
    expiry: str = "months_after"
    expiry_months: int = 12
    #: Days before a lot expires that the ``points_expiring`` journey event is
    #: recorded for it (0: never).
    expiry_notify_days: int = 30
    negative_policy: str = "allow_negative"
    #: Value of one point in minor units, for liability reports.
    point_value: Decimal = Decimal(1)
    actions: Mapping[str, int] = field(default_factory=dict)
    tier_basis: str = "points"
    tier_window: str = "rolling"
    tier_window_days: int = 365
    tier_downgrade: str = "one_level"
    tier_grace_days: int = 0
    tiers: tuple[Tier, ...] = ()
    #: Frequency rule: every ``frequency_orders``-th order within ``frequency_days`` earns a voucher.
    frequency_orders: int = 0
    frequency_days: int = 30
    #: ``customer`` counts the member's orders; ``account`` counts every order of
    #: the member's company (a B2B frequency programme).
    frequency_scope: str = "customer"
    frequency_voucher_kind: str = "fixed"
    frequency_voucher_value: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def digest(self) -> str:
        """A stable fingerprint of the rules, so re-loading the same file adds no version."""
        text = json.dumps(self.raw, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def tier(self, name: str | None) -> Tier | None:
        return next((t for t in self.tiers if t.name == name), None)


def _problem(path: str, message: str) -> ValidationError:
    return ValidationError(f"programme: {path}: {message}")


def _int(data: Mapping[str, Any], key: str, default: int, *, minimum: int = 0) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _problem(key, f"must be a whole number, got {value!r}")
    if value < minimum:
        raise _problem(key, f"must be at least {minimum}, got {value}")
    return value


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    if data.get(key) is None:
        return None
    return _int(data, key, 0, minimum=1)


def _factor(path: str, value: Any) -> Decimal:
    try:
        factor = Decimal(str(value))
    except InvalidOperation:
        raise _problem(path, f"must be a number like 1.5, got {value!r}") from None
    if not factor.is_finite() or factor < 0 or factor > MAX_MULTIPLIER:
        raise _problem(path, f"must be between 0 and {MAX_MULTIPLIER}, got {value!r}")
    return factor


def _choice(data: Mapping[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise _problem(key, f"must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _date(path: str, value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _problem(path, f"must be a date like 2026-12-01, got {value!r}") from None


KNOWN_SECTIONS = {
    "programme",
    "earning",
    "expiry",
    "actions",
    "tiers",
    "promos",
    "frequency",
    "enrolment",
    "b2b",
}
CAP_PERIODS = ("day", "week", "month", "year")


def _month_day(path: str, value: Any) -> tuple[int, int]:
    """``"04-01"`` -> (4, 1): the first day of the programme year."""
    try:
        month, day = (int(x) for x in str(value).split("-"))
        date(2001, month, day)  # a common year: 29 February cannot start a year
    except ValueError:
        raise _problem(path, f"use MM-DD such as 04-01, got {value!r}") from None
    return month, day


def _flag(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise _problem(key, f"must be true or false, got {value!r}")
    return value


def parse_programme(data: Mapping[str, Any]) -> Programme:
    """Validate a programme document (the parsed ``programme.toml``).

    Every problem names its field and the allowed values, because the person
    fixing it is a marketer editing a file, not a developer reading a trace.
    """
    unknown = sorted(set(data) - KNOWN_SECTIONS)
    if unknown:
        raise _problem(", ".join(unknown), f"unknown section(s); known: {sorted(KNOWN_SECTIONS)}")
    prog = dict(data.get("programme", {}))
    earning = dict(data.get("earning", {}))
    expiry = dict(data.get("expiry", {}))
    tiers_doc = dict(data.get("tiers", {}))
    timezone = str(prog.get("timezone", "Asia/Tokyo"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _problem("programme.timezone", f"unknown IANA timezone {timezone!r}") from None

    cat = {
        str(k): _factor(f"earning.category_multipliers.{k}", v)
        for k, v in dict(earning.get("category_multipliers", {})).items()
    }
    prod = {
        str(k): _factor(f"earning.product_multipliers.{k}", v)
        for k, v in dict(earning.get("product_multipliers", {})).items()
    }
    promos = []
    for i, p in enumerate(data.get("promos", [])):
        path = f"promos[{i}]"
        starts, ends = (
            _date(f"{path}.starts", p.get("starts")),
            _date(f"{path}.ends", p.get("ends")),
        )
        if ends < starts:
            raise _problem(path, f"ends {ends} is before starts {starts}")
        promos.append(
            Promo(
                name=str(p.get("name", f"promo {i + 1}")),
                factor=_factor(f"{path}.factor", p.get("factor", 1)),
                starts=starts,
                ends=ends,
                categories=tuple(str(c) for c in p.get("categories", ())),
            )
        )

    actions: dict[str, int] = {}
    for name, points in dict(data.get("actions", {})).items():
        if name not in ACTIONS and not str(name).startswith("custom:"):
            raise _problem(
                f"actions.{name}",
                f"unknown action; use one of {', '.join(ACTIONS)} or custom:<name>",
            )
        actions[str(name)] = _int({name: points}, name, 0)

    tiers = []
    for i, tdoc in enumerate(tiers_doc.get("levels", [])):
        path = f"tiers.levels[{i}]"
        if "name" not in tdoc:
            raise _problem(path, "every tier needs a name")
        tiers.append(
            Tier(
                name=str(tdoc["name"]),
                threshold=_int(tdoc, "threshold", 0),
                multiplier=_factor(f"{path}.multiplier", tdoc.get("multiplier", 1)),
                benefits=tuple(str(b) for b in tdoc.get("benefits", ())),
            )
        )
    thresholds = [t.threshold for t in tiers]
    if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
        raise _problem("tiers.levels", "list tiers from lowest to highest with rising thresholds")
    if len({t.name for t in tiers}) != len(tiers):
        raise _problem("tiers.levels", "tier names must be unique")

    freq = dict(data.get("frequency", {}))
    programme = Programme(
        name=str(prog.get("name", "Kizuna Points")),
        point_name=str(prog.get("point_name", "points")),
        timezone=timezone,
        currency=str(prog.get("currency", "JPY")).upper(),
        base_points=_int(earning, "base_points", 1),
        per_amount=_int(earning, "per_amount", 100, minimum=1),
        rounding=_choice(earning, "rounding", "floor", ROUNDING),
        min_spend=_int(earning, "min_spend", 0),
        category_multipliers=cat,
        product_multipliers=prod,
        promos=tuple(promos),
        cap_per_order=_optional_int(earning, "cap_per_order"),
        cap_per_day=_optional_int(earning, "cap_per_day"),
        cap_per_week=_optional_int(earning, "cap_per_week"),
        cap_per_month=_optional_int(earning, "cap_per_month"),
        cap_per_year=_optional_int(earning, "cap_per_year"),
        year_starts=_month_day("programme.year_starts", prog.get("year_starts", "01-01")),
        automatic_signup=_flag(dict(data.get("enrolment", {})), "automatic_signup", False),
        pool=_choice(dict(data.get("b2b", {})), "pool", "member", ("member", "account")),
        pending_days=_int(earning, "pending_days", 0),
        expiry=_choice(expiry, "policy", "months_after", EXPIRY_KINDS),
        expiry_months=_int(expiry, "months", 12, minimum=1),
        expiry_notify_days=_int(expiry, "notify_days", 30),
        negative_policy=_choice(earning, "negative_policy", "allow_negative", NEGATIVE_POLICIES),
        point_value=_factor("programme.point_value", prog.get("point_value", 1)),
        actions=actions,
        tier_basis=_choice(tiers_doc, "basis", "points", TIER_BASES),
        tier_window=_choice(tiers_doc, "window", "rolling", TIER_WINDOWS),
        tier_window_days=_int(tiers_doc, "window_days", 365, minimum=1),
        tier_downgrade=_choice(tiers_doc, "downgrade", "one_level", DOWNGRADES),
        tier_grace_days=_int(tiers_doc, "grace_days", 0),
        tiers=tuple(tiers),
        frequency_orders=_int(freq, "orders", 0),
        frequency_days=_int(freq, "days", 30, minimum=1),
        frequency_scope=_choice(freq, "scope", "customer", ("customer", "account")),
        frequency_voucher_kind=_choice(
            freq, "voucher_kind", "fixed", ("percent", "fixed", "free_item")
        ),
        frequency_voucher_value=_int(freq, "voucher_value", 0),
        raw=json.loads(json.dumps(dict(data), default=str)),
    )
    return programme


DEFAULT_PROGRAMME_TOML = """\
# The loyalty programme of this workspace. `kizuna program validate` checks it,
# `kizuna program simulate` shows what an order would earn and why.
[programme]
name = "Kizuna Points"
point_name = "points"
timezone = "Asia/Tokyo"
currency = "JPY"
point_value = 1          # one point is worth this many minor units (yen)

[earning]
base_points = 1          # points ...
per_amount = 100         # ... per this many minor units spent
rounding = "floor"       # floor | round | ceil, applied once per order
min_spend = 0
pending_days = 0         # days before earned points can be spent
negative_policy = "allow_negative"   # or claw_back, when a refund finds points spent
# cap_per_order = 5000
# cap_per_day = 10000
# cap_per_week = 30000   # Monday to Sunday, local days
# cap_per_month = 50000
# cap_per_year = 200000  # programme year, from [programme] year_starts (MM-DD, default 01-01)

[earning.category_multipliers]
# "CAT-SALE" = 0.5

[expiry]
policy = "months_after"  # never | months_after | end_of_month | end_of_year | inactivity
months = 12
notify_days = 30         # the points_expiring event for journeys, this many days before a lot lapses

[actions]
signup = 100
birthday = 300
review = 50

[enrolment]
automatic_signup = false # true: the signup points above are granted once, when the member enrols

[b2b]
pool = "member"          # or "account": points earned by any contact of a company pool to it

[frequency]
orders = 0               # every Nth order within `days` earns a voucher (0: off)
days = 30
scope = "customer"       # or "account": count every order of the member's company (B2B)
voucher_kind = "fixed"
voucher_value = 500

[tiers]
basis = "points"         # points | spend | orders (qualifying, over the window)
window = "rolling"       # rolling | calendar_year | anniversary
window_days = 365
downgrade = "one_level"  # one_level | reevaluate
grace_days = 30

[[tiers.levels]]
name = "member"
threshold = 0

[[tiers.levels]]
name = "silver"
threshold = 1000
multiplier = 1.25
benefits = ["member-only sales"]

[[tiers.levels]]
name = "gold"
threshold = 5000
multiplier = 1.5
benefits = ["member-only sales", "birthday perks", "early access", "priority support"]
"""
