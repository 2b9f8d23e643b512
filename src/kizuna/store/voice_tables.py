"""Tables of surveys and survey invitations (issue 7); migration 0006.

Answers themselves go to the canonical ``survey_answers`` table, so KPIs, the
loyalty matrix and the timeline count a survey answered on Kizuna's own page
exactly like an imported one. These tables hold what only Kizuna knows: the
survey definitions (immutable once answered, so an old link always renders
the questions it was sent with) and one invitation per signed link, which
binds the link to its customer and to its single answer.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import Id, metadata
from kizuna.store.types import JSONDoc, UTCDateTime

surveys = sa.Table(
    "surveys",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("definition", JSONDoc, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(200)),
    sa.UniqueConstraint("key", "version"),
)

survey_invitations = sa.Table(
    "survey_invitations",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    #: The random part of the signed link; the answer's external_id derives from it.
    sa.Column("token_id", sa.String(64), nullable=False, unique=True),
    sa.Column("survey_id", Id, sa.ForeignKey("surveys.id"), nullable=False, index=True),
    sa.Column("customer_id", Id, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("source", sa.String(200)),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("answer_id", Id),
    sa.Column("first_answered_at", UTCDateTime),
    sa.Column("last_answered_at", UTCDateTime),
    sa.Column("edits", sa.Integer, nullable=False, server_default="0"),
    #: Answers to the survey's extra questions (free text included).
    sa.Column("extra", JSONDoc, info={"personal": True}),
)
