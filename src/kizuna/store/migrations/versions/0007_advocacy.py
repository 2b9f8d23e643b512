"""referrals, ambassadors, community events and reviews (issue 7)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kizuna.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "referral_codes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lock_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_referral_codes_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_referral_codes_code")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_referral_codes_customer_id")),
    )
    op.create_table(
        "referral_details",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("referral_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("order_id", _ID, nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("due_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reasons", _JSON, nullable=False),
        sa.Column("referrer_points", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("referee_points", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("settled_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lock_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_referral_details_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_referral_details_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_details")),
        sa.UniqueConstraint("referral_id", name=op.f("uq_referral_details_referral_id")),
    )
    op.create_index(
        op.f("ix_referral_details_customer_id"), "referral_details", ["customer_id"], unique=False
    )
    op.create_index(
        op.f("ix_referral_details_due_at"), "referral_details", ["due_at"], unique=False
    )
    op.create_table(
        "referral_fingerprints",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("referral_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_referral_fingerprints_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_fingerprints")),
    )
    op.create_index(
        op.f("ix_referral_fingerprints_digest"), "referral_fingerprints", ["digest"], unique=False
    )
    op.create_index(
        op.f("ix_referral_fingerprints_referral_id"),
        "referral_fingerprints",
        ["referral_id"],
        unique=False,
    )
    op.create_table(
        "ambassadors",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("invited_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("invited_by", sa.String(length=200), nullable=False),
        sa.Column("accepted_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.String(length=200), nullable=True),
        sa.Column("activated_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("activated_by", sa.String(length=200), nullable=True),
        sa.Column("alumni_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("alumni_by", sa.String(length=200), nullable=True),
        sa.Column("updated_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lock_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_ambassadors_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ambassadors")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_ambassadors_customer_id")),
    )
    op.create_table(
        "ambassador_transitions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_ambassador_transitions_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ambassador_transitions")),
    )
    op.create_index(
        op.f("ix_ambassador_transitions_customer_id"),
        "ambassador_transitions",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "ambassador_tasks",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("points", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("due_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(length=200), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("reach", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("granted_points", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("lock_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_ambassador_tasks_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ambassador_tasks")),
        sa.UniqueConstraint("external_id", name=op.f("uq_ambassador_tasks_external_id")),
    )
    op.create_index(
        op.f("ix_ambassador_tasks_customer_id"), "ambassador_tasks", ["customer_id"], unique=False
    )
    op.create_table(
        "community_groups",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("online", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_groups")),
        sa.UniqueConstraint("external_id", name=op.f("uq_community_groups_external_id")),
    )
    op.create_table(
        "community_group_members",
        sa.Column("group_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("joined_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("brought_by", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["brought_by"],
            ["customers.id"],
            name=op.f("fk_community_group_members_brought_by_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_community_group_members_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["community_groups.id"],
            name=op.f("fk_community_group_members_group_id_community_groups"),
        ),
        sa.PrimaryKeyConstraint("group_id", "customer_id", name=op.f("pk_community_group_members")),
    )
    op.create_index(
        op.f("ix_community_group_members_customer_id"),
        "community_group_members",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "community_event_details",
        sa.Column("community_event_id", _ID, nullable=False),
        sa.Column("group_id", _ID, nullable=True),
        sa.Column("online", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_event_id"],
            ["community_events.id"],
            name=op.f("fk_community_event_details_community_event_id_community_events"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["community_groups.id"],
            name=op.f("fk_community_event_details_group_id_community_groups"),
        ),
        sa.PrimaryKeyConstraint("community_event_id", name=op.f("pk_community_event_details")),
    )
    op.create_index(
        op.f("ix_community_event_details_group_id"),
        "community_event_details",
        ["group_id"],
        unique=False,
    )
    op.create_table(
        "community_registrations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("community_event_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("registered_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("brought_by", _ID, nullable=True),
        sa.Column("checked_in_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checked_in_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["brought_by"],
            ["customers.id"],
            name=op.f("fk_community_registrations_brought_by_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["community_event_id"],
            ["community_events.id"],
            name=op.f("fk_community_registrations_community_event_id_community_events"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_community_registrations_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_registrations")),
        sa.UniqueConstraint(
            "community_event_id",
            "customer_id",
            name=op.f("uq_community_registrations_community_event_id_customer_id"),
        ),
    )
    op.create_index(
        op.f("ix_community_registrations_customer_id"),
        "community_registrations",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "review_moderation",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("review_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("decided_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("points", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reward_note", sa.String(length=200), nullable=True),
        sa.Column("lock_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_review_moderation_review_id_reviews")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_moderation")),
        sa.UniqueConstraint("review_id", name=op.f("uq_review_moderation_review_id")),
    )
    op.create_index(
        op.f("ix_review_moderation_customer_id"), "review_moderation", ["customer_id"], unique=False
    )


def downgrade() -> None:
    # Indexes go with their tables.
    op.drop_table("review_moderation")
    op.drop_table("community_registrations")
    op.drop_table("community_event_details")
    op.drop_table("community_group_members")
    op.drop_table("community_groups")
    op.drop_table("ambassador_tasks")
    op.drop_table("ambassador_transitions")
    op.drop_table("ambassadors")
    op.drop_table("referral_fingerprints")
    op.drop_table("referral_details")
    op.drop_table("referral_codes")
