"""Per-customer transaction summaries as in the BG/NBD literature.

A customer's purchase history is reduced to (x, t_x, T) plus spend:

* ``frequency`` x: repeat purchases, i.e. purchase *days* after the first
  (several orders on one local day are one purchase, as in Fader, Hardie &
  Lee 2005 and the ``lifetimes`` package);
* ``recency`` t_x: time from the first to the last purchase;
* ``T``: time from the first purchase to the end of observation;
* ``monetary``: mean value of the *repeat* purchases (the first one is left
  out, as the Gamma-Gamma model asks), 0 for one-time buyers.

Times are counted in whole local days and reported in ``unit_days`` units
(1 for days, 7 for weeks). Observation ends at the start of ``end_day``
(exclusive), a local day number as in :mod:`kizuna.analytics.extract`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kizuna.errors import ValidationError

if TYPE_CHECKING:
    import ibis.expr.types as ir


def require(table: ir.Table, *columns: str, what: str = "table") -> None:
    """Fail with the missing column names before building any expression."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValidationError(
            f"{what} lacks column(s) {', '.join(missing)}; it has {', '.join(table.columns)}"
        )


def purchase_days(
    orders: ir.Table,
    *,
    customer: str = "customer_id",
    day: str = "ordered_at_day",
    amount: str = "amount",
) -> ir.Table:
    """One row per customer and local purchase day: ``customer_id, day, value``."""
    require(orders, customer, day, amount, what="orders")
    return orders.group_by(customer_id=orders[customer], day=orders[day]).aggregate(
        value=orders[amount].sum(), orders=orders.count()
    )


def transaction_summary(
    orders: ir.Table,
    *,
    end_day: int,
    start_day: int | None = None,
    unit_days: float = 1.0,
    customer: str = "customer_id",
    day: str = "ordered_at_day",
    amount: str = "amount",
) -> ir.Table:
    """frequency, recency, T and monetary per customer who bought before ``end_day``.

    Also returns ``purchases`` (days with a purchase), ``orders``,
    ``total_amount`` (historical spend, minor units), ``first_day`` and
    ``last_day``. ``start_day`` drops purchases before it (a calibration
    window that does not start at the beginning of the data).
    """
    if unit_days <= 0:
        raise ValidationError("unit_days must be positive (1 for days, 7 for weeks)")
    days = purchase_days(orders, customer=customer, day=day, amount=amount)
    days = days.filter(days.day < end_day)
    if start_day is not None:
        days = days.filter(days.day >= start_day)
    first = days.day.min().over(group_by=days.customer_id)
    days = days.mutate(first_value=(days.day == first).ifelse(days.value, 0))
    per = days.group_by("customer_id").aggregate(
        first_day=days.day.min(),
        last_day=days.day.max(),
        purchases=days.count(),
        orders=days.orders.sum(),
        total_amount=days.value.sum(),
        first_value=days.first_value.sum(),
    )
    frequency = per.purchases - 1
    repeat_spend = (per.total_amount - per.first_value).cast("float64")
    return per.select(
        "customer_id",
        frequency=frequency,
        recency=(per.last_day - per.first_day).cast("float64") / unit_days,
        T=(end_day - per.first_day).cast("float64") / unit_days,
        monetary=(frequency > 0).ifelse(repeat_spend / frequency.cast("float64"), 0.0),
        purchases=per.purchases,
        orders=per.orders,
        total_amount=per.total_amount,
        first_day=per.first_day,
        last_day=per.last_day,
    )


def calibration_holdout(
    orders: ir.Table,
    *,
    calibration_end_day: int,
    observation_end_day: int,
    unit_days: float = 1.0,
    customer: str = "customer_id",
    day: str = "ordered_at_day",
    amount: str = "amount",
) -> ir.Table:
    """The calibration summary plus what each customer did in the holdout that follows.

    Customers are those who bought before ``calibration_end_day``; the
    holdout is ``[calibration_end_day, observation_end_day)``. Adds
    ``frequency_holdout`` (purchase days), ``monetary_holdout`` (mean value)
    and ``duration_holdout`` (in ``unit_days``).
    """
    if not observation_end_day > calibration_end_day:
        raise ValidationError("the holdout must end after the calibration period")
    cal = transaction_summary(
        orders,
        end_day=calibration_end_day,
        unit_days=unit_days,
        customer=customer,
        day=day,
        amount=amount,
    )
    days = purchase_days(orders, customer=customer, day=day, amount=amount)
    hold = days.filter((days.day >= calibration_end_day) & (days.day < observation_end_day))
    hold = hold.group_by("customer_id").aggregate(
        frequency_holdout=hold.count(), spend_holdout=hold.value.sum()
    )
    joined = cal.left_join(hold, "customer_id").drop("customer_id_right")
    freq = joined.frequency_holdout.fill_null(0)
    return joined.mutate(
        frequency_holdout=freq,
        monetary_holdout=(freq > 0).ifelse(
            joined.spend_holdout.cast("float64") / freq.cast("float64"), 0.0
        ),
        duration_holdout=float(observation_end_day - calibration_end_day) / unit_days,
    ).drop("spend_holdout")
