"""CLI commands of referrals, ambassadors, community and reviews.

``kizuna referral``, ``kizuna ambassador``, ``kizuna community`` and
``kizuna review``; ``kizuna referrals settle`` is the same as
``kizuna referral settle`` (the name schedulers use). Every command prints
JSON (``--json``) or a table, and every error is a Kizuna error with its exit
code.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from kizuna.bootstrap import Context

referral_app = typer.Typer(
    help="Referral codes, attribution of first orders, settlement with fraud checks.",
    no_args_is_help=True,
)
ambassador_app = typer.Typer(
    help="Ambassador programme: candidates, invite → accept → active → alumni, tasks, impact.",
    no_args_is_help=True,
)
task_app = typer.Typer(help="Tasks of active ambassadors, with points.", no_args_is_help=True)
community_app = typer.Typer(
    help="Community events and user groups: registration, check-in, metrics.",
    no_args_is_help=True,
)
review_app = typer.Typer(help="Reviews and UGC: ingest, moderate, reward.", no_args_is_help=True)
ambassador_app.add_typer(task_app, name="task")

ActorOpt = Annotated[str, typer.Option("--by", help="Who does this (shown in the history).")]
AtOpt = Annotated[
    datetime | None,
    typer.Option("--at", help="When, ISO 8601 with offset (default: now); for back-filling."),
]


def _ctx(c: typer.Context) -> Context:
    from kizuna.bootstrap import open_context

    ctx = open_context(c.find_root().params.get("workspace"))
    ctx.require_current_schema()
    return ctx


def _uow(ctx: Context) -> Any:
    from kizuna.services.uow import UnitOfWork

    return UnitOfWork(ctx.engine, ctx.settings)


def _when(ctx: Context, at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=ctx.settings.tz)


def _print(data: Any) -> None:
    from kizuna.cli import console

    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _table(rows: list[dict[str, Any]], columns: list[str], title: str, as_json: bool) -> None:
    from rich.table import Table

    from kizuna.cli import console

    if as_json:
        _print(rows)
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


# ---- referral --------------------------------------------------------------------


@referral_app.command("code")
def referral_code(c: typer.Context, member: str) -> None:
    """The member's referral code and link (created on first request, stable afterwards)."""
    from kizuna.services import referrals

    _print(referrals.code_for(_uow(_ctx(c)), member))


@referral_app.command("capture")
def referral_capture(
    c: typer.Context,
    member: Annotated[str, typer.Argument(help="The new customer (referee).")],
    code: Annotated[str, typer.Argument(help="The code they came with.")],
    order: Annotated[str | None, typer.Option(help="Their order that used the code.")] = None,
    at: AtOpt = None,
) -> None:
    """Record that MEMBER came with CODE (at sign-up or with an order)."""
    from kizuna.services import referrals

    ctx = _ctx(c)
    cmd = referrals.Capture(member, code, _when(ctx, at), order, "cli")
    _print(referrals.capture(_uow(ctx), cmd)[1])


@referral_app.command("settle")
def referral_settle(c: typer.Context, at: AtOpt = None) -> None:
    """Attribute imported codes and first orders; reward or reject what passed its return window.

    Safe to run any number of times, from cron or alongside workers: each
    referral is rewarded once.
    """
    from kizuna.cli import console
    from kizuna.services import referrals

    ctx = _ctx(c)
    r = referrals.settle(ctx.engine, ctx.settings, _when(ctx, at))
    console.print(
        f"captured {r.captured}, qualified {r.qualified}, "
        f"[green]rewarded {r.rewarded}[/green], [yellow]rejected {r.rejected}[/yellow]"
    )


@referral_app.command("list")
def referral_list(
    c: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="pending, qualified, rewarded, rejected")
    ] = None,
    referrer: Annotated[str | None, typer.Option(help="Only this referrer's referrals.")] = None,
    limit: int = 100,
    as_json: JsonOpt = False,
) -> None:
    """Referrals newest first, with fraud reasons of rejected ones."""
    from kizuna.services import referrals

    ctx = _ctx(c)
    with ctx.engine.connect() as conn:
        rows = referrals.list_referrals(conn, status=status, referrer=referrer, limit=limit)
    for r in rows:
        r["reasons"] = ",".join(r["reasons"])
    cols = ["referral_id", "referrer_id", "referee_id", "code", "status", "reasons", "due_at"]
    _table(rows, cols, "referrals", as_json)


# ---- ambassador -------------------------------------------------------------------


@ambassador_app.command("candidates")
def ambassador_candidates(c: typer.Context, limit: int = 20, as_json: JsonOpt = False) -> None:
    """Who to invite: 0.40·promoter + 0.35·engagement + 0.25·CLV rank (see docs/advocacy.md)."""
    from kizuna.services import ambassadors

    ctx = _ctx(c)
    with ctx.engine.connect() as conn:
        found = ambassadors.candidates(
            conn, datetime.now(UTC), limit=limit, window_days=ambassadors.window_days(ctx.settings)
        )
    rows = [
        {
            "member_id": x.member_id,
            "score": round(x.score, 3),
            "nps": x.nps,
            "reviews": x.reviews,
            "ugc": x.ugc,
            "referrals": x.referrals,
            "attended": x.attended,
            "clv": x.clv,
        }
        for x in found
    ]
    _table(rows, list(rows[0]) if rows else ["member_id", "score"], "candidates", as_json)


def _move(c: typer.Context, member: str, to: str, actor: str, at: datetime | None) -> None:
    from kizuna.services import ambassadors

    ctx = _ctx(c)
    score = None
    if to == "invited":
        import sqlalchemy as sa

        from kizuna.store import tables as t

        with ctx.engine.connect() as conn:
            cid = conn.execute(
                sa.select(t.customers.c.id).where(t.customers.c.external_id == member)
            ).scalar()
            window = ambassadors.window_days(ctx.settings)
            listed = (
                ambassadors.candidates(conn, _when(ctx, at), only=cid, window_days=window)
                if cid
                else []
            )
        score = listed[0].score if listed else None
    _print(ambassadors.move(_uow(ctx), member, to, actor, _when(ctx, at), score))


@ambassador_app.command("invite")
def ambassador_invite(c: typer.Context, member: str, by: ActorOpt, at: AtOpt = None) -> None:
    """Invite MEMBER (journeys may react to ambassador_invited)."""
    _move(c, member, "invited", by, at)


@ambassador_app.command("accept")
def ambassador_accept(c: typer.Context, member: str, by: ActorOpt, at: AtOpt = None) -> None:
    """Record that MEMBER accepted the invitation."""
    _move(c, member, "accepted", by, at)


@ambassador_app.command("activate")
def ambassador_activate(c: typer.Context, member: str, by: ActorOpt, at: AtOpt = None) -> None:
    """Make an accepted ambassador active (tasks can be given from now)."""
    _move(c, member, "active", by, at)


@ambassador_app.command("retire")
def ambassador_retire(c: typer.Context, member: str, by: ActorOpt, at: AtOpt = None) -> None:
    """Move MEMBER to alumni."""
    _move(c, member, "alumni", by, at)


@ambassador_app.command("decline")
def ambassador_decline(c: typer.Context, member: str, by: ActorOpt, at: AtOpt = None) -> None:
    """Record that MEMBER declined the invitation."""
    _move(c, member, "declined", by, at)


@ambassador_app.command("show")
def ambassador_show(c: typer.Context, member: str) -> None:
    """An ambassador's status, who moved them when, and their impact."""
    from kizuna.services import ambassadors

    ctx = _ctx(c)
    with ctx.engine.connect() as conn:
        body = ambassadors.ambassador(conn, member)
        row = next((r for r in ambassadors.pipeline(conn) if r["member_id"] == member), {})
    keys = ("referred", "rewarded", "revenue", "tasks_done", "reach", "points")
    body["impact"] = {k: row.get(k) for k in keys}
    _print(body)


@ambassador_app.command("list")
def ambassador_list(c: typer.Context, as_json: JsonOpt = False) -> None:
    """The pipeline with each ambassador's impact."""
    from kizuna.services import ambassadors

    ctx = _ctx(c)
    with ctx.engine.connect() as conn:
        rows = ambassadors.pipeline(conn)
    cols = ["member_id", "status", "referred", "revenue", "reach", "tasks_done", "points"]
    _table(rows, cols, "ambassadors", as_json)


@task_app.command("add")
def task_add(
    c: typer.Context,
    task_id: str,
    member: str,
    title: Annotated[str, typer.Option(help="What to do, as the ambassador reads it.")],
    by: ActorOpt,
    kind: Annotated[
        str, typer.Option(help="review, product_monitor, event_speaker, custom")
    ] = "custom",
    points: Annotated[int, typer.Option(help="Points granted on completion.")] = 0,
) -> None:
    """Give an active ambassador a task."""
    from kizuna.services import ambassadors

    cmd = ambassadors.NewTask(task_id, member, kind, title, points, by)
    _print(ambassadors.assign_task(_uow(_ctx(c)), cmd)[1])


@task_app.command("done")
def task_done(
    c: typer.Context,
    task_id: str,
    by: ActorOpt,
    url: Annotated[str | None, typer.Option(help="Link to the post or report.")] = None,
    reach: Annotated[int, typer.Option(help="People the post reached.")] = 0,
) -> None:
    """Complete a task and grant its points (once, however often it is run)."""
    from kizuna.services import ambassadors

    cmd = ambassadors.CompleteTask(task_id, by, url, reach)
    _print(ambassadors.complete_task(_uow(_ctx(c)), cmd)[1])


@task_app.command("list")
def task_list(
    c: typer.Context,
    member: str | None = None,
    status: Annotated[str | None, typer.Option(help="open, completed, cancelled")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tasks, newest first."""
    from kizuna.services import ambassadors

    ctx = _ctx(c)
    with ctx.engine.connect() as conn:
        rows = ambassadors.tasks(conn, member, status)
    cols = ["task_id", "member_id", "kind", "title", "points", "status", "reach"]
    _table(rows, cols, "tasks", as_json)


# ---- community ---------------------------------------------------------------------


@community_app.command("group")
def community_group(
    c: typer.Context,
    group_id: str,
    name: str,
    description: str = "",
    online: Annotated[bool, typer.Option("--online/--offline")] = False,
) -> None:
    """Create a user group (the same id again changes nothing)."""
    from kizuna.services import community

    _print(community.create_group(_uow(_ctx(c)), group_id, name, description, online))


@community_app.command("join")
def community_join(
    c: typer.Context,
    group_id: str,
    member: str,
    brought_by: Annotated[str | None, typer.Option(help="The member who brought them.")] = None,
) -> None:
    """Add MEMBER to a user group."""
    from kizuna.services import community

    _print(community.join_group(_uow(_ctx(c)), group_id, member, brought_by))


@community_app.command("event")
def community_event(
    c: typer.Context,
    event_id: str,
    name: str,
    starts_at: Annotated[datetime, typer.Option(help="ISO 8601; without offset: workspace zone.")],
    kind: Annotated[
        str, typer.Option(help="meetup, webinar, user_group, workshop, conference")
    ] = "meetup",
    online: Annotated[bool, typer.Option("--online/--offline")] = False,
    location: str | None = None,
    url: Annotated[str | None, typer.Option(help="Join link of an online event.")] = None,
    capacity: int | None = None,
    group: Annotated[str | None, typer.Option(help="The user group holding it.")] = None,
) -> None:
    """Create a community event, online or offline."""
    from kizuna.services import community

    ctx = _ctx(c)
    cmd = community.NewEvent(
        event_id, name, kind, _when(ctx, starts_at), online, location, url, capacity, group
    )
    _print(community.create_event(_uow(ctx), cmd)[1])


@community_app.command("register")
def community_register(
    c: typer.Context,
    event_id: str,
    member: str,
    brought_by: Annotated[str | None, typer.Option(help="The member who brought them.")] = None,
) -> None:
    """Register MEMBER for an event (refused when it is full)."""
    from kizuna.services import community

    _print(community.register(_uow(_ctx(c)), event_id, member, brought_by)[1])


@community_app.command("check-in")
def community_check_in(
    c: typer.Context,
    event_id: str,
    members: Annotated[list[str] | None, typer.Argument(help="Member ids present.")] = None,
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", help="CSV with member_id[,checked_in_at]; '-' reads stdin."),
    ] = None,
    by: ActorOpt = "cli",
) -> None:
    """Record attendance (all or nothing: every bad row is listed, none is recorded)."""
    from kizuna.cli import console
    from kizuna.services import community

    ctx = _ctx(c)
    rows: list[tuple[str, datetime | None]] = [(m, None) for m in members or []]
    if csv_file is not None:
        text = (
            sys.stdin.read() if str(csv_file) == "-" else csv_file.read_text(encoding="utf-8-sig")
        )
        rows += community.parse_check_in_csv(text, ctx.settings.tz)
    if not rows:
        raise typer.BadParameter("name members or give --csv FILE")
    r = community.check_in(_uow(ctx), event_id, rows, by)
    console.print(f"checked in {r.checked_in} (walk-ins {r.walk_ins}), already {r.already}")


@community_app.command("events")
def community_events(c: typer.Context, as_json: JsonOpt = False) -> None:
    """Events with registrations and attendance."""
    from kizuna.services import community

    ctx = _ctx(c)
    with ctx.engine.connect() as conn:
        rows = community.events(conn)
    cols = ["event_id", "name", "kind", "starts_at", "online", "registered", "attended"]
    _table(rows, cols, "events", as_json)


@community_app.command("metrics")
def community_metrics(c: typer.Context, days: int = 90) -> None:
    """Active members, repeat attendance, members who bring members (last DAYS days)."""
    from dataclasses import asdict

    from kizuna.services import community

    ctx = _ctx(c)
    with ctx.engine.connect() as conn:
        _print({"days": days, **asdict(community.metrics(conn, datetime.now(UTC), days))})


# ---- review --------------------------------------------------------------------------


@review_app.command("add")
def review_add(
    c: typer.Context,
    review_id: str,
    member: str,
    rating: Annotated[int | None, typer.Option(min=1, max=5)] = None,
    text: str | None = None,
    title: str | None = None,
    kind: Annotated[str, typer.Option(help="review or ugc")] = "review",
    channel: Annotated[str | None, typer.Option(help="Where it was posted.")] = None,
    url: str | None = None,
    language: str | None = None,
    product: str | None = None,
) -> None:
    """Ingest one review or UGC post; it waits for moderation."""
    from kizuna.services import reviews

    cmd = reviews.NewReview(
        review_id, member, rating, text, title, kind, channel, url, language, product
    )
    _print(reviews.submit(_uow(_ctx(c)), cmd)[1])


@review_app.command("queue")
def review_queue(
    c: typer.Context,
    status: Annotated[str, typer.Option(help="pending, approved, rejected or all")] = "pending",
    as_json: JsonOpt = False,
) -> None:
    """The moderation queue."""
    from kizuna.services import reviews

    ctx = _ctx(c)
    with ctx.engine.connect() as conn:
        rows = reviews.queue(conn, None if status == "all" else status)
    cols = ["review_id", "member_id", "kind", "rating", "channel", "status", "points", "reason"]
    _table(rows, cols, "reviews", as_json)


@review_app.command("approve")
def review_approve(c: typer.Context, review_id: str, by: ActorOpt) -> None:
    """Approve; the reward rule pays points once per review, within the monthly cap."""
    from kizuna.services import reviews

    _print(reviews.moderate(_uow(_ctx(c)), reviews.Moderate(review_id, "approved", by)))


@review_app.command("reject")
def review_reject(
    c: typer.Context,
    review_id: str,
    reason: Annotated[str, typer.Option(help="Why (kept with the review).")],
    by: ActorOpt,
) -> None:
    """Reject with a reason."""
    from kizuna.services import reviews

    _print(reviews.moderate(_uow(_ctx(c)), reviews.Moderate(review_id, "rejected", by, reason)))


@review_app.command("export")
def review_export(c: typer.Context, out: Path, status: str = "all") -> None:
    """Write the reviews to a CSV file (full data: for staff who may see it)."""
    from kizuna.cli import console
    from kizuna.services import reviews

    ctx = _ctx(c)
    with ctx.engine.connect() as conn:
        rows = reviews.queue(conn, None if status == "all" else status, limit=10**9)
    cols = ["review_id", "member_id", "kind", "rating", "title", "body", "channel", "url",
            "posted_at", "status", "reason", "points"]  # fmt: skip
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(cols)
        writer.writerows([r.get(k) for k in cols] for r in rows)
    console.print(f"wrote {len(rows)} reviews to {out}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root ``kizuna`` app."""
    app.add_typer(referral_app, name="referral")
    app.add_typer(referral_app, name="referrals", hidden=True)
    app.add_typer(ambassador_app, name="ambassador")
    app.add_typer(community_app, name="community")
    app.add_typer(review_app, name="review")
