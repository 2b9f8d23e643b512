"""The worker's batched email path: same outcomes as the single path, over parallel connections."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.automation.smtp_sink import Sink, smtp_sink
from tests.helpers import add

from kizuna.automation.channels import email as email_channel
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
    """Refuses one address for good (550) and another for now (451); may offer PIPELINING."""

    def __init__(self, pipelining: bool = False) -> None:
        super().__init__()
        self.pipelining = pipelining

    async def handle_EHLO(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        # aiosmtpd reads pipelined commands in order; it only does not announce it.
        session.host_name = hostname
        return [responses[0], "250-PIPELINING", *responses[1:]] if self.pipelining else responses

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


@pytest.mark.parametrize("pipelining", [False, True], ids=["plain", "pipelining"])
def test_a_campaign_batch_sends_once_each_skips_and_dead_letters_like_the_single_path(
    workspace: Context, pipelining: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 60
    seed(workspace, n)
    sink = Refusing(pipelining)
    pipelined: list[str] = []
    real = email_channel._pipelined

    def spy(smtp: Any, msg: Any) -> None:
        pipelined.append(msg.recipient)
        real(smtp, msg)

    monkeypatch.setattr(email_channel, "_pipelined", spy)
    with smtp_sink(handler=sink) as (_, port):
        ctx = Context(replace(workspace.settings, smtp_port=port, smtp_connections=4))
        run_worker(ctx, once=True, batch=50, programme_jobs_every_seconds=None)
    got = Counter(str(m["To"]).split("<")[1].rstrip(">") for m in sink.messages)
    expected = {f"c{i}@example.jp" for i in range(4, n)}
    assert set(got) == expected and set(got.values()) == {1}
    assert {str(m["Subject"]) for m in sink.messages} >= {"おめでとう 顧客4"}
    # Both refusals were offered to the server; with PIPELINING every message went that way.
    assert len(pipelined) >= n - 2 if pipelining else not pipelined
    with workspace.engine.connect() as conn:
        ids = dict(
            conn.execute(
                sa.select(at.sends.c.customer_id, at.sends.c.message_id).where(
                    at.sends.c.status == "sent", at.sends.c.step_id == "greet"
                )
            ).all()
        )
        emails = dict(conn.execute(sa.select(t.customers.c.email, t.customers.c.id)).all())
    # The ledger records the Message-ID each message carried.
    assert {ids[emails[str(m["To"]).split("<")[1].rstrip(">")]] for m in sink.messages} == {
        str(m["Message-ID"]) for m in sink.messages
    }
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


class Watching(Sink):
    """Checks, as each message arrives, that the previous one on its connection is ledgered sent.

    This is the bound on repeats after a crash: at most one accepted-but-not-
    ledgered message per connection.
    """

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__()
        self.engine = engine
        self.previous: dict[int, str] = {}
        self.unledgered: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        before = self.previous.get(id(session))
        if before is not None:
            with self.engine.connect() as conn:
                status = conn.execute(
                    sa.select(at.sends.c.status).where(at.sends.c.message_id == before)
                ).scalar_one()
            if status != "sent":
                self.unledgered.append(before)
        reply = await super().handle_DATA(server, session, envelope)
        self.previous[id(session)] = str(self.messages[-1]["Message-ID"])
        return reply


def test_a_connection_sends_its_next_message_only_once_the_last_is_ledgered_sent(
    workspace: Context,
) -> None:
    n = 80
    seed(workspace, n)
    sink = Watching(workspace.engine)
    with smtp_sink(handler=sink) as (_, port):
        ctx = Context(replace(workspace.settings, smtp_port=port, smtp_connections=4))
        run_worker(ctx, once=True, batch=100, programme_jobs_every_seconds=None)
    assert len(sink.messages) == n - 2  # this sink accepts gone@ and busy@ too
    assert not sink.unledgered
    assert len(sink.previous) > 1  # several connections took part


def test_a_failed_ledger_commit_fails_every_message_of_its_group() -> None:
    """The sending threads learn that their ``sent`` mark did not commit; none carries on."""
    from kizuna.automation.email_batch import _GroupCommit

    groups: list[list[Any]] = []

    def commit(group: list[Any]) -> None:
        groups.append(group)
        raise RuntimeError("database gone")

    ledger = _GroupCommit(commit, active=3, linger=5.0)
    errors: list[BaseException] = []

    def mark(mail: Any) -> None:
        try:
            ledger.mark(mail)
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=mark, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # All three waited for each other (one group, well before the 5 s linger) and all failed.
    assert [sorted(g) for g in groups] == [[0, 1, 2]] and len(errors) == 3
