"""The worker prepares its next batch while the current one is on the wire; a crash in between loses nothing."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.automation.smtp_sink import smtp_sink
from tests.helpers import add

from kizuna.automation import runner as runner_module
from kizuna.automation.runner import Runner, claim
from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.clock import local_date
from kizuna.services import journeys
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

N = 40
JOURNEY = {
    "name": "bd",
    "holdout_percent": 0,
    "trigger": {"birthday": {}},
    "steps": [{"id": "greet", "action": "email", "subject": "{{ name }}", "text": "{{ name }}様"}],
}


def seed(ctx: Context) -> datetime:
    now = datetime.now(UTC)
    today = local_date(now, ZoneInfo("Asia/Tokyo"))
    with ctx.engine.begin() as conn:
        for i in range(N):
            cid = add(conn, t.customers, external_id=f"c{i}", name=f"c{i}", email=f"c{i}@example.jp",
                      birthday=today.replace(year=1990))  # fmt: skip
            add(conn, t.consents, customer_id=cid, channel="email", granted=True,
                changed_at=datetime(2024, 1, 1, tzinfo=UTC), source="t")  # fmt: skip
    uow = UnitOfWork(ctx.engine, ctx.settings)
    journeys.handle_save(journeys.SaveJourney(JOURNEY), uow)
    journeys.set_status("bd", "active", uow)
    journeys.enroll("bd", uow, now)
    return now


def ledger(ctx: Context) -> Counter[str]:
    with ctx.engine.connect() as conn:
        return Counter(conn.execute(sa.select(at.sends.c.status)).scalars())


def test_a_batch_prepared_but_never_sent_is_sent_once_after_its_lease_expires(
    workspace: Context,
) -> None:
    now = seed(workspace)
    with smtp_sink() as (sink, port):
        ctx = Context(replace(workspace.settings, smtp_port=port))
        # A worker claims and prepares a batch (its ``sending`` rows commit)
        # and dies before a single message leaves.
        ids = claim(ctx.engine, "dead-worker", now, batch=N)
        doomed = Runner(ctx.engine, ctx.settings, "dead-worker", lambda: now)
        prepared = doomed.begin_batch(ids)
        assert len(prepared.batch.taken) == N and ledger(ctx) == {"sending": N}
        assert sink.messages == []
        with ctx.engine.connect() as conn:
            planned = dict(
                conn.execute(sa.select(at.sends.c.idempotency_key, at.sends.c.message_id)).all()
            )
        # Within the lease another worker leaves those runs alone...
        run_worker(ctx, once=True, worker_id="other", clock=lambda: now + timedelta(minutes=1))
        assert sink.messages == []
        # ...and once it has expired, sends each message once, with the Message-ID
        # the dead worker had ledgered.
        later = now + runner_module.LEASE + timedelta(seconds=1)
        run_worker(ctx, once=True, worker_id="other", clock=lambda: later)
        got = Counter(str(m["To"]) for m in sink.messages)
        assert len(got) == N and set(got.values()) == {1}
        assert {str(m["Message-ID"]) for m in sink.messages} == set(planned.values())
    assert ledger(workspace) == {"sent": N}


def test_the_worker_prepares_the_next_batch_while_the_current_one_is_sending(
    workspace: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = seed(workspace)
    events: list[str] = []
    begin, end = Runner.begin_batch, Runner.end_batch

    def traced_begin(self: Runner, run_ids: list[int]) -> object:
        events.append(f"prepare {len(run_ids)}")
        return begin(self, run_ids)

    def traced_end(self: Runner, pending: object, stopping: object) -> None:
        events.append("finish")
        end(self, pending, stopping)  # type: ignore[arg-type]

    monkeypatch.setattr(Runner, "begin_batch", traced_begin)
    monkeypatch.setattr(Runner, "end_batch", traced_end)
    with smtp_sink() as (sink, port):
        run_worker(
            Context(replace(workspace.settings, smtp_port=port)),
            once=True, batch=10, worker_id="w", clock=lambda: now,
        )  # fmt: skip
        got = Counter(str(m["To"]) for m in sink.messages)
    assert len(got) == N and set(got.values()) == {1}
    assert ledger(workspace) == {"sent": N}
    if workspace.engine.dialect.name == "postgresql":
        # Batch k+1 is prepared before batch k is finished.
        assert events[:4] == ["prepare 10", "prepare 10", "finish", "prepare 10"]
    else:
        assert events[:4] == ["prepare 10", "finish", "prepare 10", "finish"]
