"""Survey links: issue a signed link, open it, answer through it.

The signing key is derived from the workspace secret (the one the dashboard
sessions and unsubscribe links use), under its own label, so a survey tag
says nothing about any other signature. An answer is written to the
canonical ``survey_answers`` table — KPIs, the loyalty matrix and the
customer timeline count it like an imported answer — and records a
``survey_detractor`` / ``survey_passive`` / ``survey_promoter`` event in the
same transaction, so journeys close the loop (a task for staff, a review
request for a promoter).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kizuna.config import Settings
from kizuna.domain.surveys import (
    MAX_COMMENT_CHARS,
    SurveyDefinition,
    SurveyToken,
    TokenInvalid,
    classify,
    event_type,
    parse_extra,
    read_token,
    sign_token,
)
from kizuna.domain.vocabulary import LANGUAGES
from kizuna.errors import NotFound, ValidationError
from kizuna.services import surveys
from kizuna.services.events import record_event
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t
from kizuna.store import voice_tables as vt

SURVEY_PATH = "/survey"


class LinkExpired(ValidationError):
    """A survey link whose answer window has closed, or whose survey was retired."""


def signing_key(settings: Settings) -> bytes:
    """The survey-link key: HMAC of a fixed label under the workspace secret."""
    from kizuna.automation.unsubscribe import _workspace_secret

    return hmac.new(_workspace_secret(settings), b"kizuna-survey-v1", hashlib.sha256).digest()


def survey_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}{SURVEY_PATH}/{token}"


def token_id_for(key: str) -> str:
    """A token id derived from an idempotency key: a retried send re-sends the same link."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class IssuedLink:
    token: str
    url: str
    survey: str
    version: int
    customer_id: int
    expires_at: datetime


def _customer_id(conn: sa.Connection, customer: int | str) -> int:
    c = t.customers
    where = c.c.id == customer if isinstance(customer, int) else c.c.external_id == customer
    found = conn.execute(sa.select(c.c.id).where(where)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no customer {customer!r}")
    return int(found)


def issue_link(
    conn: sa.Connection,
    settings: Settings,
    survey_key: str,
    customer: int | str,
    *,
    now: datetime,
    channel: str = "link",
    source: str = "",
    token_id: str | None = None,
) -> IssuedLink:
    """Record an invitation and return its signed link (idempotent by ``token_id``).

    ``customer`` is the customer's id (int) or external id (str). Issuing
    the same ``token_id`` again returns the first link, expiry included.
    """
    survey = surveys.latest(conn, survey_key)
    if survey.status != "active":
        raise ValidationError(f"survey {survey_key!r} is retired; reactivate it to send links")
    customer_id = _customer_id(conn, customer)
    tid = token_id or secrets.token_urlsafe(18)
    i = vt.survey_invitations
    values = {
        "token_id": tid, "survey_id": survey.id, "customer_id": customer_id,
        "channel": channel[:16], "source": source[:200] or None, "issued_at": now,
        "expires_at": (now + timedelta(days=settings.survey_link_days)).replace(microsecond=0),
    }  # fmt: skip
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(i).values(**values).on_conflict_do_nothing(index_elements=["token_id"]))
    row = conn.execute(
        sa.select(i.c.survey_id, i.c.customer_id, i.c.expires_at).where(i.c.token_id == tid)
    ).one()
    token = SurveyToken(tid, int(row.survey_id), int(row.customer_id), row.expires_at)
    text = sign_token(signing_key(settings), token)
    return IssuedLink(
        text, survey_url(settings, text), survey.key, survey.version, token.customer_id,
        token.expires_at,
    )  # fmt: skip


@dataclass(frozen=True)
class LinkView:
    """What the public page needs: the questions, the language and any earlier answer."""

    token: SurveyToken
    survey_key: str
    definition: SurveyDefinition
    language: str
    score: int | None = None
    comment: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.score is not None


def _check(conn: sa.Connection, settings: Settings, text: str, now: datetime) -> Any:
    """The invitation row behind a valid, unexpired link; the reason otherwise."""
    token = read_token(signing_key(settings), text)
    i = vt.survey_invitations
    row = conn.execute(sa.select(i).where(i.c.token_id == token.token_id)).one_or_none()
    if row is None or row.customer_id != token.customer_id or row.survey_id != token.survey_id:
        raise TokenInvalid("this survey link is not valid for this shop")
    if token.expired(now):
        raise LinkExpired(f"this survey link expired on {row.expires_at:%Y-%m-%d}")
    return row


def customer_language(conn: sa.Connection, customer_id: int) -> str:
    lang = conn.execute(
        sa.select(t.customers.c.language).where(t.customers.c.id == customer_id)
    ).scalar_one_or_none()
    return str(lang) if lang in LANGUAGES else LANGUAGES[0]


def token_language(engine: sa.Engine, settings: Settings, text: str) -> str | None:
    """The customer's language for a link whose tag is right (even if expired), else None."""
    try:
        token = read_token(signing_key(settings), text)
    except TokenInvalid:
        return None
    with engine.connect() as conn:
        return customer_language(conn, token.customer_id)


def open_link(engine: sa.Engine, settings: Settings, text: str, now: datetime) -> LinkView:
    """The page behind a link, with the earlier answer if there is one."""
    with engine.connect() as conn:
        row = _check(conn, settings, text, now)
        survey = surveys.by_id(conn, int(row.survey_id))
        if survey.status != "active":
            raise LinkExpired("this survey has been closed")
        token = read_token(signing_key(settings), text)
        language = customer_language(conn, token.customer_id)
        view = LinkView(token, survey.key, survey.definition, language)
        if row.answer_id is not None:
            a = t.survey_answers
            answer = conn.execute(
                sa.select(a.c.score, a.c.comment).where(a.c.id == row.answer_id)
            ).one()
            view = LinkView(
                token, survey.key, survey.definition, language, int(answer.score),
                answer.comment, dict(row.extra or {}),
            )  # fmt: skip
        return view


@dataclass(frozen=True)
class AnswerResult:
    answer_id: int
    answer_class: str
    edited: bool
    event_recorded: bool


def _score(raw: object, kind: str) -> int:
    from kizuna.domain.vocabulary import SURVEY_SCALES

    low, high = SURVEY_SCALES[kind]
    try:
        score = int(str(raw).strip())
    except ValueError:
        raise ValidationError(f"choose a score from {low} to {high}") from None
    classify(kind, score)
    return score


def submit_answer(
    uow: UnitOfWork,
    text: str,
    score: object,
    comment: str | None,
    form: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> AnswerResult:
    """Answer (or, within the window, re-answer) through a link: one answer per link."""
    moment = now or datetime.now(UTC)
    i, a = vt.survey_invitations, t.survey_answers
    with uow:
        conn = uow.conn
        row = _check(conn, uow.settings, text, moment)
        # Lock the invitation: two tabs submitting at once make one answer, edited.
        lock = sa.select(i.c.id).where(i.c.id == row.id)
        if conn.dialect.name == "postgresql":
            lock = lock.with_for_update()
        conn.execute(lock)
        row = conn.execute(sa.select(i).where(i.c.id == row.id)).one()
        survey = surveys.by_id(conn, int(row.survey_id))
        if survey.status != "active":
            raise LinkExpired("this survey has been closed")
        value = _score(score, survey.kind)
        note = (comment or "").strip()[:MAX_COMMENT_CHARS] or None
        extra = parse_extra(survey.definition, form or {})
        language = customer_language(conn, int(row.customer_id))
        fields = {
            "score": value, "comment": note, "language": language, "answered_at": moment,
            "kind": survey.kind, "survey": survey.key,
            "touchpoint": survey.definition.touchpoint or "survey_link",
        }  # fmt: skip
        edited = row.answer_id is not None
        if edited:
            conn.execute(sa.update(a).where(a.c.id == row.answer_id).values(**fields))
            answer_id = int(row.answer_id)
        else:
            answer_id = int(
                conn.execute(
                    sa.insert(a)
                    .values(
                        external_id=f"kizuna-survey:{row.token_id}",
                        customer_id=row.customer_id,
                        **fields,
                    )
                    .returning(a.c.id)
                ).scalar_one()
            )
        conn.execute(
            sa.update(i)
            .where(i.c.id == row.id)
            .values(
                answer_id=answer_id,
                first_answered_at=row.first_answered_at or moment,
                last_answered_at=moment,
                edits=row.edits + (1 if edited else 0),
                extra=extra or None,
            )
        )
        answer_class = classify(survey.kind, value)
        # One event per link and class: an edit that changes the class (a
        # passive who comes back angry) is news for journeys; one that doesn't is not.
        recorded = record_event(
            conn,
            key=f"survey:{row.token_id}:{answer_class}",
            customer_id=int(row.customer_id),
            type=event_type(answer_class),
            occurred_at=moment,
            topic=survey.key,
            properties={
                "survey": survey.key,
                "version": survey.version,
                "kind": survey.kind,
                "score": value,
                "answer_id": answer_id,
            },  # fmt: skip
        )
        uow.commit()
    return AnswerResult(answer_id, answer_class, edited, recorded)
