"""CLI commands of surveys and feedback analysis: ``kizuna survey ...``, ``kizuna feedback ...``."""

from __future__ import annotations

import csv
import json
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from kizuna.bootstrap import Context

survey_app = typer.Typer(
    help="Surveys (NPS, CSAT, CES): define them, issue signed links, see results.",
    no_args_is_help=True,
)
feedback_app = typer.Typer(
    help="Feedback analysis of survey, support and review comments (Japanese and English).",
    no_args_is_help=True,
)

SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", help="survey, contact or review (repeatable; default all three)."),
]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Write CSV to standard output instead.")]


def _ctx(c: typer.Context) -> Context:
    from kizuna.bootstrap import open_context

    ctx = open_context(c.find_root().params.get("workspace"))
    ctx.require_current_schema()
    return ctx


def _uow(ctx: Context) -> Any:
    from kizuna.services.uow import UnitOfWork

    return UnitOfWork(ctx.engine, ctx.settings)


def _table(title: str, header: list[str], rows: list[list[Any]], as_csv: bool) -> None:
    """Print rows as a rich table, or as CSV for spreadsheets and scripts."""
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return
    from rich.table import Table

    from kizuna.cli import console

    table = Table(title=title)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


# ---- survey ------------------------------------------------------------------------
@survey_app.command("create")
def survey_create(
    c: typer.Context,
    file: Annotated[Path, typer.Argument(help="A survey definition (.toml or .json).")],
) -> None:
    """Create a survey, or change one (a new version once the old one has answers).

    A definition names key, kind (nps, csat or ces) and title = {ja, en};
    question, why and extra questions are optional (see docs/voice.md).
    """
    from kizuna.cli import console
    from kizuna.errors import ValidationError
    from kizuna.services.surveys import save_survey

    text = file.read_text(encoding="utf-8")
    try:
        doc = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError(f"{file} cannot be read: {exc}") from None
    result = save_survey(_uow(_ctx(c)), doc, actor="cli")
    console.print(
        f"survey [bold]{result['key']}[/bold] ({result['kind'].upper()}) version "
        f"{result['version']}: {result['outcome']}"
    )


@survey_app.command("list")
def survey_list(c: typer.Context, as_csv: CsvOpt = False) -> None:
    """Every survey with invitations, answers, response rate and NPS-style score."""
    from kizuna.services.surveys import survey_stats

    rows = [
        [s.key, s.kind.upper(), s.version, s.status, s.title_en, s.invited, s.answered,
         _pct(s.response_rate), s.detractors, s.passives, s.promoters, _num(s.mean_score),
         _num(s.nps, 1)]
        for s in survey_stats(_ctx(c).engine)
    ]  # fmt: skip
    header = ["survey", "kind", "version", "status", "title", "invited", "answered", "response",
              "detractors", "passives", "promoters", "mean", "nps"]  # fmt: skip
    _table("Surveys", header, rows, as_csv)


@survey_app.command("link")
def survey_link(
    c: typer.Context,
    survey: Annotated[str, typer.Argument(help="The survey key.")],
    customer: Annotated[str, typer.Argument(help="The customer's id in your systems.")],
) -> None:
    """Issue a signed, expiring link for one customer (to send by any channel)."""
    from kizuna.cli import console
    from kizuna.services.survey_links import issue_link

    ctx = _ctx(c)
    with ctx.engine.begin() as conn:
        link = issue_link(
            conn, ctx.settings, survey, customer, now=datetime.now(UTC), channel="cli"
        )
    console.print(link.url, soft_wrap=True)
    console.print(f"valid until {link.expires_at.astimezone(ctx.settings.tz):%Y-%m-%d %H:%M}")


@survey_app.command("retire")
def survey_retire(c: typer.Context, survey: str) -> None:
    """Close a survey: its links show a 'closed' page and no longer take answers."""
    from kizuna.services.surveys import set_status

    set_status(_uow(_ctx(c)), survey, "retired")


@survey_app.command("activate")
def survey_activate(c: typer.Context, survey: str) -> None:
    """Reopen a retired survey."""
    from kizuna.services.surveys import set_status

    set_status(_uow(_ctx(c)), survey, "active")


# ---- feedback ----------------------------------------------------------------------
def _docs(ctx: Context, sources: list[str] | None) -> Any:
    from kizuna.services import survey_feedback as sf

    return sf.load_docs(ctx.engine, ctx.settings, tuple(sources or sf.SOURCES))


@feedback_app.command("themes")
def feedback_themes(c: typer.Context, source: SourceOpt = None, as_csv: CsvOpt = False) -> None:
    """How often each theme comes up, among detractors vs promoters, and its tone."""
    from kizuna.services.survey_feedback import theme_summary

    rows = [
        [r.theme, r.mentions, _pct(r.share), _pct(r.detractor_share), _pct(r.promoter_share),
         _num(r.mean_sentiment)]
        for r in theme_summary(_docs(_ctx(c), source))
    ]  # fmt: skip
    header = ["theme", "comments", "share", "of detractors", "of promoters", "sentiment"]
    _table("Feedback themes", header, rows, as_csv)


@feedback_app.command("compare")
def feedback_compare(
    c: typer.Context,
    source: SourceOpt = None,
    group_a: Annotated[str, typer.Option("--a", help="First group.")] = "detractor",
    group_b: Annotated[str, typer.Option("--b", help="Second group.")] = "promoter",
    top: Annotated[int, typer.Option(help="Terms shown at each end.")] = 15,
    min_count: Annotated[
        int | None,
        typer.Option(help="Ignore terms rarer than this (default 3; 1 under 100 comments)."),
    ] = None,
    as_csv: CsvOpt = False,
) -> None:
    """What group a says more than group b (weighted log-odds, Monroe et al. 2008)."""
    from kizuna.errors import ValidationError
    from kizuna.services.survey_feedback import GROUPS, compare

    for g in (group_a, group_b):
        if g not in GROUPS:
            raise ValidationError(f"group {g!r}: one of {', '.join(GROUPS)}")
    result = compare(_docs(_ctx(c), source), group_a, group_b, min_count)
    ends = result[:top] + result[max(top, len(result) - top) :][::-1]
    chosen = result if as_csv else ends
    rows = [[r.term, r.count_a, r.count_b, f"{r.z:+.2f}"] for r in chosen]
    header = ["term", group_a, group_b, "z"]
    _table(f"{group_a} (z > 0) vs {group_b} (z < 0)", header, rows, as_csv)


@feedback_app.command("trends")
def feedback_trends(c: typer.Context, source: SourceOpt = None, as_csv: CsvOpt = False) -> None:
    """Share of comments mentioning each theme, month by month."""
    from kizuna.analytics.text import DEFAULT_THEMES
    from kizuna.services.survey_feedback import trends

    data = trends(_docs(_ctx(c), source))
    months = sorted({r.month for r in data})
    share = {(r.month, r.theme): r for r in data}
    first = next(iter(DEFAULT_THEMES))
    rows = [
        [m, share[(m, first)].comments] + [_pct(share[(m, th)].share) for th in DEFAULT_THEMES]
        for m in months
    ]
    _table("Theme trends", ["month", "comments", *DEFAULT_THEMES], rows, as_csv)


@feedback_app.command("churn")
def feedback_churn(
    c: typer.Context,
    source: SourceOpt = None,
    window_days: Annotated[
        int | None, typer.Option(help="Days without an order that count as lost.")
    ] = None,
    as_csv: CsvOpt = False,
) -> None:
    """Churn after mentioning each theme vs not mentioning it, with 95% intervals."""
    from kizuna.services.survey_feedback import churn_by_theme

    ctx = _ctx(c)
    result = churn_by_theme(ctx.engine, ctx.settings, _docs(ctx, source), window_days)
    rows = []
    for r in result:
        lo_w, hi_w = r.ci_with
        lo_o, hi_o = r.ci_without
        diff, lo, hi = r.difference
        rows.append(
            [r.theme, r.customers_with, _pct(r.rate_with), f"{_pct(lo_w)}–{_pct(hi_w)}",
             r.customers_without, _pct(r.rate_without), f"{_pct(lo_o)}–{_pct(hi_o)}",
             f"{100 * diff:+.1f} pt ({100 * lo:+.1f} to {100 * hi:+.1f})"]
        )  # fmt: skip
    header = ["theme", "mentioned", "churn", "95% CI", "others", "churn", "95% CI", "difference"]
    _table("Churn by theme", header, rows, as_csv)


@feedback_app.command("tone")
def feedback_tone(
    c: typer.Context,
    top: Annotated[int, typer.Option(help="Customers shown at each end.")] = 10,
    as_csv: CsvOpt = False,
) -> None:
    """Each customer's mean comment sentiment (−1..+1), an attitude signal."""
    from kizuna.services.survey_feedback import feedback_tone as tone
    from kizuna.store import tables as t

    ctx = _ctx(c)
    scores = tone(ctx.engine, ctx.settings)
    import sqlalchemy as sa

    with ctx.engine.connect() as conn:
        names = dict(
            conn.execute(
                sa.select(t.customers.c.id, t.customers.c.external_id).where(
                    t.customers.c.id.in_(sorted(scores))
                )
            ).all()
        )
    ranked = sorted(scores.items(), key=lambda kv: kv[1])
    chosen = ranked if as_csv else ranked[:top] + ranked[-top:]
    rows = [[names.get(cid, cid), f"{value:+.2f}"] for cid, value in chosen]
    _table("Feedback tone", ["customer", "tone"], rows, as_csv)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root ``kizuna`` app."""
    app.add_typer(survey_app, name="survey")
    app.add_typer(feedback_app, name="feedback")
