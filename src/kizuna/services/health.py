"""Health runs: compute, store per day, assign touch models, announce what changed.

One run per local computation day (re-computing a day replaces it), so the
stored runs are the trend. In the same transaction as the run, the signals
journeys react to are recorded as system events, idempotent by key:

* ``onboarding_milestone`` - first login, first feature use, onboarding course done;
* ``training_completed`` - a course or certification finished (``certified`` true
  when it came with a certificate);
* ``health_dropped`` - for every person of an account whose health fell into
  the at-risk band or by ``DROP_POINTS`` or more since the previous run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from kizuna.analytics import health as h
from kizuna.domain.clock import local_date, local_day_start
from kizuna.domain.touch import TouchThresholds, band, touch_model
from kizuna.errors import NotFound
from kizuna.services.events import record_event
from kizuna.store import success_tables as st
from kizuna.store import tables as t

if TYPE_CHECKING:
    from kizuna.bootstrap import Context
    from kizuna.config import Settings

#: A fall of this many points between two runs is announced as ``health_dropped``.
DROP_POINTS = 15.0
#: Behaviour event types that count as first steps of onboarding.
FIRST_STEPS = {"first_login": ("login", "app_open"), "first_feature_use": ("feature_use",)}
SYSTEM_PREFIX = "kizuna:"


@dataclass(frozen=True)
class HealthRun:
    """What one computation stored and announced."""

    run_id: int
    computed_on: date
    accounts: int
    customers: int
    events_recorded: dict[str, int]
    touch_models: dict[str, int]


def weights_of(settings: Settings) -> dict[str, float]:
    return h.parse_weights(settings.health_weights)


def thresholds_of(settings: Settings) -> TouchThresholds:
    return TouchThresholds.parse(settings.touch_thresholds)


def _frame(conn: sa.Connection, query: sa.Select[Any], instants: tuple[str, ...]) -> pd.DataFrame:
    result = conn.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    for col in instants:
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def _inputs(conn: sa.Connection, end: datetime, rules: h.HealthRules) -> dict[str, pd.DataFrame]:
    """The rows health needs, for the people of accounts only (parameterised Core)."""
    c, e = t.customers, t.events
    is_member = c.c.account_id.isnot(None)
    members = _frame(
        conn, sa.select(c.c.id.label("customer_id"), c.c.account_id).where(is_member), ()
    )
    accounts = _frame(
        conn, sa.select(t.accounts.c.id.label("account_id"), t.accounts.c.renewal_date), ()
    )
    horizon = end - timedelta(days=max(rules.usage_days + rules.baseline_days, rules.breadth_days))
    events = _frame(
        conn,
        sa.select(e.c.customer_id, e.c.type, e.c.occurred_at)
        .join(c, c.c.id == e.c.customer_id)
        .where(
            is_member,
            e.c.occurred_at >= horizon,
            e.c.occurred_at < end,
            sa.not_(e.c.external_id.startswith(SYSTEM_PREFIX, autoescape=True)),
        ),
        ("occurred_at",),
    )
    k = t.contacts
    contacts = _frame(
        conn,
        sa.select(k.c.customer_id, k.c.resolved, k.c.satisfaction, k.c.opened_at)
        .join(c, c.c.id == k.c.customer_id)
        .where(is_member, k.c.opened_at >= end - timedelta(days=rules.support_days)),
        ("opened_at",),
    )
    s = t.survey_answers
    answers = _frame(
        conn,
        sa.select(s.c.customer_id, s.c.kind, s.c.score, s.c.answered_at)
        .join(c, c.c.id == s.c.customer_id)
        .where(
            is_member, s.c.kind == "nps", s.c.answered_at >= end - timedelta(days=rules.nps_days)
        ),
        ("answered_at",),
    )
    r = t.trainings
    trainings = _frame(
        conn,
        sa.select(
            r.c.id, r.c.customer_id, r.c.course, r.c.kind, r.c.enrolled_at, r.c.completed_at,
            r.c.certificate_id, r.c.score,
        ).where(r.c.enrolled_at < end),
        ("enrolled_at", "completed_at"),
    )  # fmt: skip
    o = t.orders
    revenue = _frame(
        conn,
        sa.select(c.c.account_id, sa.func.sum(o.c.total_amount).label("revenue"))
        .join(c, c.c.id == o.c.customer_id)
        .where(
            is_member,
            o.c.status == "completed",
            o.c.ordered_at >= end - timedelta(days=365),
            o.c.ordered_at < end,
        )
        .group_by(c.c.account_id),
        (),
    )
    return {
        "members": members,
        "accounts": accounts,
        "events": events,
        "contacts": contacts,
        "answers": answers,
        "trainings": trainings,
        "revenue": revenue,
    }


def compute(ctx: Context, on: date | None = None, rules: h.HealthRules | None = None) -> HealthRun:
    """Compute and store the health of every account and its people as of local day ``on``."""
    settings = ctx.settings
    tz = settings.tz
    on = on or local_date(datetime.now(UTC), tz)
    weights, thresholds = weights_of(settings), thresholds_of(settings)
    rules = rules or h.HealthRules()
    end = local_day_start(on + timedelta(days=1), tz)
    with ctx.engine.begin() as conn:
        data = _inputs(conn, end, rules)
        result = h.compute(
            members=data["members"],
            accounts=data["accounts"],
            events=data["events"],
            contacts=data["contacts"],
            answers=data["answers"],
            trainings=data["trainings"],
            end=end,
            today=on,
            weights=weights,
            rules=rules,
        )
        accounts = result.accounts
        revenue = (
            data["revenue"].set_index("account_id")["revenue"] if len(data["revenue"]) else None
        )
        accounts["revenue"] = (
            revenue.reindex(accounts.index).fillna(0).astype(np.int64)
            if revenue is not None
            else np.zeros(len(accounts), np.int64)
        )
        value_pct = accounts["revenue"].rank(pct=True, method="max")
        accounts["touch_model"] = [
            touch_model(float(v), float(s) / 100.0, thresholds)
            for v, s in zip(value_pct, accounts["score"], strict=True)
        ]
        previous = _previous_scores(conn, on)
        run_id = _store(conn, on, weights, thresholds, result)
        recorded = _record_signals(conn, data, result, previous, thresholds, end, on)
    touch = accounts["touch_model"].value_counts().to_dict()
    return HealthRun(
        run_id=run_id,
        computed_on=on,
        accounts=len(accounts),
        customers=len(result.customers),
        events_recorded=recorded,
        touch_models={str(k): int(v) for k, v in touch.items()},
    )


def _previous_scores(conn: sa.Connection, on: date) -> dict[int, float]:
    r, a = st.health_runs, st.account_health
    prev = conn.execute(
        sa.select(r.c.id).where(r.c.computed_on < on).order_by(r.c.computed_on.desc()).limit(1)
    ).scalar()
    if prev is None:
        return {}
    rows = conn.execute(sa.select(a.c.account_id, a.c.score).where(a.c.run_id == prev)).all()
    return {int(k): float(v) for k, v in rows}


def _nan(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _store(
    conn: sa.Connection,
    on: date,
    weights: dict[str, float],
    thresholds: TouchThresholds,
    result: h.HealthResult,
) -> int:
    r = st.health_runs
    old = conn.execute(sa.select(r.c.id).where(r.c.computed_on == on)).scalar()
    if old is not None:
        conn.execute(sa.delete(st.account_health).where(st.account_health.c.run_id == old))
        conn.execute(sa.delete(st.customer_health).where(st.customer_health.c.run_id == old))
        conn.execute(sa.delete(r).where(r.c.id == old))
    run_id = int(
        conn.execute(
            sa.insert(r)
            .values(
                computed_on=on, weights=weights, thresholds=thresholds.to_dict(),
                created_at=datetime.now(UTC), accounts=len(result.accounts),
                customers=len(result.customers),
            )
            .returning(r.c.id)
        ).scalar_one()
    )  # fmt: skip
    acc = result.accounts
    if len(acc):
        conn.execute(
            sa.insert(st.account_health),
            [
                {
                    "run_id": run_id, "account_id": int(aid), "score": float(row["score"]),
                    **{c: _nan(row[c]) for c in h.COMPONENTS},
                    "members": int(row["members"]), "active_members": int(row["active_members"]),
                    "revenue": int(row["revenue"]), "touch_model": str(row["touch_model"]),
                }
                for aid, row in zip(acc.index, acc.to_dict("records"), strict=True)
            ],
        )  # fmt: skip
    cus = result.customers
    if len(cus):
        conn.execute(
            sa.insert(st.customer_health),
            [
                {
                    "run_id": run_id, "customer_id": int(cid), "account_id": int(row["account_id"]),
                    "score": float(row["score"]), **{c: _nan(row[c]) for c in h.COMPONENTS},
                }
                for cid, row in zip(cus.index, cus.to_dict("records"), strict=True)
            ],
        )  # fmt: skip
    return run_id


def _record_signals(
    conn: sa.Connection,
    data: dict[str, pd.DataFrame],
    result: h.HealthResult,
    previous: dict[int, float],
    thresholds: TouchThresholds,
    end: datetime,
    on: date,
) -> dict[str, int]:
    """Milestones, trainings and drops as system events, in the run's transaction."""
    counts = {"onboarding_milestone": 0, "training_completed": 0, "health_dropped": 0}
    tr = data["trainings"]
    done = tr[tr["completed_at"].notna() & (tr["completed_at"] < end)]
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in rec.items()} for rec in done.to_dict("records")
    ]
    for row in records:
        onboarding = row["kind"] == "onboarding"
        kind = "onboarding_milestone" if onboarding else "training_completed"
        props: dict[str, Any] = {"course": row["course"], "kind": row["kind"]}
        if onboarding:
            props["milestone"] = "onboarding_course_completed"
        else:
            certificate = row["certificate_id"]
            props["certified"] = isinstance(certificate, str)
            props["certificate_id"] = certificate if props["certified"] else None
            props["score"] = None if pd.isna(row["score"]) else int(row["score"])
        counts[kind] += record_event(
            conn, key=f"{kind}:training:{row['id']}", customer_id=int(row["customer_id"]),
            type=kind, occurred_at=row["completed_at"].to_pydatetime(), properties=props,
        )  # fmt: skip
    e, c = t.events, t.customers
    for milestone, types in FIRST_STEPS.items():
        firsts = conn.execute(
            sa.select(e.c.customer_id, sa.func.min(e.c.occurred_at))
            .join(c, c.c.id == e.c.customer_id)
            .where(c.c.account_id.isnot(None), e.c.type.in_(types), e.c.occurred_at < end)
            .group_by(e.c.customer_id)
        ).all()
        for customer_id, at in firsts:
            at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            counts["onboarding_milestone"] += record_event(
                conn, key=f"onboarding_milestone:{milestone}:{customer_id}",
                customer_id=int(customer_id), type="onboarding_milestone", occurred_at=at,
                properties={"milestone": milestone},
            )  # fmt: skip
    if previous:
        members = result.customers.groupby("account_id").groups
        limit = thresholds.at_risk * 100.0
        for account_id, score in result.accounts["score"].items():
            before = previous.get(int(str(account_id)))
            now = float(score)
            if before is None:
                continue
            if not ((before >= limit > now) or (before - now >= DROP_POINTS)):
                continue
            for customer_id in members.get(account_id, []):
                counts["health_dropped"] += record_event(
                    conn, key=f"health_dropped:{account_id}:{on.isoformat()}:{customer_id}",
                    customer_id=int(str(customer_id)), type="health_dropped", occurred_at=end,
                    properties={"account_id": int(str(account_id)), "from": round(before, 1),
                                "to": round(now, 1), "band": band(now / 100.0, thresholds)},
                )  # fmt: skip
    return counts


# ---- reads ---------------------------------------------------------------------------
def latest_run_id(conn: sa.Connection) -> tuple[int, date] | None:
    r = st.health_runs
    row = conn.execute(
        sa.select(r.c.id, r.c.computed_on).order_by(r.c.computed_on.desc()).limit(1)
    ).first()
    return None if row is None else (int(row[0]), row[1])


def account_list(ctx: Context, trend_runs: int = 6) -> list[dict[str, Any]]:
    """Every account of the latest run: score, band, touch model, components and trend."""
    thresholds = thresholds_of(ctx.settings)
    a, r = st.account_health, st.health_runs
    with ctx.engine.connect() as conn:
        latest = latest_run_id(conn)
        if latest is None:
            raise NotFound("no health run yet; run `kizuna health compute` first")
        runs = conn.execute(
            sa.select(r.c.id, r.c.computed_on).order_by(r.c.computed_on.desc()).limit(trend_runs)
        ).all()
        run_ids = [int(x[0]) for x in runs]
        trend_rows = conn.execute(
            sa.select(a.c.account_id, r.c.computed_on, a.c.score)
            .join(r, r.c.id == a.c.run_id)
            .where(a.c.run_id.in_(run_ids))
            .order_by(r.c.computed_on)
        ).all()
        rows = conn.execute(
            sa.select(a, t.accounts.c.external_id, t.accounts.c.name, t.accounts.c.renewal_date)
            .join(t.accounts, t.accounts.c.id == a.c.account_id)
            .where(a.c.run_id == latest[0])
            .order_by(a.c.score, t.accounts.c.external_id)
        ).all()
    trend: dict[int, list[float]] = {}
    for account_id, _, score in trend_rows:
        trend.setdefault(int(account_id), []).append(round(float(score), 1))
    out = []
    for row in rows:
        m = row._mapping
        out.append(
            {
                "account": m["external_id"], "name": m["name"], "computed_on": latest[1],
                "score": round(float(m["score"]), 1), "band": band(m["score"] / 100.0, thresholds),
                "touch_model": m["touch_model"], "members": m["members"],
                "active_members": m["active_members"], "revenue": m["revenue"],
                "renewal_date": m["renewal_date"],
                **{c: None if m[c] is None else round(float(m[c]), 3) for c in h.COMPONENTS},
                "trend": trend.get(int(m["account_id"]), []),
            }
        )  # fmt: skip
    return out


def account_health(ctx: Context, account: str | int) -> dict[str, Any]:
    """One account's latest health with its components and full trend.

    ``account`` is the external id (``A0001``) or the surrogate id.
    """
    thresholds = thresholds_of(ctx.settings)
    a, r, acc = st.account_health, st.health_runs, t.accounts
    with ctx.engine.connect() as conn:
        cond = acc.c.external_id == str(account)
        if isinstance(account, int) or (str(account).isdigit() and len(str(account)) <= 18):
            cond = sa.or_(cond, acc.c.id == int(account))
        found = conn.execute(sa.select(acc.c.id, acc.c.external_id, acc.c.name).where(cond)).first()
        if found is None:
            raise NotFound(f"no account {account!r}; use its id such as A0001")
        rows = conn.execute(
            sa.select(a, r.c.computed_on)
            .join(r, r.c.id == a.c.run_id)
            .where(a.c.account_id == found[0])
            .order_by(r.c.computed_on)
        ).all()
    if not rows:
        raise NotFound(f"account {found[1]} has no health yet; run `kizuna health compute`")
    last = rows[-1]._mapping
    return {
        "account": found[1], "name": found[2], "computed_on": last["computed_on"],
        "score": round(float(last["score"]), 1), "band": band(last["score"] / 100.0, thresholds),
        "touch_model": last["touch_model"], "members": last["members"],
        "active_members": last["active_members"], "revenue": last["revenue"],
        "components": {c: last[c] for c in h.COMPONENTS},
        "trend": [
            {"computed_on": x._mapping["computed_on"], "score": round(float(x._mapping["score"]), 1)}
            for x in rows
        ],
    }  # fmt: skip
