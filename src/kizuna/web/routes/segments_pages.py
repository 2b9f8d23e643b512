"""Segments: list, create and edit with the rule-tree builder, preview, refresh, export.

The page is a plain form whose rule is a YAML/JSON text field, so it works
without JavaScript; ``static/segment_builder.js`` turns that field into a
rule-tree builder over the registered fields and aggregates
(:data:`kizuna.domain.segments.FIELDS`, :data:`~kizuna.domain.segments.AGGREGATES`,
which plugins extend), writing the same JSON back. The services validate:
a :class:`~kizuna.errors.SegmentError` carries the JSON-pointer path of the
bad node, which the page hands to the builder to mark that node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
import yaml
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

import kizuna.automation  # noqa: F401  (registers plugin fields before the builder lists them)
from kizuna.domain import segments as domain
from kizuna.domain.vocabulary import CONSENT_CHANNELS, SURVEY_KINDS, SURVEY_SCALES
from kizuna.errors import KizunaError, NotFound, SegmentError
from kizuna.services import segments as service
from kizuna.services.users import User, record_audit
from kizuna.store import automation_tables as at
from kizuna.store import tables as t
from kizuna.web.auth import AnyUser, Editor, context_of
from kizuna.web.export import csv_response
from kizuna.web.masking import masked
from kizuna.web.nav import ALL_ROLES, NavItem, register, register_router
from kizuna.web.pages_common import uow_of
from kizuna.web.render import render

router = APIRouter()
SAMPLE = 10
STARTER: dict[str, Any] = {"and": [{"aggregate": "orders", "op": "gte", "value": 2, "days": 365}]}


def registry() -> dict[str, Any]:
    """What the builder may offer: every registered field, aggregate, op and channel."""
    return {
        "fields": [
            {"name": f.name, "type": f.type, "help": f.help}
            for f in sorted(domain.FIELDS.values(), key=lambda f: f.name)
        ],
        "aggregates": [
            {"name": a.name, "help": a.help, "params": list(a.params), "windowed": a.windowed}
            for a in sorted(domain.AGGREGATES.values(), key=lambda a: a.name)
        ],
        "ops_by_type": {k: list(v) for k, v in domain.OPS_BY_TYPE.items()},
        "order_ops": list(domain.ORDER_OPS),
        "set_ops": list(domain.SET_OPS),
        "presence_ops": list(domain.PRESENCE_OPS),
        "consents": list(CONSENT_CHANNELS),
        "surveys": {k: list(SURVEY_SCALES[k]) for k in SURVEY_KINDS},
    }


def _rule_text(rule: Any) -> str:
    return json.dumps(rule, ensure_ascii=False, indent=2, default=str)


def _parse_rule_text(text: str) -> Any:
    """The rule from the form's text (YAML, of which JSON is a part)."""
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise SegmentError("/rule", f"the rule is not valid YAML or JSON: {exc}") from None


def _shown_sample(rows: list[dict[str, Any]], user: User) -> list[dict[str, Any]]:
    visible = user.sees_personal_data
    return [
        {
            "customer_id": r["external_id"],
            "name": masked("name", r.get("name"), visible),
            "email": masked("email", r.get("email"), visible),
        }
        for r in rows
    ]


def _stored(request: Request, name: str) -> dict[str, Any] | None:
    s = at.segments.c
    with context_of(request).engine.connect() as conn:
        row = conn.execute(
            sa.select(s.name, s.description, s.definition, s.member_count, s.refreshed_at).where(
                s.name == name
            )
        ).first()
    return dict(row._mapping) if row else None


def _editor(
    request: Request,
    status: int = 200,
    *,
    name: str,
    description: str,
    rule_text: str,
    existing: dict[str, Any] | None,
    error: SegmentError | KizunaError | None = None,
    preview: dict[str, Any] | None = None,
    saved: bool = False,
) -> Response:
    path = error.path if isinstance(error, SegmentError) else None
    return render(
        request,
        "pages/segment_edit.html",
        status,
        name=name,
        description=description,
        rule_text=rule_text,
        existing=existing,
        error=(error.reason if isinstance(error, SegmentError) else str(error)) if error else None,
        error_path=path,
        preview=preview,
        saved=saved,
        registry=registry(),
    )


@router.get("/segments")
def segments_page(request: Request, user: AnyUser) -> Response:
    rows = service.list_segments(uow_of(request))
    return render(request, "pages/segments.html", rows=rows)


@router.get("/segments.csv")
def segments_csv(request: Request, user: AnyUser) -> Response:
    rows = service.list_segments(uow_of(request))
    header = ("name", "description", "members", "refreshed_at")
    data = (
        (r["name"], r["description"], r["member_count"],
         r["refreshed_at"].isoformat() if r["refreshed_at"] else None)
        for r in rows
    )  # fmt: skip
    return csv_response(context_of(request).engine, user, "segments", header, data)


@router.get("/segments/new")
def new_segment(request: Request, user: Editor) -> Response:
    return _editor(request, name="", description="", rule_text=_rule_text(STARTER), existing=None)


@router.get("/segments/{name}")
def segment_page(request: Request, user: AnyUser, name: str, saved: str | None = None) -> Response:
    found = _stored(request, name)
    if found is None:
        return render(
            request,
            "error.html",
            404,
            title_key="error.not_found_title",
            message_key="error.page_not_found",
        )
    doc = found["definition"] or {}
    return _editor(
        request,
        name=found["name"],
        description=found["description"] or "",
        rule_text=_rule_text(doc.get("rule")),
        existing=found,
        saved=bool(saved),
    )


@router.post("/segments/edit")
async def edit_segment(request: Request, user: Editor) -> Response:
    """Preview or save the definition in the form (``do`` = ``preview`` or ``save``)."""
    form = await request.form()
    name = str(form.get("name", "")).strip()
    description = str(form.get("description", "")).strip()
    rule_text = str(form.get("rule", ""))
    original = str(form.get("original", "")).strip()
    existing = _stored(request, original) if original else None
    if existing is not None:
        name = existing["name"]  # renaming would orphan the journeys that name it
    keep: dict[str, Any] = {
        "name": name,
        "description": description,
        "rule_text": rule_text,
        "existing": existing,
    }
    try:
        document: dict[str, Any] = {"name": name, "rule": _parse_rule_text(rule_text)}
        if description:
            document["description"] = description
        if form.get("do") == "save":
            service.handle_save(
                service.SaveSegment(document, replace=existing is not None), uow_of(request)
            )
            record_audit(
                context_of(request).engine, user.username, "segment_save", {"segment": name}
            )
            return RedirectResponse(f"/segments/{name}?saved=1", status_code=303)
        found = service.preview(document, uow_of(request), sample=SAMPLE)
    except KizunaError as exc:
        return _editor(request, 422, **keep, error=exc)
    preview = {"count": found.count, "sample": _shown_sample(found.sample, user)}
    return _editor(request, **keep, preview=preview)


@router.post("/segments/{name}/refresh")
def refresh_segment(request: Request, user: Editor, name: str) -> Response:
    try:
        service.handle_refresh(service.RefreshSegment(name, reason="dashboard"), uow_of(request))
    except NotFound:
        return RedirectResponse("/segments", status_code=303)
    return RedirectResponse(f"/segments/{name}", status_code=303)


@router.get("/segments/{name}/members.csv")
def members_csv(request: Request, user: AnyUser, name: str) -> Response:
    """The stored members (as of the last refresh), personal data masked for analysts."""
    ctx = context_of(request)
    visible = user.sees_personal_data
    s, m, c = at.segments.c, at.segment_members.c, t.customers.c

    def rows() -> Iterator[tuple[Any, ...]]:
        with ctx.engine.connect() as conn:
            found = conn.execute(
                sa.select(c.external_id, c.name, c.email, m.entered_at)
                .select_from(
                    at.segment_members.join(at.segments, s.id == m.segment_id).join(
                        t.customers, c.id == m.customer_id
                    )
                )
                .where(s.name == name)
                .order_by(c.external_id)
            )
            for r in found:
                yield (
                    r.external_id,
                    masked("name", r.name, visible),
                    masked("email", r.email, visible),
                    r.entered_at.isoformat(),
                )

    header = ("customer_id", "name", "email", "entered_at")
    return csv_response(ctx.engine, user, "segment_members", header, rows(), {"segment": name})


register_router(router)
#: One entry for segments, journeys and measures (tabs link the three pages).
register(NavItem("campaigns", "/segments", "pages.nav_campaigns", ALL_ROLES, 50))
