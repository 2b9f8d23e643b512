"""The member summary reads one statement when nothing is due, and answers as the full read does.

``members.summary`` skips reading the lots when the account's ``next_due_at``
lies beyond the "expiring soon" horizon (it is never later than the soonest
release or expiry). These tests compare it, at many instants around lots'
expiry, with the same summary over a horizon long enough to read every lot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from tests.api.apiclient import add_members

from kizuna.bootstrap import Context
from kizuna.services.programme import members
from kizuna.services.programme.orders import OrderLine, RecordOrder, record_order
from kizuna.services.uow import UnitOfWork

START = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


def _summary(ctx: Context, member: str, now: datetime, days: int) -> dict[str, object]:
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        return members.summary(uow, member, now=now, soon_days=days)


def test_the_one_statement_summary_equals_the_full_read(workspace: Context) -> None:
    ids = add_members(workspace, 3)
    for i, days in enumerate((0, 40, 200)):
        at = START + timedelta(days=days)
        with UnitOfWork(workspace.engine, workspace.settings) as uow:
            record_order(
                uow,
                RecordOrder(f"S-{i}", ids[0], (OrderLine(1, 5_000 + i),), ordered_at=at),
                now=at,
            )
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        record_order(
            uow, RecordOrder("S-9", ids[1], (OrderLine(1, 7_000),), ordered_at=START), now=START
        )
    # Every lot expires 12 months after it was earned (the default programme).
    for member in ids:
        for offset in (1, 300, 330, 340, 370, 400, 560, 600):
            now = START + timedelta(days=offset)
            soon = _summary(workspace, member, now, 30)
            full = _summary(workspace, member, now, 366)
            assert soon["balance"] == full["balance"], (member, offset)
            assert soon["tier"] == full["tier"] and soon["progress"] == full["progress"]
            horizon = (now + timedelta(days=30)).isoformat()
            expected = [x for x in full["expiring_soon"] if x["expires_at"] <= horizon]  # type: ignore[attr-defined]
            assert soon["expiring_soon"] == expected, (member, offset)
    within = _summary(workspace, ids[0], START + timedelta(days=350), 30)
    assert within["expiring_soon"], "a lot expiring in the next 30 days is listed"
    assert _summary(workspace, ids[2], START, 30)["balance"] == members.balance_dict(
        members.Balance()
    )


def test_a_summary_costs_one_statement_when_nothing_is_due(workspace: Context) -> None:
    (member,) = add_members(workspace, 1)
    with UnitOfWork(workspace.engine, workspace.settings) as uow:
        record_order(
            uow, RecordOrder("C-1", member, (OrderLine(1, 9_000),), ordered_at=START), now=START
        )
    _summary(workspace, member, START, 30)  # the programme is read once per process
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(workspace.engine, "before_cursor_execute", seen)
    try:
        result = _summary(workspace, member, START + timedelta(days=1), 30)
    finally:
        sa.event.remove(workspace.engine, "before_cursor_execute", seen)
    assert result["balance"]["available"] > 0  # type: ignore[index]
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
