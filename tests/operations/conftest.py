"""A workspace with realistic data: a small generated sample, a points programme and journeys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kizuna.bootstrap import Context
from kizuna.domain.programme import parse_programme
from kizuna.ingest.sample import SampleSummary, generate
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.programme import config
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

PROGRAMME = {"earning": {"pending_days": 0}, "actions": {"review": 50}}


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return generate(tmp_path_factory.mktemp("ops-sample"), 150, seed=9)


def record(ctx: Context, order: str, member: str, amount: int, at: datetime) -> None:
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        record_order(
            uow, RecordOrder(order, member, (OrderLine(1, amount),), ordered_at=at), now=at
        )


def balances(ctx: Context) -> list[tuple[Any, ...]]:
    a = pt.point_accounts.c
    with ctx.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    a.customer_id, a.pending, a.available, a.reserved, a.debt, a.tier
                ).order_by(a.customer_id)
            )
        ]


def counts(ctx: Context) -> dict[str, int]:
    out = {}
    with ctx.engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            out[table.name] = int(
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
    return out


@pytest.fixture
def loaded(workspace: Context, sample: SampleSummary) -> Context:
    """The sample imported, a programme applied, points earned by the first 20 customers."""
    import_paths(workspace, ImportFiles(files_in_folder(Path(sample.out_dir))))
    config.forget_cache()
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        config.apply_programme(uow, parse_programme(PROGRAMME), "test")
        uow.commit()
    with workspace.engine.connect() as conn:
        members = list(
            conn.execute(
                sa.select(t.customers.c.external_id).order_by(t.customers.c.id).limit(20)
            ).scalars()
        )
    start = datetime(2026, 11, 1, 3, tzinfo=UTC)
    for i, member in enumerate(members):
        for k in range(3):
            record(
                workspace, f"P-{i}-{k}", member, 1000 + 250 * k + i, start + timedelta(hours=i + k)
            )
    return workspace


def add_journey_run(ctx: Context, customer_id: int, reason: str, title: str) -> None:
    """A journey, a run with a dead-lettered send and a staff task mentioning the customer."""
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        jid = conn.execute(
            sa.insert(at.journeys)
            .values(
                name=f"j{customer_id}",
                definition={"trigger": {"event": "x"}, "steps": []},
                status="active",
                created_at=now,
                updated_at=now,
            )
            .returning(at.journeys.c.id)
        ).scalar_one()
        rid = conn.execute(
            sa.insert(at.journey_runs)
            .values(
                customer_id=customer_id,
                journey_id=jid,
                instance_key="k",
                status="dead",
                holdout=False,
                started_at=now,
                last_error=reason,
            )
            .returning(at.journey_runs.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(at.sends).values(
                customer_id=customer_id,
                idempotency_key=f"run{rid}:s1",
                run_id=rid,
                journey_id=jid,
                step_id="s1",
                action="email",
                marketing=True,
                status="dead",
                reason=reason,
                created_at=now,
            )
        )
        conn.execute(
            sa.insert(at.journey_tasks).values(
                customer_id=customer_id, run_id=rid, step_id="s2", title=title, created_at=now
            )
        )
