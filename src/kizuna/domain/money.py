"""Money as whole minor units.

Amounts are integers of the currency's minor unit (yen for JPY, cents for
USD) so that sums, refunds and point calculations are exact; a float would
make a ledger drift by fractions nobody can explain.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def to_minor(value: str | int | Decimal, exponent: int) -> int:
    """Turn a written amount ("1,980", "12.50") into minor units, exactly.

    Raises ``ValueError`` when the text is not a number or has more decimals
    than the currency allows, because rounding money silently loses it.
    """
    if isinstance(value, int):
        return value * 10**exponent
    text = str(value).strip().replace(",", "").replace("¥", "").replace("￥", "")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not an amount") from exc
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} has more than {exponent} decimal place(s) for this currency")
    return int(scaled)


def from_minor(minor: int, exponent: int) -> Decimal:
    """The amount in major units, for display."""
    return Decimal(minor).scaleb(-exponent)


def format_money(minor: int, currency: str, exponent: int) -> str:
    """A human rendering: ``¥1,980`` for JPY, ``USD 12.50`` otherwise."""
    major = from_minor(minor, exponent)
    if currency == "JPY":
        return f"¥{major:,.0f}"
    return f"{currency} {major:,.{exponent}f}"
