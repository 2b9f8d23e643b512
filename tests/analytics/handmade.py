"""Small hand-made analytics tables whose answers can be worked out on paper."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from kizuna.analytics.kpi import day_of


def month_of(d: date) -> int:
    return d.year * 12 + d.month - 1


def orders(rows: list[tuple[int, str, int]]) -> pa.Table:
    """``(customer_id, "YYYY-MM-DD", amount)`` rows as the extractor shapes orders."""
    days = [date.fromisoformat(d) for _, d, _ in rows]
    return pa.table(
        {
            "customer_id": pa.array([c for c, _, _ in rows], pa.int64()),
            "ordered_at_day": pa.array([day_of(d) for d in days], pa.int64()),
            "ordered_at_month": pa.array([month_of(d) for d in days], pa.int64()),
            "amount": pa.array([a for _, _, a in rows], pa.int64()),
        }
    )


def answers(rows: list[tuple[int, str, int, str]]) -> pa.Table:
    """``(customer_id, kind, score, "YYYY-MM-DD")`` survey answers."""
    days = [date.fromisoformat(d) for *_, d in rows]
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.int64()),
            "kind": pa.array([r[1] for r in rows], pa.string()),
            "score": pa.array([r[2] for r in rows], pa.int64()),
            "answered_at_day": pa.array([day_of(d) for d in days], pa.int64()),
            "answered_at_month": pa.array([month_of(d) for d in days], pa.int64()),
        }
    )


#: Five customers whose recency, frequency and spend rank them 1-5 (see test_rfm).
END = date(2025, 7, 1)
RFM_ROWS: list[tuple[int, int, int]] = [
    # customer, days since last purchase, purchase days (each worth 100)
    (1, 1, 5),
    (2, 2, 1),
    (3, 3, 3),
    (4, 4, 4),
    (5, 5, 2),
]


def rfm_orders() -> pa.Table:
    rows = []
    for customer, recency, purchases in RFM_ROWS:
        last = day_of(END) - recency
        for k in range(purchases):
            d = date.fromordinal(date(1970, 1, 1).toordinal() + last - 10 * k)
            rows.append((customer, d.isoformat(), 100))
    return orders(rows)
