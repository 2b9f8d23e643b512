"""Frequency caps shared by journeys, and quiet hours in each customer's zone, over real SMTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from tests.automation.smtp_sink import smtp_sink
from tests.helpers import add

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.services import journeys
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

TOKYO = ZoneInfo("Asia/Tokyo")


def journey(name: str, **extra: Any) -> dict[str, Any]:
    step = {"id": "mail", "action": "email", "subject": name, "text": "{{ name }}", **extra}
    return {"name": name, "holdout_percent": 0, "trigger": {"birthday": {}}, "steps": [step]}


def seed(ctx: Context, zones: dict[str, str | None]) -> None:
    with ctx.engine.begin() as conn:
        for name, zone in zones.items():
            cid = add(conn, t.customers, external_id=name, name=name, email=f"{name}@example.jp",
                      birthday=date(1990, 6, 1), timezone=zone)  # fmt: skip
            add(conn, t.consents, customer_id=cid, channel="email", granted=True,
                changed_at=datetime(2024, 1, 1, tzinfo=UTC), source="t")  # fmt: skip


def activate(ctx: Context, *docs: dict[str, Any]) -> None:
    uow = UnitOfWork(ctx.engine, ctx.settings)
    for doc in docs:
        journeys.handle_save(journeys.SaveJourney(doc), uow)
        journeys.set_status(doc["name"], "active", uow)


def work(ctx: Context, now: datetime, **settings: Any) -> None:
    run_worker(
        Context(replace(ctx.settings, **settings)), once=True, clock=lambda: now, worker_id="w"
    )


def test_a_frequency_cap_is_shared_by_two_journeys(workspace: Context) -> None:
    seed(workspace, {"a": None, "b": None})
    activate(workspace, journey("first"), journey("second"), journey("third", when_capped="skip"))
    now = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo
    with smtp_sink() as (sink, port):
        work(workspace, now, smtp_port=port, frequency_cap="1/7")
        assert sorted(str(m["To"]) for m in sink.messages) == [
            "a <a@example.jp>",
            "b <b@example.jp>",
        ]
        work(workspace, now + timedelta(days=3), smtp_port=port, frequency_cap="1/7")
        assert len(sink.messages) == 2  # still capped: deferred, not dropped
        work(workspace, now + timedelta(days=7, minutes=1), smtp_port=port, frequency_cap="1/7")
        assert len(sink.messages) == 4  # the deferred journey's mail, once per customer
    with workspace.engine.connect() as conn:
        ledger = conn.execute(
            sa.select(at.sends.c.status, at.sends.c.reason, sa.func.count())
            .group_by(at.sends.c.status, at.sends.c.reason).order_by(at.sends.c.status)
        ).all()  # fmt: skip
    assert [tuple(r) for r in ledger] == [("sent", None, 4), ("skipped", "frequency cap", 2)]


def test_quiet_hours_hold_messages_until_the_customers_local_morning(workspace: Context) -> None:
    seed(workspace, {"tokyo": None, "newyork": "America/New_York"})
    activate(workspace, journey("now"))
    # 1 June 2025 22:00 in Tokyo = 09:00 in New York (EDT): Tokyo is quiet, New York is not.
    now = datetime(2025, 6, 1, 13, 0, tzinfo=UTC)
    with smtp_sink() as (sink, port):
        work(workspace, now, smtp_port=port, quiet_hours="21:00-09:00")
        assert [str(m["To"]) for m in sink.messages] == ["newyork <newyork@example.jp>"]
        work(
            workspace,
            datetime(2025, 6, 1, 23, 59, tzinfo=UTC),
            smtp_port=port,
            quiet_hours="21:00-09:00",
        )
        assert len(sink.messages) == 1  # 08:59 in Tokyo: still held
        work(
            workspace,
            datetime(2025, 6, 2, 0, 0, tzinfo=UTC),
            smtp_port=port,
            quiet_hours="21:00-09:00",
        )
        assert [str(m["To"]) for m in sink.messages][1:] == ["tokyo <tokyo@example.jp>"]


def test_journey_priority_decides_who_gets_the_capped_slot(workspace: Context) -> None:
    seed(workspace, {"a": None})
    activate(
        workspace,
        journey("newsletter") | {"priority": 200},
        journey("vip-offer") | {"priority": 10},
    )
    now = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)
    with smtp_sink() as (sink, port):
        work(workspace, now, smtp_port=port, frequency_cap="1/7")
        assert [str(m["Subject"]) for m in sink.messages] == ["vip-offer"]


def test_transactional_steps_bypass_caps_and_quiet_hours(workspace: Context) -> None:
    seed(workspace, {"a": None})
    activate(workspace, journey("promo"), journey("receipt", transactional=True))
    late = datetime(2025, 6, 1, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo
    with smtp_sink() as (sink, port):
        work(workspace, late, smtp_port=port, frequency_cap="1/7", quiet_hours="21:00-09:00")
        assert [str(m["Subject"]) for m in sink.messages] == ["receipt"]


def test_temporary_smtp_failures_back_off_and_permanent_ones_are_dead_lettered(
    workspace: Context,
) -> None:
    seed(workspace, {"flaky": None, "gone": None})
    activate(workspace, journey("news"))
    now = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)
    with smtp_sink() as (sink, port):
        tries: dict[str, int] = {}
        original = sink.handle_DATA

        async def picky(server: Any, session: Any, envelope: Any) -> str:
            rcpt = envelope.rcpt_tos[0]
            tries[rcpt] = tries.get(rcpt, 0) + 1
            if rcpt.startswith("gone"):
                return "550 5.1.1 no such user"
            if tries[rcpt] == 1:
                return "451 4.3.0 try again later"
            return await original(server, session, envelope)

        sink.handle_DATA = picky  # type: ignore[method-assign]
        work(workspace, now, smtp_port=port)
        assert sink.messages == []  # flaky deferred with backoff, gone dead-lettered
        work(workspace, now + timedelta(seconds=30), smtp_port=port)
        assert sink.messages == []  # backoff (1 minute) not over yet
        work(workspace, now + timedelta(minutes=1, seconds=1), smtp_port=port)
        assert [str(m["To"]) for m in sink.messages] == ["flaky <flaky@example.jp>"]
    with workspace.engine.connect() as conn:
        dead = conn.execute(
            sa.select(at.sends.c.reason).where(at.sends.c.status == "dead")
        ).scalars().all()  # fmt: skip
        runs = dict(conn.execute(sa.select(at.journey_runs.c.status, sa.func.count()).group_by(at.journey_runs.c.status)).all())  # fmt: skip
    assert len(dead) == 1 and "550" in dead[0] and "no such user" in dead[0]
    assert runs == {"completed": 1, "dead": 1}
