"""/v1/surveys: survey definitions, their results, and signed links for customers.

Reading needs the ``read`` permission (every scope but POS); creating or
changing a definition needs ``programme`` and issuing a link ``actions``
(admin and marketer keys), the permissions that already guard configuring
the programme and acting for a member.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kizuna.api.deps import CtxDep, allow, run
from kizuna.services import surveys
from kizuna.services.survey_links import issue_link
from kizuna.services.uow import UnitOfWork

router = APIRouter(tags=["surveys"])


class Bilingual(BaseModel):
    ja: str = Field(min_length=1, max_length=500)
    en: str = Field(min_length=1, max_length=500)


class QuestionIn(BaseModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    type: str = Field("text", pattern="^(text|choice|scale)$")
    label: Bilingual
    choices: list[Bilingual] | None = None
    required: bool = False


class SurveyIn(BaseModel):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", examples=["nps-after-purchase"])
    kind: str = Field(pattern="^(nps|csat|ces)$")
    title: Bilingual
    question: Bilingual | None = None
    why: Bilingual | None = None
    questions: list[QuestionIn] = Field(default_factory=list, max_length=10)
    touchpoint: str | None = Field(None, max_length=50)


class LinkIn(BaseModel):
    customer_id: str = Field(
        min_length=1, max_length=128, description="The customer's id in your systems."
    )


def _stats(s: surveys.SurveyStats) -> dict[str, Any]:
    return {
        "key": s.key, "kind": s.kind, "version": s.version, "status": s.status,
        "title": {"ja": s.title_ja, "en": s.title_en}, "invited": s.invited,
        "answered": s.answered, "response_rate": s.response_rate, "detractors": s.detractors,
        "passives": s.passives, "promoters": s.promoters, "mean_score": s.mean_score,
        "nps": s.nps,
    }  # fmt: skip


@router.get("/surveys", dependencies=[allow("read")], summary="Surveys with their results")
def list_surveys(ctx: CtxDep) -> JSONResponse:
    return JSONResponse({"items": [_stats(s) for s in surveys.survey_stats(ctx.engine)]})


@router.post(
    "/surveys",
    status_code=201,
    dependencies=[allow("programme")],
    summary="Create a survey, or a new version of it (answered versions never change)",
)
def save_survey(body: SurveyIn, ctx: CtxDep) -> JSONResponse:
    doc = body.model_dump(exclude_none=True)
    result = surveys.save_survey(UnitOfWork(ctx.engine, ctx.settings), doc, actor="api")
    status = 200 if result["outcome"] == "unchanged" else 201
    return JSONResponse(result, status_code=status)


@router.post(
    "/surveys/{key}/links",
    status_code=201,
    dependencies=[allow("actions")],
    summary="Issue a signed, expiring survey link for one customer",
)
def create_link(key: str, body: LinkIn, ctx: CtxDep) -> JSONResponse:
    def handler(uow: UnitOfWork) -> dict[str, Any]:
        link = issue_link(
            uow.conn, uow.settings, key, body.customer_id, now=datetime.now(UTC), channel="api"
        )
        uow.commit()
        return {
            "survey": link.survey, "version": link.version, "customer_id": body.customer_id,
            "url": link.url, "expires_at": link.expires_at.isoformat(),
        }  # fmt: skip

    return JSONResponse(run(ctx, handler), status_code=201)
