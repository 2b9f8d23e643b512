"""Liability: what the outstanding points are worth, and how much will likely never be used.

Finance books points as a liability at their value; expected breakage (the
share that lapses unused) comes from history: of the points that have left
lots, how many left by expiry rather than by redemption.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from kizuna.domain.clock import local_date
from kizuna.services.programme import config
from kizuna.services.programme.store import Balance
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt


def liability(uow: UnitOfWork, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    programme = config.active_programme(uow).programme
    a, e, lt = pt.point_accounts.c, pt.ledger_entries.c, pt.point_lots.c
    row = uow.conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(a.pending), 0),
            sa.func.coalesce(sa.func.sum(a.available), 0),
            sa.func.coalesce(sa.func.sum(a.reserved), 0),
            sa.func.coalesce(sa.func.sum(a.debt), 0),
        )
    ).one()
    bal = Balance(int(row[0]), int(row[1]), int(row[2]), int(row[3]))
    used = dict(
        uow.conn.execute(
            sa.select(e.kind, sa.func.sum(e.lot_delta))
            .where(e.kind.in_(("redeem", "reserve", "expire")))
            .group_by(e.kind)
        ).all()
    )
    expired = -int(used.get("expire") or 0)
    redeemed = -int(used.get("redeem") or 0) - int(used.get("reserve") or 0)
    breakage = Decimal(expired) / Decimal(expired + redeemed) if expired + redeemed else Decimal(0)
    outstanding = bal.pending + bal.available + bal.reserved
    # Summed per expiry instant in SQL (lots expire at few distinct instants:
    # period ends, or N months after an earning day), then put in months of
    # the programme's timezone here: exact, and not a Python loop over every
    # live lot of a million members on each view of the programme page.
    by_month: dict[str, int] = {}
    for expires_at, remaining in uow.conn.execute(
        sa.select(lt.expires_at, sa.func.sum(lt.remaining))
        .where(lt.state.in_(("pending", "available")), lt.remaining > 0)
        .group_by(lt.expires_at)
    ):
        month = local_date(expires_at, programme.tz).strftime("%Y-%m") if expires_at else "never"
        by_month[month] = by_month.get(month, 0) + int(remaining)
    value = programme.point_value
    return {
        "as_of": now.isoformat(),
        "outstanding_points": outstanding,
        "pending": bal.pending,
        "available": bal.available,
        "reserved": bal.reserved,
        "owed": bal.debt,
        "value": str(outstanding * value),
        "breakage_rate": str(breakage.quantize(Decimal("0.0001"))),
        "expected_breakage_points": int(outstanding * breakage),
        "expiring_by_month": [
            {
                "month": m,
                "points": p,
                "value": str(p * value),
                "expected_breakage": int(p * breakage),
            }
            for m, p in sorted(by_month.items())
        ],
    }
