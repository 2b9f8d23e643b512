"""The workspace-wide control group: no marketing from any journey, and the measured total effect."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.automation.smtp_sink import smtp_sink
from tests.helpers import add

from kizuna.automation.worker import run_worker
from kizuna.bootstrap import Context
from kizuna.domain.clock import local_date
from kizuna.domain.journeys import in_global_control
from kizuna.errors import ValidationError
from kizuna.services import journeys, measures
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

JOURNEY = {
    "name": "bd",
    "holdout_percent": 0,
    "trigger": {"birthday": {}},
    "steps": [
        {"id": "greet", "action": "email", "subject": "おめでとう", "text": "{{ name }}様"},
        {"id": "note", "action": "create_task", "title": "birthday of {{ name }}"},
    ],
}


@pytest.mark.parametrize("batch", [50, 4], ids=["campaign-batch", "step-by-step"])
def test_the_global_control_group_gets_no_marketing_but_everything_else(
    workspace: Context, batch: int
) -> None:
    settings = replace(workspace.settings, global_control_percent=20.0)
    today = local_date(datetime.now(UTC), ZoneInfo("Asia/Tokyo"))
    n = 60
    with workspace.engine.begin() as conn:
        for i in range(n):
            cid = add(conn, t.customers, external_id=f"g{i}", name=f"顧客{i}",
                      email=f"g{i}@example.jp", birthday=today.replace(year=1990))  # fmt: skip
            add(conn, t.consents, customer_id=cid, channel="email", granted=True,
                changed_at=datetime(2024, 1, 1, tzinfo=UTC), source="t")  # fmt: skip
        ids = list(conn.execute(sa.select(t.customers.c.id)).scalars())
    control = {cid for cid in ids if in_global_control(cid, 20.0)}
    assert 0 < len(control) < n
    uow = UnitOfWork(workspace.engine, settings)
    journeys.handle_save(journeys.SaveJourney(JOURNEY), uow)
    journeys.set_status("bd", "active", uow)
    with smtp_sink() as (sink, port):
        ctx = Context(replace(settings, smtp_port=port))
        run_worker(ctx, once=True, batch=batch, programme_jobs_every_seconds=None)
    mailed = {str(m["To"]).split("<")[1].rstrip(">") for m in sink.messages}
    assert mailed == {f"g{cid - ids[0]}@example.jp" for cid in ids if cid not in control}
    with workspace.engine.connect() as conn:
        s = at.sends
        held = dict(
            conn.execute(
                sa.select(s.c.customer_id, s.c.reason).where(s.c.status == "holdout")
            ).all()
        )
        tasks = conn.execute(sa.select(sa.func.count()).select_from(at.journey_tasks)).scalar_one()
    assert held == {cid: "global control group" for cid in control}
    assert tasks == n  # staff tasks are not marketing: everyone's birthday is noted


def test_the_global_effect_compares_marketed_customers_with_the_control_group(
    workspace: Context,
) -> None:
    since = datetime(2025, 9, 1, tzinfo=UTC)
    until = since + timedelta(days=30)
    with workspace.engine.begin() as conn:
        for i in range(200):
            cid = add(conn, t.customers, external_id=f"m{i}")
            add(conn, t.orders, external_id=f"pre{i}", customer_id=cid,
                ordered_at=since - timedelta(days=10), total_amount=400)  # fmt: skip
            amount = 500 if in_global_control(cid, 25.0) else 800
            if i % 2 == 0:  # half of each group buys in the period
                add(conn, t.orders, external_id=f"o{i}", customer_id=cid,
                    ordered_at=since + timedelta(days=3), total_amount=amount)  # fmt: skip
    uow = UnitOfWork(workspace.engine, replace(workspace.settings, global_control_percent=25.0))
    effect = measures.global_effect(uow, since, until)
    assert effect.treated.customers + effect.control.customers == 200
    assert 20 < effect.control.customers < 80
    expected = effect.treated.revenue_per_customer - effect.control.revenue_per_customer
    assert effect.revenue_uplift.estimate == pytest.approx(expected)
    assert sum(effect.treated.revenue_before) == 400 * effect.treated.customers
    with pytest.raises(ValidationError, match="global_control_percent"):
        measures.global_effect(UnitOfWork(workspace.engine, workspace.settings), since, until)
    with pytest.raises(ValidationError, match="after it starts"):
        measures.global_effect(uow, until, since)
