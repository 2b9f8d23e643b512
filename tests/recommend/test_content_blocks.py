"""Content blocks of "dates that matter" messages read the programme's real balances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from tests.api.apiclient import add_members

from kizuna.bootstrap import Context
from kizuna.domain.programme import parse_programme
from kizuna.services import content_blocks
from kizuna.services.programme import config, members
from kizuna.services.programme.actions import Adjust, adjust
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t

PROGRAMME = {
    "earning": {"pending_days": 0},
    "expiry": {"policy": "end_of_month", "months": 1},
    "tiers": {
        "basis": "spend", "window": "calendar_year", "downgrade": "one_level", "grace_days": 0,
        "levels": [{"name": "member", "threshold": 0}, {"name": "gold", "threshold": 50000}],
    },
}  # fmt: skip


def test_tier_points_and_expiring_points_of_a_member(workspace: Context) -> None:
    config.forget_cache()
    add_members(workspace, 2)
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        config.apply_programme(uow, parse_programme(PROGRAMME), "test")
        uow.commit()
    at = datetime(2026, 6, 10, 3, 0, tzinfo=UTC)
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        record_order(
            uow, RecordOrder("O1", "M00000", (OrderLine(1, 60_000),), ordered_at=at), now=at
        )
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        adjust(uow, Adjust("M00000", 120, "goodwill", "tester"), at)
        summary = members.summary(uow, "M00000", now=at)
    with workspace.engine.connect() as conn:
        member, other = (
            conn.execute(
                sa.select(t.customers.c.id).where(t.customers.c.external_id == m)
            ).scalar_one()
            for m in ("M00000", "M00001")
        )
        soon = content_blocks.content_blocks(conn, member, at, expiring_within_days=60)
        later = content_blocks.content_blocks(conn, member, at, expiring_within_days=5)
        nobody = content_blocks.content_blocks(conn, other, at)
    # The same numbers the programme's own member summary shows.
    assert soon.tier == summary["tier"] == "gold"
    assert soon.points_available == summary["balance"]["available"] > 120
    assert soon.points_expiring.points == soon.points_available
    assert soon.points_expiring.first_expiry is not None
    assert at < soon.points_expiring.first_expiry <= at + timedelta(days=60)
    assert later.points_expiring.points == 0 and later.points_available == soon.points_available
    assert nobody.points_available == 0 and nobody.points_expiring.points == 0
    assert soon.to_dict()["points_expiring"] == soon.points_available and soon.recommended == []
    config.forget_cache()
