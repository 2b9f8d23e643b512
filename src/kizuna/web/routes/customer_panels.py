"""The built-in Customer 360 panels: points and tier, scores, messages, surveys, tasks.

Each registers itself in :mod:`kizuna.web.panels` (the extension point other
areas use for theirs) and reads through :mod:`kizuna.services.customer_extras`
or the programme's member summary, so the page and its CSV agree.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kizuna.analytics import lifecycle as lifecycle_mod
from kizuna.analytics import loyalty as loyalty_mod
from kizuna.analytics.rfm import SEGMENTS_BY_KEY
from kizuna.services import customer_extras as extras
from kizuna.services.programme.members import summary
from kizuna.services.uow import UnitOfWork
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t
from kizuna.web.masking import masked
from kizuna.web.panels import Export, Panel, PanelContext, register_panel

ROWS = extras.PANEL_ROWS


def _label(labels: dict[str, dict[str, str]], key: str | None, lang: str) -> str:
    if key is None:
        return "—"
    return labels.get(key, {}).get(lang, key)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# --- points and tier ---------------------------------------------------------------


def _has_account(pc: PanelContext) -> bool:
    with pc.engine.connect() as conn:
        return (
            conn.execute(
                sa.select(pt.point_accounts.c.id).where(
                    pt.point_accounts.c.customer_id == pc.customer_pk
                )
            ).first()
            is not None
        )


def load_points(pc: PanelContext) -> dict[str, Any] | None:
    """The programme's member summary plus open lots and the newest ledger entries."""
    if not _has_account(pc):
        return None
    with UnitOfWork(pc.engine, pc.ctx.settings) as uow:
        member = summary(uow, pc.customer_id)
        lots = extras.open_lots(uow.conn, pc.customer_pk, ROWS)
        entries = extras.ledger(uow.conn, pc.customer_pk, ROWS)
    return {"summary": member, "lots": lots, "ledger": entries}


def export_points(pc: PanelContext) -> Export:
    with pc.engine.connect() as conn:
        entries = extras.ledger(conn, pc.customer_pk)
    header = ("id", "at", "kind", "points", "reason", "source", "actor")
    return header, (
        (e.id, e.at.isoformat(), e.kind, e.delta, e.reason, e.source, e.actor) for e in entries
    )


# --- scores ------------------------------------------------------------------------


def load_scores(pc: PanelContext) -> dict[str, Any] | None:
    """The latest scoring run's row for the customer, with labels in the viewer's language."""
    with pc.engine.connect() as conn:
        row = extras.latest_scores(conn, pc.customer_pk)
    if row is None:
        return None
    lang = pc.t.language
    segment = SEGMENTS_BY_KEY.get(row["rfm_segment"])
    return {
        **row,
        "segment_label": getattr(segment, lang) if segment else row["rfm_segment"],
        "loyalty_label": _label(loyalty_mod.LABELS, row["loyalty"], lang),
        "lifecycle_label": _label(lifecycle_mod.LABELS, row["lifecycle"], lang),
    }


SCORE_FIELDS = (
    "rfm_segment",
    "r_score",
    "f_score",
    "m_score",
    "clv",
    "p_alive",
    "expected_purchases_1y",
    "loyalty",
    "behaviour_score",
    "attitude_score",
    "lifecycle",
    "loyal_propensity",
)


def export_scores(pc: PanelContext) -> Export:
    with pc.engine.connect() as conn:
        row = extras.latest_scores(conn, pc.customer_pk)
    header = ("run_version", "as_of", *SCORE_FIELDS)
    rows = (
        []
        if row is None
        else [(row["run_version"], _iso(row["run_as_of"]), *(row[f] for f in SCORE_FIELDS))]
    )
    return header, rows


# --- messages ----------------------------------------------------------------------


def load_messages(pc: PanelContext) -> list[dict[str, Any]] | None:
    with pc.engine.connect() as conn:
        return extras.messages(conn, pc.customer_pk, ROWS) or None


def export_messages(pc: PanelContext) -> Export:
    with pc.engine.connect() as conn:
        found = extras.messages(conn, pc.customer_pk)
    header = ("created_at", "done_at", "journey", "step", "action", "status", "reason", "marketing")
    return header, (
        (
            _iso(m["created_at"]),
            _iso(m["done_at"]),
            m["journey"],
            m["step_id"],
            m["action"],
            m["status"],
            m["reason"],
            m["marketing"],
        )
        for m in found
    )


# --- survey answers ----------------------------------------------------------------


def _comment(value: str | None, pc: PanelContext) -> str | None:
    """A comment is free text the person wrote (personal data): hidden from analysts."""
    if not value or pc.visible:
        return value
    return pc.t("pages.masked_text")


def load_surveys(pc: PanelContext) -> list[dict[str, Any]] | None:
    with pc.engine.connect() as conn:
        found = extras.survey_answers(conn, pc.customer_pk, ROWS)
    return [{**a, "comment": _comment(a["comment"], pc)} for a in found] or None


def export_surveys(pc: PanelContext) -> Export:
    with pc.engine.connect() as conn:
        found = extras.survey_answers(conn, pc.customer_pk)
    header = ("answered_at", "survey", "kind", "score", "comment", "touchpoint")
    return header, (
        (
            _iso(a["answered_at"]),
            a["survey"],
            a["kind"],
            a["score"],
            _comment(a["comment"], pc),
            a["touchpoint"],
        )
        for a in found
    )


# --- tasks -------------------------------------------------------------------------


def _name_of(pc: PanelContext) -> str | None:
    with pc.engine.connect() as conn:
        name = conn.execute(
            sa.select(t.customers.c.name).where(t.customers.c.id == pc.customer_pk)
        ).scalar_one_or_none()
    return str(name) if name else None


def _titles(found: list[dict[str, Any]], pc: PanelContext) -> list[dict[str, Any]]:
    """Task titles are rendered templates that may hold the name: masked for analysts."""
    name = None if pc.visible else _name_of(pc)
    if not name:
        return found
    shown = str(masked("name", name, False))
    return [{**k, "title": str(k["title"]).replace(name, shown)} for k in found]


def load_tasks(pc: PanelContext) -> list[dict[str, Any]] | None:
    with pc.engine.connect() as conn:
        found = extras.tasks(conn, pc.customer_pk, ROWS)
    return _titles(found, pc) or None


def export_tasks(pc: PanelContext) -> Export:
    with pc.engine.connect() as conn:
        found = _titles(extras.tasks(conn, pc.customer_pk), pc)
    header = ("created_at", "title", "done", "journey", "step")
    return header, (
        (_iso(k["created_at"]), k["title"], k["done"], k["journey"], k["step_id"]) for k in found
    )


register_panel(
    Panel("points", "pages.panel_points", "pages/panel_points.html", load_points,
          order=10, export=export_points)
)  # fmt: skip
register_panel(
    Panel("scores", "pages.panel_scores", "pages/panel_scores.html", load_scores,
          order=20, export=export_scores)
)  # fmt: skip
register_panel(
    Panel("messages", "pages.panel_messages", "pages/panel_messages.html", load_messages,
          order=30, wide=True, export=export_messages)
)  # fmt: skip
register_panel(
    Panel("surveys", "pages.panel_surveys", "pages/panel_surveys.html", load_surveys,
          order=40, export=export_surveys)
)  # fmt: skip
register_panel(
    Panel("tasks", "pages.panel_tasks", "pages/panel_tasks.html", load_tasks,
          order=50, export=export_tasks)
)  # fmt: skip
