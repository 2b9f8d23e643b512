"""Feedback analysis over the system of record: comments in, tables out.

Comments come from three places and are analysed the same way: survey
answers (grouped by answer class: detractor, passive, promoter), support
contacts (grouped by their satisfaction score as a CSAT) and reviews
(grouped by their rating as a CSAT). The text analyses themselves are pure
functions in :mod:`kizuna.analytics.text`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kizuna.analytics.text import (
    Doc,
    TermTable,
    ThemeChurn,
    ThemeMonth,
    doc_terms,
    mean_sentiment,
    sentiment,
    theme_churn,
    theme_trends,
    weighted_log_odds,
)
from kizuna.config import Settings
from kizuna.domain.surveys import classify
from kizuna.errors import ValidationError
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

SOURCES = ("survey", "contact", "review")
GROUPS = ("detractor", "passive", "promoter")


def _group(kind: str, score: int | None) -> str | None:
    if score is None:
        return None
    try:
        return classify(kind, int(score))
    except ValidationError:
        return None


def load_docs(
    engine: sa.Engine,
    settings: Settings,
    sources: Sequence[str] = SOURCES,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Doc]:
    """Every non-empty comment of ``sources``, with its group, customer, month and time."""
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValidationError(f"unknown source {', '.join(unknown)}; use {', '.join(SOURCES)}")
    tz = settings.tz
    a, c, r = t.survey_answers, t.contacts, t.reviews
    queries: list[tuple[str, Any, Any]] = []
    if "survey" in sources:
        queries.append(
            ("survey", sa.select(a.c.id, a.c.customer_id, a.c.kind, a.c.score, a.c.comment.label("text"),
                                 a.c.language, a.c.answered_at.label("at")), a.c.answered_at)
        )  # fmt: skip
    if "contact" in sources:
        queries.append(
            ("contact", sa.select(c.c.id, c.c.customer_id, sa.literal("csat").label("kind"),
                                  c.c.satisfaction.label("score"), c.c.comment.label("text"),
                                  c.c.language, c.c.opened_at.label("at")), c.c.opened_at)
        )  # fmt: skip
    if "review" in sources:
        text = sa.func.coalesce(r.c.title, "") + sa.literal("\n") + sa.func.coalesce(r.c.body, "")
        queries.append(
            ("review", sa.select(r.c.id, r.c.customer_id, sa.literal("csat").label("kind"),
                                 r.c.rating.label("score"), text.label("text"), r.c.language,
                                 r.c.posted_at.label("at")), r.c.posted_at)
        )  # fmt: skip
    docs: list[Doc] = []
    with engine.connect() as conn:
        for source, query, when in queries:
            if since is not None:
                query = query.where(when >= since)
            if until is not None:
                query = query.where(when < until)
            for row in conn.execute(query.order_by(when)):
                body = (row.text or "").strip()
                if not body:
                    continue
                docs.append(
                    Doc(
                        text=body,
                        language=row.language,
                        group=_group(row.kind, row.score),
                        customer_id=int(row.customer_id),
                        month=row.at.astimezone(tz).strftime("%Y-%m"),
                        source=source,
                        at=row.at,
                        ref=int(row.id),
                    )
                )
    return docs


@dataclass(frozen=True)
class TermContrast:
    """One term of a detractor-vs-promoter comparison."""

    term: str
    key: str
    count_a: int
    count_b: int
    z: float
    delta: float


def compare(
    docs: Iterable[Doc],
    group_a: str = "detractor",
    group_b: str = "promoter",
    min_count: int | None = None,
) -> list[TermContrast]:
    """Terms by weighted log-odds z-score: group a's words first, group b's last.

    The prior is the term frequencies of *all* the comments given (passives
    included), as Monroe et al. recommend: a word common everywhere is
    shrunk to no difference.
    """
    everything = list(docs)
    if min_count is None:
        # A term in one or two of thousands of comments is noise; in a dozen it is all there is.
        min_count = 1 if len(everything) < 100 else 3
    table_a, table_b, background = TermTable(), TermTable(), TermTable()
    for doc in everything:
        found = doc_terms(doc.text, doc.language)  # once per comment, for all three tables
        background.add(found)
        if doc.group == group_a:
            table_a.add(found)
        elif doc.group == group_b:
            table_b.add(found)
    result = weighted_log_odds(
        table_a.counts, table_b.counts, prior=background.counts, min_count=min_count
    )
    return [
        TermContrast(background.show(r.term), r.term, r.count_a, r.count_b, r.z, r.delta)
        for r in result
    ]


def trends(docs: Iterable[Doc]) -> list[ThemeMonth]:
    return theme_trends(docs)


def churn_outcomes(
    engine: sa.Engine, docs: Sequence[Doc], window_days: int, as_of: datetime | None = None
) -> dict[int, bool]:
    """Whether each commenting customer was lost within ``window_days`` after their comment.

    Only comments old enough for the whole window to have passed count (so a
    comment from last week is not called "no churn yet"); the reference time
    is the customer's last such comment, and churned means no completed order
    in the window that follows it.
    """
    moment = as_of or datetime.now(UTC)
    window = timedelta(days=window_days)
    last: dict[int, datetime] = {}
    for doc in docs:
        if doc.customer_id is None or doc.at is None or doc.at > moment - window:
            continue
        if doc.customer_id not in last or doc.at > last[doc.customer_id]:
            last[doc.customer_id] = doc.at
    if not last:
        return {}
    o = t.orders
    bought: set[int] = set()
    ids = sorted(last)
    with engine.connect() as conn:
        for i in range(0, len(ids), 5000):
            chunk = ids[i : i + 5000]
            for row in conn.execute(
                sa.select(o.c.customer_id, o.c.ordered_at).where(
                    o.c.customer_id.in_(chunk), o.c.status == "completed"
                )
            ):
                ref = last[int(row.customer_id)]
                if ref < row.ordered_at <= ref + window:
                    bought.add(int(row.customer_id))
    return {cid: cid not in bought for cid in ids}


def churn_by_theme(
    engine: sa.Engine,
    settings: Settings,
    docs: Sequence[Doc],
    window_days: int | None = None,
    as_of: datetime | None = None,
) -> list[ThemeChurn]:
    outcomes = churn_outcomes(engine, docs, window_days or settings.churn_window_days, as_of)
    return theme_churn(docs, outcomes)


def feedback_tone(
    engine: sa.Engine, settings: Settings, customer_ids: Iterable[int] | None = None
) -> dict[int, float]:
    """Each customer's mean comment sentiment (−1..+1): an attitude signal.

    Meant for the loyalty matrix's attitude axis alongside NPS and CSAT: what
    people *write* about the shop, from every source of comments.
    """
    wanted = set(customer_ids) if customer_ids is not None else None
    texts: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    for doc in load_docs(engine, settings):
        if doc.customer_id is not None and (wanted is None or doc.customer_id in wanted):
            texts[doc.customer_id].append((doc.text, doc.language))
    out: dict[int, float] = {}
    for cid, pairs in texts.items():
        tone = mean_sentiment(pairs)
        if tone is not None:
            out[cid] = tone
    return out


@dataclass(frozen=True)
class DetractorComment:
    answer_id: int
    customer_id: int
    customer_name: str | None
    customer_email: str | None
    survey: str | None
    score: int
    comment: str
    answered_at: datetime
    sentiment: float
    terms: tuple[str, ...]
    #: ``none`` (no follow-up task), ``open`` or ``done``.
    follow_up: str
    task_title: str | None


def detractor_comments(engine: sa.Engine, limit: int = 200) -> list[DetractorComment]:
    """Recent detractor answers with a comment, and the state of their follow-up task.

    The task is the one a journey created from this answer's
    ``survey_detractor`` event, found through the run's instance key; an
    imported answer (no event) falls back to the customer's first task
    created after the answer.
    """
    a, c, e = t.survey_answers, t.customers, t.events
    runs, tasks = at.journey_runs, at.journey_tasks
    nps_low = a.c.kind == "nps"
    detractor = sa.or_(
        sa.and_(nps_low, a.c.score <= 6),
        sa.and_(a.c.kind == "csat", a.c.score <= 2),
        sa.and_(a.c.kind == "ces", a.c.score <= 3),
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(a.c.id, a.c.customer_id, c.c.name, c.c.email, a.c.survey, a.c.score,
                      a.c.comment, a.c.answered_at)
            .join(c, c.c.id == a.c.customer_id)
            .where(detractor, a.c.comment.is_not(None), a.c.comment != "")
            .order_by(a.c.answered_at.desc(), a.c.id.desc())
            .limit(limit)
        ).all()  # fmt: skip
        customers = sorted({int(r.customer_id) for r in rows})
        event_answer: dict[str, int] = {}
        task_rows: list[Any] = []
        if customers:
            for ev in conn.execute(
                sa.select(e.c.id, e.c.properties).where(
                    e.c.type == "survey_detractor", e.c.customer_id.in_(customers)
                )
            ):
                answer = (ev.properties or {}).get("answer_id")
                if answer is not None:
                    event_answer[f"survey_detractor:{ev.id}"] = int(answer)
            task_rows = list(
                conn.execute(
                    sa.select(tasks.c.customer_id, tasks.c.title, tasks.c.done,
                              tasks.c.created_at, runs.c.instance_key)
                    .join(runs, runs.c.id == tasks.c.run_id)
                    .where(tasks.c.customer_id.in_(customers))
                    .order_by(tasks.c.created_at)
                )
            )  # fmt: skip
    by_answer: dict[int, Any] = {}
    by_customer: dict[int, list[Any]] = defaultdict(list)
    for task in task_rows:
        answer_id = event_answer.get(task.instance_key)
        if answer_id is not None:
            by_answer.setdefault(answer_id, task)
        by_customer[int(task.customer_id)].append(task)
    out = []
    for row in rows:
        task = by_answer.get(int(row.id))
        if task is None:
            task = next(
                (x for x in by_customer[int(row.customer_id)] if x.created_at >= row.answered_at),
                None,
            )
        status = "none" if task is None else ("done" if task.done else "open")
        found = doc_terms(row.comment, None, phrases=False)
        out.append(
            DetractorComment(
                int(row.id), int(row.customer_id), row.name, row.email, row.survey,
                int(row.score), row.comment, row.answered_at, sentiment(row.comment).score,
                tuple(list(found.values())[:6]), status, task.title if task else None,
            )
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class ThemeSummary:
    theme: str
    mentions: int
    share: float
    detractor_share: float | None
    promoter_share: float | None
    mean_sentiment: float | None


def theme_summary(docs: Sequence[Doc]) -> list[ThemeSummary]:
    """Each theme: how often it comes up, among detractors vs promoters, and in what tone."""
    from kizuna.analytics.text import DEFAULT_THEMES, doc_themes

    found = [(doc, doc_themes(doc)) for doc in docs]
    groups = {g: [themes for doc, themes in found if doc.group == g] for g in GROUPS}
    out = []
    for theme in DEFAULT_THEMES:
        mentioning = [doc for doc, themes in found if theme in themes]
        shares = {
            g: (sum(theme in th for th in rows) / len(rows) if rows else None)
            for g, rows in groups.items()
        }
        tones = [sentiment(d.text, d.language).score for d in mentioning]
        out.append(
            ThemeSummary(
                theme,
                len(mentioning),
                len(mentioning) / len(docs) if docs else 0.0,
                shares["detractor"],
                shares["promoter"],
                sum(tones) / len(tones) if tones else None,
            )
        )
    return sorted(out, key=lambda r: -r.mentions)
