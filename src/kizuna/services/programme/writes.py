"""The writes of one request, sent to PostgreSQL as a single statement.

An earn call appends rows to six tables (order, its lines, the lot, ledger
entries, earned lines, the Idempotency-Key; when it lifts the member's tier,
the webhook outbox row and the journey event too) and updates the account. One
statement each would be seven round trips; on PostgreSQL they go as one
``WITH w0 AS (INSERT ..), w1 AS (INSERT ..) UPDATE point_accounts ..``
(data-modifying CTEs all run, in one snapshot, and foreign keys are checked
at the end of the statement). Ids the rows refer to (the order's, the
lot's) are drawn from the tables' sequences beforehand, in the statement
that reads what the request needs, so no insert waits for another's
RETURNING.

On SQLite there is no round trip to save: :meth:`Writes.flush` runs the
statements one by one, and no ids are pre-allocated (callers insert rows
whose id they need at once).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt

#: Statements built so far, by shape (tables, columns, row counts, account columns).
_built: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


def nextval(table: sa.Table) -> Any:
    """``nextval`` of the table's id sequence (PostgreSQL's ``<table>_id_seq`` naming)."""
    return sa.func.nextval(sa.literal(f"{table.name}_id_seq", sa.Text).cast(sa.Text))


class Writes:
    """Rows collected during a request, plus ids drawn ahead of time."""

    def __init__(self, uow: UnitOfWork, ids: dict[str, list[int]] | None = None) -> None:
        self.uow = uow
        self.combine = uow.dialect == "postgresql"
        self.ids = {k: list(v) for k, v in (ids or {}).items()} if self.combine else {}
        self.inserts: list[tuple[sa.Table, list[dict[str, Any]], tuple[str, ...]]] = []
        self.account: tuple[int, dict[str, Any]] | None = None

    def take_id(self, table: sa.Table) -> int | None:
        """A pre-allocated id for a new row of ``table``, or None (insert it now instead)."""
        pool = self.ids.get(table.name)
        return pool.pop(0) if pool else None

    def insert(
        self, table: sa.Table, rows: Sequence[dict[str, Any]], conflict: tuple[str, ...] = ()
    ) -> None:
        """Rows to insert at :meth:`flush`; with ``conflict`` (a unique key's
        columns), a row whose key exists already is skipped, not an error."""
        if rows:
            self.inserts.append((table, list(rows), conflict))

    def update_account(self, customer_id: int, values: dict[str, Any]) -> None:
        """The account row's new values, written last by :meth:`flush`."""
        self.account = (customer_id, values)

    def flush(self) -> None:
        """Everything collected, then the account row update, in one round trip on PostgreSQL."""
        from kizuna.services.programme.store import insert_many, insert_rows

        if self.account is None:
            raise RuntimeError("Writes.flush needs the account update (save_book sets it)")
        account_cid, account_values = self.account
        self.account = None
        if not self.combine:
            for table, rows, conflict in self.inserts:
                if conflict:
                    insert_many(self.uow, table, rows, conflict)
                else:
                    insert_rows(self.uow, table, rows)
            self.inserts = []
            self.uow.conn.execute(_UPDATE_ACCOUNT, {**account_values, "b_cid": account_cid})
            return
        shape = tuple(
            (table.name, tuple(rows[0]), len(rows), conflict)
            for table, rows, conflict in self.inserts
        ) + (tuple(sorted(account_values)),)
        with _lock:
            stmt = _built.get(shape)
        if stmt is None:
            stmt = _build(self.inserts, sorted(account_values))
            with _lock:
                _built[shape] = stmt
        params: dict[str, Any] = {"b_cid": account_cid}
        n = 0
        for _, rows, _ in self.inserts:
            cols = list(rows[0])
            for row in rows:
                for col in cols:
                    params[f"p{n}"] = row[col]
                    n += 1
        for col, value in account_values.items():
            params[f"b_{col}"] = value
        self.uow.conn.execute(stmt, params)
        self.inserts = []


_a = pt.point_accounts.c
_UPDATE_ACCOUNT = sa.update(pt.point_accounts).where(_a.customer_id == sa.bindparam("b_cid"))


def _build(
    inserts: list[tuple[sa.Table, list[dict[str, Any]], tuple[str, ...]]], account_cols: list[str]
) -> Any:
    """The combined statement for one shape, built from cacheable parts.

    A list passed to ``Insert.values`` makes a statement SQLAlchemy will not
    cache (it would be compiled on every call, which costs more than the
    round trips saved); one row is a plain ``VALUES``, several rows an
    ``INSERT .. SELECT .. UNION ALL SELECT ..`` of typed bind parameters.
    """
    ctes = []
    counter = iter(range(1 << 30))
    for i, (table, rows, conflict) in enumerate(inserts):
        cols = list(rows[0])

        def param(col: str, table: sa.Table = table) -> Any:
            # Short names keep the SQL short: psycopg caches its parse (bootstrap
            # raises that cache's limits, which 86 parameters exceeded).
            return sa.bindparam(f"p{next(counter)}", type_=table.c[col].type)

        if len(rows) == 1:
            stmt: Any = postgresql.insert(table).values({col: param(col) for col in cols})
        else:
            selects = [sa.select(*(param(col) for col in cols)) for _ in rows]
            stmt = postgresql.insert(table).from_select(cols, sa.union_all(*selects))
        if conflict:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
        ctes.append(stmt.cte(f"w{i}"))
    update = (
        sa.update(pt.point_accounts)
        .where(_a.customer_id == sa.bindparam("b_cid"))
        .values(
            {
                col: sa.bindparam(f"b_{col}", type_=pt.point_accounts.c[col].type)
                for col in account_cols
            }
        )
    )
    return update.add_cte(*ctes) if ctes else update
