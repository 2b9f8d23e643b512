"""Intent runs: score every account and topic for a week, store it, tell journeys.

The week is the seven local days ending with the computation day. Its rows
in ``intent_scores`` are replaced when the same week is computed again. For
every surging (account, topic), an ``intent_surge`` system event is recorded
for the account's designated owner (the customer whose external id is in the
account's ``attributes.intent_owner``) or, without one, for each of its
people, keyed by account, topic, ISO week and person: a daily re-run in the
same week never starts a second journey (e.g. "create a task for sales").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from kizuna.analytics.intent import IntentRules, intent
from kizuna.domain.clock import local_date, local_day_start
from kizuna.errors import ConfigError, NotFound
from kizuna.services.events import record_event
from kizuna.store import success_tables as st
from kizuna.store import tables as t

if TYPE_CHECKING:
    from kizuna.bootstrap import Context
    from kizuna.config import Settings

SYSTEM_PREFIX = "kizuna:"


@dataclass(frozen=True)
class IntentRun:
    week_start: date
    week_end: date
    pairs: int
    surging: int
    events_recorded: int


def rules_of(settings: Settings) -> IntentRules:
    try:
        return IntentRules(
            half_life_days=settings.intent_half_life_days,
            baseline_weeks=settings.intent_baseline_weeks,
            surge_p=settings.intent_surge_p,
        )
    except ValueError as exc:
        raise ConfigError(f"intent settings: {exc}") from None


def _events(conn: sa.Connection, start: datetime, end: datetime) -> pd.DataFrame:
    e, c = t.events, t.customers
    result = conn.execute(
        sa.select(
            c.c.account_id, e.c.customer_id, e.c.topic, e.c.occurred_at, e.c.dwell_seconds, e.c.page
        )
        .join(c, c.c.id == e.c.customer_id)
        .where(
            c.c.account_id.isnot(None),
            e.c.topic.isnot(None),
            e.c.occurred_at >= start,
            e.c.occurred_at < end,
            sa.not_(e.c.external_id.startswith(SYSTEM_PREFIX, autoescape=True)),
        )
    )
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    return frame


def compute(ctx: Context, on: date | None = None) -> IntentRun:
    """Score the week ending with local day ``on`` (default today) and store it."""
    settings = ctx.settings
    tz = settings.tz
    on = on or local_date(datetime.now(UTC), tz)
    rules = rules_of(settings)
    end = local_day_start(on + timedelta(days=1), tz)
    week_start = on - timedelta(days=6)
    weeks = rules.baseline_weeks + rules.baseline_gap_weeks + 1
    with ctx.engine.begin() as conn:
        frame = intent(_events(conn, end - timedelta(weeks=weeks), end), end, rules)
        s = st.intent_scores
        conn.execute(sa.delete(s).where(s.c.week_start == week_start))
        now = datetime.now(UTC)
        if len(frame):
            conn.execute(
                sa.insert(s),
                [
                    {
                        "account_id": int(r["account_id"]), "topic": str(r["topic"])[:200],
                        "week_start": week_start, "computed_at": now, "score": float(r["score"]),
                        "events": int(r["visits"]), "people": int(r["people"]),
                        "baseline": float(r["baseline"]), "z": float(r["z"]),
                        "p_value": float(r["p_value"]), "surging": bool(r["surging"]),
                    }
                    for r in frame.to_dict("records")
                ],
            )  # fmt: skip
        recorded = _announce(conn, frame[frame["surging"]], on, end)
    return IntentRun(
        week_start=week_start,
        week_end=on,
        pairs=len(frame),
        surging=int(frame["surging"].sum()) if len(frame) else 0,
        events_recorded=recorded,
    )


def _announce(conn: sa.Connection, surging: pd.DataFrame, on: date, end: datetime) -> int:
    if surging.empty:
        return 0
    iso = on.isocalendar()
    week = f"{iso.year}-W{iso.week:02d}"
    a, c = t.accounts, t.customers
    ids = sorted({int(x) for x in surging["account_id"]})
    owners: dict[int, str] = {}
    for account_id, attributes in conn.execute(
        sa.select(a.c.id, a.c.attributes).where(a.c.id.in_(ids))
    ).all():
        owner = (attributes or {}).get("intent_owner")
        if isinstance(owner, str) and owner:
            owners[int(account_id)] = owner
    people: dict[int, list[int]] = {}
    for cid, account_id, external_id in conn.execute(
        sa.select(c.c.id, c.c.account_id, c.c.external_id).where(c.c.account_id.in_(ids))
    ).all():
        owner = owners.get(int(account_id))
        if owner is None or owner == external_id:
            people.setdefault(int(account_id), []).append(int(cid))
    recorded = 0
    for r in surging.to_dict("records"):
        account_id = int(r["account_id"])
        for customer_id in people.get(account_id, []):
            recorded += record_event(
                conn,
                key=f"intent_surge:{account_id}:{r['topic']}:{week}:{customer_id}",
                customer_id=customer_id,
                type="intent_surge",
                occurred_at=end,
                topic=str(r["topic"])[:200],
                properties={
                    "account_id": account_id, "topic": r["topic"], "week": week,
                    "visits": int(r["visits"]), "people": int(r["people"]),
                    "baseline": round(float(r["baseline"]), 3), "z": round(float(r["z"]), 2),
                },
            )  # fmt: skip
    return recorded


# ---- reads ---------------------------------------------------------------------------
def latest_week(conn: sa.Connection) -> date | None:
    s = st.intent_scores
    value = conn.execute(sa.select(sa.func.max(s.c.week_start))).scalar()
    return value if isinstance(value, date) else None


def surging(
    ctx: Context, topic: str | None = None, week_start: date | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Accounts researching ``topic`` (or any topic) now: the latest computed week's surges."""
    s, a = st.intent_scores, t.accounts
    with ctx.engine.connect() as conn:
        week = week_start or latest_week(conn)
        if week is None:
            raise NotFound("no intent computed yet; run `kizuna intent compute` first")
        query = (
            sa.select(
                a.c.external_id, a.c.name, s.c.topic, s.c.score, s.c.events, s.c.people,
                s.c.baseline, s.c.z, s.c.p_value, s.c.week_start,
            )
            .join(a, a.c.id == s.c.account_id)
            .where(s.c.week_start == week, s.c.surging.is_(True))
            .order_by(s.c.z.desc(), a.c.external_id)
            .limit(limit)
        )  # fmt: skip
        if topic:
            query = query.where(s.c.topic == topic)
        rows = conn.execute(query).all()
    return [
        {
            "account": r[0], "name": r[1], "topic": r[2], "score": round(float(r[3]), 2),
            "visits": int(r[4]), "people": int(r[5]), "baseline": round(float(r[6]), 3),
            "z": round(float(r[7]), 2), "p_value": float(r[8]), "week_start": r[9],
        }
        for r in rows
    ]  # fmt: skip


def topic_summary(ctx: Context, week_start: date | None = None) -> list[dict[str, Any]]:
    """Per topic in the latest week: accounts researching it, and how many surge."""
    s = st.intent_scores
    with ctx.engine.connect() as conn:
        week = week_start or latest_week(conn)
        if week is None:
            raise NotFound("no intent computed yet; run `kizuna intent compute` first")
        rows = conn.execute(
            sa.select(
                s.c.topic,
                sa.func.count().filter(s.c.events > 0),
                sa.func.count().filter(s.c.surging.is_(True)),
                sa.func.sum(s.c.score),
            )
            .where(s.c.week_start == week)
            .group_by(s.c.topic)
        ).all()
    out = [
        {"topic": r[0], "accounts_active": int(r[1]), "accounts_surging": int(r[2]),
         "total_score": round(float(r[3] or 0), 2), "week_start": week}
        for r in rows
    ]  # fmt: skip
    return sorted(out, key=lambda d: (-d["accounts_surging"], -d["total_score"], d["topic"]))
