"""The worker's batched email path: same outcomes as the single path, over parallel connections."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from tests.automation.smtp_sink import Sink, smtp_sink
from tests.helpers import add

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.clock import local_date
from kizuna.services import journeys
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

JOURNEY = {
    "name": "bd",
    "holdout_percent": 0,
    "trigger": {"birthday": {}},
    "steps": [
        {
            "id": "greet",
            "action": "email",
            "subject": "おめでとう {{ name }}",
            "text": "{{ name }}様",
        },
        {"id": "note", "action": "create_task", "title": "called {{ name }}"},
    ],
}


class Refusing(Sink):
    """Refuses one address for good (550) and another for now (451)."""

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("gone"):
            return "550 no such user"
        if address.startswith("busy"):
            return "451 try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def seed(ctx: Context, n: int) -> None:
    today = local_date(datetime.now(UTC), ZoneInfo("Asia/Tokyo"))
    with ctx.engine.begin() as conn:
        for i in range(n):
            email = {0: "gone@example.jp", 1: "busy@example.jp", 2: None}.get(i, f"c{i}@example.jp")
            cid = add(conn, t.customers, external_id=f"c{i}", name=f"顧客{i}", email=email,
                      birthday=today.replace(year=1990))  # fmt: skip
            add(conn, t.consents, customer_id=cid, channel="email", granted=i != 3,
                changed_at=datetime(2024, 1, 1, tzinfo=UTC), source="t")  # fmt: skip
    uow = UnitOfWork(ctx.engine, ctx.settings)
    journeys.handle_save(journeys.SaveJourney(JOURNEY), uow)
    journeys.set_status("bd", "active", uow)


def test_a_campaign_batch_sends_once_each_skips_and_dead_letters_like_the_single_path(
    workspace: Context,
) -> None:
    n = 60
    seed(workspace, n)
    sink = Refusing()
    with smtp_sink(handler=sink) as (_, port):
        ctx = Context(replace(workspace.settings, smtp_port=port, smtp_connections=4))
        run_worker(ctx, once=True, batch=50, programme_jobs_every_seconds=None)
    got = Counter(str(m["To"]).split("<")[1].rstrip(">") for m in sink.messages)
    expected = {f"c{i}@example.jp" for i in range(4, n)}
    assert set(got) == expected and set(got.values()) == {1}
    assert {str(m["Subject"]) for m in sink.messages} >= {"おめでとう 顧客4"}
    with workspace.engine.connect() as conn:
        s, r = at.sends, at.journey_runs
        ledger = dict(
            conn.execute(
                sa.select(s.c.status, sa.func.count())
                .where(s.c.step_id == "greet")
                .group_by(s.c.status)
            ).all()
        )
        # The permanent refusal is a dead letter; the temporary one waits for its retry.
        assert ledger == {"sent": n - 4, "skipped": 2, "dead": 1, "sending": 1}
        reasons = set(conn.execute(sa.select(s.c.reason).where(s.c.status == "skipped")).scalars())
        assert reasons == {"no email address", "no email consent at send time"}
        runs = dict(conn.execute(sa.select(r.c.status, sa.func.count()).group_by(r.c.status)).all())
        assert runs == {"completed": n - 2, "dead": 1, "active": 1}
        retry = conn.execute(sa.select(r).where(r.c.status == "active")).one()
        assert retry.attempts == 1 and "451" in (retry.last_error or "")
        # The step after the email ran for everyone the email step finished for.
        tasks = conn.execute(sa.select(sa.func.count()).select_from(at.journey_tasks)).scalar_one()
        assert tasks == n - 2
        # Nobody holds a lease after the batch.
        assert (
            conn.execute(sa.select(sa.func.count()).where(r.c.claimed_by.is_not(None))).scalar_one()
            == 0
        )
