"""A person's rights over their data (APPI, GDPR): see everything held, have it erased.

Both commands walk :data:`kizuna.store.tables.metadata` instead of a list of
tables: every feature area defines its own tables and marks the columns that
hold personal data with ``info={"personal": True}``, so a table added next
month is exported and erased without touching this module.

Erasure *anonymises* rather than deletes. Orders, order lines, ledger entries,
lots and scores keep their ids, amounts and dates, so every points balance,
the points liability and every KPI are exactly what they were; only the
columns that say who the person is or what they wrote are overwritten. The
audit row records who erased which customer and which columns, never the
erased values.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from kizuna.errors import NotFound
from kizuna.services.uow import UnitOfWork
from kizuna.store import operations_tables as ops
from kizuna.store import tables as t

EXPORT_FORMAT = "kizuna-privacy-export/1"
ERASED_TEXT = "[erased]"
#: Tables that describe the erasure itself, never themselves erased or exported.
_OWN_TABLES = frozenset({"privacy_erasures"})


def is_personal(column: sa.Column[Any]) -> bool:
    return bool(column.info.get("personal"))


def personal_columns(table: sa.Table) -> list[sa.Column[Any]]:
    return [c for c in table.columns if is_personal(c)]


def customer_links(table: sa.Table) -> list[sa.Column[Any]]:
    """Columns of ``table`` that name a customer: ``customer_id`` or a foreign key to customers."""
    found: list[sa.Column[Any]] = []
    for column in table.columns:
        refers = any(fk.column.table.name == "customers" for fk in column.foreign_keys)
        if column.name == "customer_id" or refers:
            found.append(column)
    return found


def customer_filter(table: sa.Table, cid: int) -> sa.ColumnElement[bool] | None:
    """Which rows of ``table`` are about customer ``cid`` (None: the table cannot tell).

    Directly, through a column that names a customer; or one step away,
    through a foreign key to a table that does (a referral's fingerprints
    belong to whoever the referral names).
    """
    links = customer_links(table)
    if links:
        return sa.or_(*(col == cid for col in links))
    via = []
    for fk in table.foreign_keys:
        parent = fk.column.table
        if parent is table or parent.name in _OWN_TABLES:
            continue
        parent_links = customer_links(parent)
        if parent_links:
            owned = sa.select(fk.column).where(sa.or_(*(col == cid for col in parent_links)))
            via.append(fk.parent.in_(owned))
    return sa.or_(*via) if via else None


def linked_tables() -> Iterator[sa.Table]:
    """Every table (but customers) whose rows can be traced to one customer."""
    for table in t.metadata.sorted_tables:
        if table.name == "customers" or table.name in _OWN_TABLES:
            continue
        if customer_filter(table, 0) is not None:
            yield table


def unlinked_personal_tables() -> list[str]:
    """Tables with personal columns but no way to a customer: erasure cannot reach them."""
    return [
        table.name
        for table in t.metadata.sorted_tables
        if table.name != "customers"
        and table.name not in _OWN_TABLES
        and personal_columns(table)
        and customer_filter(table, 0) is None
    ]


def find_customer(conn: sa.Connection, ref: str) -> Any:
    """The customer row named by its external id (or ``#<internal id>``)."""
    c = t.customers.c
    if ref.startswith("#") and ref[1:].isdigit():
        query = sa.select(t.customers).where(c.id == int(ref[1:]))
    else:
        query = sa.select(t.customers).where(c.external_id == ref)
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(
            f"no customer {ref!r}; give the customer_id your systems use (or #<internal id>)"
        )
    return row


def _plain(value: Any) -> Any:
    """A JSON-ready value: instants in ISO 8601 UTC, decimals as text, bytes as base64."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def _row(mapping: Any) -> dict[str, Any]:
    return {k: _plain(v) for k, v in dict(mapping).items()}


def export_customer(uow: UnitOfWork, ref: str, now: datetime | None = None) -> dict[str, Any]:
    """Everything held on one customer, table by table, as a JSON-ready document.

    ``personal_columns`` tells the reader which fields are personal data; the
    rest (amounts, dates, scores, ledger entries) is data *about* them that
    the business keeps, listed too because the person has a right to see it.
    """
    conn = uow.conn
    customer = find_customer(conn, ref)
    cid = int(customer["id"])
    tables: dict[str, list[dict[str, Any]]] = {}
    personal: dict[str, list[str]] = {"customers": [c.name for c in personal_columns(t.customers)]}
    for table in linked_tables():
        where = customer_filter(table, cid)
        assert where is not None
        query = sa.select(table).where(where)
        if table.primary_key.columns:
            query = query.order_by(*table.primary_key.columns)
        rows = [_row(r) for r in conn.execute(query).mappings()]
        if rows:
            tables[table.name] = rows
            cols = [c.name for c in personal_columns(table)]
            if cols:
                personal[table.name] = cols
    return {
        "format": EXPORT_FORMAT,
        "exported_at": (now or datetime.now(UTC)).isoformat(),
        "customer": _row(customer),
        "tables": tables,
        "personal_columns": personal,
    }


def export_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True, default=str)


@dataclass
class Erasure:
    """What an erasure touched: the audit row's id, columns and rows per table."""

    audit_id: int
    customer_id: int
    external_id: str
    columns: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)


def _is_unique(table: sa.Table, column: sa.Column[Any]) -> bool:
    if column.unique or column.primary_key:
        return True
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and column.name in constraint.columns:
            return True
    return any(ix.unique and column.name in ix.columns for ix in table.indexes)


def _blank(column: sa.Column[Any]) -> Any:
    """The anonymous value for ``column``: NULL where allowed, else a neutral placeholder."""
    if column.nullable:
        return None
    kind = column.type
    if isinstance(kind, sa.JSON) or isinstance(getattr(kind, "impl", None), sa.JSON):
        return {}
    if isinstance(kind, sa.String):
        return ERASED_TEXT[: kind.length] if kind.length else ERASED_TEXT
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer | sa.Numeric | sa.Float):
        return 0
    if isinstance(kind, sa.DateTime):
        return datetime(1970, 1, 1, tzinfo=UTC)
    if isinstance(kind, sa.Date):
        return date(1970, 1, 1)
    return ERASED_TEXT


def _anonymise(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    """Overwrite the personal columns of the rows ``where`` selects; the number of rows."""
    columns = personal_columns(table)
    shared = {c.name: _blank(c) for c in columns if not _is_unique(table, c)}
    unique = [c for c in columns if _is_unique(table, c)]
    pk = list(table.primary_key.columns)
    if unique and len(pk) == 1:
        # A unique personal column gets a distinct placeholder per row.
        ids = list(conn.execute(sa.select(pk[0]).where(where)).scalars())
        for row_id in ids:
            values = dict(shared)
            for col in unique:
                values[col.name] = None if col.nullable else f"erased:{row_id}"
            conn.execute(sa.update(table).where(pk[0] == row_id).values(**values))
        return len(ids)
    for col in unique:
        shared[col.name] = None if col.nullable else _blank(col)
    if not shared:
        return 0
    return int(conn.execute(sa.update(table).where(where).values(**shared)).rowcount or 0)


def erase_customer(
    uow: UnitOfWork,
    ref: str,
    *,
    actor: str,
    reason: str = "",
    now: datetime | None = None,
) -> Erasure:
    """Irreversibly anonymise one customer's personal data; the caller commits.

    Also withdraws every consent (an erased person must never be contacted
    again) and exits their active journey runs. Ids, amounts and dates stay,
    so balances and KPIs do not move.
    """
    now = now or datetime.now(UTC)
    conn = uow.conn
    customer = find_customer(conn, ref)
    cid = int(customer["id"])
    columns: dict[str, list[str]] = {}
    rows: dict[str, int] = {}
    n = _anonymise(conn, t.customers, t.customers.c.id == cid)
    columns["customers"] = [c.name for c in personal_columns(t.customers)]
    rows["customers"] = n
    for table in linked_tables():
        cols = personal_columns(table)
        where = customer_filter(table, cid)
        if not cols or where is None:
            continue
        touched = _anonymise(conn, table, where)
        if touched:
            columns[table.name] = [c.name for c in cols]
            rows[table.name] = touched
    conn.execute(
        sa.update(t.consents)
        .where(t.consents.c.customer_id == cid)
        .values(granted=False, changed_at=now, source="privacy erasure")
    )
    from kizuna.store import automation_tables as at

    conn.execute(
        sa.update(at.journey_runs)
        .where(at.journey_runs.c.customer_id == cid, at.journey_runs.c.status == "active")
        .values(status="exited", finished_at=now, due_at=None, waiting=False)
    )
    audit_id = conn.execute(
        sa.insert(ops.privacy_erasures)
        .values(
            customer_id=cid,
            external_id=customer["external_id"],
            erased_at=now,
            actor=actor[:200],
            reason=reason[:500],
            columns=columns,
            rows=rows,
        )
        .returning(ops.privacy_erasures.c.id)
    ).scalar_one()
    return Erasure(
        int(audit_id),
        cid,
        str(customer["external_id"]),
        columns,
        rows,
        unlinked_personal_tables(),
    )


def erasures(uow: UnitOfWork, limit: int = 100) -> list[dict[str, Any]]:
    """The erasure audit, newest first."""
    e = ops.privacy_erasures
    query = sa.select(e).order_by(e.c.id.desc()).limit(limit)
    return [_row(r) for r in uow.conn.execute(query).mappings()]
