"""Tables of the loyalty programme engine (ledger, lots, tiers, rewards, coupons).

Defined on the shared :data:`kizuna.store.tables.metadata`; migration 0002.

``ledger_entries`` is append-only: nothing updates or deletes a row. The
balances cached on ``point_accounts`` and the ``remaining`` of each lot are
projections of it that ``kizuna points check`` proves equal to the sums of
entries. Like ``order_lines``, the high-volume tables (entries, lots, earned
lines) carry ``customer_id`` without a database FK: the writer resolves the
member inside the same transaction, and the key leads every index so the
tables can be distributed by customer.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import Id, metadata
from kizuna.store.types import JSONDoc, Money, UTCDateTime


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _points(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


programme_versions = sa.Table(
    "programme_versions",
    metadata,
    _id(),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("document", JSONDoc, nullable=False),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

point_accounts = sa.Table(
    "point_accounts",
    metadata,
    _id(),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False, unique=True),
    _points("pending"),
    _points("available"),
    _points("reserved"),
    _points("debt"),
    sa.Column("tier", sa.String(64)),
    sa.Column("tier_since", UTCDateTime),
    sa.Column("tier_review_at", UTCDateTime),
    sa.Column("member_since", UTCDateTime, nullable=False),
    sa.Column("last_activity_at", UTCDateTime),
    sa.Column("birthday_year", sa.Integer),
    #: Bumped by every write: the row lock that serialises one member's requests.
    _points("lock_seq"),
    #: Soonest release or expiry among the member's live lots (migration 0011).
    #: A write whose clock is before it need not load the lots at all; NULL
    #: means unknown (load and recompute), far future means nothing is due.
    sa.Column("next_due_at", UTCDateTime),
)

point_lots = sa.Table(
    "point_lots",
    metadata,
    _id(),
    sa.Column("customer_id", Id, nullable=False),
    sa.Column("points", sa.BigInteger, nullable=False),
    sa.Column("remaining", sa.BigInteger, nullable=False),
    sa.Column("expired", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("earned_at", UTCDateTime, nullable=False),
    sa.Column("available_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Index("ix_point_lots_customer_id_state", "customer_id", "state"),
    sa.Index("ix_point_lots_state_available_at", "state", "available_at"),
    sa.Index("ix_point_lots_expires_at", "expires_at"),
)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    _id(),
    sa.Column("customer_id", Id, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("lot_id", Id),
    _points("lot_delta"),
    _points("pending"),
    _points("available"),
    _points("reserved"),
    _points("debt"),
    _points("qualifying_points"),
    sa.Column("qualifying_spend", Money, nullable=False, server_default="0"),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("actor", sa.String(200)),
    sa.Column("programme_version_id", Id),
    sa.Index("ix_ledger_entries_customer_id_id", "customer_id", "id"),
    sa.Index("ix_ledger_entries_kind_at", "kind", "at"),
    # A member's tier window (qualifying points, spend or orders since a
    # date), read on every earn: by date, not by id, so a loyal member's
    # years of history outside the window cost nothing; on PostgreSQL the
    # summed columns ride along, for an index-only scan.
    sa.Index(
        "ix_ledger_entries_customer_id_at",
        "customer_id",
        "at",
        postgresql_include=["kind", "qualifying_points", "qualifying_spend"],
    ),
)

earned_lines = sa.Table(
    "earned_lines",
    metadata,
    _id(),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("customer_id", Id, nullable=False),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("lot_id", Id, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("points", sa.BigInteger, nullable=False),
    sa.Column("refunded", Money, nullable=False, server_default="0"),
    sa.Column("reversed", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("order_id", "line_no"),
)

point_redemptions = sa.Table(
    "point_redemptions",
    metadata,
    _id(),
    sa.Column("external_id", sa.String(128), nullable=False, unique=True),
    sa.Column("customer_id", Id, nullable=False, index=True),
    sa.Column("points", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    #: [[lot_id, points], ...]: where the points came from, to undo exactly.
    sa.Column("allocations", JSONDoc, nullable=False),
    sa.Column("order_ref", sa.String(128)),
    sa.Column("reward_id", Id),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    _id(),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    _id(),
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

coupons = sa.Table(
    "coupons",
    metadata,
    _id(),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("batch", sa.String(100), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("item", sa.String(128)),
    sa.Column("min_spend", Money, nullable=False, server_default="0"),
    sa.Column("valid_from", UTCDateTime),
    sa.Column("valid_until", UTCDateTime),
    sa.Column("max_uses", sa.Integer, nullable=False, server_default="1"),
    sa.Column("uses", sa.Integer, nullable=False, server_default="0"),
    sa.Column("customer_id", Id),
    sa.Column("created_at", UTCDateTime, nullable=False),
    #: Uses one member may make of a multi-use code (NULL: no limit but ``max_uses``).
    sa.Column("per_customer_limit", sa.Integer),
)

#: One row per use of a coupon: counts uses per member for ``per_customer_limit``.
coupon_uses = sa.Table(
    "coupon_uses",
    metadata,
    _id(),
    sa.Column("coupon_id", Id, nullable=False),
    sa.Column("customer_id", Id, nullable=False),
    sa.Column("order_ref", sa.String(128)),
    sa.Column("used_at", UTCDateTime, nullable=False),
    sa.Index("ix_coupon_uses_coupon_id_customer_id", "coupon_id", "customer_id"),
)

rewards = sa.Table(
    "rewards",
    metadata,
    _id(),
    sa.Column("external_id", sa.String(128), nullable=False, unique=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("points_cost", sa.BigInteger, nullable=False),
    sa.Column("stock", sa.Integer),
    sa.Column("per_member_limit", sa.Integer),
    sa.Column("valid_from", UTCDateTime),
    sa.Column("valid_until", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

programme_events = sa.Table(
    "programme_events",
    metadata,
    _id(),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("customer_id", Id),
    sa.Column("payload", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    sa.Index("ix_programme_events_delivered_at_id", "delivered_at", "id"),
    #: Delivery attempts that failed so far, and when the next may be made (backoff).
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("last_error", sa.String(500)),
    #: Set when the retries are exhausted; `kizuna points webhooks --retry-failed` resends.
    sa.Column("failed_at", UTCDateTime),
)

#: B2B pooling (``[b2b] pool = "account"``): the contact whose points account
#: holds the company's pooled points. Fixed when the pool is first used, so
#: the wallet never moves when contacts come and go.
point_pools = sa.Table(
    "point_pools",
    metadata,
    _id(),
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False, unique=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
