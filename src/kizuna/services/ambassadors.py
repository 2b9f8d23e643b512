"""The ambassador programme: candidates, the pipeline, tasks with points, and impact.

Status changes and task completions each run in one transaction that
records who did it, the system event journeys react to
(``ambassador_invited``, ``ambassador_task_completed``, …) and, for a task,
the points granted through the programme's
:func:`~kizuna.services.programme.actions.adjust` under the idempotency key
``ambassador-task:<task id>``. The task row is locked first (``lock_seq``),
so a retried or concurrent completion finds it completed and grants nothing.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from kizuna.domain import ambassadors as rules
from kizuna.domain.clock import local_date, local_day_start
from kizuna.errors import Conflict, NotFound, ValidationError
from kizuna.services.events import record_event
from kizuna.services.programme.actions import Adjust, adjust
from kizuna.services.programme.idempotency import Idem
from kizuna.services.programme.journey_effects import JoinedUnitOfWork
from kizuna.services.referrals import impact as referral_impact
from kizuna.services.referrals import take_writer
from kizuna.services.uow import UnitOfWork
from kizuna.store import advocacy_tables as at
from kizuna.store import scoring_tables as st
from kizuna.store import tables as t

if TYPE_CHECKING:
    from kizuna.bootstrap import Context
    from kizuna.config import Settings

_a, _k, _cust = at.ambassadors.c, at.ambassador_tasks.c, t.customers.c
ACTOR_MAX = 200


def _member(conn: sa.Connection, member_id: str) -> int:
    found = conn.execute(sa.select(_cust.id).where(_cust.external_id == member_id)).scalar()
    if found is None:
        raise NotFound(f"unknown member {member_id!r}: import or create the customer first")
    return int(found)


def _actor(actor: str) -> str:
    if not actor or not actor.strip():
        raise ValidationError("say who does this (actor), e.g. the staff member's login")
    return actor.strip()[:ACTOR_MAX]


# -- candidates ------------------------------------------------------------------


def window_days(settings: Settings) -> int:
    """The advocacy window of the workspace's ``lifecycle_rules`` (365 days unless set)."""
    from kizuna.analytics.lifecycle import parse_rules

    return parse_rules(settings.lifecycle_rules).ambassador_window_days


def _counts(conn: sa.Connection, stmt: sa.Select[Any]) -> dict[int, int]:
    return {int(k): int(v) for k, v in conn.execute(stmt).all()}


def candidates(
    conn: sa.Connection,
    now: datetime,
    *,
    limit: int = 50,
    include_current: bool = False,
    only: int | None = None,
    window_days: int = 365,
) -> list[rules.Candidate]:
    """Customers ranked by the documented candidate score, best first (``only``: one customer).

    Activity counts over the last ``window_days``: pass :func:`window_days`
    of the workspace, so a candidate is judged over the same window that
    makes a customer an "ambassador" in the lifecycle stages.
    """
    since = now - timedelta(days=window_days)
    r, ca, ref, sa_ = t.reviews.c, t.community_activity.c, t.referrals.c, t.survey_answers.c

    def per(column: Any, *where: Any) -> dict[int, int]:
        if only is not None:
            where = (*where, column == only)
        return _counts(conn, sa.select(column, sa.func.count()).where(*where).group_by(column))

    reviews = per(r.customer_id, r.kind == "review", r.posted_at >= since)
    ugc = per(r.customer_id, r.kind == "ugc", r.posted_at >= since)
    referred = per(
        ref.referrer_id,
        ref.referee_id.is_not(None),
        ref.referred_at >= since,
        ref.status != "rejected",
    )
    attended = per(ca.customer_id, ca.kind == "event_attendance", ca.occurred_at >= since)
    answers = sa.select(
        sa_.customer_id,
        sa_.score,
        sa.func.row_number()
        .over(partition_by=sa_.customer_id, order_by=(sa_.answered_at.desc(), sa_.id.desc()))
        .label("n"),
    ).where(sa_.kind == "nps")
    if only is not None:
        answers = answers.where(sa_.customer_id == only)
    latest = answers.subquery()
    nps = _counts(conn, sa.select(latest.c.customer_id, latest.c.score).where(latest.c.n == 1))
    run_id = conn.execute(
        sa.select(st.scoring_runs.c.id)
        .where(st.scoring_runs.c.status == "complete")
        .order_by(st.scoring_runs.c.version.desc())
        .limit(1)
    ).scalar()
    clv: dict[int, tuple[int, float]] = {}
    if run_id is not None:
        cs = st.customer_scores.c
        ranked = (
            sa.select(
                cs.customer_id, cs.clv, sa.func.percent_rank().over(order_by=cs.clv).label("rank")
            )
            .where(cs.run_id == run_id)
            .subquery()
        )
        query = sa.select(ranked.c.customer_id, ranked.c.clv, ranked.c.rank)
        if only is not None:
            query = query.where(ranked.c.customer_id == only)
        for cid, value, rank in conn.execute(query):
            clv[int(cid)] = (int(value), float(rank))
    ids = set(reviews) | set(ugc) | set(referred) | set(attended) | set(nps)
    if not include_current and ids:
        ids -= set(
            conn.execute(sa.select(_a.customer_id).where(_a.status.in_(rules.CURRENT))).scalars()
        )

    def score(cid: int) -> tuple[float, int, int]:
        acts = reviews.get(cid, 0) + ugc.get(cid, 0) + referred.get(cid, 0) + attended.get(cid, 0)
        promoter = nps.get(cid, -1) >= 9
        value, rank = clv.get(cid, (0, None))
        return (-rules.candidate_score(promoter, acts, rank), -value, cid)

    # Only the best ``limit`` are built and named: ranking 1M customers stays a heap pass.
    top = [key[2] for key in heapq.nsmallest(limit, (score(cid) for cid in ids))]
    names = (
        dict(conn.execute(sa.select(_cust.id, _cust.external_id).where(_cust.id.in_(top))).all())
        if top
        else {}
    )
    return [
        rules.Candidate(
            customer_id=cid,
            member_id=str(names[cid]),
            nps=nps.get(cid),
            reviews=reviews.get(cid, 0),
            ugc=ugc.get(cid, 0),
            referrals=referred.get(cid, 0),
            attended=attended.get(cid, 0),
            clv=clv.get(cid, (0, 0.0))[0],
            clv_rank=clv[cid][1] if cid in clv else None,
        )
        for cid in top
        if cid in names
    ]


#: What the candidate ranking reads; a new row in any of them makes it again.
RANKING_TABLES = ("reviews", "community_activity", "referrals", "survey_answers", "scoring_runs")


def ranked_candidates(ctx: Context, now: datetime, limit: int) -> list[rules.Candidate]:
    """:func:`candidates` for the dashboard, stored per state of the data and per day.

    Ranking reads every customer's activity of the last year, every latest
    NPS answer and every CLV percentile: seconds at a million customers, on
    every view. The ranking is stored (``run_artefacts``) with a fingerprint
    of the tables it reads, the day (the year's window is counted from the
    start of ``now``'s day in the workspace timezone, so it is exact all
    day), the number of rejected referrals and who is an ambassador now (the
    two facts that change in place); any change makes it again.
    """
    from kizuna.services import run_artefacts as ra

    day = local_date(now, ctx.settings.tz)
    start = local_day_start(day, ctx.settings.tz)
    ref = t.referrals.c
    with ctx.engine.connect() as conn:
        current = sorted(
            conn.execute(sa.select(_a.customer_id).where(_a.status.in_(rules.CURRENT))).scalars()
        )
        rejected = conn.execute(
            sa.select(sa.func.count()).select_from(t.referrals).where(ref.status == "rejected")
        ).scalar_one()
    members = hashlib.sha256(",".join(map(str, current)).encode()).hexdigest()[:16]

    def make() -> list[dict[str, Any]]:
        with ctx.engine.connect() as conn:
            found = candidates(conn, start, limit=limit, window_days=window)
            return [asdict(c) for c in found]

    window = window_days(ctx.settings)
    extra = f"{day.isoformat()};{window};{rejected};{members}"
    doc = ra.for_data(ctx, f"ambassador_candidates:{limit}", RANKING_TABLES, make, extra)
    return [rules.Candidate(**c) for c in doc]


# -- pipeline ----------------------------------------------------------------------


def _lock(conn: sa.Connection, customer_id: int) -> Any:
    return conn.execute(
        sa.update(at.ambassadors)
        .where(_a.customer_id == customer_id)
        .values(lock_seq=_a.lock_seq + 1)
        .returning(_a.status)
    ).first()


def move(
    uow: UnitOfWork,
    member_id: str,
    to: str,
    actor: str,
    now: datetime | None = None,
    score: float | None = None,
) -> dict[str, Any]:
    """Invite, accept, activate, retire (alumni) or decline; records who and when."""
    now = now or datetime.now(UTC)
    with uow:
        take_writer(uow.conn)
        changed = move_on(uow.conn, member_id, to, actor, now, score)
        body = ambassador(uow.conn, member_id)
        if changed:
            uow.commit()
    return body


def move_on(
    conn: sa.Connection,
    member_id: str,
    to: str,
    actor: str,
    now: datetime,
    score: float | None = None,
) -> bool:
    """:func:`move` inside the caller's transaction (a journey step); False when already there."""
    actor = _actor(actor)
    if to not in rules.STATUSES:
        raise ValidationError(f"status must be one of {', '.join(rules.STATUSES)}")
    customer_id = _member(conn, member_id)
    row = _lock(conn, customer_id)
    current = None if row is None else str(row.status)
    if current == to:
        return False  # a retry of the same step changes nothing
    if not rules.can_move(current, to):
        allowed = sorted(rules.TRANSITIONS.get(current or "", {"invited"}))
        raise Conflict(
            f"ambassador {member_id} is {current or 'not invited yet'}; "
            f"from there the next steps are: {', '.join(allowed) or 'none'}"
        )
    stamp = {"invited": ("invited_at", "invited_by"), "accepted": ("accepted_at", "accepted_by"),
             "active": ("activated_at", "activated_by"), "alumni": ("alumni_at", "alumni_by")}  # fmt: skip
    values: dict[str, Any] = {"status": to, "updated_at": now}
    if to in stamp:
        values |= {stamp[to][0]: now, stamp[to][1]: actor}
    if score is not None:
        values["score"] = score
    if row is None:
        conn.execute(sa.insert(at.ambassadors).values(customer_id=customer_id, **values))
    else:
        if to == "invited":  # a new round: forget the previous one's steps
            values |= {k: None for pair in list(stamp.values())[1:] for k in pair}
        conn.execute(sa.update(at.ambassadors).where(_a.customer_id == customer_id).values(values))
    conn.execute(
        sa.insert(at.ambassador_transitions).values(
            customer_id=customer_id, from_status=current, to_status=to, at=now, actor=actor
        )
    )
    seq = conn.execute(
        sa.select(sa.func.count()).where(at.ambassador_transitions.c.customer_id == customer_id)
    ).scalar_one()
    record_event(
        conn,
        key=f"ambassador:{customer_id}:{seq}:{to}",
        customer_id=customer_id,
        type=rules.EVENT_OF[to],
        occurred_at=now,
        properties={"from": current, "to": to, "actor": actor},
    )
    return True


def status_of(conn: sa.Connection, customer_id: int) -> str | None:
    found = conn.execute(sa.select(_a.status).where(_a.customer_id == customer_id)).scalar()
    return None if found is None else str(found)


def ambassador(conn: sa.Connection, member_id: str) -> dict[str, Any]:
    customer_id = _member(conn, member_id)
    row = conn.execute(sa.select(at.ambassadors).where(_a.customer_id == customer_id)).first()
    if row is None:
        raise NotFound(f"member {member_id} is not an ambassador; invite them first")
    history = conn.execute(
        sa.select(at.ambassador_transitions)
        .where(at.ambassador_transitions.c.customer_id == customer_id)
        .order_by(at.ambassador_transitions.c.id)
    ).all()
    iso = lambda v: v.isoformat() if v else None  # noqa: E731
    return {
        "member_id": member_id,
        "status": row.status,
        "score": row.score,
        "invited_at": iso(row.invited_at),
        "invited_by": row.invited_by,
        "accepted_at": iso(row.accepted_at),
        "accepted_by": row.accepted_by,
        "activated_at": iso(row.activated_at),
        "activated_by": row.activated_by,
        "alumni_at": iso(row.alumni_at),
        "alumni_by": row.alumni_by,
        "history": [
            {"from": h.from_status, "to": h.to_status, "at": h.at.isoformat(), "actor": h.actor}
            for h in history
        ],
    }


def pipeline(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every ambassador with status, dates and impact, for the dashboard and exports."""
    rows = conn.execute(
        sa.select(at.ambassadors, _cust.external_id, _cust.name)
        .select_from(at.ambassadors.join(t.customers, _cust.id == _a.customer_id))
        .order_by(_a.updated_at.desc())
    ).all()
    effects = impact(conn, [int(r.customer_id) for r in rows])
    return [
        {
            "member_id": r.external_id,
            "name": r.name,
            "status": r.status,
            "score": r.score,
            "invited_at": r.invited_at,
            "accepted_at": r.accepted_at,
            "activated_at": r.activated_at,
            "alumni_at": r.alumni_at,
            **effects[int(r.customer_id)],
        }
        for r in rows
    ]


def impact(conn: sa.Connection, customer_ids: list[int]) -> dict[int, dict[str, int]]:
    """Referred customers, their revenue, and the reach and points of completed tasks."""
    out = {
        cid: {**v, "tasks_done": 0, "reach": 0, "points": 0}
        for cid, v in referral_impact(conn, customer_ids).items()
    }
    if customer_ids:
        for row in conn.execute(
            sa.select(
                _k.customer_id,
                sa.func.count().label("n"),
                sa.func.sum(_k.reach).label("reach"),
                sa.func.sum(_k.granted_points).label("points"),
            )
            .where(_k.customer_id.in_(customer_ids), _k.status == "completed")
            .group_by(_k.customer_id)
        ):
            out[int(row.customer_id)].update(
                tasks_done=int(row.n), reach=int(row.reach or 0), points=int(row.points or 0)
            )
    return out


# -- tasks ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTask:
    task_id: str
    member_id: str
    kind: str
    title: str
    points: int
    actor: str
    due_at: datetime | None = None


_TASKS = sa.select(at.ambassador_tasks, _cust.external_id.label("member")).select_from(
    at.ambassador_tasks.join(t.customers, _cust.id == _k.customer_id)
)


def _task_dict(row: Any) -> dict[str, Any]:
    iso = lambda v: v.isoformat() if v else None  # noqa: E731
    return {
        "task_id": row.external_id,
        "member_id": row.member,
        "kind": row.kind,
        "title": row.title,
        "points": int(row.points),
        "status": row.status,
        "created_at": iso(row.created_at),
        "created_by": row.created_by,
        "due_at": iso(row.due_at),
        "completed_at": iso(row.completed_at),
        "completed_by": row.completed_by,
        "url": row.url,
        "reach": int(row.reach),
        "granted_points": int(row.granted_points),
    }


def _task_body(conn: sa.Connection, task_id: str) -> dict[str, Any]:
    row = conn.execute(_TASKS.where(_k.external_id == task_id)).first()
    if row is None:
        raise NotFound(f"no ambassador task {task_id!r}")
    return _task_dict(row)


def assign_task(
    uow: UnitOfWork, cmd: NewTask, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """Give an active ambassador a task; the same task id again returns the first one."""
    now = now or datetime.now(UTC)
    if cmd.kind not in rules.TASK_KINDS:
        raise ValidationError(f"kind must be one of {', '.join(rules.TASK_KINDS)}")
    if not 0 <= cmd.points <= rules.MAX_TASK_POINTS:
        raise ValidationError(f"points must be between 0 and {rules.MAX_TASK_POINTS}")
    if not cmd.task_id or len(cmd.task_id) > 128 or not cmd.title.strip():
        raise ValidationError("a task needs an id (1-128 characters) and a title")
    if cmd.due_at is not None and cmd.due_at.tzinfo is None:
        raise ValidationError("due_at: give the time with a timezone offset")
    actor = _actor(cmd.actor)
    with uow:
        conn = uow.conn
        take_writer(conn)
        customer_id = _member(conn, cmd.member_id)
        row = _lock(conn, customer_id)
        existing = conn.execute(
            sa.select(_k.customer_id).where(_k.external_id == cmd.task_id)
        ).first()
        if existing is not None:
            if int(existing.customer_id) != customer_id:
                raise Conflict(f"task id {cmd.task_id!r} is already used for another ambassador")
            return 200, _task_body(conn, cmd.task_id)
        if row is None or row.status != "active":
            raise Conflict(
                f"member {cmd.member_id} is not an active ambassador "
                f"({row.status if row else 'not invited'}); activate them first"
            )
        conn.execute(
            sa.insert(at.ambassador_tasks).values(
                external_id=cmd.task_id,
                customer_id=customer_id,
                kind=cmd.kind,
                title=cmd.title.strip()[:300],
                points=cmd.points,
                status="open",
                created_at=now,
                created_by=actor,
                due_at=cmd.due_at,
            )
        )
        record_event(
            conn,
            key=f"ambassador-task:{cmd.task_id}:assigned",
            customer_id=customer_id,
            type="ambassador_task_assigned",
            occurred_at=now,
            properties={"task_id": cmd.task_id, "kind": cmd.kind, "points": cmd.points},
        )
        body = _task_body(conn, cmd.task_id)
        uow.commit()
    return 201, body


@dataclass(frozen=True)
class CompleteTask:
    task_id: str
    actor: str
    url: str | None = None
    reach: int = 0


def complete_task(
    uow: UnitOfWork, cmd: CompleteTask, now: datetime | None = None
) -> tuple[int, dict[str, Any]]:
    """Mark a task done and grant its points exactly once (a retry returns the first result)."""
    now = now or datetime.now(UTC)
    actor = _actor(cmd.actor)
    if cmd.reach < 0:
        raise ValidationError("reach cannot be negative (people who saw the post)")
    with uow:
        conn = uow.conn
        row = conn.execute(
            sa.update(at.ambassador_tasks)
            .where(_k.external_id == cmd.task_id)
            .values(lock_seq=_k.lock_seq + 1)
            .returning(_k.id, _k.customer_id, _k.status, _k.points, _k.kind)
        ).first()
        if row is None:
            raise NotFound(f"no ambassador task {cmd.task_id!r}")
        if row.status == "completed":
            return 200, _task_body(conn, cmd.task_id)
        if row.status != "open":
            raise Conflict(f"task {cmd.task_id} is {row.status}; only open tasks can be completed")
        member = conn.execute(
            sa.select(_cust.external_id).where(_cust.id == row.customer_id)
        ).scalar_one()
        points = int(row.points)
        if points > 0:
            key = f"ambassador-task:{cmd.task_id}"
            idem = Idem(key[:255], hashlib.sha256(f"{key} {points}".encode()).hexdigest())
            adjust(
                JoinedUnitOfWork(conn, uow.settings),
                Adjust(
                    str(member), points, f"ambassador task {cmd.task_id}"[:500], "ambassador", idem
                ),
                now,
            )
        conn.execute(
            sa.update(at.ambassador_tasks)
            .where(_k.id == row.id)
            .values(
                status="completed",
                completed_at=now,
                completed_by=actor,
                url=cmd.url,
                reach=cmd.reach,
                granted_points=points,
            )
        )
        record_event(
            conn,
            key=f"ambassador-task:{cmd.task_id}:completed",
            customer_id=int(row.customer_id),
            type="ambassador_task_completed",
            occurred_at=now,
            properties={"task_id": cmd.task_id, "kind": row.kind, "points": points},
        )
        body = _task_body(conn, cmd.task_id)
        uow.commit()
    return 201, body


def tasks(
    conn: sa.Connection, member_id: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Tasks newest first (one query)."""
    query = _TASKS.order_by(_k.created_at.desc(), _k.id.desc()).limit(5000)
    if member_id is not None:
        query = query.where(_k.customer_id == _member(conn, member_id))
    if status is not None:
        query = query.where(_k.status == status)
    return [_task_dict(row) for row in conn.execute(query)]
