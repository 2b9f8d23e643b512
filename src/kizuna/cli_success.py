"""CLI commands of B2B intent, health scores, touch models and the monthly report.

``kizuna health compute|list|show``, ``kizuna intent compute|surging`` and
``kizuna report --month YYYY-MM``. Commands parse, call a service, render.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from kizuna.bootstrap import Context

health_app = typer.Typer(
    help="Customer-success health scores and touch models of B2B accounts.", no_args_is_help=True
)
intent_app = typer.Typer(
    help="B2B intent: which accounts are researching which topics right now.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
OnOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Local day to compute for, YYYY-MM-DD (default: today)."),
]


def _ctx(c: typer.Context) -> Context:
    from kizuna.bootstrap import open_context

    ctx = open_context(c.find_root().params.get("workspace"))
    ctx.require_current_schema()
    return ctx


def _day(value: str | None) -> date | None:
    from kizuna.errors import ValidationError

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"--as-of {value!r} is not a date; use YYYY-MM-DD") from None


def _print_json(doc: Any) -> None:
    from kizuna.cli import console

    console.print_json(json.dumps(doc, default=str, ensure_ascii=False))


# ---- health --------------------------------------------------------------------------
@health_app.command("compute")
def health_compute(c: typer.Context, as_of: OnOpt = None, as_json: JsonOpt = False) -> None:
    """Score every account and its people, store the day's run, record journey signals."""
    from kizuna.cli import console
    from kizuna.services import health

    run = health.compute(_ctx(c), _day(as_of))
    doc = {
        "run": run.run_id, "computed_on": run.computed_on, "accounts": run.accounts,
        "customers": run.customers, "touch_models": run.touch_models,
        "events_recorded": run.events_recorded,
    }  # fmt: skip
    if as_json:
        _print_json(doc)
        return
    console.print(
        f"health on {run.computed_on}: {run.accounts:,} accounts, {run.customers:,} people"
    )
    console.print(
        "touch models: " + ", ".join(f"{k} {v}" for k, v in sorted(run.touch_models.items()))
    )
    console.print(
        "journey signals recorded: " + ", ".join(f"{k} {v}" for k, v in run.events_recorded.items())
    )


@health_app.command("list")
def health_list(
    c: typer.Context,
    band: Annotated[
        str | None, typer.Option(help="Only this band: healthy, watch or at_risk.")
    ] = None,
    touch: Annotated[str | None, typer.Option(help="Only this touch model.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows (lowest health first).")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Accounts of the latest run, least healthy first, with trend and touch model."""
    from rich.table import Table

    from kizuna.cli import console
    from kizuna.services import health

    rows = health.account_list(_ctx(c))
    rows = [r for r in rows if (band is None or r["band"] == band)]
    rows = [r for r in rows if (touch is None or r["touch_model"] == touch)][:limit]
    if as_json:
        _print_json(rows)
        return
    table = Table("account", "name", "health", "band", "touch", "trend", "usage", "renewal date")
    for r in rows:
        table.add_row(
            r["account"], r["name"], f"{r['score']:.0f}", r["band"], r["touch_model"],
            " ".join(f"{x:.0f}" for x in r["trend"]),
            "" if r["usage"] is None else f"{r['usage']:.2f}", str(r["renewal_date"] or ""),
        )  # fmt: skip
    console.print(table)


@health_app.command("show")
def health_show(
    c: typer.Context,
    account: Annotated[str, typer.Argument(help="Account id, such as A0001.")],
    as_json: JsonOpt = False,
) -> None:
    """One account: components of its latest health and the whole trend."""
    from kizuna.cli import console
    from kizuna.services import health

    doc = health.account_health(_ctx(c), account)
    if as_json:
        _print_json(doc)
        return
    console.print(
        f"[bold]{doc['account']}[/bold] {doc['name']}: health {doc['score']:.0f} "
        f"({doc['band']}), {doc['touch_model']}"
    )
    for name, value in doc["components"].items():
        console.print(f"  {name:<9} {'-' if value is None else f'{value:.2f}'}")
    console.print(
        "  trend    " + " ".join(f"{p['computed_on']}:{p['score']:.0f}" for p in doc["trend"])
    )


# ---- intent --------------------------------------------------------------------------
@intent_app.command("compute")
def intent_compute(c: typer.Context, as_of: OnOpt = None, as_json: JsonOpt = False) -> None:
    """Score every account x topic for the week ending on --as-of; record intent_surge events."""
    from kizuna.cli import console
    from kizuna.services import intent

    run = intent.compute(_ctx(c), _day(as_of))
    if as_json:
        _print_json(run.__dict__)
        return
    console.print(
        f"intent for {run.week_start} .. {run.week_end}: {run.pairs:,} account x topic pairs, "
        f"[bold]{run.surging}[/bold] surging; {run.events_recorded} intent_surge events recorded"
    )


@intent_app.command("surging")
def intent_surging(
    c: typer.Context,
    topic: Annotated[str | None, typer.Option(help="Only accounts surging on this topic.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Accounts researching a topic right now (the latest computed week), strongest first."""
    from rich.table import Table

    from kizuna.cli import console
    from kizuna.services import intent

    rows = intent.surging(_ctx(c), topic, limit=limit)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        console.print(f"no account is surging{f' on {topic}' if topic else ''} this week")
        return
    table = Table("account", "name", "topic", "visits", "people", "baseline/wk", "z", "score")
    for r in rows:
        table.add_row(
            r["account"], r["name"], r["topic"], str(r["visits"]), str(r["people"]),
            f"{r['baseline']:.2f}", f"{r['z']:.1f}", f"{r['score']:.1f}",
        )  # fmt: skip
    console.print(table)


# ---- report --------------------------------------------------------------------------
def report(
    c: typer.Context,
    month: Annotated[
        str | None,
        typer.Option(help="Report month, YYYY-MM (default: the previous month)."),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language: ja or en.")] = "ja",
    pdf: Annotated[bool, typer.Option("--pdf", help="Also print a PDF with Chromium.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Output HTML file (default: kizuna-loyalty-report-YYYY-MM-LANG.html)."),
    ] = None,
) -> None:
    """The monthly loyalty report: one self-contained HTML file (and a PDF with --pdf).

    KPI trends, loyal customers and lifecycle flows, the loyalty matrix, cohort
    retention, measures against their targets and feedback themes, with
    commentary on what went up and down. Mail it monthly with cron, or with a
    journey step `action: send_report` (see docs/success.md).
    """
    from datetime import UTC, datetime

    from kizuna.cli import console
    from kizuna.domain.clock import local_date
    from kizuna.reports import data as report_data
    from kizuna.reports import monthly

    ctx = _ctx(c)
    first = (
        report_data.parse_month(month)
        if month
        else report_data.previous_month(local_date(datetime.now(UTC), ctx.settings.tz))
    )
    if lang not in ("ja", "en"):
        raise typer.BadParameter(f"--lang {lang!r}: choose ja or en")
    collected = report_data.collect(ctx, first)
    html = monthly.render_html(collected, lang)
    path = out or Path(monthly.default_name(first, lang))
    path.write_text(html, encoding="utf-8")
    console.print(f"wrote {path} ({len(html.encode()):,} bytes)")
    if pdf:
        target = monthly.render_pdf(html, path.with_suffix(".pdf"))
        console.print(f"wrote {target}")


def report_due(
    c: typer.Context,
    segment: Annotated[str, typer.Argument(help="Segment of the report's recipients.")],
    month: Annotated[
        str | None, typer.Option(help="Report month, YYYY-MM (default: the previous month).")
    ] = None,
) -> None:
    """Record `loyalty_report_due` for each recipient, once per month (run daily from cron).

    A journey with `trigger: {event: loyalty_report_due}` and a `send_report`
    step then mails the report; see docs/success.md.
    """
    from datetime import UTC, datetime

    from kizuna.cli import console
    from kizuna.domain.clock import local_date
    from kizuna.reports import data as report_data
    from kizuna.reports.due import announce

    ctx = _ctx(c)
    first = (
        report_data.parse_month(month)
        if month
        else report_data.previous_month(local_date(datetime.now(UTC), ctx.settings.tz))
    )
    new = announce(ctx, segment, first)
    console.print(f"report {first:%Y-%m} due for {new} new recipient(s) of segment {segment!r}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root ``kizuna`` app."""
    app.add_typer(health_app, name="health")
    app.add_typer(intent_app, name="intent")
    app.command("report")(report)
    app.command("report-due")(report_due)
