"""CLI commands of segments and marketing automation (segment, journey, worker, measures)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from kizuna.bootstrap import Context

segment_app = typer.Typer(
    help="Rule-based segments: preview a YAML/JSON definition, save it, refresh membership.",
    no_args_is_help=True,
)

DefinitionArg = Annotated[
    Path,
    typer.Argument(
        help="Segment definition (.yaml, .yml or .json) with name, description and rule.",
        exists=True,
        dir_okay=False,
    ),
]


def _cli() -> ModuleType:
    """The ``kizuna.cli`` module (``python -m kizuna.cli`` also runs that copy)."""
    import kizuna.cli

    return kizuna.cli


def _ctx() -> Context:
    ctx: Context = _cli()._ctx()
    ctx.require_current_schema()
    return ctx


def _uow(ctx: Context):  # type: ignore[no-untyped-def]
    from kizuna.services.uow import UnitOfWork

    return UnitOfWork(ctx.engine, ctx.settings)


@segment_app.command("preview")
def segment_preview(
    definition: DefinitionArg,
    sample: Annotated[int, typer.Option(help="How many customers to show.")] = 10,
) -> None:
    """Count who a definition selects today and show a sample, without saving anything."""
    from rich.table import Table

    console = _cli().console
    from kizuna.services import segments

    ctx = _ctx()
    result = segments.preview(segments.load_definition(definition), _uow(ctx), sample=sample)
    console.print(f"[bold]{result.count}[/bold] customers match")
    table = Table("customer", "name", "email")
    for row in result.sample:
        table.add_row(row["external_id"], row["name"] or "", row["email"] or "")
    console.print(table)


@segment_app.command("create")
def segment_create(
    definition: DefinitionArg,
    replace: Annotated[bool, typer.Option(help="Replace the rule of an existing segment.")] = False,
    refresh: Annotated[bool, typer.Option(help="Compute membership right away.")] = True,
) -> None:
    """Validate and store a segment (then refresh its membership)."""
    console = _cli().console
    from kizuna.services import segments

    ctx = _ctx()
    doc = segments.load_definition(definition)
    segments.handle_save(segments.SaveSegment(doc, replace=replace), _uow(ctx))
    console.print(f"segment [bold]{doc['name']}[/bold] saved")
    if refresh:
        _print_refresh(segments.handle_refresh(segments.RefreshSegment(doc["name"]), _uow(ctx)))


def _print_refresh(result: object) -> None:
    console = _cli().console
    from kizuna.services.segments import RefreshResult

    assert isinstance(result, RefreshResult)
    console.print(
        f"{result.segment}: {result.members} members (+{result.entered} entered, "
        f"-{result.exited} exited)"
    )


@segment_app.command("list")
def segment_list() -> None:
    """Every stored segment with its size and last refresh."""
    from rich.table import Table

    console = _cli().console
    from kizuna.services import segments

    ctx = _ctx()
    tz = ctx.settings.tz
    table = Table("segment", "members", "refreshed", "description")
    for row in segments.list_segments(_uow(ctx)):
        refreshed = row["refreshed_at"]
        table.add_row(
            row["name"],
            str(row["member_count"]),
            refreshed.astimezone(tz).strftime("%Y-%m-%d %H:%M") if refreshed else "never",
            row["description"],
        )
    console.print(table)


@segment_app.command("refresh")
def segment_refresh(
    name: Annotated[
        str | None, typer.Argument(help="Segment to refresh; all segments when omitted.")
    ] = None,
) -> None:
    """Recompute membership and record every entry and exit (journeys trigger on them)."""
    from kizuna.services import segments

    ctx = _ctx()
    if name is None:
        for result in segments.refresh_all(_uow(ctx), reason="manual"):
            _print_refresh(result)
    else:
        _print_refresh(segments.handle_refresh(segments.RefreshSegment(name), _uow(ctx)))


journey_app = typer.Typer(
    help="Journeys: triggers, waits, branches and actions per customer, run by `kizuna worker`.",
    no_args_is_help=True,
)

JourneyFile = Annotated[
    Path,
    typer.Argument(help="Journey definition (.yaml, .yml or .json).", exists=True, dir_okay=False),
]
NowOpt = Annotated[
    str | None,
    typer.Option(
        help="Pretend the time is this ISO instant (with offset), for rehearsals; the clock "
        "still advances from it."
    ),
]


def _clock(now: str | None):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    if now is None:
        return lambda: datetime.now(UTC)
    start = datetime.fromisoformat(now)
    if start.tzinfo is None:
        raise typer.BadParameter("--now needs a UTC offset, e.g. 2025-04-01T09:00+09:00")
    shift = start - datetime.now(UTC)
    return lambda: datetime.now(UTC) + shift


def _load_doc(path: Path) -> dict:  # type: ignore[type-arg]
    from kizuna.services.segments import load_definition

    return load_definition(path)


@journey_app.command("validate")
def journey_validate(definition: JourneyFile) -> None:
    """Check a definition (steps, actions, templates) without saving it."""
    from kizuna.automation.runner import parse

    journey = parse(_load_doc(definition))
    _cli().console.print(
        f"journey [bold]{journey.name}[/bold] is valid: {len(journey.steps)} steps, "
        f"trigger {journey.trigger.kind}, hold-out {journey.holdout_percent:g}%"
    )


@journey_app.command("create")
def journey_create(
    definition: JourneyFile,
    replace: Annotated[
        bool, typer.Option(help="Replace an existing journey's definition.")
    ] = False,
) -> None:
    """Store a journey as a draft; `kizuna journey activate NAME` starts it."""
    from kizuna.services import journeys

    ctx = _ctx()
    doc = _load_doc(definition)
    journeys.handle_save(journeys.SaveJourney(doc, replace=replace), _uow(ctx))
    _cli().console.print(f"journey [bold]{doc['name']}[/bold] saved (draft)")


@journey_app.command("dry-run")
def journey_dry_run(definition: JourneyFile, now: NowOpt = None) -> None:
    """Who would enter now and what they would receive; writes nothing."""
    from rich.table import Table

    from kizuna.services import journeys

    ctx = _ctx()
    entries = journeys.dry_run(_load_doc(definition), _uow(ctx), now=_clock(now)())
    console = _cli().console
    console.print(f"[bold]{len(entries)}[/bold] customers would enter")
    table = Table("customer", "group", "actions")
    for e in entries[:50]:
        table.add_row(
            e.external_id, "hold-out" if e.holdout else "treated", ", ".join(e.actions) or "-"
        )
    console.print(table)


def _set_status(name: str, status: str, verb: str) -> None:
    from kizuna.services import journeys

    journeys.set_status(name, status, _uow(_ctx()))
    _cli().console.print(f"journey [bold]{name}[/bold] {verb}")


@journey_app.command("activate")
def journey_activate(name: Annotated[str, typer.Argument(help="Journey name.")]) -> None:
    """Start enrolling customers and running steps."""
    _set_status(name, "active", "activated")


@journey_app.command("pause")
def journey_pause(name: Annotated[str, typer.Argument(help="Journey name.")]) -> None:
    """Hold every run where it is; nothing is sent while paused."""
    _set_status(name, "paused", "paused")


@journey_app.command("resume")
def journey_resume(name: Annotated[str, typer.Argument(help="Journey name.")]) -> None:
    """Continue paused runs from where they stopped (the send ledger prevents resends)."""
    _set_status(name, "active", "resumed")


@journey_app.command("stats")
def journey_stats(name: Annotated[str, typer.Argument(help="Journey name.")]) -> None:
    """Runs by group and status, and the send ledger by action and status."""
    from rich.table import Table

    from kizuna.services import journeys

    result = journeys.stats(name, _uow(_ctx()))
    table = Table("what", "count")
    for key, value in sorted(
        {**result["runs"], **{f"send {k}": v for k, v in result["sends"].items()}}.items()
    ):
        table.add_row(key, str(value))
    console = _cli().console
    console.print(f"journey [bold]{name}[/bold] ({result['status']})")
    console.print(table)


def worker(
    once: Annotated[
        bool, typer.Option(help="Exit when nothing is due instead of polling.")
    ] = False,
    batch: Annotated[int, typer.Option(help="Runs claimed per round trip.")] = 100,
    poll: Annotated[float, typer.Option(help="Seconds to sleep when nothing is due.")] = 5.0,
    lease_seconds: Annotated[
        float, typer.Option(help="How long a claim lasts; a killed worker's runs return after it.")
    ] = 300.0,
    worker_id: Annotated[
        str | None, typer.Option("--id", help="Name in claims (default host:pid).")
    ] = None,
    refresh_minutes: Annotated[
        float, typer.Option(help="Refresh every segment this often (0 = never).")
    ] = 60.0,
    programme_jobs_minutes: Annotated[
        float,
        typer.Option(
            help="Run the programme's scheduled work (release, expiry, tiers, birthdays) "
            "this often (0 = never; it only runs once a programme is in use)."
        ),
    ] = 15.0,
    now: NowOpt = None,
) -> None:
    """Run due journey steps. Any number may run at once on PostgreSQL."""
    from datetime import timedelta

    from kizuna.automation.worker import run_worker
    from kizuna.observability.logs import configure_logging

    ctx = _ctx()
    configure_logging(ctx.settings.log_format, ctx.settings.log_level)
    console = _cli().console
    stats = run_worker(
        ctx, worker_id=worker_id, once=once, batch=batch, poll_seconds=poll, clock=_clock(now),
        lease=timedelta(seconds=lease_seconds),
        refresh_segments_every_seconds=refresh_minutes * 60 if refresh_minutes > 0 else None,
        programme_jobs_every_seconds=(
            programme_jobs_minutes * 60 if programme_jobs_minutes > 0 else None),
    )  # fmt: skip
    console.print(f"worker done: {stats.claimed} runs claimed, {stats.enrolled} enrolled")


measures_app = typer.Typer(
    help="The measures register: each journey's objective and KPI target, and the measured effect.",
    no_args_is_help=True,
)


@measures_app.command("set")
def measures_set(
    journey: Annotated[str, typer.Argument(help="Journey name.")],
    objective: Annotated[str, typer.Option(help="What the journey is for, in words.")],
    kpi: Annotated[
        str, typer.Option(help="conversion_uplift, revenue_uplift or conversion_rate.")
    ] = "conversion_uplift",
    target: Annotated[float, typer.Option(help="Target value of the KPI (0.05 = 5 points).")] = 0.0,
) -> None:
    """Register a journey's objective and KPI target (the plan of plan-do-check-act)."""
    from kizuna.services import measures

    measures.handle_set(measures.SetMeasure(journey, objective, kpi, target), _uow(_ctx()))
    _cli().console.print(f"measure for [bold]{journey}[/bold] saved")


@measures_app.command("report")
def measures_report(
    journey: Annotated[str | None, typer.Argument(help="One journey; all when omitted.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Conversion and revenue per customer, treated vs hold-out, uplift with 95% CI, vs target."""
    import json

    from rich.table import Table

    from kizuna.services import measures

    ctx = _ctx()
    reports = [measures.report(journey, _uow(ctx))] if journey else measures.report_all(_uow(ctx))
    console = _cli().console
    if as_json:
        console.print_json(json.dumps([measures.as_dict(r) for r in reports], default=str))
        return
    table = Table("journey", "treated", "hold-out", "conv. treated", "conv. hold-out",
                  "uplift (95% CI)", "revenue uplift (95% CI)", "target", "met")  # fmt: skip
    for r in reports:
        cu, ru = r.conversion_uplift, r.revenue_uplift
        table.add_row(
            r.journey, str(r.treated.customers), str(r.holdout.customers),
            f"{r.treated.rate:.1%}", f"{r.holdout.rate:.1%}",
            f"{cu.estimate:+.1%} ({cu.low:+.1%}..{cu.high:+.1%})",
            f"{ru.estimate:+,.0f} ({ru.low:+,.0f}..{ru.high:+,.0f})",
            f"{r.kpi} {r.target:g}" if r.kpi else "-",
            {True: "yes", False: "no", None: "-"}[r.achieved],
        )  # fmt: skip
    console.print(table)


@measures_app.command("global")
def measures_global(
    since: Annotated[str, typer.Option(help="First day of the period (YYYY-MM-DD, UTC).")],
    until: Annotated[str, typer.Option(help="Day after the period (YYYY-MM-DD, UTC).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """All marketing together: marketed customers vs the global control group, with 95% CIs."""
    import json
    from datetime import UTC, date, datetime

    from kizuna.errors import ValidationError
    from kizuna.services import measures

    try:
        start, end = (
            datetime.combine(date.fromisoformat(d), datetime.min.time(), tzinfo=UTC)
            for d in (since, until)
        )
    except ValueError:
        raise ValidationError("--since and --until are dates such as 2026-10-01") from None
    effect = measures.global_effect(_uow(_ctx()), start, end)
    console = _cli().console
    groups = {
        g.name: {"customers": g.customers, "buyers": g.conversions, "conversion_rate": g.rate,
                 "revenue_per_customer": g.revenue_per_customer}
        for g in (effect.treated, effect.control)
    }  # fmt: skip
    if as_json:
        console.print_json(
            json.dumps(
                {"since": since, "until": until, "percent": effect.percent, **groups,
                 "conversion_uplift": vars(effect.conversion_uplift),
                 "revenue_uplift": vars(effect.revenue_uplift),
                 "revenue_uplift_cuped": vars(effect.revenue_uplift_cuped)},
                default=str,
            )
        )  # fmt: skip
        return
    cu, ru, rc = effect.conversion_uplift, effect.revenue_uplift, effect.revenue_uplift_cuped
    for name, g in groups.items():
        console.print(f"{name}: {g['customers']:,} customers, {g['conversion_rate']:.1%} bought, "
                      f"{g['revenue_per_customer']:,.0f} per customer")  # fmt: skip
    console.print(f"conversion uplift {cu.estimate:+.2%} (95% CI {cu.low:+.2%}..{cu.high:+.2%})")
    console.print(f"revenue uplift {ru.estimate:+,.0f} (95% CI {ru.low:+,.0f}..{ru.high:+,.0f}); "
                  f"CUPED {rc.estimate:+,.0f} ({rc.low:+,.0f}..{rc.high:+,.0f})")  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the automation commands to the main ``kizuna`` app."""
    app.add_typer(segment_app, name="segment")
    app.add_typer(journey_app, name="journey")
    app.command("worker")(worker)
    app.add_typer(measures_app, name="measures")
