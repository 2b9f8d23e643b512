"""CLI commands of the loyalty programme engine (program, points, coupons, member, api-key)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from kizuna.bootstrap import Context

program_app = typer.Typer(
    help="The loyalty programme: show, validate, simulate, apply.", no_args_is_help=True
)
points_app = typer.Typer(
    help="Points: manual adjustments, scheduled jobs, checks, liability.", no_args_is_help=True
)
coupons_app = typer.Typer(
    help="Coupons: generate unique single-use codes, validate one.", no_args_is_help=True
)
member_app = typer.Typer(help="One member of the programme.", no_args_is_help=True)
key_app = typer.Typer(
    help="API keys for the HTTP API (stored hashed, one scope each).", no_args_is_help=True
)


def _ctx(c: typer.Context) -> Context:
    # Read --workspace from the root command's context rather than kizuna.cli's
    # module state: under `python -m kizuna.cli` that module is __main__, and
    # importing kizuna.cli here would see a second, empty copy of it.
    from kizuna.bootstrap import open_context

    ctx = open_context(c.find_root().params.get("workspace"))
    ctx.require_current_schema()
    return ctx


def _uow(ctx: Context) -> Any:
    from kizuna.services.uow import UnitOfWork

    return UnitOfWork(ctx.engine, ctx.settings)


def _print(data: Any) -> None:
    from kizuna.cli import console

    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


# ---- program -----------------------------------------------------------------------
@program_app.command("init")
def program_init(c: typer.Context) -> None:
    """Write a commented starting programme.toml into the workspace."""
    from kizuna.cli import console
    from kizuna.domain.programme import DEFAULT_PROGRAMME_TOML
    from kizuna.services.programme.config import PROGRAMME_FILE

    path = _ctx(c).settings.workspace / PROGRAMME_FILE
    if path.exists():
        raise typer.BadParameter(f"{path} already exists; edit it, then `kizuna program apply`")
    path.write_text(DEFAULT_PROGRAMME_TOML, encoding="utf-8")
    console.print(f"wrote {path}; edit it, then [bold]kizuna program apply[/bold]")


@program_app.command("validate")
def program_validate(
    c: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Default: WORKSPACE/programme.toml.")] = None,
) -> None:
    """Check a programme file; every problem names its field and the fix."""
    from kizuna.cli import console
    from kizuna.services.programme.config import PROGRAMME_FILE, read_programme_file

    path = file or _ctx(c).settings.workspace / PROGRAMME_FILE
    programme = read_programme_file(path)
    console.print(
        f"[green]{path} is valid[/green]: {programme.name}, digest {programme.digest[:12]}"
    )


@program_app.command("apply")
def program_apply(
    c: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Default: WORKSPACE/programme.toml.")] = None,
) -> None:
    """Validate the file and make it the active programme (a new version if it changed)."""
    from kizuna.cli import console
    from kizuna.services.programme.config import (
        PROGRAMME_FILE,
        apply_programme,
        read_programme_file,
    )

    ctx = _ctx(c)
    path = file or ctx.settings.workspace / PROGRAMME_FILE
    programme = read_programme_file(path)
    with _uow(ctx) as uow:
        version = apply_programme(uow, programme, str(path))
        uow.commit()
    console.print(f"programme version [bold]{version}[/bold] is active")


@program_app.command("show")
def program_show(c: typer.Context) -> None:
    """The active programme and its version, as JSON."""
    from kizuna.services.programme.config import active_programme

    with _uow(_ctx(c)) as uow:
        active = active_programme(uow)
        uow.commit()
    _print({"version": active.version, "document": dict(active.programme.raw)})


@program_app.command("simulate")
def program_simulate(
    c: typer.Context,
    line: Annotated[
        list[str],
        typer.Option(
            "--line", "-l", help="AMOUNT[:CATEGORY[:PRODUCT]] in minor units; repeat per line."
        ),
    ],
    member: Annotated[
        str | None, typer.Option(help="Use this member's tier and daily cap.")
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="Order time, ISO 8601 with offset (default: now).")
    ] = None,
) -> None:
    """What an order would earn, and why. Writes nothing."""
    from kizuna.services.programme.orders import OrderLine, RecordOrder, quote

    lines = []
    for i, spec in enumerate(line, start=1):
        amount, _, rest = spec.partition(":")
        category, _, product = rest.partition(":")
        try:
            value = int(amount)
        except ValueError:
            raise typer.BadParameter(
                f"--line {spec!r}: the amount must be whole minor units, e.g. 1980"
            ) from None
        lines.append(OrderLine(i, value, 1, product or None, category or None))
    when = datetime.fromisoformat(at) if at else None
    with _uow(_ctx(c)) as uow:
        result = quote(uow, RecordOrder("simulation", member or "", tuple(lines), when))
    _print(result)


# ---- points ------------------------------------------------------------------------
@points_app.command("adjust")
def points_adjust(
    c: typer.Context,
    member: Annotated[str, typer.Argument(help="Member (customer) id.")],
    points: Annotated[int, typer.Argument(help="Positive to credit, negative to debit.")],
    reason: Annotated[str, typer.Option(help="Why; kept on the ledger entry.")],
    actor: Annotated[str, typer.Option(help="Who is making the adjustment.")] = "cli",
) -> None:
    """A manual credit or debit, recorded with its reason and actor."""
    from kizuna.services.programme.actions import Adjust, adjust

    with _uow(_ctx(c)) as uow:
        _, body = adjust(uow, Adjust(member, points, reason, actor))
    _print(body)


@points_app.command("jobs")
def points_jobs(
    c: typer.Context,
    at: Annotated[str | None, typer.Option(help="Pretend it is this instant (ISO 8601).")] = None,
) -> None:
    """Run the scheduled work once: release pending, expire lots, review tiers, birthdays."""
    from kizuna.services.programme.jobs import run_all

    when = datetime.fromisoformat(at) if at else datetime.now(UTC)
    with _uow(_ctx(c)) as uow:
        _print(run_all(uow, when))


@points_app.command("check")
def points_check(c: typer.Context) -> None:
    """Prove every cached balance and lot equals the sum of its ledger entries."""
    from kizuna.cli import console
    from kizuna.services.programme.checks import check_all

    with _uow(_ctx(c)) as uow:
        problems = check_all(uow)
    if problems:
        for p in problems[:50]:
            console.print(f"[red]{p}[/red]")
        raise typer.Exit(1)
    console.print("[green]every balance equals the sum of its entries[/green]")


@points_app.command("liability")
def points_liability(c: typer.Context) -> None:
    """Outstanding points, their value, and expected breakage by month of expiry."""
    from kizuna.services.programme.liability import liability

    with _uow(_ctx(c)) as uow:
        _print(liability(uow))


@points_app.command("webhooks")
def points_webhooks(
    c: typer.Context,
    url: Annotated[str, typer.Option(help="Receiver URL.")],
    secret_env: Annotated[
        str, typer.Option(help="Environment variable holding the HMAC secret.")
    ] = "KIZUNA_WEBHOOK_SECRET",
    retry_failed_events: Annotated[
        bool,
        typer.Option("--retry-failed", help="First queue again events whose retries ran out."),
    ] = False,
) -> None:
    """Deliver queued events (tier changed, points expiring, reward redeemed), HMAC-signed.

    A failure is retried with exponential backoff (by the worker's scheduled
    jobs when `programme_webhook_url` is set, or by running this again).
    """
    import os

    from kizuna.cli import console
    from kizuna.services.programme.webhooks import deliver, retry_failed

    secret = os.environ.get(secret_env, "")
    if not secret:
        raise typer.BadParameter(
            f"set {secret_env} to the shared secret the receiver checks signatures with"
        )
    with _uow(_ctx(c)) as uow:
        if retry_failed_events:
            console.print(f"{retry_failed(uow)} failed event(s) queued again")
        console.print(f"{deliver(uow, url, secret)} event(s) delivered")


# ---- coupons -----------------------------------------------------------------------
@coupons_app.command("generate")
def coupons_generate(
    c: typer.Context,
    count: Annotated[int, typer.Option(help="How many codes (1 with --code).")] = 100,
    kind: Annotated[str, typer.Option(help="percent | fixed | free_item.")] = "fixed",
    value: Annotated[int, typer.Option(help="Percent (1-100) or amount in minor units.")] = 500,
    batch: Annotated[str | None, typer.Option(help="Batch name (default: a new id).")] = None,
    min_spend: Annotated[int, typer.Option(help="Minimum order total in minor units.")] = 0,
    valid_days: Annotated[
        int | None, typer.Option(help="Valid for this many days from now.")
    ] = None,
    item: Annotated[str | None, typer.Option(help="Product id of a free_item coupon.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the codes here, one a line.")] = None,
    max_uses: Annotated[int, typer.Option(help="Uses of each code in total.")] = 1,
    per_customer: Annotated[
        int | None, typer.Option(help="Uses one member may make of a multi-use code.")
    ] = None,
    code: Annotated[
        str | None, typer.Option(help="Create this one named code (e.g. SPRING-10) instead.")
    ] = None,
) -> None:
    """Generate unique, hard-to-guess codes (single-use unless --max-uses) in one transaction."""
    from kizuna.cli import console
    from kizuna.services.programme.coupons import generate

    name = batch or f"batch-{uuid.uuid4().hex[:8]}"
    count = 1 if code else count
    until = datetime.now(UTC) + timedelta(days=valid_days) if valid_days else None
    with _uow(_ctx(c)) as uow:
        codes = generate(
            uow,
            count=count,
            kind=kind,
            value=value,
            batch=name,
            min_spend=min_spend,
            valid_until=until,
            item=item,
            max_uses=max_uses,
            per_customer_limit=per_customer,
            code=code,
        )
        uow.commit()
    if out:
        out.write_text("\n".join(codes) + "\n", encoding="utf-8")
        console.print(f"{len(codes)} codes in batch [bold]{name}[/bold] written to {out}")
    else:
        for code in codes:
            console.print(code)


@coupons_app.command("validate")
def coupons_validate(
    c: typer.Context,
    code: str,
    order_total: Annotated[int, typer.Option(help="Order total in minor units.")] = 0,
) -> None:
    """Would this code apply to an order of ORDER_TOTAL, and for how much."""
    from kizuna.services.programme.coupons import validate

    with _uow(_ctx(c)) as uow:
        _print(validate(uow, code, order_total))


# ---- member / keys / serve ---------------------------------------------------------
@member_app.command("show")
def member_show(
    c: typer.Context,
    member: Annotated[str, typer.Argument(help="Member (customer) id.")],
    entries: Annotated[int, typer.Option(help="Newest ledger entries to show.")] = 20,
) -> None:
    """Balance, expiring soon, tier, progress and the newest ledger entries."""
    from kizuna.services.programme.members import ledger_page, summary

    with _uow(_ctx(c)) as uow:
        data = summary(uow, member)
        data["ledger"] = ledger_page(uow, member, limit=entries)["items"]
        uow.commit()
    _print(data)


@key_app.command("create")
def key_create(
    c: typer.Context,
    scope: Annotated[
        str,
        typer.Option(
            help="admin | marketer | analyst (read-only) | pos (quote, earn, redeem, refund)."
        ),
    ],
    name: Annotated[str, typer.Option(help="A label, e.g. the shop or till.")] = "",
) -> None:
    """Create an API key; it is shown once and stored only as a hash."""
    from kizuna.api.auth import create_key
    from kizuna.cli import console

    with _uow(_ctx(c)) as uow:
        key = create_key(uow, scope, name)
        uow.commit()
    console.print(key)


@key_app.command("revoke")
def key_revoke(
    c: typer.Context, prefix: Annotated[str, typer.Argument(help="The 8 characters after kz_.")]
) -> None:
    """Revoke a key (processes notice within 30 seconds)."""
    from kizuna.api.auth import revoke_key
    from kizuna.cli import console

    with _uow(_ctx(c)) as uow:
        found = revoke_key(uow, prefix)
        uow.commit()
    console.print("revoked" if found else f"no key with prefix {prefix}")


@key_app.command("list")
def key_list(
    c: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Leave revoked keys out.")] = False,
) -> None:
    """Every API key by prefix, scope and name (never the secret, which is not stored)."""
    from rich.table import Table

    from kizuna.api.auth import list_keys
    from kizuna.cli import console

    table = Table("prefix", "scope", "name", "created", "revoked")
    with _uow(_ctx(c)) as uow:
        after = 0
        while page := list_keys(uow, after=after, limit=500, include_revoked=not active):
            for key in page:
                table.add_row(
                    key.prefix, key.scope, key.name or "", key.created_at.isoformat(" ", "seconds"),
                    key.revoked_at.isoformat(" ", "seconds") if key.revoked_at else "",
                )  # fmt: skip
            after = page[-1].id
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the programme commands to the main ``kizuna`` app."""
    app.add_typer(program_app, name="program")
    app.add_typer(points_app, name="points")
    app.add_typer(coupons_app, name="coupons")
    app.add_typer(member_app, name="member")
    app.add_typer(key_app, name="api-key")
