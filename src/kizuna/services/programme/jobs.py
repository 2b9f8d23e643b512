"""Scheduled work: release pending points, expire lots, review tiers, award birthdays.

Every job is idempotent — running it twice, or on two workers at once,
changes nothing the second time — because each works member by member under
the member's row lock and only acts on what is due and not yet done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.domain import schedule
from kizuna.domain.clock import local_date
from kizuna.domain.tiers import review
from kizuna.errors import Conflict
from kizuna.services.programme import config, system_events
from kizuna.services.programme.actions import RewardAction, reward_action
from kizuna.services.programme.members import open_member, qualifying
from kizuna.services.programme.store import save_book
from kizuna.services.programme.webhooks import deliver_configured, queue_expiring_soon
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t


@dataclass
class JobReport:
    released: int = 0
    expired: int = 0
    members: int = 0
    tier_changes: int = 0
    birthdays: int = 0
    expiring_notices: int = 0
    enrolled: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _members(uow: UnitOfWork, customer_ids: list[int]) -> list[tuple[int, str]]:
    if not customer_ids:
        return []
    c = t.customers.c
    return [
        (r.id, r.external_id)
        for r in uow.conn.execute(sa.select(c.id, c.external_id).where(c.id.in_(customer_ids)))
    ]


def release_and_expire(uow: UnitOfWork, now: datetime | None = None) -> JobReport:
    """Bring every member with a due lot (or past the inactivity limit) up to ``now``."""
    now = now or datetime.now(UTC)
    active = config.active_programme(uow)
    lt = pt.point_lots.c
    due = sa.or_(
        sa.and_(lt.state == "pending", lt.available_at <= now),
        sa.and_(lt.state.in_(("pending", "available")), lt.remaining > 0, lt.expires_at <= now),
    )
    ids = set(uow.conn.execute(sa.select(lt.customer_id).where(due).distinct()).scalars())
    if active.programme.expiry == "inactivity":
        a = pt.point_accounts.c
        # A coarse pre-filter (28-day months); open_member applies the exact local-day rule.
        cutoff = now - timedelta(days=28 * active.programme.expiry_months)
        ids |= set(
            uow.conn.execute(
                sa.select(a.customer_id).where(
                    sa.func.coalesce(a.last_activity_at, a.member_since) < cutoff,
                    (a.available + a.pending) > 0,
                )
            ).scalars()
        )
    uow.rollback()
    report = JobReport()
    for customer_id, external in _members(uow, sorted(ids)):
        opened = open_member(uow, customer_id, external, now)
        for e in opened.book.new:
            if e.kind == "release":
                report.released += e.available
            elif e.kind == "expire":
                report.expired -= e.pending + e.available
        save_book(uow, opened.account, opened.book, opened.active.version)
        uow.commit()
        report.members += 1
    return report


def review_tiers(uow: UnitOfWork, now: datetime | None = None) -> JobReport:
    """At each member's period end (plus grace): keep, drop one level, or re-evaluate."""
    now = now or datetime.now(UTC)
    programme = config.active_programme(uow).programme
    a = pt.point_accounts.c
    ids = list(uow.conn.execute(sa.select(a.customer_id).where(a.tier_review_at <= now)).scalars())
    uow.rollback()
    report = JobReport()
    for customer_id, external in _members(uow, ids):
        opened = open_member(uow, customer_id, external, now)
        account = opened.account
        if account.tier_review_at is None or account.tier_review_at > now:
            uow.rollback()
            continue
        period_end = account.tier_review_at - timedelta(days=programme.tier_grace_days)
        start, end = schedule.tier_window(
            programme, period_end - timedelta(microseconds=1), account.member_since
        )
        q = qualifying(uow, customer_id, programme.tier_basis, start, end)
        new = review(programme, account.tier, q)
        extra: dict[str, Any] = {
            "tier_review_at": schedule.tier_period_end(programme, now, account.member_since)
        }
        if new != account.tier:
            extra.update(tier=new, tier_since=now)
            report.tier_changes += 1
            system_events.tier_changed(
                uow, customer_id, external, account.tier, new, now, "period review"
            )
        save_book(uow, account, opened.book, opened.active.version, extra=extra)
        uow.commit()
        report.members += 1
    return report


def birthdays_on(day: date) -> list[tuple[int, int]]:
    """(month, day) pairs celebrated on ``day``: 29 February falls on 28 February in common years."""
    pairs = [(day.month, day.day)]
    if day.month == 2 and day.day == 28:
        try:
            date(day.year, 2, 29)
        except ValueError:
            pairs.append((2, 29))
    return pairs


def award_birthdays(uow: UnitOfWork, now: datetime | None = None) -> JobReport:
    """Birthday points for members whose birthday is today in the programme timezone; once a year."""
    now = now or datetime.now(UTC)
    programme = config.active_programme(uow).programme
    report = JobReport()
    if "birthday" not in programme.actions:
        return report
    today = local_date(now, programme.tz)
    c = t.customers.c
    cond = sa.or_(
        *(
            sa.and_(sa.extract("month", c.birthday) == m, sa.extract("day", c.birthday) == d)
            for m, d in birthdays_on(today)
        )
    )
    members = list(
        uow.conn.execute(sa.select(c.external_id).where(c.birthday.is_not(None), cond)).scalars()
    )
    uow.rollback()
    for external in members:
        try:
            reward_action(uow, RewardAction(external, "birthday", str(today.year)), now)
            report.birthdays += 1
        except Conflict:
            uow.rollback()  # already awarded this year
    return report


def enrol_new_members(
    uow: UnitOfWork, now: datetime | None = None, limit: int = 10_000
) -> JobReport:
    """Enrol customers who have no points account yet, so automatic sign-up points reach them.

    Only when the programme grants sign-up points automatically; each
    enrolment is one member's transaction (under the lock that creates the
    account), so a second run or a second worker finds nothing to do.
    """
    now = now or datetime.now(UTC)
    programme = config.active_programme(uow).programme
    report = JobReport()
    if not programme.automatic_signup or not programme.actions.get("signup"):
        return report
    c, a = t.customers.c, pt.point_accounts.c
    q = (
        sa.select(c.id, c.external_id)
        .where(~sa.exists().where(a.customer_id == c.id))
        .order_by(c.id)
        .limit(limit)
    )
    todo = list(uow.conn.execute(q))
    uow.rollback()
    for customer_id, external in todo:
        opened = open_member(uow, customer_id, external, now, need_lots=False)
        if opened.account.created:
            save_book(uow, opened.account, opened.book, opened.active.version)
            report.enrolled += 1
        uow.commit()
    return report


def run_all(uow: UnitOfWork, now: datetime | None = None) -> dict[str, int]:
    """Every scheduled job once, in order; safe to run as often as you like."""
    now = now or datetime.now(UTC)
    out: dict[str, int] = {}
    for job in (enrol_new_members, release_and_expire, review_tiers, award_birthdays):
        for k, v in job(uow, now).as_dict().items():
            out[k] = out.get(k, 0) + v
    out["expiring_notices"] = queue_expiring_soon(uow, now)
    out["expiring_events"] = system_events.record_expiring(uow, now)
    out["webhooks_delivered"] = deliver_configured(uow, now)
    return out
