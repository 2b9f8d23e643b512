"""CLI commands of the dashboard: ``kizuna dashboard`` and ``kizuna user ...``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kizuna.bootstrap import Context


def _ctx() -> Context:
    from kizuna.cli import _ctx as cli_ctx

    return cli_ctx()


user_app = typer.Typer(help="Dashboard users and their roles.", no_args_is_help=True)


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="User name to log in with.")],
    role: Annotated[
        str,
        typer.Option(
            help="admin (everything), marketer (imports, personal data) or "
            "analyst (read-only, personal data masked)."
        ),
    ] = "marketer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a dashboard user; asks for the password unless --password-stdin."""
    from kizuna.cli import console
    from kizuna.services.uow import UnitOfWork
    from kizuna.services.users import CreateUser, handle_create

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    ctx = _ctx()
    ctx.require_current_schema()
    user = handle_create(CreateUser(name, role, password), UnitOfWork(ctx.engine, ctx.settings))
    console.print(f"dashboard user [bold]{user.username}[/bold] created with role {user.role}")


@user_app.command("list")
def user_list() -> None:
    """Every dashboard user with their role and last login."""
    from rich.table import Table

    from kizuna.cli import console
    from kizuna.services.users import list_users

    ctx = _ctx()
    ctx.require_current_schema()
    tz = ctx.settings.tz
    table = Table("user", "role", "created", "last login", "status")
    for u in list_users(ctx.engine):
        table.add_row(
            u.username,
            u.role,
            u.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            u.last_login_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if u.last_login_at else "-",
            "disabled" if u.disabled else "active",
        )
    console.print(table)


def dashboard(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve the dashboard (ja/en) at http://HOST:PORT/ until stopped."""
    import uvicorn

    from kizuna.cli import console
    from kizuna.web import create_dashboard_app

    app = create_dashboard_app(_ctx())
    console.print(f"Kizuna dashboard on [bold]http://{host}:{port}/[/bold] (Ctrl+C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)


def register(app: typer.Typer) -> None:
    """Add the dashboard commands to the main ``kizuna`` app."""
    app.add_typer(user_app, name="user")
    app.command("dashboard")(dashboard)
