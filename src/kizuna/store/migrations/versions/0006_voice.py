"""surveys, survey tokens and feedback analysis (issue 7)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kizuna.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _dt(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, kizuna.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("definition", _JSON, nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        _dt("created_at", False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
        sa.UniqueConstraint("key", "version", name=op.f("uq_surveys_key_version")),
    )
    op.create_table(
        "survey_invitations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("survey_id", _ID, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        _dt("issued_at", False),
        _dt("expires_at", False),
        sa.Column("answer_id", _ID, nullable=True),
        _dt("first_answered_at", True),
        _dt("last_answered_at", True),
        sa.Column("edits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("extra", _JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_survey_invitations_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["surveys.id"], name=op.f("fk_survey_invitations_survey_id_surveys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_invitations")),
        sa.UniqueConstraint("token_id", name=op.f("uq_survey_invitations_token_id")),
    )
    op.create_index(
        op.f("ix_survey_invitations_customer_id"),
        "survey_invitations",
        ["customer_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_survey_invitations_survey_id"), "survey_invitations", ["survey_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_survey_invitations_survey_id"), table_name="survey_invitations")
    op.drop_index(op.f("ix_survey_invitations_customer_id"), table_name="survey_invitations")
    op.drop_table("survey_invitations")
    op.drop_table("surveys")
