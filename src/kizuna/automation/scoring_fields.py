"""Segment fields from the latest scoring run: RFM segment, CLV, P(alive), loyalty class, lifecycle.

``kizuna score`` writes one row per customer to ``customer_scores`` under a
new run; these fields read the customer's row of the newest *complete* run,
so a segment such as ``{field: loyalty_class, value: spurious}`` ("spends a
lot but is not attached") follows each new run without being edited. A
customer the latest run did not score (signed up since) matches no
comparison — the fields are simply not set for them.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from kizuna.automation.segments_sql import ColumnSQL, CompileContext, register_field_sql
from kizuna.domain.segments import FieldSpec, ValueType, register_field
from kizuna.store import tables as t
from kizuna.store.scoring_tables import customer_scores, scoring_runs

#: field name → (customer_scores column, value type, help line)
FIELDS: dict[str, tuple[str, ValueType, str]] = {
    "rfm_segment": (
        "rfm_segment",
        "string",
        "RFM segment of the latest scoring run (champions, loyal, at_risk, …)",
    ),
    "rfm_r": ("r_score", "number", "RFM recency score (1-5) of the latest run"),
    "rfm_f": ("f_score", "number", "RFM frequency score (1-5) of the latest run"),
    "rfm_m": ("m_score", "number", "RFM monetary score (1-5) of the latest run"),
    "clv": (
        "clv",
        "number",
        "predicted customer lifetime value, in minor units of the workspace currency (yen)",
    ),
    "p_alive": ("p_alive", "number", "model probability the customer is still active (0-1)"),
    "expected_purchases_1y": (
        "expected_purchases_1y",
        "number",
        "purchases the model expects in the next year",
    ),
    "loyalty_class": (
        "loyalty",
        "string",
        "loyalty matrix class: true, latent, spurious, none (or unknown attitude)",
    ),
    "lifecycle_stage": (
        "lifecycle",
        "string",
        "lifecycle stage: new, repeat, loyal, ambassador, at_risk, lapsed",
    ),
    "loyal_propensity": (
        "loyal_propensity",
        "number",
        "propensity (0-1) to become a loyal customer within the horizon",
    ),
}


def _latest_run() -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.max(scoring_runs.c.id))
        .where(scoring_runs.c.status == "complete")
        .scalar_subquery()
    )


def _score_sql(column: str) -> Callable[[CompileContext], ColumnSQL]:
    def compile_field(_ctx: CompileContext) -> ColumnSQL:
        cs = customer_scores
        return (
            sa.select(cs.c[column])
            .where(cs.c.customer_id == t.customers.c.id, cs.c.run_id == _latest_run())
            .correlate(t.customers)
            .scalar_subquery()
        )

    return compile_field


for _name, (_column, _type, _help) in FIELDS.items():
    register_field(FieldSpec(_name, _type, _help))
    register_field_sql(_name, _score_sql(_column))
