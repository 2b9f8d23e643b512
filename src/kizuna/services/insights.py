"""Personas, key drivers and the customer journey map, for the dashboard pages.

Each is computed from the latest scoring run (personas from its features via
:func:`kizuna.analytics.personas.personas`, drivers via
:mod:`kizuna.analytics.drivers`, the journey map from its lifecycle stages)
and kept in a small per-process cache keyed by the run id: a scoring run is
never changed after it is written, so the result stays right until the next
run, and the pages answer in milliseconds instead of re-clustering or
re-tokenising every comment on every request.

The journey map puts the lifecycle stages (:data:`kizuna.analytics.lifecycle.STAGES`)
side by side: customers per stage (the run's ``lifecycle``), how many of a
stage's customers were in the next stage one month later (from the monthly
stage snapshots of the last twelve months), and what is most common at each
stage over the last :data:`WINDOW_DAYS` days before the run's date: event
types and order channels (touchpoints), journey sends (messages), and the
themes and key terms of survey comments (:mod:`kizuna.analytics.text`).
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from kizuna.analytics import lifecycle
from kizuna.bootstrap import Context
from kizuna.errors import NotFound
from kizuna.services.scoring import RunInfo, latest_run
from kizuna.store import automation_tables as at
from kizuna.store import tables as t
from kizuna.store.scoring_tables import customer_scores

#: Personas the pages cluster into (the CLI's default too).
DEFAULT_PERSONAS = 6
#: Days before the run's date that the journey map counts touchpoints and feedback over.
WINDOW_DAYS = 90
#: Items listed per stage for each kind of touchpoint.
TOP = 5
#: The stage whose customers a stage hopes to become next month (left to right on the map).
NEXT_STAGE: dict[str, str | None] = {
    "new": "repeat",
    "repeat": "loyal",
    "loyal": "ambassador",
    "ambassador": None,
    "at_risk": "lapsed",
    "lapsed": None,
}
#: How many results the cache keeps before forgetting the oldest.
CACHE_SIZE = 64

T = TypeVar("T")
_cache: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


def _cached(ctx: Context, run: RunInfo, what: tuple[Any, ...], make: Callable[[], T]) -> T:
    key = (str(ctx.engine.url), str(ctx.settings.workspace), run.id, *what)
    with _lock:
        if key in _cache:
            return _cache[key]  # type: ignore[no-any-return]
    value = make()
    with _lock:
        if len(_cache) >= CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[key] = value
    return value


def forget() -> None:
    """Empty the cache (tests; a new run needs no call, its id is new)."""
    with _lock:
        _cache.clear()


# --- personas ------------------------------------------------------------------


@dataclass(frozen=True)
class PersonaView:
    """The latest run's personas: one described row per persona, largest first."""

    run: RunInfo
    k: int
    clusters: list[dict[str, Any]]
    #: External customer id -> persona number.
    assignments: dict[str, int]


def persona_view(ctx: Context, k: int = DEFAULT_PERSONAS) -> PersonaView:
    """Personas of the latest scoring run (:class:`NotFound` without one)."""
    from kizuna.analytics.personas import personas
    from kizuna.services.analytics_queries import scores_frame

    run = latest_run(ctx)

    def make() -> PersonaView:
        result = personas(scores_frame(ctx), k=k)
        assignments = dict(
            zip(
                result.assignments["customer_id"].astype(str),
                result.assignments["persona"].astype(int),
                strict=True,
            )
        )
        clusters = [
            {str(key): v for key, v in r.items()} for r in result.clusters.to_dict("records")
        ]
        return PersonaView(run, k, clusters, assignments)

    return _cached(ctx, run, ("personas", k), make)


# --- key drivers ---------------------------------------------------------------


@dataclass(frozen=True)
class DriverView:
    """Key drivers of NPS with 95% intervals, strongest first."""

    run: RunInfo
    rows: list[dict[str, Any]]


def driver_view(ctx: Context) -> DriverView:
    """Key drivers over every NPS answer, cached with the latest run."""
    from kizuna.services.analytics_queries import drivers_frame

    run = latest_run(ctx)

    def make() -> DriverView:
        frame = drivers_frame(ctx)
        return DriverView(
            run, [{str(key): v for key, v in r.items()} for r in frame.to_dict("records")]
        )

    return _cached(ctx, run, ("drivers",), make)


# --- the customer journey map --------------------------------------------------


@dataclass(frozen=True)
class StageColumn:
    stage: str
    customers: int
    share: float
    next_stage: str | None
    #: Of the customer-months at this stage, the share at ``next_stage`` a month later.
    conversion: float | None
    #: Of the customer-months at this stage, the share still at it a month later.
    stayed: float | None
    moves: list[tuple[str, float]] = field(default_factory=list)
    touchpoints: list[tuple[str, int]] = field(default_factory=list)
    channels: list[tuple[str, int]] = field(default_factory=list)
    messages: list[tuple[str, int]] = field(default_factory=list)
    themes: list[tuple[str, int]] = field(default_factory=list)
    terms: list[tuple[str, int]] = field(default_factory=list)
    comments: int = 0


@dataclass(frozen=True)
class JourneyMap:
    run: RunInfo
    persona: int | None
    window_start: datetime
    window_end: datetime
    columns: list[StageColumn]
    customers: int


def _stages(conn: sa.Connection, run: RunInfo) -> dict[int, tuple[str, str]]:
    """Internal customer id -> (external id, stage) in the run."""
    s, c = customer_scores.c, t.customers.c
    query = (
        sa.select(s.customer_id, c.external_id, s.lifecycle)
        .select_from(customer_scores.join(t.customers, c.id == s.customer_id))
        .where(s.run_id == run.id)
    )
    return {int(cid): (str(ext), str(stage)) for cid, ext, stage in conn.execute(query)}


def _monthly_moves(ctx: Context, keep: set[int]) -> Counter[tuple[str, str]]:
    """(stage at a month end, stage at the next) pairs over the last twelve months.

    The same snapshots as ``kizuna lifecycle`` (attitude signals and
    advocacy included), per customer so that a persona's customers can be
    counted alone.
    """
    from kizuna.analytics import engine
    from kizuna.services.scoring import analytics_connection, lifecycle_snapshots

    data = engine.load(ctx, analytics_connection(ctx))
    months = data.arrow["orders"]["ordered_at_month"].to_pylist()
    if not months:
        return Counter()
    end = int(max(months))
    snaps = lifecycle_snapshots(ctx, data, list(range(end - 12, end + 1))).to_pandas()
    at_month = {
        (int(cid), int(month)): str(stage)
        for cid, month, stage in snaps[["customer_id", "month", "stage"]].itertuples(index=False)
        if int(cid) in keep
    }
    moves: Counter[tuple[str, str]] = Counter()
    for (cid, month), stage in at_month.items():
        after = at_month.get((cid, month + 1))
        if after is not None:
            moves[(stage, after)] += 1
    return moves


def _per_stage(
    rows: Iterable[tuple[Any, str, int]], stage_of: dict[int, str]
) -> dict[str, Counter[str]]:
    """(customer id, item, count) rows summed into item counts per stage."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for cid, item, n in rows:
        stage = stage_of.get(int(cid))
        if stage is not None and item is not None:
            out[stage][str(item)] += int(n)
    return out


def _feedback(
    conn: sa.Connection, stage_of: dict[int, str], start: datetime, end: datetime
) -> dict[str, tuple[list[tuple[str, int]], list[tuple[str, int]], int]]:
    """(themes, key terms, comments) of the window's survey comments, per stage."""
    from kizuna.analytics.text import Doc, doc_themes, key_terms

    a = t.survey_answers.c
    docs: dict[str, list[Doc]] = defaultdict(list)
    for cid, text, language in conn.execute(
        sa.select(a.customer_id, a.comment, a.language).where(
            a.comment.is_not(None), a.answered_at >= start, a.answered_at < end
        )
    ):
        stage = stage_of.get(int(cid))
        if stage is not None and text and str(text).strip():
            docs[stage].append(Doc(str(text), language, customer_id=int(cid)))
    out = {}
    for stage, found in docs.items():
        themes: Counter[str] = Counter()
        for doc in found:
            themes.update(doc_themes(doc))
        out[stage] = (themes.most_common(TOP), key_terms(found, top=TOP), len(found))
    return out


def journey_map(ctx: Context, persona: int | None = None, k: int = DEFAULT_PERSONAS) -> JourneyMap:
    """The lifecycle stages of the latest run as a journey map (for one persona, or all)."""
    run = latest_run(ctx)
    return _cached(ctx, run, ("journey_map", persona, k), lambda: _build_map(ctx, run, persona, k))


def _build_map(ctx: Context, run: RunInfo, persona: int | None, k: int) -> JourneyMap:
    end = datetime.combine(
        run.as_of + timedelta(days=1), time(), tzinfo=ctx.settings.tz
    ).astimezone(UTC)
    start = end - timedelta(days=WINDOW_DAYS)
    with ctx.engine.connect() as conn:
        stages = _stages(conn, run)
        if persona is not None:
            members = {ext for ext, p in persona_view(ctx, k).assignments.items() if p == persona}
            if not members:
                raise NotFound(f"no persona {persona} in the latest run")
            stages = {cid: v for cid, v in stages.items() if v[0] in members}
        stage_of = {cid: stage for cid, (_, stage) in stages.items()}
        e, o, s, j = t.events.c, t.orders.c, at.sends.c, at.journeys.c
        touch = _per_stage(
            conn.execute(
                sa.select(e.customer_id, e.type, sa.func.count())
                .where(e.customer_id.is_not(None), e.occurred_at >= start, e.occurred_at < end)
                .group_by(e.customer_id, e.type)
            ),
            stage_of,
        )
        channels = _per_stage(
            conn.execute(
                sa.select(o.customer_id, o.channel, sa.func.count())
                .where(o.ordered_at >= start, o.ordered_at < end)
                .group_by(o.customer_id, o.channel)
            ),
            stage_of,
        )
        messages = _per_stage(
            conn.execute(
                sa.select(s.customer_id, j.name, sa.func.count())
                .select_from(at.sends.join(at.journeys, j.id == s.journey_id))
                .group_by(s.customer_id, j.name)
            ),
            stage_of,
        )
        feedback = _feedback(conn, stage_of, start, end)
    moves = _monthly_moves(ctx, set(stage_of))
    counts = Counter(stage_of.values())
    total = sum(counts.values())
    columns = []
    for stage in lifecycle.STAGES:
        leaving = {b: n for (a, b), n in moves.items() if a == stage}
        base = sum(leaving.values())
        nxt = NEXT_STAGE.get(stage)
        themes, terms, comments = feedback.get(stage, ([], [], 0))
        columns.append(
            StageColumn(
                stage=stage,
                customers=counts.get(stage, 0),
                share=counts.get(stage, 0) / total if total else 0.0,
                next_stage=nxt,
                conversion=(leaving.get(nxt, 0) / base) if base and nxt else None,
                stayed=(leaving.get(stage, 0) / base) if base else None,
                moves=sorted(
                    ((b, n / base) for b, n in leaving.items() if b != stage),
                    key=lambda m: -m[1],
                )[:3],
                touchpoints=touch.get(stage, Counter()).most_common(TOP),
                channels=channels.get(stage, Counter()).most_common(3),
                messages=messages.get(stage, Counter()).most_common(TOP),
                themes=themes,
                terms=terms,
                comments=comments,
            )
        )
    return JourneyMap(run, persona, start, end, columns, total)
