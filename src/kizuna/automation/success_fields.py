"""Segment fields of customer success and B2B intent.

* ``intent_surging_topics`` (string): the topics the customer's account is
  surging on in the latest computed intent week, comma-separated; use
  ``{field: intent_surging_topics, op: contains, value: pricing}`` for
  "their account is researching pricing now".
* ``health_score`` (number): the customer's own latest health (0-100).
* ``account_health_score`` (number) and ``touch_model`` (string): their
  account's latest health and touch model.

Registered through the segment registries like any plugin (see
:mod:`kizuna.automation.programme_fields`).
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.automation.segments_sql import ColumnSQL, CompileContext, register_field_sql
from kizuna.domain.segments import FieldSpec, register_field
from kizuna.store import success_tables as st
from kizuna.store import tables as t


def intent_surging_topics_sql(ctx: CompileContext) -> ColumnSQL:
    """Comma-joined surging topics of the customer's account in the latest week."""
    s = st.intent_scores
    latest = sa.select(sa.func.max(s.c.week_start)).scalar_subquery()
    joined = (
        sa.func.string_agg(s.c.topic, sa.literal_column("','"))
        if ctx.dialect == "postgresql"
        else sa.func.group_concat(s.c.topic, ",")
    )
    return (
        sa.select(joined)
        .where(
            s.c.account_id == t.customers.c.account_id,
            s.c.week_start == latest,
            s.c.surging.is_(True),
        )
        .correlate(t.customers)
        .scalar_subquery()
    )


def _latest_run() -> sa.ScalarSelect[int]:
    r = st.health_runs
    return sa.select(r.c.id).order_by(r.c.computed_on.desc()).limit(1).scalar_subquery()


def health_score_sql(_ctx: CompileContext) -> ColumnSQL:
    h = st.customer_health
    return (
        sa.select(h.c.score)
        .where(h.c.customer_id == t.customers.c.id, h.c.run_id == _latest_run())
        .correlate(t.customers)
        .scalar_subquery()
    )


def _account_column(name: str) -> ColumnSQL:
    a = st.account_health
    return (
        sa.select(a.c[name])
        .where(a.c.account_id == t.customers.c.account_id, a.c.run_id == _latest_run())
        .correlate(t.customers)
        .scalar_subquery()
    )


register_field(
    FieldSpec(
        "intent_surging_topics",
        "string",
        "topics the customer's account is surging on this week, comma-separated (use contains)",
    )
)
register_field_sql("intent_surging_topics", intent_surging_topics_sql)
register_field(FieldSpec("health_score", "number", "the customer's latest health score (0-100)"))
register_field_sql("health_score", health_score_sql)
register_field(
    FieldSpec("account_health_score", "number", "latest health score (0-100) of their account")
)
register_field_sql("account_health_score", lambda _ctx: _account_column("score"))
register_field(
    FieldSpec(
        "touch_model",
        "string",
        "their account's touch model: high_touch, low_touch, tech_touch or community_touch",
    )
)
register_field_sql("touch_model", lambda _ctx: _account_column("touch_model"))
