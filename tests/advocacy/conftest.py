"""Shared set-up of the advocacy tests: customers and orders written straight into the tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from tests.helpers import add

from kizuna.bootstrap import Context
from kizuna.services.programme import config
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t

T0 = datetime(2026, 3, 2, 3, tzinfo=UTC)


@pytest.fixture
def ws(workspace: Context) -> Context:
    config.forget_cache()
    return workspace


def customer(ctx: Context, ext: str, **values: Any) -> int:
    with ctx.engine.begin() as conn:
        return add(conn, t.customers, external_id=ext, name=f"name {ext}", **values)


def order(ctx: Context, ext: str, customer_id: int, at: datetime, **values: Any) -> int:
    values.setdefault("total_amount", 5000)
    with ctx.engine.begin() as conn:
        return add(
            conn, t.orders, external_id=ext, customer_id=customer_id, ordered_at=at, **values
        )


def points_of(ctx: Context, customer_id: int, source_prefix: str = "adjust:") -> int:
    """Points credited to the member by grants (the ledger's lots), summed."""
    lots = pt.point_lots.c
    with ctx.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(lots.points), 0)).where(
                    lots.customer_id == customer_id, lots.source.startswith(source_prefix)
                )
            ).scalar_one()
        )
