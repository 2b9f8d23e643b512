"""Tables of referrals, ambassadors, community events and reviews (issue 7); migration 0007.

The canonical ``referrals``, ``community_events``, ``community_activity`` and
``reviews`` tables (migration 0001) keep the facts every analysis reads: who
referred whom, who attended what, who wrote which review. The tables here
hold what the advocacy programme adds on top — codes, the settlement and
fraud verdict of a referral, the ambassador pipeline and tasks, registrations
and moderation — keyed by the canonical row, so an imported fact and one
made through the API are handled alike.

Every table about a customer carries ``customer_id`` (distribution by
customer). ``lock_seq`` columns are bumped by the first statement of a
settling transaction: on PostgreSQL that is the row lock that serialises
concurrent settle runs, and on SQLite it takes the single writer lock before
anything is read, so no transaction ever has to upgrade a stale read.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import Id, metadata
from kizuna.store.types import JSONDoc, UTCDateTime


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _lock_seq() -> sa.Column[int]:
    return sa.Column("lock_seq", sa.BigInteger, nullable=False, server_default="0")


#: One stable, random code per customer (the referrer), created on first request.
referral_codes = sa.Table(
    "referral_codes",
    metadata,
    _id(),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False, unique=True),
    sa.Column("code", sa.String(16), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    _lock_seq(),
)

#: What settlement decided about one ``referrals`` row.
referral_details = sa.Table(
    "referral_details",
    metadata,
    _id(),
    sa.Column("referral_id", Id, sa.ForeignKey("referrals.id"), nullable=False, unique=True),
    sa.Column("customer_id", Id, nullable=False, index=True),  # the referrer
    sa.Column("order_id", Id, sa.ForeignKey("orders.id")),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("due_at", UTCDateTime, index=True),
    sa.Column("reasons", JSONDoc, nullable=False),
    sa.Column("referrer_points", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("referee_points", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("settled_at", UTCDateTime),
    _lock_seq(),
)

#: Salted hashes (HMAC-SHA256) of the referee's email, phone and address at settlement.
referral_fingerprints = sa.Table(
    "referral_fingerprints",
    metadata,
    _id(),
    sa.Column("referral_id", Id, sa.ForeignKey("referrals.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(8), nullable=False),
    # Pseudonymous, but derived from contact details: erased with the person.
    sa.Column("digest", sa.String(64), nullable=False, index=True, info={"personal": True}),
)

ambassadors = sa.Table(
    "ambassadors",
    metadata,
    _id(),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("invited_at", UTCDateTime, nullable=False),
    sa.Column("invited_by", sa.String(200), nullable=False),
    sa.Column("accepted_at", UTCDateTime),
    sa.Column("accepted_by", sa.String(200)),
    sa.Column("activated_at", UTCDateTime),
    sa.Column("activated_by", sa.String(200)),
    sa.Column("alumni_at", UTCDateTime),
    sa.Column("alumni_by", sa.String(200)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    _lock_seq(),
)

#: Every status change of an ambassador: when, from what, to what, and by whom.
ambassador_transitions = sa.Table(
    "ambassador_transitions",
    metadata,
    _id(),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("from_status", sa.String(16)),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
)

ambassador_tasks = sa.Table(
    "ambassador_tasks",
    metadata,
    _id(),
    sa.Column("external_id", sa.String(128), nullable=False, unique=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("points", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("due_at", UTCDateTime),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("completed_by", sa.String(200)),
    sa.Column("url", sa.String(2000), info={"personal": True}),
    sa.Column("reach", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("granted_points", sa.BigInteger, nullable=False, server_default="0"),
    _lock_seq(),
)

community_groups = sa.Table(
    "community_groups",
    metadata,
    _id(),
    sa.Column("external_id", sa.String(128), nullable=False, unique=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("online", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

community_group_members = sa.Table(
    "community_group_members",
    metadata,
    sa.Column("group_id", Id, sa.ForeignKey("community_groups.id"), primary_key=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), primary_key=True, index=True),
    sa.Column("joined_at", UTCDateTime, nullable=False),
    sa.Column("brought_by", Id, sa.ForeignKey("customers.id")),
)

#: Online/offline, group and join link of a ``community_events`` row.
community_event_details = sa.Table(
    "community_event_details",
    metadata,
    sa.Column("community_event_id", Id, sa.ForeignKey("community_events.id"), primary_key=True),
    sa.Column("group_id", Id, sa.ForeignKey("community_groups.id"), index=True),
    sa.Column("online", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("url", sa.String(2000)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

community_registrations = sa.Table(
    "community_registrations",
    metadata,
    _id(),
    sa.Column("community_event_id", Id, sa.ForeignKey("community_events.id"), nullable=False),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("registered_at", UTCDateTime, nullable=False),
    sa.Column("brought_by", Id, sa.ForeignKey("customers.id")),
    sa.Column("checked_in_at", UTCDateTime),
    sa.Column("checked_in_by", sa.String(200)),
    sa.UniqueConstraint("community_event_id", "customer_id"),
)

review_moderation = sa.Table(
    "review_moderation",
    metadata,
    _id(),
    sa.Column("review_id", Id, sa.ForeignKey("reviews.id"), nullable=False, unique=True),
    sa.Column("customer_id", Id, nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(500)),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_by", sa.String(200)),
    sa.Column("points", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("reward_note", sa.String(200)),
    _lock_seq(),
)
