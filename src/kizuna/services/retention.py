"""Retention: keep raw personal records only as long as they are needed.

The ``retention`` setting names the rules to apply and their periods, e.g.
``events=24m,programme_events=6m,idempotency_keys=30d,dashboard_audit=36m``
(``m`` months, ``d`` days; a rule not named keeps everything). ``kizuna
retention apply`` (or a scheduled run of it) applies them.

Raw behaviour events are the big one: older than their period they are
*aggregated* into ``event_daily_counts`` (customer, local day, type: count
and dwell time) and then deleted, so engagement trends survive while page
URLs, session ids and free properties go. Each batch aggregates and deletes
in one transaction, so a crash half-way neither loses nor double-counts.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.domain.schedule import add_months
from kizuna.errors import ConfigError
from kizuna.services.uow import UnitOfWork
from kizuna.store import operations_tables as ops
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t
from kizuna.store import web_tables as wt

_PERIOD = re.compile(r"^(\d+)([md])$")
BATCH = 5_000


@dataclass(frozen=True)
class Period:
    amount: int
    unit: str  # "m" months or "d" days

    def cutoff(self, now: datetime) -> datetime:
        if self.unit == "m":
            return datetime.combine(add_months(now.date(), -self.amount), now.timetz())
        return now - timedelta(days=self.amount)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True)
class Outcome:
    rule: str
    cutoff: datetime
    aggregated: int
    deleted: int


def parse_rules(text: str) -> dict[str, Period]:
    """``events=24m,idempotency_keys=30d`` as {rule: period}; a bad entry names itself."""
    rules: dict[str, Period] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        name, _, period = part.partition("=")
        match = _PERIOD.match(period.strip())
        name = name.strip()
        if name not in RULES:
            raise ConfigError(
                f"retention rule {name!r} is unknown; known rules: {', '.join(sorted(RULES))}"
            )
        if not match or int(match.group(1)) <= 0:
            raise ConfigError(
                f"retention {part!r}: the period must be a positive number of months or days, "
                "such as 24m or 30d"
            )
        rules[name] = Period(int(match.group(1)), match.group(2))
    return rules


def _events(uow: UnitOfWork, cutoff: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """Aggregate raw events older than ``cutoff`` into daily counts, then delete them."""
    e, d = t.events.c, ops.event_daily_counts
    aggregated = deleted = 0
    insert = postgresql.insert if uow.dialect == "postgresql" else sqlite.insert
    while True:
        batch = uow.conn.execute(
            sa.select(e.id, e.customer_id, e.type, e.occurred_at, e.dwell_seconds)
            .where(e.occurred_at < cutoff)
            .order_by(e.id)
            .limit(BATCH)
        ).all()
        if not batch:
            break
        counts: dict[tuple[int, date, str], list[int]] = defaultdict(lambda: [0, 0])
        for row in batch:
            key = (int(row.customer_id), row.occurred_at.astimezone(tz).date(), str(row.type))
            counts[key][0] += 1
            counts[key][1] += int(row.dwell_seconds or 0)
        values = [
            {"customer_id": c, "day": day, "type": kind, "events": n, "dwell_seconds": s}
            for (c, day, kind), (n, s) in counts.items()
        ]
        stmt = insert(d).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["customer_id", "day", "type"],
            set_={
                "events": d.c.events + stmt.excluded.events,
                "dwell_seconds": d.c.dwell_seconds + stmt.excluded.dwell_seconds,
            },
        )
        uow.conn.execute(stmt)
        ids = [row.id for row in batch]
        deleted += int(uow.conn.execute(sa.delete(t.events).where(e.id.in_(ids))).rowcount or 0)
        aggregated += len(batch)
        uow.commit()
    return aggregated, deleted


def _delete_older(
    table: sa.Table, column: str, extra: sa.ColumnElement[bool] | None = None
) -> Rule:
    def apply(uow: UnitOfWork, cutoff: datetime, _tz: ZoneInfo) -> tuple[int, int]:
        where = table.c[column] < cutoff
        if extra is not None:
            where = sa.and_(where, extra)
        return 0, int(uow.conn.execute(sa.delete(table).where(where)).rowcount or 0)

    return apply


Rule = Callable[[UnitOfWork, datetime, ZoneInfo], tuple[int, int]]

#: name -> how to apply it. Delivered webhook events, idempotency keys and the
#: dashboard audit only need deleting; events are summarised first.
RULES: dict[str, Rule] = {
    "events": _events,
    "programme_events": _delete_older(
        pt.programme_events, "created_at", pt.programme_events.c.delivered_at.is_not(None)
    ),
    "idempotency_keys": _delete_older(pt.idempotency_keys, "created_at"),
    "dashboard_audit": _delete_older(wt.dashboard_audit, "at"),
}


def apply_rules(
    uow: UnitOfWork, rules: dict[str, Period], now: datetime | None = None
) -> list[Outcome]:
    """Apply each rule, committing as it goes; one ``retention_runs`` row per rule."""
    now = now or datetime.now(UTC)
    tz = uow.settings.tz
    out: list[Outcome] = []
    for name, period in rules.items():
        cutoff = period.cutoff(now)
        aggregated, deleted = RULES[name](uow, cutoff, tz)
        uow.conn.execute(
            sa.insert(ops.retention_runs).values(
                rule=name, ran_at=now, cutoff=cutoff, aggregated=aggregated, deleted=deleted
            )
        )
        uow.commit()
        out.append(Outcome(name, cutoff, aggregated, deleted))
    return out
