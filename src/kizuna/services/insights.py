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

Behind the per-process cache, each result is stored once per run in
``run_artefacts`` (:mod:`kizuna.services.run_artefacts`): the end of a
scoring run computes personas, drivers and the journey map of every persona
(:func:`precompute`), so no visitor waits for k-means or the tokeniser and a
new process reads one row instead of recomputing. The map's per-customer
inputs (stages, monthly moves, window aggregates, comments) are read once
for all the maps of a run, not once per persona.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

import sqlalchemy as sa

from kizuna.analytics import lifecycle
from kizuna.bootstrap import Context
from kizuna.errors import NotFound
from kizuna.services import run_artefacts as ra
from kizuna.services.scoring import RunInfo, latest_run
from kizuna.store import automation_tables as at
from kizuna.store import tables as t
from kizuna.store.scoring_tables import customer_scores

if TYPE_CHECKING:
    import pandas as pd

    from kizuna.analytics import engine

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


def _compute_personas(ctx: Context, run: RunInfo, k: int) -> PersonaView:
    """k-means on the run's features, with every customer's persona."""
    from kizuna.analytics.personas import personas
    from kizuna.services.analytics_queries import scores_frame

    result = personas(scores_frame(ctx), k=k)
    assignments = dict(
        zip(
            result.assignments["customer_id"].astype(str),
            result.assignments["persona"].astype(int),
            strict=True,
        )
    )
    clusters = [{str(key): v for key, v in r.items()} for r in result.clusters.to_dict("records")]
    return PersonaView(run, k, clusters, assignments)


def persona_view(ctx: Context, k: int = DEFAULT_PERSONAS) -> PersonaView:
    """Personas of the latest scoring run (:class:`NotFound` without one).

    Read from the run's stored artefact, the view carries the clusters but
    no ``assignments`` (a million ids are not read to draw six rows); the
    journey map of a persona that was not stored recomputes them.
    """
    run = latest_run(ctx)

    def make() -> PersonaView:
        key = f"personas:{k}"
        with ctx.engine.connect() as conn:
            found = ra.read(conn, run.id, key)
        if found is not None:
            return PersonaView(run, k, found[1]["clusters"], {})
        view = _compute_personas(ctx, run, k)
        ra.write(ctx.engine, run.id, key, {"k": k, "clusters": view.clusters})
        return view

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

    def rows() -> list[dict[str, Any]]:
        frame = drivers_frame(ctx)
        return [{str(key): v for key, v in r.items()} for r in frame.to_dict("records")]

    return _cached(
        ctx, run, ("drivers",), lambda: DriverView(run, ra.for_run(ctx, run, "drivers", rows))
    )


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


def _customer_moves(ctx: Context, data: engine.Dataset | None = None) -> pd.DataFrame:
    """Every (customer_id, stage at a month end, stage at the next) over the last twelve months.

    The same snapshots as ``kizuna lifecycle`` (attitude signals and
    advocacy included), per customer so that a persona's customers can be
    counted alone; joined in pandas (a dict per customer-month took tens of
    seconds on a million customers).
    """
    import pandas as pd

    from kizuna.services.scoring import analytics_connection, lifecycle_snapshots

    if data is None:  # the scoring run passes what it extracted; a page loads afresh
        from kizuna.analytics import engine as analytics_engine

        data = analytics_engine.load(ctx, analytics_connection(ctx))
    months = data.arrow["orders"]["ordered_at_month"].to_pylist()
    if not months:
        return pd.DataFrame({"customer_id": [], "stage": [], "after": []})
    end = int(max(months))
    snaps = lifecycle_snapshots(ctx, data, list(range(end - 12, end + 1))).to_pandas()
    snaps = snaps[["customer_id", "month", "stage"]].drop_duplicates(
        ["customer_id", "month"], keep="last"
    )
    later = snaps.assign(month=snaps["month"] - 1).rename(columns={"stage": "after"})
    pairs = snaps.merge(later, on=["customer_id", "month"])
    return pairs[["customer_id", "stage", "after"]]


def _monthly_moves(moves: pd.DataFrame, keep: set[int]) -> Counter[tuple[str, str]]:
    """(stage at a month end, stage at the next) pairs of the customers in ``keep``."""
    mine = moves[moves["customer_id"].isin(keep)]
    counts = mine.groupby(["stage", "after"]).size()
    out: Counter[tuple[str, str]] = Counter()
    for key, n in counts.to_dict().items():
        pair = cast(tuple[str, str], key)
        out[(str(pair[0]), str(pair[1]))] = int(n)
    return out


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
    comments: Iterable[tuple[Any, Any, Any]], stage_of: dict[int, str]
) -> dict[str, tuple[list[tuple[str, int]], list[tuple[str, int]], int]]:
    """(themes, key terms, comments) of the window's survey comments, per stage."""
    from kizuna.analytics.text import Doc, doc_themes, key_terms

    docs: dict[str, list[Doc]] = defaultdict(list)
    for cid, text, language in comments:
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
    # The map quotes key terms of comments: an erasure since it was stored
    # (the mark moves) rebuilds it, here and in every process's memo.
    with ctx.engine.connect() as conn:
        mark = ra.erasure_mark(conn)

    def make() -> JourneyMap:
        key = f"journey_map:{k}:{'all' if persona is None else persona}"
        with ctx.engine.connect() as conn:
            found = ra.read(conn, run.id, key)
        if found is not None and found[0] == mark:
            return _map_of(run, found[1])
        built = _build_map(ctx, run, persona, k, _inputs(ctx, run))
        ra.write(ctx.engine, run.id, key, _map_doc(built), mark)
        return built

    return _cached(ctx, run, ("journey_map", persona, k, mark), make)


@dataclass
class _MapInputs:
    """What every journey map of a run reads: once for all the personas' maps."""

    start: datetime
    end: datetime
    stages: dict[int, tuple[str, str]]
    touch: list[tuple[Any, str, int]]
    channels: list[tuple[Any, str, int]]
    messages: list[tuple[Any, str, int]]
    comments: list[tuple[Any, Any, Any]]
    moves: pd.DataFrame


def _inputs(ctx: Context, run: RunInfo, data: engine.Dataset | None = None) -> _MapInputs:
    end = datetime.combine(
        run.as_of + timedelta(days=1), time(), tzinfo=ctx.settings.tz
    ).astimezone(UTC)
    start = end - timedelta(days=WINDOW_DAYS)
    e, o, s, j, a = t.events.c, t.orders.c, at.sends.c, at.journeys.c, t.survey_answers.c
    with ctx.engine.connect() as conn:
        stages = _stages(conn, run)
        touch = conn.execute(
            sa.select(e.customer_id, e.type, sa.func.count())
            .where(e.customer_id.is_not(None), e.occurred_at >= start, e.occurred_at < end)
            .group_by(e.customer_id, e.type)
        ).all()
        channels = conn.execute(
            sa.select(o.customer_id, o.channel, sa.func.count())
            .where(o.ordered_at >= start, o.ordered_at < end)
            .group_by(o.customer_id, o.channel)
        ).all()
        messages = conn.execute(
            sa.select(s.customer_id, j.name, sa.func.count())
            .select_from(at.sends.join(at.journeys, j.id == s.journey_id))
            .group_by(s.customer_id, j.name)
        ).all()
        comments = conn.execute(
            sa.select(a.customer_id, a.comment, a.language).where(
                a.comment.is_not(None), a.answered_at >= start, a.answered_at < end
            )
        ).all()
    return _MapInputs(
        start, end, stages, [tuple(r) for r in touch], [tuple(r) for r in channels],
        [tuple(r) for r in messages], [tuple(r) for r in comments], _customer_moves(ctx, data),
    )  # fmt: skip


def _build_map(
    ctx: Context,
    run: RunInfo,
    persona: int | None,
    k: int,
    inputs: _MapInputs,
    view: PersonaView | None = None,
) -> JourneyMap:
    start, end, stages = inputs.start, inputs.end, inputs.stages
    if persona is not None:
        view = view or persona_view(ctx, k)
        if not view.assignments:  # read from the stored artefact: recompute the members
            view = _compute_personas(ctx, run, k)
        members = {ext for ext, p in view.assignments.items() if p == persona}
        if not members:
            raise NotFound(f"no persona {persona} in the latest run")
        stages = {cid: v for cid, v in stages.items() if v[0] in members}
    stage_of = {cid: stage for cid, (_, stage) in stages.items()}
    touch = _per_stage(inputs.touch, stage_of)
    channels = _per_stage(inputs.channels, stage_of)
    messages = _per_stage(inputs.messages, stage_of)
    feedback = _feedback(inputs.comments, stage_of)
    moves = _monthly_moves(inputs.moves, set(stage_of))
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


# --- stored artefacts -----------------------------------------------------------


def _map_doc(m: JourneyMap) -> dict[str, Any]:
    return {
        "persona": m.persona,
        "window_start": m.window_start.isoformat(),
        "window_end": m.window_end.isoformat(),
        "customers": m.customers,
        "columns": [dataclasses.asdict(c) for c in m.columns],
    }


_PAIRS = ("moves", "touchpoints", "channels", "messages", "themes", "terms")


def _map_of(run: RunInfo, doc: dict[str, Any]) -> JourneyMap:
    columns = [
        StageColumn(**{**c, **{f: [tuple(p) for p in c[f]] for f in _PAIRS}})
        for c in doc["columns"]
    ]
    return JourneyMap(
        run,
        doc["persona"],
        datetime.fromisoformat(doc["window_start"]),
        datetime.fromisoformat(doc["window_end"]),
        columns,
        int(doc["customers"]),
    )


def precompute(
    ctx: Context, run: RunInfo, k: int = DEFAULT_PERSONAS, data: engine.Dataset | None = None
) -> None:
    """Store personas, key drivers and the journey map of all and of every persona.

    Called at the end of each scoring run (through :mod:`run_artefacts`); the
    map inputs are read once for all ``k + 1`` maps.
    """
    from kizuna.errors import ValidationError

    try:
        view = _compute_personas(ctx, run, k)
    except (NotFound, ValidationError):  # too few customers to cluster: pages say so
        view = None
    if view is not None:
        ra.write(ctx.engine, run.id, f"personas:{k}", {"k": k, "clusters": view.clusters})
        light = PersonaView(run, k, view.clusters, {})  # a million ids stay out of the cache
        with _lock:
            _cache[(str(ctx.engine.url), str(ctx.settings.workspace), run.id, "personas", k)] = (
                light
            )
    with contextlib.suppress(NotFound, ValidationError, KeyError, ValueError):
        driver_view(ctx)
    with ctx.engine.connect() as conn:
        mark = ra.erasure_mark(conn)  # before reading: a later erasure moves it on
    inputs = _inputs(ctx, run, data)
    personas_of = [None] + ([int(c["persona"]) for c in view.clusters] if view else [])
    for persona in personas_of:
        key = f"journey_map:{k}:{'all' if persona is None else persona}"
        try:
            built = _build_map(ctx, run, persona, k, inputs, view)
            ra.write(ctx.engine, run.id, key, _map_doc(built), mark)
        except NotFound:
            continue


ra.register("insights", lambda ctx, run, data: precompute(ctx, run, data=data))
