"""Tables of segments and marketing automation (journeys, runs, sends, tasks).

Defined on the shared :data:`kizuna.store.tables.metadata`; migration 0005.

Per-customer tables (members, changes) carry ``customer_id`` in their key or
an index that starts with it, so they can be distributed by customer later.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import Id, metadata
from kizuna.store.types import JSONDoc, UTCDateTime

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("definition", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("refreshed_at", UTCDateTime),
    sa.Column("member_count", sa.Integer, nullable=False, server_default="0"),
)

#: Current membership: one row per (segment, customer) while the customer is in.
segment_members = sa.Table(
    "segment_members",
    metadata,
    sa.Column("segment_id", Id, sa.ForeignKey("segments.id"), primary_key=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), primary_key=True, index=True),
    sa.Column("entered_at", UTCDateTime, nullable=False),
)

#: One row per refresh, so changes can be traced to the run that made them.
segment_refreshes = sa.Table(
    "segment_refreshes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("segment_id", Id, sa.ForeignKey("segments.id"), nullable=False, index=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("entered", sa.Integer, nullable=False, server_default="0"),
    sa.Column("exited", sa.Integer, nullable=False, server_default="0"),
    sa.Column("members", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reason", sa.String(32), nullable=False, server_default="manual"),
)

#: Every entry and exit, as an event journeys trigger on (read by id order).
segment_changes = sa.Table(
    "segment_changes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("segment_id", Id, sa.ForeignKey("segments.id"), nullable=False),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("refresh_id", Id, sa.ForeignKey("segment_refreshes.id"), nullable=False, index=True),
    sa.Column("change", sa.String(8), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.CheckConstraint("change IN ('entered', 'exited')", name="change"),
    sa.Index("ix_segment_changes_customer_id_at", "customer_id", "at"),
    sa.Index("ix_segment_changes_segment_id_id", "segment_id", "id"),
)

journeys = sa.Table(
    "journeys",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("definition", JSONDoc, nullable=False),
    sa.Column("status", sa.String(8), nullable=False, server_default="draft"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="100"),
    #: Last segment change (id) already turned into runs, for segment triggers.
    sa.Column("change_cursor", Id, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("status IN ('draft', 'active', 'paused')", name="status"),
)

#: One row per customer run: its current step, when it is next due and who holds it.
journey_runs = sa.Table(
    "journey_runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("journey_id", Id, sa.ForeignKey("journeys.id"), nullable=False, index=True),
    sa.Column("instance_key", sa.String(300), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    #: The journey's priority, copied here (migration 0019) so the claim's
    #: ``ORDER BY due_at, priority, id`` reads the first due runs straight from
    #: ``ix_journey_runs_claim`` instead of sorting every due run; kept equal to
    #: ``journeys.priority`` by enrolment and by saving the journey.
    sa.Column("priority", sa.Integer, nullable=False, server_default="100"),
    sa.Column("holdout", sa.Boolean, nullable=False),
    sa.Column("variant", sa.String(64)),
    sa.Column("step_id", sa.String(64)),
    sa.Column("waiting", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("due_at", UTCDateTime),
    #: When the current wait began: a wait for an event looks for it from here on.
    sa.Column("waiting_since", UTCDateTime),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_until", UTCDateTime),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, info={"personal": True}),
    sa.CheckConstraint("status IN ('active', 'completed', 'exited', 'dead')", name="status"),
    sa.UniqueConstraint("customer_id", "journey_id", "instance_key"),
    # Serves the claim (due active runs in claim order) and every query on
    # (status, due_at), which it replaced.
    sa.Index("ix_journey_runs_claim", "status", "due_at", "priority", "id"),
)

#: The send ledger: one row per (run, step) effect, keyed for idempotency.
sends = sa.Table(
    "sends",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("run_id", Id, sa.ForeignKey("journey_runs.id"), nullable=False, index=True),
    sa.Column("journey_id", Id, sa.ForeignKey("journeys.id"), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("marketing", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("reason", sa.Text, info={"personal": True}),
    sa.Column("message_id", sa.String(300)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("done_at", UTCDateTime),
    sa.CheckConstraint(
        "status IN ('sending', 'sent', 'skipped', 'holdout', 'dead')", name="status"
    ),
    sa.UniqueConstraint("customer_id", "idempotency_key"),
    sa.Index("ix_sends_customer_id_done_at", "customer_id", "done_at"),
)

#: Per-topic email subscriptions (newsletter, events, ...) under the general email
#: consent. No row means subscribed: a topic can only narrow what consent allows.
topic_subscriptions = sa.Table(
    "topic_subscriptions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("topic", sa.String(40), nullable=False),
    sa.Column("subscribed", sa.Boolean, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.UniqueConstraint("customer_id", "topic"),
)

#: Follow-up tasks for staff (e.g. call a detractor), created by journeys.
journey_tasks = sa.Table(
    "journey_tasks",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("run_id", Id, sa.ForeignKey("journey_runs.id"), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("title", sa.String(300), nullable=False, info={"personal": True}),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("done", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("customer_id", "run_id", "step_id"),
)

#: The measures register: each journey's objective and KPI target (PDCA's plan,
#: checked against the measured result by ``kizuna measures report``).
measures = sa.Table(
    "measures",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("journey_id", Id, sa.ForeignKey("journeys.id"), nullable=False, unique=True),
    sa.Column("objective", sa.Text, nullable=False),
    sa.Column("kpi", sa.String(32), nullable=False),
    sa.Column("target", sa.Float, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(
        "kpi IN ('conversion_uplift', 'revenue_uplift', 'conversion_rate')", name="kpi"
    ),
)
