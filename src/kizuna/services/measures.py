"""The measures register and the effect report: treated vs hold-out, with uplift.

Conversion is "a completed order within the journey's goal window
(``goal.purchase_within_days``, default 30) after the run started", measured
identically for treated and hold-out runs: the hold-out walks through the
journey without receiving anything, so the difference is the journey's effect.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.automation.runner import parse
from kizuna.automation.uplift import Interval, cuped_uplift, proportion_uplift, welch_uplift
from kizuna.errors import NotFound, ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

KPIS = ("conversion_uplift", "revenue_uplift", "conversion_rate")
DEFAULT_GOAL_DAYS = 30


@dataclass(frozen=True)
class SetMeasure:
    journey: str
    objective: str
    kpi: str
    target: float


def handle_set(command: SetMeasure, uow: UnitOfWork) -> None:
    """Register (or replace) a journey's objective and KPI target."""
    if command.kpi not in KPIS:
        raise ValidationError(f"kpi must be one of {list(KPIS)}, not {command.kpi!r}")
    m = at.measures
    with uow:
        journey_id = _journey_id(uow, command.journey)
        uow.conn.execute(sa.delete(m).where(m.c.journey_id == journey_id))
        uow.conn.execute(
            sa.insert(m).values(
                journey_id=journey_id, objective=command.objective, kpi=command.kpi,
                target=command.target, created_at=datetime.now(UTC),
            )
        )  # fmt: skip
        uow.commit()


def _journey_id(uow: UnitOfWork, name: str) -> int:
    found = uow.conn.execute(
        sa.select(at.journeys.c.id).where(at.journeys.c.name == name)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no journey named {name!r}")
    return int(found)


@dataclass(frozen=True)
class Group:
    name: str
    customers: int
    conversions: int
    revenue: list[float]
    #: Each customer's revenue in an equally long window before their run started.
    revenue_before: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.conversions / self.customers if self.customers else float("nan")

    @property
    def revenue_per_customer(self) -> float:
        return sum(self.revenue) / self.customers if self.customers else float("nan")


@dataclass(frozen=True)
class EffectReport:
    journey: str
    goal_days: int
    treated: Group
    holdout: Group
    conversion_uplift: Interval
    revenue_uplift: Interval
    variants: dict[str, Group]
    #: Revenue uplift adjusted by each customer's pre-period revenue (CUPED):
    #: the same effect, a narrower interval.
    revenue_uplift_cuped: Interval = Interval(math.nan, math.nan, math.nan)
    #: Each A/B variant against the hold-out: (conversion uplift, revenue uplift).
    variant_uplift: dict[str, tuple[Interval, Interval]] = field(default_factory=dict)
    objective: str | None = None
    kpi: str | None = None
    target: float | None = None

    @property
    def achieved(self) -> bool | None:
        """Whether the KPI target is met; uplifts count only when their CI excludes zero."""
        if self.kpi is None or self.target is None:
            return None
        if self.kpi == "conversion_rate":
            return self.treated.rate >= self.target
        interval = (
            self.conversion_uplift if self.kpi == "conversion_uplift" else self.revenue_uplift
        )
        return interval.low > 0 and interval.estimate >= self.target


def report(name: str, uow: UnitOfWork) -> EffectReport:
    r, o, m = at.journey_runs, t.orders, at.measures
    with uow:
        journey_id = _journey_id(uow, name)
        definition = uow.conn.execute(
            sa.select(at.journeys.c.definition).where(at.journeys.c.id == journey_id)
        ).scalar_one()
        days = parse(definition).goal_days or DEFAULT_GOAL_DAYS
        runs = uow.conn.execute(
            sa.select(r.c.customer_id, r.c.holdout, r.c.variant, r.c.started_at).where(
                r.c.journey_id == journey_id
            )
        ).all()
        orders: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
        for cid, when, amount in uow.conn.execute(
            sa.select(o.c.customer_id, o.c.ordered_at, o.c.total_amount).where(
                o.c.status == "completed",
                o.c.customer_id.in_(sa.select(r.c.customer_id).where(r.c.journey_id == journey_id)),
            )
        ):
            orders[cid].append((when, amount))
        measure = uow.conn.execute(sa.select(m).where(m.c.journey_id == journey_id)).one_or_none()
    buckets: dict[str, tuple[list[int], list[float], list[float]]] = defaultdict(
        lambda: ([], [], [])
    )
    for run in runs:
        end = run.started_at + timedelta(days=days)
        history = orders.get(run.customer_id, [])
        inside = [amount for when, amount in history if run.started_at < when <= end]
        before = run.started_at - timedelta(days=days)
        earlier = sum(amount for when, amount in history if before < when <= run.started_at)
        keys = (
            ["holdout"]
            if run.holdout
            else ["treated"] + ([f"variant:{run.variant}"] if run.variant else [])
        )
        for key in keys:
            buckets[key][0].append(1 if inside else 0)
            buckets[key][1].append(float(sum(inside)))
            buckets[key][2].append(float(earlier))

    def group(key: str) -> Group:
        conv, revenue, revenue_before = buckets.get(key, ([], [], []))
        return Group(key, len(conv), sum(conv), revenue, revenue_before)

    treated, holdout = group("treated"), group("holdout")
    variants = {k.split(":", 1)[1]: group(k) for k in buckets if k.startswith("variant:")}
    return EffectReport(
        journey=name,
        goal_days=days,
        treated=treated,
        holdout=holdout,
        conversion_uplift=proportion_uplift(
            treated.conversions, treated.customers, holdout.conversions, holdout.customers
        ),
        revenue_uplift=welch_uplift(treated.revenue, holdout.revenue),
        variants=variants,
        revenue_uplift_cuped=cuped_uplift(
            treated.revenue, holdout.revenue, treated.revenue_before, holdout.revenue_before
        ),
        variant_uplift={
            name: (
                proportion_uplift(
                    v.conversions, v.customers, holdout.conversions, holdout.customers
                ),
                welch_uplift(v.revenue, holdout.revenue),
            )
            for name, v in variants.items()
        },
        objective=measure.objective if measure else None,
        kpi=measure.kpi if measure else None,
        target=measure.target if measure else None,
    )


def report_all(uow: UnitOfWork) -> list[EffectReport]:
    with uow:
        names = list(
            uow.conn.execute(sa.select(at.journeys.c.name).order_by(at.journeys.c.name)).scalars()
        )
    return [report(n, uow) for n in names]


def as_dict(rep: EffectReport) -> dict[str, Any]:
    return {
        "journey": rep.journey, "goal_days": rep.goal_days,
        "treated": {"customers": rep.treated.customers, "conversion_rate": rep.treated.rate,
                    "revenue_per_customer": rep.treated.revenue_per_customer},
        "holdout": {"customers": rep.holdout.customers, "conversion_rate": rep.holdout.rate,
                    "revenue_per_customer": rep.holdout.revenue_per_customer},
        "conversion_uplift": vars(rep.conversion_uplift), "revenue_uplift": vars(rep.revenue_uplift),
        "revenue_uplift_cuped": vars(rep.revenue_uplift_cuped),
        "variants": {
            name: {"customers": v.customers, "conversion_rate": v.rate,
                   "revenue_per_customer": v.revenue_per_customer,
                   "conversion_uplift": vars(rep.variant_uplift[name][0]),
                   "revenue_uplift": vars(rep.variant_uplift[name][1])}
            for name, v in rep.variants.items()
        },
        "objective": rep.objective, "kpi": rep.kpi, "target": rep.target, "achieved": rep.achieved,
    }  # fmt: skip


@dataclass(frozen=True)
class GlobalEffect:
    """All marketing together: everyone else against the workspace-wide control group."""

    since: datetime
    until: datetime
    percent: float
    treated: Group
    control: Group
    conversion_uplift: Interval
    revenue_uplift: Interval
    revenue_uplift_cuped: Interval


def global_effect(uow: UnitOfWork, since: datetime, until: datetime) -> GlobalEffect:
    """Buyers and revenue per customer in [since, until), marketed vs the global control group.

    Counts customers who had signed up by ``since`` (or carry no sign-up
    date), so both groups face the same window; revenue in an equally long
    window before ``since`` is the CUPED covariate.
    """
    from kizuna.domain.journeys import in_global_control

    if until <= since:
        raise ValidationError("the period must end after it starts (--until after --since)")
    percent = uow.settings.global_control_percent
    if percent <= 0:
        raise ValidationError(
            "no global control group: set global_control_percent (e.g. 5) in kizuna.toml, "
            "then measure a period that starts after the change"
        )
    c, o = t.customers, t.orders
    before = since - (until - since)
    with uow:
        ids = list(
            uow.conn.execute(
                sa.select(c.c.id).where(sa.or_(c.c.signup_at.is_(None), c.c.signup_at <= since))
            ).scalars()
        )
        during: dict[int, float] = defaultdict(float)
        earlier: dict[int, float] = defaultdict(float)
        rows = uow.conn.execute(
            sa.select(o.c.customer_id, o.c.ordered_at, o.c.total_amount).where(
                o.c.status == "completed", o.c.ordered_at >= before, o.c.ordered_at < until
            )
        )
        for cid, when, amount in rows:
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            (during if when >= since else earlier)[cid] += float(amount)
    groups: dict[bool, tuple[list[int], list[float], list[float]]] = {
        True: ([], [], []),
        False: ([], [], []),
    }
    for cid in ids:
        conv, revenue, revenue_before = groups[in_global_control(cid, percent)]
        spent = during.get(cid, 0.0)
        conv.append(1 if spent > 0 else 0)
        revenue.append(spent)
        revenue_before.append(earlier.get(cid, 0.0))

    def group(name: str, control: bool) -> Group:
        conv, revenue, revenue_before = groups[control]
        return Group(name, len(conv), sum(conv), revenue, revenue_before)

    treated, control = group("marketed", False), group("global_control", True)
    return GlobalEffect(
        since=since,
        until=until,
        percent=percent,
        treated=treated,
        control=control,
        conversion_uplift=proportion_uplift(
            treated.conversions, treated.customers, control.conversions, control.customers
        ),
        revenue_uplift=welch_uplift(treated.revenue, control.revenue),
        revenue_uplift_cuped=cuped_uplift(
            treated.revenue, control.revenue, treated.revenue_before, control.revenue_before
        ),
    )
