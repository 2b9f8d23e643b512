"""The scoring use case: compute every score and store it as a versioned run.

``kizuna score`` calls :func:`score`; later features (segments, journeys)
read :func:`latest_run` and the ``customer_scores`` of a run. A run is
written in one transaction, so a failed run leaves nothing behind, and the
run row is written last-but-one with ``status = 'complete'`` only once
every score is in.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from kizuna.analytics import engine, lifecycle, loyalty, scoring
from kizuna.errors import NotFound, ValidationError
from kizuna.store.scoring_tables import customer_scores, scoring_runs

if TYPE_CHECKING:
    import ibis

    from kizuna.bootstrap import Context

Progress = Callable[[str, str], None]

#: customer_scores column <- scoring result column.
STORED: dict[str, str] = {
    "customer_id": "customer_id",
    "frequency": "frequency",
    "recency_days": "recency_days",
    "tenure_days": "T",
    "total_amount": "total_amount",
    "r_score": "r",
    "f_score": "f",
    "m_score": "m",
    "rfm_segment": "segment",
    "p_alive": "p_alive",
    "expected_purchases_1y": "expected_purchases_1y",
    "clv": "clv",
    "behaviour_score": "behaviour",
    "attitude_score": "attitude",
    "loyalty": "loyalty",
    "lifecycle": "lifecycle",
    "loyal_propensity": "loyal_propensity",
}


@dataclass(frozen=True)
class RunInfo:
    """One stored scoring run."""

    id: int
    version: int
    as_of: date
    created_at: datetime
    customers: int
    models: dict[str, Any]
    kpis: dict[str, Any]
    timings: dict[str, float]


def options_from_settings(ctx: Context, as_of: date | None = None) -> scoring.ScoringOptions:
    """Scoring options from the workspace settings; ``as_of`` defaults to today (local)."""
    s = ctx.settings
    definition = loyalty.LoyaltyDefinition(
        behaviour_weights=loyalty.parse_weights(
            s.loyalty_behaviour_weights, loyalty.BEHAVIOURS, "loyalty_behaviour_weights"
        ),
        attitude_weights=loyalty.parse_weights(
            s.loyalty_attitude_weights, loyalty.SIGNALS, "loyalty_attitude_weights"
        ),
        behaviour_threshold=s.loyalty_behaviour_threshold,
        attitude_threshold=s.loyalty_attitude_threshold,
        half_life_days=s.loyalty_half_life_days,
    )
    return scoring.ScoringOptions(
        as_of=as_of or datetime.now(s.tz).date(),
        definition=definition,
        rfm_bins=s.rfm_bins,
        churn_window_days=s.churn_window_days,
        clv_horizon_months=s.clv_horizon_months,
        annual_discount=s.clv_discount_rate,
        lifecycle_rules=lifecycle.parse_rules(
            s.lifecycle_rules,
            attitude_threshold=definition.attitude_threshold,
            half_life_days=definition.half_life_days,
        ),
    )


def add_feedback_tone(
    ctx: Context, data: engine.Dataset, definition: loyalty.LoyaltyDefinition
) -> None:
    """Register ``feedback_tone`` (comment sentiment) in ``data`` when the definition weighs it.

    Only then are comments read and scored: it is the costliest signal (one
    tokenisation per distinct comment) and most workspaces leave it at 0.
    """
    if definition.attitude_weights.get("tone", 0) <= 0:
        return
    from kizuna.analytics import extract, tone

    with ctx.engine.connect() as conn:
        comments = extract.feedback_comments(conn, ctx.settings.timezone)
    data.register("feedback_tone", tone.comment_tone(comments))


def lifecycle_snapshots(
    ctx: Context, data: engine.Dataset, months: list[int], end_day: int | None = None
) -> Any:
    """Month-end lifecycle stages under the workspace's loyalty definition and lifecycle rules.

    The lifecycle page, the trends, the journey map and the monthly report all
    call this, so their stages agree with ``kizuna score``: the same
    attitudinal signals (feedback tone included when it is weighted), the same
    ``lifecycle_rules``, the same advocacy evidence.
    """
    from kizuna.analytics.scoring import _advocacy

    options = options_from_settings(ctx)
    definition = options.definition
    add_feedback_tone(ctx, data, definition)
    signals = loyalty.attitude_signals(
        answers=data["survey_answers"],
        reviews=data["reviews"],
        referrals=data["referrals"],
        community=data["community_activity"],
        contacts=data["contacts"],
        tone=data.tables.get("feedback_tone"),
        weights=definition.attitude_weights,
    )
    return lifecycle.snapshots(
        data["orders"],
        months,
        options.lifecycle_rules,
        signals=signals,
        advocacy=_advocacy(data),
        end_day=end_day,
    )


def analytics_connection(ctx: Context) -> ibis.BaseBackend:
    """The Ibis backend the workspace settings ask for."""
    return engine.connect(ctx.settings.analytics_engine)


def score(
    ctx: Context,
    as_of: date | None = None,
    progress: Progress | None = None,
    con: ibis.BaseBackend | None = None,
    dashboard: bool = False,
) -> tuple[RunInfo, scoring.ScoringResult]:
    """Extract, compute and store one scoring run; returns the run and the result.

    With ``dashboard`` the dashboard's figures of the run are computed and
    stored too (:func:`kizuna.services.run_artefacts.precompute`), so the
    first visitor after the run waits for nothing; at a million customers
    that costs minutes, so ``kizuna score`` and the worker's scoring jobs do
    it and quick in-request runs leave each figure to its page's first view.
    """
    import time

    options = options_from_settings(ctx, as_of)
    started = time.perf_counter()
    if progress:
        progress("extract", "reading orders, surveys, reviews, referrals, community, contacts")
    con = con if con is not None else analytics_connection(ctx)
    data = engine.load(ctx, con)
    add_feedback_tone(ctx, data, options.definition)
    extract_seconds = time.perf_counter() - started
    result = scoring.run(data, options, progress)
    result.timings = {"extract": extract_seconds, **result.timings}
    if progress:
        progress("store", "writing the scoring run")
    store_started = time.perf_counter()
    run = store(ctx, result, con.name, options)
    result.timings["store"] = time.perf_counter() - store_started
    from kizuna.services.recommendations import after_scoring  # recommend_on_score

    after_scoring(ctx, run.id, run.as_of, progress)
    # Segments over score fields (loyalty class, CLV, ...) follow the new run at
    # once; their entries and exits start journeys like any other refresh.
    refresh_started = time.perf_counter()
    from kizuna.services import segments
    from kizuna.services.uow import UnitOfWork

    segments.refresh_all(UnitOfWork(ctx.engine, ctx.settings), "scoring")
    result.timings["segments"] = time.perf_counter() - refresh_started
    if dashboard:
        # The dashboard's figures of this run, stored once for every process.
        dashboard_started = time.perf_counter()
        from kizuna.services.run_artefacts import precompute

        precompute(ctx, run, progress, data)
        result.timings["dashboard"] = time.perf_counter() - dashboard_started
    result.timings["total"] = time.perf_counter() - started
    with ctx.engine.begin() as conn:
        conn.execute(
            scoring_runs.update().where(scoring_runs.c.id == run.id).values(timings=result.timings)
        )
    return RunInfo(**{**run.__dict__, "timings": result.timings}), result


def store(
    ctx: Context, result: scoring.ScoringResult, engine_name: str, options: scoring.ScoringOptions
) -> RunInfo:
    """Write the run and its per-customer scores in one transaction."""
    created = datetime.now(UTC)
    data = _stored_columns(result.scores)
    _refuse_undefined(data)
    with ctx.engine.begin() as conn:
        version = (
            int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(scoring_runs.c.version), 0))
                ).scalar_one()
            )
            + 1
        )
        run_id = conn.execute(
            scoring_runs.insert()
            .values(
                version=version,
                as_of=result.as_of,
                created_at=created,
                status="writing",
                engine=engine_name,
                customers=data.num_rows,
                definition={
                    **options.definition.to_dict(),
                    "rfm_bins": options.rfm_bins,
                    "lifecycle_rules": options.lifecycle_rules.to_dict(),
                },
                models=result.models,
                kpis=result.kpis,
                timings=result.timings,
            )
            .returning(scoring_runs.c.id)
        ).scalar_one()
        data = data.add_column(0, "run_id", pa.array([run_id] * data.num_rows, pa.int64()))
        _bulk_insert(conn, customer_scores, data)
        conn.execute(
            scoring_runs.update().where(scoring_runs.c.id == run_id).values(status="complete")
        )
    return RunInfo(
        id=int(run_id),
        version=version,
        as_of=result.as_of,
        created_at=created,
        customers=data.num_rows,
        models=result.models,
        kpis=result.kpis,
        timings=result.timings,
    )


def _refuse_undefined(data: pa.Table) -> None:
    """Refuse, with what to do, a run whose models gave no estimate for some customers.

    On degenerate data (a handful of customers, hardly any repeat orders)
    the fitted parameters make the closed forms undefined; storing nothing
    and saying so beats a database error about a NOT NULL column.
    """
    required = {c.name for c in customer_scores.columns if not c.nullable}
    for name in data.column_names:
        if name not in required:
            continue
        column = data[name]
        undefined = column.null_count
        if pa.types.is_floating(column.type):
            undefined += int(pc.sum(pc.is_nan(column.fill_null(0.0))).as_py() or 0)
        if undefined:
            raise ValidationError(
                f"scoring could not fit its models to the data as it is: {name} is undefined "
                f"for {undefined:,} of {data.num_rows:,} customers (too few customers with "
                "repeat orders give undefined estimates); nothing was stored. Ingest more "
                "order history and score again"
            )


def _stored_columns(scores: pa.Table) -> pa.Table:
    cols = {}
    for target, source in STORED.items():
        col = scores[source]
        if target in ("tenure_days",):
            col = pc.cast(col, pa.int64())
        cols[target] = col
    return pa.table(cols)


def _bulk_insert(conn: sa.Connection, table: sa.Table, data: pa.Table) -> None:
    names = data.column_names
    if conn.dialect.name == "postgresql":
        buf = io.BytesIO()
        pacsv.write_csv(data, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        raw = conn.connection.driver_connection
        assert raw is not None
        cols = ", ".join(f'"{n}"' for n in names)
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {table.name} ({cols}) FROM STDIN (FORMAT csv)") as copy,
        ):
            copy.write(buf.getvalue())
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    # The statement from SQLAlchemy (qmark style on SQLite), run by the raw driver.
    sql = str(table.insert().compile(dialect=conn.dialect, column_keys=names))
    try:
        for batch in data.to_batches(max_chunksize=100_000):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            cursor.executemany(sql, zip(*columns, strict=True))
    finally:
        cursor.close()


def _run_info(row: sa.Row[Any]) -> RunInfo:
    return RunInfo(
        id=row.id,
        version=row.version,
        as_of=row.as_of,
        created_at=row.created_at,
        customers=row.customers,
        models=row.models,
        kpis=row.kpis,
        timings=row.timings,
    )


def latest_run(ctx: Context) -> RunInfo:
    """The newest complete run; :class:`NotFound` when none has been made."""
    with ctx.engine.connect() as conn:
        row = conn.execute(
            sa.select(scoring_runs)
            .where(scoring_runs.c.status == "complete")
            .order_by(scoring_runs.c.version.desc())
            .limit(1)
        ).first()
    if row is None:
        raise NotFound("no scoring run yet; run `kizuna score` first")
    return _run_info(row)


def runs(ctx: Context) -> list[RunInfo]:
    """Every complete run, newest first."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(scoring_runs)
            .where(scoring_runs.c.status == "complete")
            .order_by(scoring_runs.c.version.desc())
        ).all()
    return [_run_info(r) for r in rows]
