"""Journeys: list, create and edit (YAML with starters), dry run, activate/pause, per-step stats.

The definition is edited as YAML (the format of ``kizuna journey create``),
validated by the same parser (:func:`kizuna.automation.runner.parse`); a
refused definition shows the parser's message, which names the bad node
(``journey /steps/2/action: ...``), next to the outline of the steps. A dry
run lists who would enter today and what they would get, writing nothing.
Activation and pausing are audited.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
import yaml
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from kizuna.errors import KizunaError, NotFound
from kizuna.services import journeys as service
from kizuna.services.journey_steps import journey_list, step_stats
from kizuna.services.users import record_audit
from kizuna.store import automation_tables as at
from kizuna.web.auth import AnyUser, Editor, context_of
from kizuna.web.export import csv_response
from kizuna.web.nav import register_router
from kizuna.web.pages_common import ACCENT, layout, uow_of
from kizuna.web.render import render, translator

router = APIRouter()
DRY_RUN_ROWS = 20
ERROR_PATH = re.compile(r"^journey (/\S*): ")

#: Starting points for a new journey (``/journeys/new?starter=...``).
STARTERS: dict[str, dict[str, Any]] = {
    "welcome": {
        "name": "welcome",
        "trigger": {"segment_entry": "new-members"},
        "holdout_percent": 10,
        "goal": {"purchase_within_days": 30},
        "steps": [
            {"id": "wait", "wait": {"days": 1}},
            {"id": "greet", "action": "email", "subject": "{{ name }}様、ようこそ",
             "text": "ご登録ありがとうございます。\n{{ unsubscribe_url }}"},
            {"id": "done", "exit": True},
        ],
    },
    "birthday": {
        "name": "birthday",
        "trigger": {"birthday": {"offset_days": 0}},
        "holdout_percent": 10,
        "steps": [
            {"id": "gift", "action": "grant_points", "reward": "birthday"},
            {"id": "tell", "action": "email", "subject": "{{ name }}様、お誕生日おめでとうございます",
             "text": "ささやかなポイントを贈りました。\n{{ unsubscribe_url }}"},
        ],
    },
    "winback": {
        "name": "winback",
        "trigger": {"days_after_last_purchase": 90},
        "holdout_percent": 20,
        "goal": {"purchase_within_days": 30},
        "steps": [
            {"id": "coupon", "action": "issue_coupon", "kind": "percent", "value": 10,
             "valid_days": 14},
            {"id": "check", "if": {"consent": "email"}, "then": "tell", "else": "call"},
            {"id": "tell", "action": "email", "subject": "{{ name }}様へのクーポン",
             "text": "コード {{ coupon_code }}\n{{ unsubscribe_url }}"},
            {"id": "end", "exit": True},
            {"id": "call", "action": "create_task", "title": "Call {{ name }}"},
        ],
    },
}  # fmt: skip


def _yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)


def _outline(text: str) -> list[dict[str, Any]]:
    """The steps of the text as far as it parses, for the outline beside the editor."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    steps = doc.get("steps") if isinstance(doc, dict) else None
    out = []
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        kind = next((k for k in ("wait", "action", "if", "split", "exit") if k in step), "?")
        detail = step.get("action") if kind == "action" else ""
        out.append({"index": i, "id": step.get("id", ""), "kind": kind, "detail": detail})
    return out


def _stored(request: Request, name: str) -> dict[str, Any] | None:
    with context_of(request).engine.connect() as conn:
        found = [j for j in journey_list(conn) if j["name"] == name]
        if not found:
            return None
        definition = conn.execute(
            sa.select(at.journeys.c.definition).where(at.journeys.c.name == name)
        ).scalar_one()
        stats = step_stats(conn, name)
    return {**found[0], "definition": definition, "steps": stats}


def _chart(steps: list[dict[str, Any]], waiting: str, sent: str) -> dict[str, Any]:
    names = [s["step"] for s in steps]
    return {
        "data": [
            {"type": "bar", "name": waiting, "x": names, "y": [s["at_step"] for s in steps],
             "marker": {"color": "#90caf9"}},
            {"type": "bar", "name": sent, "x": names, "y": [s["sent"] for s in steps],
             "marker": {"color": ACCENT}},
        ],
        "layout": layout(barmode="group", xaxis={"type": "category"}),
    }  # fmt: skip


def _page(
    request: Request,
    status: int = 200,
    *,
    text: str,
    existing: dict[str, Any] | None,
    error: str | None = None,
    dry: dict[str, Any] | None = None,
    saved: str | None = None,
) -> Response:
    tr = translator(request)
    match = ERROR_PATH.match(error or "")
    chart = (
        _chart(existing["steps"], tr("pages.at_step"), tr("pages.sends"))
        if existing and existing["steps"]
        else None
    )
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        parsed = None
    with context_of(request).engine.connect() as conn:
        names = list(
            conn.execute(sa.select(at.segments.c.name).order_by(at.segments.c.name)).scalars()
        )
    return render(
        request,
        "pages/journey_edit.html",
        status,
        doc=parsed if isinstance(parsed, dict) else None,
        segment_names=names,
        text=text,
        existing=existing,
        error=error,
        error_path=match.group(1) if match else None,
        outline=_outline(text),
        dry=dry,
        saved=saved,
        starters=sorted(STARTERS),
        chart=chart,
    )


@router.get("/journeys")
def journeys_page(request: Request, user: AnyUser) -> Response:
    with context_of(request).engine.connect() as conn:
        rows = journey_list(conn)
    return render(request, "pages/journeys.html", rows=rows)


@router.get("/journeys.csv")
def journeys_csv(request: Request, user: AnyUser) -> Response:
    with context_of(request).engine.connect() as conn:
        rows = journey_list(conn)
    header = ("name", "status", "trigger", "trigger_value", "priority", "runs", "open",
              "completed", "exited", "failed")  # fmt: skip
    data = ((*(r[h] for h in header[:3]), str(r["trigger_value"]), *(r[h] for h in header[4:]))
            for r in rows)  # fmt: skip
    return csv_response(context_of(request).engine, user, "journeys", header, data)


@router.get("/journeys/new")
def new_journey(request: Request, user: Editor, starter: str = "welcome") -> Response:
    return _page(request, text=_yaml(STARTERS.get(starter, STARTERS["welcome"])), existing=None)


@router.get("/journeys/{name}")
def journey_page(request: Request, user: AnyUser, name: str, saved: str | None = None) -> Response:
    found = _stored(request, name)
    if found is None:
        return render(
            request,
            "error.html",
            404,
            title_key="error.not_found_title",
            message_key="error.page_not_found",
        )
    return _page(request, text=_yaml(found["definition"]), existing=found, saved=saved)


@router.post("/journeys/edit")
async def edit_journey(request: Request, user: Editor) -> Response:
    """Dry-run or save the YAML in the form (``do`` = ``dry_run`` or ``save``)."""
    form = await request.form()
    text = str(form.get("definition", ""))
    original = str(form.get("original", "")).strip()
    existing = _stored(request, original) if original else None
    try:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise KizunaError(f"journey /: not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise KizunaError("journey /: a journey is a mapping with name, trigger and steps")
        if existing is not None and doc.get("name") != existing["name"]:
            raise KizunaError(
                f"journey /name: keep the name {existing['name']!r}; create a new journey to rename"
            )
        if form.get("do") == "save":
            service.handle_save(
                service.SaveJourney(doc, replace=existing is not None), uow_of(request)
            )
            record_audit(
                context_of(request).engine, user.username, "journey_save", {"journey": doc["name"]}
            )
            return RedirectResponse(f"/journeys/{doc['name']}?saved=saved", status_code=303)
        entries = service.dry_run(doc, uow_of(request))
    except KizunaError as exc:
        return _page(request, 422, text=text, existing=existing, error=str(exc))
    dry = {
        "count": len(entries),
        "holdout": sum(1 for e in entries if e.holdout),
        "rows": entries[:DRY_RUN_ROWS],
    }
    return _page(request, text=text, existing=existing, dry=dry)


@router.post("/journeys/{name}/status")
async def set_status(request: Request, user: Editor, name: str) -> Response:
    form = await request.form()
    status = str(form.get("status", ""))
    try:
        service.set_status(name, status, uow_of(request))
    except NotFound:
        return RedirectResponse("/journeys", status_code=303)
    except KizunaError as exc:
        found = _stored(request, name)
        text = _yaml(found["definition"]) if found else ""
        return _page(request, 422, text=text, existing=found, error=str(exc))
    record_audit(
        context_of(request).engine,
        user.username,
        "journey_status",
        {"journey": name, "status": status},
    )
    return RedirectResponse(f"/journeys/{name}?saved={status}", status_code=303)


@router.get("/journeys/{name}/steps.csv")
def steps_csv(request: Request, user: AnyUser, name: str) -> Response:
    ctx = context_of(request)
    try:
        with ctx.engine.connect() as conn:
            steps = step_stats(conn, name)
    except NotFound:
        steps = []
    statuses = sorted({k for s in steps for k in s["sends"]})
    header = ("step", "at_step", "failed", "sends", *(f"sends_{k}" for k in statuses))
    rows = (
        (s["step"], s["at_step"], s["failed"], s["sent"], *(s["sends"].get(k, 0) for k in statuses))
        for s in steps
    )
    return csv_response(ctx.engine, user, "journey_steps", header, rows, {"journey": name})


register_router(router)
