"""CLI commands of privacy, retention, backup and restore, and deployment checks."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from kizuna.bootstrap import Context

privacy_app = typer.Typer(
    help="A person's data: export everything held on them, or erase it (APPI, GDPR).",
    no_args_is_help=True,
)
retention_app = typer.Typer(
    help="Retention rules: summarise and delete old raw records.", no_args_is_help=True
)


def _ctx(c: typer.Context, *, migrated: bool = True) -> Context:
    # Read --workspace from the root command's context (see cli_programme._ctx).
    from kizuna.bootstrap import open_context

    ctx = open_context(c.find_root().params.get("workspace"))
    if migrated:
        ctx.require_current_schema()
    return ctx


@privacy_app.command("export")
def privacy_export(
    c: typer.Context,
    customer: Annotated[str, typer.Argument(help="The customer's id in your systems.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Everything held on one customer, every table, as JSON (an access request)."""
    from kizuna.cli import console
    from kizuna.services import privacy
    from kizuna.services.uow import UnitOfWork

    ctx = _ctx(c)
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        text = privacy.export_json(privacy.export_customer(uow, customer))
    if out is None:
        typer.echo(text)
        return
    out.write_text(text + "\n", encoding="utf-8")
    out.chmod(0o600)
    console.print(f"wrote {out}")


@privacy_app.command("erase")
def privacy_erase(
    c: typer.Context,
    customer: Annotated[str, typer.Argument(help="The customer's id in your systems.")],
    reason: Annotated[str, typer.Option(help="Why (e.g. the request's ticket number).")] = "",
    actor: Annotated[
        str | None, typer.Option(help="Who asked for it (default: the OS user).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Irreversibly anonymise a customer's personal data; balances and KPIs stay as they were."""
    from kizuna.cli import console
    from kizuna.services import privacy
    from kizuna.services.uow import UnitOfWork

    ctx = _ctx(c)
    if not yes:
        typer.confirm(f"Erase the personal data of {customer}? This cannot be undone", abort=True)
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        done = privacy.erase_customer(
            uow, customer, actor=actor or f"cli:{getpass.getuser()}", reason=reason
        )
        uow.commit()
    console.print(
        f"erased customer {done.external_id} (audit #{done.audit_id}): "
        + ", ".join(f"{table} {n}" for table, n in done.rows.items())
    )
    if done.unreachable:
        console.print(
            "[yellow]note:[/yellow] these tables hold personal data without a customer link and "
            f"were not searched: {', '.join(done.unreachable)}"
        )


@privacy_app.command("erasures")
def privacy_erasures(c: typer.Context, limit: int = 50) -> None:
    """The erasure audit: who erased which customer, when, and which columns."""
    from rich.table import Table

    from kizuna.cli import console
    from kizuna.services import privacy
    from kizuna.services.uow import UnitOfWork

    ctx = _ctx(c)
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        rows = privacy.erasures(uow, limit)
    table = Table("#", "customer", "erased at", "by", "reason", "tables")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["external_id"],
            r["erased_at"],
            r["actor"],
            r["reason"],
            ", ".join(sorted(r["columns"])),
        )
    console.print(table)


@retention_app.command("apply")
def retention_apply(
    c: typer.Context,
    rules: Annotated[
        str | None,
        typer.Option(help="Rules to apply instead of the `retention` setting, e.g. events=24m."),
    ] = None,
) -> None:
    """Apply the retention rules: old raw events become daily counts, old bookkeeping goes."""
    from kizuna.cli import console
    from kizuna.services import retention
    from kizuna.services.uow import UnitOfWork

    ctx = _ctx(c)
    parsed = retention.parse_rules(rules if rules is not None else ctx.settings.retention)
    if not parsed:
        console.print(
            "no retention rules set; set `retention` (e.g. events=24m) in kizuna.toml "
            "or pass --rules"
        )
        return
    with UnitOfWork(ctx.engine, ctx.settings) as uow:
        outcomes = retention.apply_rules(uow, parsed)
    for o in outcomes:
        console.print(
            f"{o.rule}: before {o.cutoff:%Y-%m-%d %H:%M} UTC — "
            f"{o.aggregated} summarised, {o.deleted} deleted"
        )


def backup_command(
    c: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the archive (default WORKSPACE/backups)."),
    ] = None,
) -> None:
    """One archive of the database (consistent while the app runs) and the workspace files."""
    from kizuna.cli import console
    from kizuna.services.backup import backup

    ctx = _ctx(c, migrated=False)
    result = backup(ctx, out)
    files = result.manifest["files"]
    size = result.path.stat().st_size
    console.print(
        f"wrote {result.path} ({size / 1e6:.1f} MB, {len(files)} files, "
        f"schema {result.manifest['schema_revision']})"
    )


def restore_command(
    c: typer.Context,
    archive: Annotated[Path, typer.Argument(help="A kizuna-backup-*.tar.gz archive.")],
    into: Annotated[
        Path | None,
        typer.Option(
            "--into", help="Workspace folder to restore into (default: --workspace or .)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace an existing database (kept aside) and files.")
    ] = False,
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL target for a PostgreSQL backup.")
    ] = None,
) -> None:
    """Check a backup archive completely, then restore it into a workspace."""
    from kizuna.cli import console
    from kizuna.services.backup import restore

    root = c.find_root().params.get("workspace")
    target = into or Path(root if root and "://" not in root else ".")
    result = restore(archive, target, force=force, database_url=database_url)
    console.print(
        f"restored {archive.name} into {result.workspace} "
        f"(made {result.manifest['created_at']}, schema {result.manifest['schema_revision']})"
    )
    if result.other_database_in_config:
        console.print(
            "[yellow]note:[/yellow] the restored kizuna.toml names the original database; "
            "edit its database_url or set KIZUNA_DATABASE_URL to the one restored into"
        )
    if result.needs_upgrade:
        console.print("the backup is from an older schema: run [bold]kizuna db upgrade[/bold]")


def doctor_command(
    c: typer.Context,
    smtp_timeout: Annotated[float, typer.Option(help="Seconds to wait for the SMTP server.")] = 5.0,
    worker_stale: Annotated[
        float, typer.Option(help="A worker silent this many seconds counts as dead.")
    ] = 120.0,
) -> None:
    """Check this deployment and say what to fix, one line per problem (exit 1 on any)."""
    from kizuna.cli import console
    from kizuna.services.doctor import diagnose

    root = c.find_root().params.get("workspace")
    checks = diagnose(root, smtp_timeout=smtp_timeout, worker_stale_seconds=worker_stale)
    marks = {
        "ok": "[green]ok[/green]  ",
        "warn": "[yellow]warn[/yellow]",
        "fail": "[red]FAIL[/red]",
    }
    for check in checks:
        console.print(
            f"{marks[check.status]} {check.name}: {check.message}", highlight=False, soft_wrap=True
        )
    failures = [ch for ch in checks if ch.status == "fail"]
    if failures:
        console.print(f"[red]{len(failures)} problem(s) to fix[/red]")
        raise typer.Exit(1)
    console.print("[green]all checks passed[/green]")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root ``kizuna`` app."""
    app.add_typer(privacy_app, name="privacy")
    app.add_typer(retention_app, name="retention")
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
    app.command("doctor")(doctor_command)
