"""Survey definitions: create (a new version once the old one is answered), list, retire.

A definition that has answers is never changed in place: the links already
sent point at its row, and an answer must stay readable against the exact
questions that were asked. Saving a changed survey whose current version has
answers therefore adds version N+1; saving one with no answers yet replaces
it, because nobody has seen it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from kizuna.domain.surveys import SurveyDefinition, parse_definition
from kizuna.errors import Conflict, NotFound, ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.store import tables as t
from kizuna.store import voice_tables as vt

SURVEY_STATUSES = ("active", "retired")


@dataclass(frozen=True)
class SurveyRow:
    id: int
    key: str
    version: int
    kind: str
    status: str
    definition: SurveyDefinition
    created_at: datetime


@dataclass(frozen=True)
class SurveyStats:
    """One survey (all its versions) with its invitations and answers so far."""

    key: str
    kind: str
    version: int
    status: str
    title_ja: str
    title_en: str
    invited: int
    answered: int
    detractors: int
    passives: int
    promoters: int
    mean_score: float | None

    @property
    def response_rate(self) -> float | None:
        return self.answered / self.invited if self.invited else None

    @property
    def nps(self) -> float | None:
        """100 × (promoters − detractors) / answers, the NPS formula used for every kind."""
        if not self.answered:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.answered


def _row(row: Any) -> SurveyRow:
    return SurveyRow(
        row.id,
        row.key,
        row.version,
        row.kind,
        row.status,
        parse_definition(row.definition),
        row.created_at,
    )


def latest(conn: sa.Connection, key: str) -> SurveyRow:
    """The current version of survey ``key``, or :class:`NotFound`."""
    s = vt.surveys
    row = conn.execute(
        sa.select(s).where(s.c.key == key).order_by(s.c.version.desc()).limit(1)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no survey {key!r}; create it with `kizuna survey create FILE`")
    return _row(row)


def by_id(conn: sa.Connection, survey_id: int) -> SurveyRow:
    row = conn.execute(sa.select(vt.surveys).where(vt.surveys.c.id == survey_id)).one_or_none()
    if row is None:
        raise NotFound(f"no survey with id {survey_id}")
    return _row(row)


def _answered(conn: sa.Connection, survey_id: int) -> bool:
    i = vt.survey_invitations
    return bool(
        conn.execute(
            sa.select(sa.exists().where(i.c.survey_id == survey_id, i.c.answer_id.is_not(None)))
        ).scalar_one()
    )


def save_survey(
    uow: UnitOfWork, doc: Mapping[str, Any], actor: str = "", now: datetime | None = None
) -> dict[str, Any]:
    """Create or change a survey; returns its key, version and what happened."""
    definition = parse_definition(doc)
    moment = now or datetime.now(UTC)
    s = vt.surveys
    with uow:
        try:
            current: SurveyRow | None = latest(uow.conn, definition.key)
        except NotFound:
            current = None
        if current is not None and current.kind != definition.kind:
            raise ValidationError(
                f"survey {definition.key!r} is a {current.kind.upper()} survey; "
                "a different kind needs a new key"
            )
        stored = definition.to_doc()
        if current is not None and current.definition.to_doc() == stored:
            outcome, version = "unchanged", current.version
        elif current is not None and not _answered(uow.conn, current.id):
            uow.conn.execute(
                sa.update(s)
                .where(s.c.id == current.id)
                .values(definition=stored, status="active", created_by=actor[:200] or None)
            )
            outcome, version = "updated", current.version
        else:
            version = 1 if current is None else current.version + 1
            try:
                uow.conn.execute(
                    sa.insert(s).values(
                        key=definition.key, version=version, kind=definition.kind,
                        definition=stored, status="active", created_at=moment,
                        created_by=actor[:200] or None,
                    )
                )  # fmt: skip
            except sa.exc.IntegrityError:
                raise Conflict(
                    f"survey {definition.key!r} was saved by someone else at the same moment; "
                    "send it again"
                ) from None
            outcome = "created" if current is None else "new_version"
        uow.commit()
    return {"key": definition.key, "version": version, "kind": definition.kind, "outcome": outcome}


def set_status(uow: UnitOfWork, key: str, status: str) -> None:
    """Retire a survey (its links then show a 'closed' page) or bring it back."""
    if status not in SURVEY_STATUSES:
        raise ValidationError(f"status must be one of {', '.join(SURVEY_STATUSES)}")
    with uow:
        current = latest(uow.conn, key)
        uow.conn.execute(
            sa.update(vt.surveys).where(vt.surveys.c.id == current.id).values(status=status)
        )
        uow.commit()


def survey_stats(engine: sa.Engine) -> list[SurveyStats]:
    """Every survey with invitation and answer counts (all versions together)."""
    from kizuna.domain.surveys import CLASS_BOUNDS

    s, i, a = vt.surveys, vt.survey_invitations, t.survey_answers
    with engine.connect() as conn:
        current = {
            row.key: row for row in conn.execute(sa.select(s).order_by(s.c.key, s.c.version))
        }
        invited: dict[str, int] = dict(
            conn.execute(
                sa.select(s.c.key, sa.func.count(i.c.id))
                .join(i, i.c.survey_id == s.c.id)
                .group_by(s.c.key)
            ).all()
        )
        answers: dict[str, list[int]] = {}
        for row in conn.execute(
            sa.select(s.c.key, a.c.score)
            .join(i, i.c.survey_id == s.c.id)
            .join(a, a.c.id == i.c.answer_id)
        ):
            answers.setdefault(row.key, []).append(int(row.score))
    out = []
    for key, row in current.items():
        scores = answers.get(key, [])
        detractor, passive = CLASS_BOUNDS[row.kind]
        definition = row.definition
        out.append(
            SurveyStats(
                key=key,
                kind=row.kind,
                version=row.version,
                status=row.status,
                title_ja=str(definition["title"]["ja"]),
                title_en=str(definition["title"]["en"]),
                invited=int(invited.get(key, 0)),
                answered=len(scores),
                detractors=sum(1 for x in scores if x <= detractor),
                passives=sum(1 for x in scores if detractor < x <= passive),
                promoters=sum(1 for x in scores if x > passive),
                mean_score=sum(scores) / len(scores) if scores else None,
            )
        )
    return out
