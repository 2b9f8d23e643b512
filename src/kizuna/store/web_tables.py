"""Tables of the dashboard: its users and the audit log of what they did.

Defined on the shared :data:`kizuna.store.tables.metadata`; migration 0004.
Passwords are kept only as scrypt hashes (see :mod:`kizuna.services.users`).
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import Id, metadata
from kizuna.store.types import JSONDoc, UTCDateTime

#: The roles a dashboard user can have, from most to least powerful.
ROLES: tuple[str, ...] = ("admin", "marketer", "analyst")

dashboard_users = sa.Table(
    "dashboard_users",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_login_at", UTCDateTime),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("role IN ('admin', 'marketer', 'analyst')", name="role"),
)

#: What dashboard users did that someone may need to account for later:
#: exports (without the personal data they contained), imports, logins.
dashboard_audit = sa.Table(
    "dashboard_audit",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("detail", JSONDoc, nullable=False),
)

#: What the dashboard shows that a scoring run fixes (matrix, RFM, personas,
#: drivers, journey map...), computed once at the end of the run and read by
#: every process as one row (:mod:`kizuna.services.run_artefacts`). ``run_id``
#: 0 holds workspace-level figures (overview, KPIs, cohorts, lifecycle) that
#: follow the data rather than a run: their ``fingerprint`` names the data
#: they were computed on and a reader recomputes when it no longer matches.
#: No foreign key: run 0 is not a run, and a row of a deleted run is inert.
run_artefacts = sa.Table(
    "run_artefacts",
    metadata,
    sa.Column("run_id", Id, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(1000), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
)

#: Who recomputes a stale workspace-level figure of ``run_artefacts``, and
#: when it last did (:mod:`kizuna.services.run_artefacts`). A process takes
#: the lease with one conditional UPDATE, so however many API processes and
#: workers notice a stale figure, one recomputes it; ``lease_until`` lets a
#: crashed recomputer's lease lapse; ``started_at`` bounds recomputes to one
#: per ``dashboard_refresh_seconds``; ``requested_at`` is a marketer's
#: "refresh now", which lifts that bound once.
figure_refresh = sa.Table(
    "figure_refresh",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("started_at", UTCDateTime),
    sa.Column("requested_at", UTCDateTime),
)
