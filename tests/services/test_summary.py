"""The workspace summary: counts, order period and revenue by local month."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.helpers import add

from kizuna.bootstrap import Context
from kizuna.services.summary import COUNTED_TABLES, MonthRevenue, workspace_summary
from kizuna.store import tables as t
from kizuna.store.sqlfunctions import kizuna_local_month

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


def order(conn: sa.Connection, customer: int, at: datetime, amount: int, **values: Any) -> int:
    external_id = f"O-{conn.execute(sa.select(sa.func.count()).select_from(t.orders)).scalar()}"
    return add(conn, t.orders, external_id=external_id, customer_id=customer, ordered_at=at,
               total_amount=amount, **values)  # fmt: skip


def months(result: Any) -> dict[str, tuple[int, int, int, int]]:
    return {
        m.month.strftime("%Y-%m"): (m.orders, m.gross, m.refunds, m.net)
        for m in result.revenue_by_month
    }


def test_empty_workspace_summary(workspace: Context) -> None:
    summary = workspace_summary(workspace.engine, workspace.settings)

    assert summary.counts == dict.fromkeys(COUNTED_TABLES, 0)
    assert summary.customers_with_orders == 0
    assert summary.first_order_on is None and summary.last_order_on is None
    assert summary.revenue_by_month == ()
    assert (summary.gross_revenue, summary.refunds, summary.revenue) == (0, 0, 0)


def test_months_follow_the_workspace_timezone_not_utc(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        c = add(conn, t.customers, external_id="C-1")
        # 23:30 on 31 January in Tokyo (14:30 UTC): January.
        order(conn, c, datetime(2025, 1, 31, 23, 30, tzinfo=TOKYO), 100)
        # 00:30 on 1 February in Tokyo is still 31 January in UTC: February.
        order(conn, c, datetime(2025, 2, 1, 0, 30, tzinfo=TOKYO), 200)
        # 08:00 on 1 January in Tokyo is 31 December in UTC: January.
        order(conn, c, datetime(2025, 1, 1, 8, 0, tzinfo=TOKYO), 400)
        # 23:59 on 31 December in Tokyo: December.
        order(conn, c, datetime(2024, 12, 31, 23, 59, tzinfo=TOKYO), 800)

    summary = workspace_summary(workspace.engine, workspace.settings)

    assert months(summary) == {
        "2024-12": (1, 800, 0, 800),
        "2025-01": (2, 500, 0, 500),
        "2025-02": (1, 200, 0, 200),
    }
    assert summary.revenue_by_month[0].month == date(2024, 12, 1)
    assert (summary.first_order_on, summary.last_order_on) == (date(2024, 12, 31), date(2025, 2, 1))


def test_months_follow_daylight_saving_time(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        c = add(conn, t.customers, external_id="C-1")
        # Midnight-ish local times in New York during summer time (UTC-4): a
        # fixed UTC-5 offset would put each of these in the previous month.
        order(conn, c, datetime(2025, 4, 1, 0, 30, tzinfo=NEW_YORK), 1)
        order(conn, c, datetime(2025, 11, 1, 0, 30, tzinfo=NEW_YORK), 2)
        # And in winter time (UTC-5): a fixed UTC-4 would move this to December.
        order(conn, c, datetime(2025, 11, 30, 23, 30, tzinfo=NEW_YORK), 4)
        order(conn, c, datetime(2025, 3, 31, 23, 30, tzinfo=NEW_YORK), 8)

    settings = replace(workspace.settings, timezone="America/New_York")
    summary = workspace_summary(workspace.engine, settings)

    assert {m: v[1] for m, v in months(summary).items()} == {
        "2025-03": 8,
        "2025-04": 1,
        "2025-11": 6,
    }
    assert summary.timezone == "America/New_York"


def test_cancelled_orders_and_returns(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        a = add(conn, t.customers, external_id="A")
        b = add(conn, t.customers, external_id="B")
        add(conn, t.customers, external_id="NEVER")
        c = add(conn, t.customers, external_id="ONLY-CANCELLED")
        jan = order(conn, a, datetime(2025, 1, 10, tzinfo=UTC), 10_000)
        order(conn, b, datetime(2025, 1, 20, tzinfo=UTC), 3_000)
        cancelled = order(conn, c, datetime(2025, 1, 25, tzinfo=UTC), 50_000, status="cancelled")
        for o, cust in ((jan, a), (cancelled, c)):
            add(conn, t.order_lines, order_id=o, customer_id=cust, line_no=1, quantity=1,
                unit_price=1, amount=1)  # fmt: skip
        # Refunds count in the month of the return (February), not of the order.
        add(conn, t.returns, external_id="R-1", order_id=jan, customer_id=a, line_no=1,
            quantity=1, refund_amount=2_500, returned_at=datetime(2025, 2, 3, tzinfo=UTC))  # fmt: skip
        # A refund on a cancelled order is not revenue lost twice.
        add(conn, t.returns, external_id="R-2", order_id=cancelled, customer_id=c, line_no=1,
            quantity=1, refund_amount=50_000, returned_at=datetime(2025, 1, 26, tzinfo=UTC))  # fmt: skip

    summary = workspace_summary(workspace.engine, workspace.settings)

    assert months(summary) == {"2025-01": (2, 13_000, 0, 13_000), "2025-02": (0, 0, 2_500, -2_500)}
    assert (summary.gross_revenue, summary.refunds, summary.revenue) == (13_000, 2_500, 10_500)
    assert summary.customers_with_orders == 2
    assert summary.counts["customers"] == 4
    assert summary.counts["orders"] == 3
    assert summary.counts["order_lines"] == 2
    assert summary.counts["returns"] == 2
    assert summary.counts["events"] == 0
    # The period describes the data, so the cancelled order still counts there.
    assert summary.last_order_on == date(2025, 1, 25)


def test_summary_to_dict_is_plain_json(workspace: Context) -> None:
    with workspace.engine.begin() as conn:
        c = add(conn, t.customers, external_id="C-1")
        order(conn, c, datetime(2025, 5, 5, tzinfo=TOKYO), 1_980)

    data = json.loads(json.dumps(workspace_summary(workspace.engine, workspace.settings).to_dict()))

    assert data["revenue_by_month"] == [
        {"month": "2025-05", "orders": 1, "gross": 1980, "refunds": 0, "net": 1980}
    ]
    assert data["first_order_on"] == "2025-05-05"
    assert data["currency"] == "JPY"


def test_month_revenue_net_is_gross_minus_refunds() -> None:
    month = MonthRevenue(date(2025, 1, 1), orders=1, gross=10, refunds=3, net=7)
    assert month.net == month.gross - month.refunds


@pytest.mark.parametrize(
    "zone",
    ["Asia/Tokyo", "America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati", "Pacific/Pago_Pago",
     "Australia/Lord_Howe", "UTC"],
)  # fmt: skip
def test_sqlite_local_month_function_matches_zoneinfo(zone: str) -> None:
    tz = ZoneInfo(zone)
    moment = datetime(2024, 12, 31, tzinfo=UTC)
    while moment.year < 2026:
        text = moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        assert kizuna_local_month(text, zone) == moment.astimezone(tz).strftime("%Y-%m"), text
        moment += timedelta(minutes=30)
    assert kizuna_local_month(None, zone) is None
