"""Template functions of recommendations and content blocks, for journey messages.

Registered when the journey runner loads its plugins, so every email
template can write::

    {{ recommendations(3) }}                      (names, comma-separated)
    {% for p in recommendations(3) %}{{ p.name }} {{ p.url }}{% endfor %}
    {{ tier() }}  {{ points_available() }}  {{ points_expiring(30) }}
    {% set b = content_blocks() %}{{ b.tier }} {{ b.recommended | join(", ") }}

Each call reads, for the customer of the message, through the connection
the sender holds (see :func:`kizuna.automation.templates.customer_scope`).
In a trial render (journey validation) there is no connection and the
functions return empty values, so validation passes without a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kizuna.automation.templates import register_function
from kizuna.services import content_blocks as blocks
from kizuna.services.recommendations import Recommended, recommendations_for

#: The most products one template call may ask for.
MAX_ITEMS = 20


class ProductList(list[Recommended]):
    """A list of products that prints as their names, for ``{{ recommendations(3) }}``."""

    def __str__(self) -> str:
        return ", ".join(p.name for p in self)


def _customer_id(customer: Mapping[str, Any]) -> int | None:
    value = customer.get("id")
    return int(value) if value not in (None, "") else None


def recommendations(conn: Any, customer: Mapping[str, Any], n: int = 3) -> ProductList:
    cid = _customer_id(customer)
    if conn is None or cid is None:
        return ProductList()
    return ProductList(recommendations_for(conn, cid, max(0, min(int(n), MAX_ITEMS))))


def tier(conn: Any, customer: Mapping[str, Any]) -> str:
    cid = _customer_id(customer)
    return "" if conn is None or cid is None else blocks.tier(conn, cid) or ""


def points_available(conn: Any, customer: Mapping[str, Any]) -> int:
    cid = _customer_id(customer)
    return 0 if conn is None or cid is None else blocks.points_available(conn, cid)


def points_expiring(
    conn: Any, customer: Mapping[str, Any], days: int = 30
) -> blocks.ExpiringPoints:
    cid = _customer_id(customer)
    if conn is None or cid is None:
        return blocks.ExpiringPoints(0, None)
    return blocks.points_expiring(conn, cid, datetime.now(UTC), int(days))


def content_blocks(conn: Any, customer: Mapping[str, Any], n: int = 3) -> blocks.ContentBlocks:
    cid = _customer_id(customer)
    if conn is None or cid is None:
        return blocks.ContentBlocks(None, 0, blocks.ExpiringPoints(0, None), ProductList())
    found = blocks.content_blocks(conn, cid, recommended=max(0, min(int(n), MAX_ITEMS)))
    return blocks.ContentBlocks(
        found.tier, found.points_available, found.points_expiring, ProductList(found.recommended)
    )


register_function("recommendations", recommendations)
register_function("tier", tier)
register_function("points_available", points_available)
register_function("points_expiring", points_expiring)
register_function("content_blocks", content_blocks)
