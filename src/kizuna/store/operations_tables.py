"""Tables of privacy, retention and operations (issue 9); migration 0010.

* ``privacy_erasures`` — the audit of every erasure: who, when, which
  customer and *which columns* were anonymised, never the values (keeping
  them would defeat the erasure).
* ``event_daily_counts`` — what retention keeps of raw behaviour events once
  they are older than the retention period: one row per customer, local day
  and event type, so engagement trends survive the deletion of the raw rows.
  Keyed by ``customer_id`` first, like every per-customer table.
* ``retention_runs`` — one row per rule applied, to show what was removed.
* ``worker_heartbeats`` — each journey worker writes its row every loop, so
  ``kizuna doctor`` and ``/metrics`` can tell a live worker from a dead one
  (leases on ``journey_runs`` only show workers that had work).
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import Id, metadata
from kizuna.store.types import JSONDoc, UTCDateTime

privacy_erasures = sa.Table(
    "privacy_erasures",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("customer_id", Id, nullable=False, index=True),
    sa.Column("external_id", sa.String(128), nullable=False),
    sa.Column("erased_at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False, server_default=""),
    #: {table: [column, ...]} that were anonymised; never their values.
    sa.Column("columns", JSONDoc, nullable=False),
    #: {table: rows touched}
    sa.Column("rows", JSONDoc, nullable=False),
)

event_daily_counts = sa.Table(
    "event_daily_counts",
    metadata,
    sa.Column("customer_id", Id, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("type", sa.String(32), primary_key=True),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("dwell_seconds", sa.BigInteger, nullable=False, server_default="0"),
)

retention_runs = sa.Table(
    "retention_runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("ran_at", UTCDateTime, nullable=False),
    sa.Column("cutoff", UTCDateTime, nullable=False),
    sa.Column("aggregated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
)

worker_heartbeats = sa.Table(
    "worker_heartbeats",
    metadata,
    sa.Column("worker_id", sa.String(64), primary_key=True),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False, index=True),
    sa.Column("claimed", sa.BigInteger, nullable=False, server_default="0"),
)
