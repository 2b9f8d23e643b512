"""segments and marketing automation

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kizuna.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _dt(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, kizuna.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("definition", _JSON, nullable=False),
        _dt("created_at", False),
        _dt("updated_at", False),
        _dt("refreshed_at", True),
        sa.Column("member_count", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_table(
        "segment_members",
        sa.Column("segment_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        _dt("entered_at", False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_segment_members_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_segment_members_segment_id_segments")
        ),
        sa.PrimaryKeyConstraint("segment_id", "customer_id", name=op.f("pk_segment_members")),
    )
    op.create_index(
        op.f("ix_segment_members_customer_id"), "segment_members", ["customer_id"], unique=False
    )
    op.create_table(
        "segment_refreshes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("segment_id", _ID, nullable=False),
        _dt("started_at", False),
        _dt("finished_at", True),
        sa.Column("entered", sa.Integer(), server_default="0", nullable=False),
        sa.Column("exited", sa.Integer(), server_default="0", nullable=False),
        sa.Column("members", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reason", sa.String(length=32), server_default="manual", nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_segment_refreshes_segment_id_segments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_refreshes")),
    )
    op.create_index(
        op.f("ix_segment_refreshes_segment_id"), "segment_refreshes", ["segment_id"], unique=False
    )
    op.create_table(
        "segment_changes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("segment_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("refresh_id", _ID, nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        _dt("at", False),
        sa.CheckConstraint(
            "change IN ('entered', 'exited')", name=op.f("ck_segment_changes_change")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_segment_changes_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["refresh_id"],
            ["segment_refreshes.id"],
            name=op.f("fk_segment_changes_refresh_id_segment_refreshes"),
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_segment_changes_segment_id_segments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_changes")),
    )
    op.create_index(
        "ix_segment_changes_customer_id_at", "segment_changes", ["customer_id", "at"], unique=False
    )
    op.create_index(
        "ix_segment_changes_segment_id_id", "segment_changes", ["segment_id", "id"], unique=False
    )
    op.create_index(
        op.f("ix_segment_changes_refresh_id"), "segment_changes", ["refresh_id"], unique=False
    )

    op.create_table(
        "journeys",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("definition", _JSON, nullable=False),
        sa.Column("status", sa.String(length=8), server_default="draft", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="100", nullable=False),
        sa.Column("change_cursor", _ID, server_default="0", nullable=False),
        _dt("created_at", False),
        _dt("updated_at", False),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'paused')", name=op.f("ck_journeys_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journeys")),
        sa.UniqueConstraint("name", name=op.f("uq_journeys_name")),
    )
    op.create_table(
        "journey_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("journey_id", _ID, nullable=False),
        sa.Column("instance_key", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column("step_id", sa.String(length=64), nullable=True),
        sa.Column("waiting", sa.Boolean(), server_default=sa.false(), nullable=False),
        _dt("due_at", True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        _dt("claimed_until", True),
        _dt("started_at", False),
        _dt("finished_at", True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'completed', 'exited', 'dead')",
            name=op.f("ck_journey_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_journey_runs_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journeys.id"], name=op.f("fk_journey_runs_journey_id_journeys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_runs")),
        sa.UniqueConstraint(
            "customer_id",
            "journey_id",
            "instance_key",
            name=op.f("uq_journey_runs_customer_id_journey_id_instance_key"),
        ),
    )
    op.create_index(
        op.f("ix_journey_runs_journey_id"), "journey_runs", ["journey_id"], unique=False
    )
    op.create_index(
        "ix_journey_runs_status_due_at", "journey_runs", ["status", "due_at"], unique=False
    )
    op.create_table(
        "sends",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("journey_id", _ID, nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("marketing", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        _dt("created_at", False),
        _dt("done_at", True),
        sa.CheckConstraint(
            "status IN ('sending', 'sent', 'skipped', 'holdout', 'dead')",
            name=op.f("ck_sends_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_sends_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journeys.id"], name=op.f("fk_sends_journey_id_journeys")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["journey_runs.id"], name=op.f("fk_sends_run_id_journey_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sends")),
        sa.UniqueConstraint(
            "customer_id", "idempotency_key", name=op.f("uq_sends_customer_id_idempotency_key")
        ),
    )
    op.create_index(op.f("ix_sends_run_id"), "sends", ["run_id"], unique=False)
    op.create_index(
        "ix_sends_customer_id_done_at", "sends", ["customer_id", "done_at"], unique=False
    )
    op.create_table(
        "journey_tasks",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        _dt("created_at", False),
        sa.Column("done", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_journey_tasks_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["journey_runs.id"], name=op.f("fk_journey_tasks_run_id_journey_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_tasks")),
        sa.UniqueConstraint(
            "customer_id",
            "run_id",
            "step_id",
            name=op.f("uq_journey_tasks_customer_id_run_id_step_id"),
        ),
    )

    op.create_table(
        "measures",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("journey_id", _ID, nullable=False),
        sa.Column("objective", sa.Text(), nullable=False),
        sa.Column("kpi", sa.String(length=32), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        _dt("created_at", False),
        sa.CheckConstraint(
            "kpi IN ('conversion_uplift', 'revenue_uplift', 'conversion_rate')",
            name=op.f("ck_measures_kpi"),
        ),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journeys.id"], name=op.f("fk_measures_journey_id_journeys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measures")),
        sa.UniqueConstraint("journey_id", name=op.f("uq_measures_journey_id")),
    )


def downgrade() -> None:
    op.drop_table("measures")
    op.drop_table("journey_tasks")
    op.drop_table("sends")
    op.drop_table("journey_runs")
    op.drop_table("journeys")
    op.drop_table("segment_changes")
    op.drop_table("segment_refreshes")
    op.drop_table("segment_members")
    op.drop_table("segments")
