"""The ``kizuna`` command line.

Commands only parse arguments, call a service and render the result; every
rule lives below them. Errors a person can fix come out as one red line and
an exit code (see :mod:`kizuna.errors`), never as a traceback.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from kizuna.bootstrap import Context, open_context, safe_url
from kizuna.config import SETTINGS, load_settings
from kizuna.errors import ImportRejected, KizunaError
from kizuna.ingest.problems import ImportReport

app = typer.Typer(
    help="Kizuna (絆): find, grow and keep loyal customers.\n\n"
    "Start with `kizuna init`, load data with `kizuna import` or try `kizuna sample`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(
    help="Database schema: create and upgrade with Alembic migrations.", no_args_is_help=True
)
customer_app = typer.Typer(help="Look at one customer.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(customer_app, name="customer")

console = Console()
err = Console(stderr=True)

WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="KIZUNA_WORKSPACE",
        help="Workspace folder (default: current folder) or a database URL.",
    ),
]
_state: dict[str, str | None] = {"workspace": None}


@app.callback()
def main(workspace: WorkspaceOpt = None) -> None:
    _state["workspace"] = workspace


def _ctx() -> Context:
    return open_context(_state["workspace"])


def run() -> None:
    """Entry point that turns Kizuna errors into a message and an exit code."""
    try:
        code = app(standalone_mode=False)
    except KizunaError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)


# ---- workspace ---------------------------------------------------------------------
@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to make a workspace.")] = Path("."),
    timezone: Annotated[
        str | None, typer.Option(help="IANA timezone (default Asia/Tokyo).")
    ] = None,
    currency: Annotated[str | None, typer.Option(help="ISO 4217 currency (default JPY).")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Use this database instead of the workspace's SQLite file.")
    ] = None,
) -> None:
    """Create a workspace: kizuna.toml plus a migrated database (SQLite by default)."""
    from kizuna.services.workspace import init_workspace

    ctx = init_workspace(directory, timezone=timezone, currency=currency, database_url=database_url)
    s = ctx.settings
    console.print(f"workspace [bold]{s.workspace}[/bold] ready")
    console.print(f"  database  {safe_url(s.database_url)}")
    console.print(f"  timezone  {s.timezone}    currency  {s.currency}")
    console.print("next: [bold]kizuna import customers FILE[/bold] or [bold]kizuna sample[/bold]")


@app.command("settings")
def show_settings() -> None:
    """Every setting with its value, where the value came from, and what it does."""
    s = load_settings(
        _state["workspace"] if _state["workspace"] and "://" not in _state["workspace"] else None
    )
    table = Table("setting", "value", "from", "what it does", show_lines=False)
    for setting in SETTINGS:
        value = getattr(s, setting.name)
        shown = safe_url(value) if setting.name == "database_url" else str(value)
        table.add_row(setting.name, shown, s.sources[setting.name], setting.help)
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database schema to the newest (or a given) revision."""
    from kizuna.services.workspace import upgrade_database

    before, after = upgrade_database(_ctx(), revision)
    console.print(f"schema {before or '(empty)'} -> {after}")


@db_app.command("check")
def db_check() -> None:
    """Prove every reference of the high-volume tables resolves (they carry no FK)."""
    from kizuna.store.integrity import check_references

    ctx = _ctx()
    ctx.require_current_schema()
    with ctx.engine.connect() as conn:
        orphans = check_references(conn)
    if not orphans:
        console.print("[green]every reference resolves[/green]")
        return
    for o in orphans:
        err.print(
            f"[red]✗[/red] {o.count:,} row(s) of {o.table}.{o.column} point to no {o.target} row"
        )
    raise typer.Exit(7)


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and of this Kizuna."""
    from kizuna.store import schema

    ctx = _ctx()
    console.print(
        f"database {schema.current_revision(ctx.engine) or '(empty)'}; "
        f"this Kizuna needs {schema.head_revision()}"
    )


# ---- import --------------------------------------------------------------------------
class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="cyan")


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f} rows"),
        _RowsPerSecond(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _parse_map(pairs: list[str]) -> dict[str, str]:
    from kizuna.errors import ValidationError

    mapping = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValidationError(
                f"--map {pair!r}: write FIELD=COLUMN, e.g. --map email=メールアドレス"
            )
        fname, column = pair.split("=", 1)
        mapping[fname.strip()] = column.strip()
    return mapping


def _print_report(report: ImportReport, limit: int = 20) -> None:
    for note in report.notes:
        err.print(f"[yellow]note:[/yellow] {note}")
    if report.stats:
        table = Table("kind", "rows", "new", "updated", "unchanged", "bad", "seconds")
        for s in report.stats.values():
            table.add_row(
                s.kind,
                f"{s.rows_read:,}",
                f"{s.inserted:,}",
                f"{s.updated:,}",
                f"{s.unchanged:,}",
                f"{s.rejected:,}",
                f"{s.seconds:.1f}",
            )
        console.print(table)
    for problem in report.problems[:limit]:
        err.print(f"[red]✗[/red] {problem}")
    if len(report.problems) > limit:
        err.print(f"... and {len(report.problems) - limit:,} more problem(s)")
    if report.report_file:
        err.print(f"full report: {report.report_file}")
    for path in report.rejects_files:
        err.print(f"bad rows written to: {path}")
    style = (
        "green"
        if report.committed and not report.problems
        else ("yellow" if report.committed else "red")
    )
    console.print(f"[{style}]{report.summary_line()}[/{style}]")


def _run_import(
    files: list[tuple[str, list[Path]]],
    mapping: list[str],
    ignore: list[str],
    encoding: str | None,
    fmt: str | None,
    delimiter: str | None,
    skip_bad: bool,
    report_dir: Path | None,
) -> None:
    from kizuna.ingest.importer import ImportOptions
    from kizuna.services.imports import ImportFiles, import_paths

    ctx = _ctx()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    label = files[0][0] if len(files) == 1 else "folder"
    out = report_dir or ctx.settings.workspace / "imports" / f"{stamp}-{label}"
    options = ImportOptions(
        mapping=_parse_map(mapping),
        ignore=ignore,
        encoding=encoding,
        format=fmt,
        delimiter=delimiter,
        skip_bad=skip_bad,
        rejects_dir=out,
    )
    with _progress() as progress:
        tasks = {kind: progress.add_task(kind, total=None) for kind, _ in files}

        def step(kind: str, rows: int) -> None:
            progress.advance(tasks[kind], rows)

        try:
            report = import_paths(ctx, ImportFiles(files, options, out), step)
        except ImportRejected as exc:
            progress.stop()
            _print_report(exc.report)  # type: ignore[arg-type]
            raise typer.Exit(exc.exit_code) from None
    _print_report(report)
    if report.problems:
        raise typer.Exit(EXIT_PARTIAL)


#: Exit status when --skip-bad imported the good rows but some were bad.
EXIT_PARTIAL = 6


MapOpt = Annotated[
    list[str],
    typer.Option(
        "--map",
        "-m",
        help="FIELD=COLUMN when your column has another name, e.g. email=メールアドレス. Repeatable.",
    ),
]
IgnoreOpt = Annotated[
    list[str], typer.Option("--ignore", help="A file column to leave out. Repeatable.")
]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        help="Text encoding; default: UTF-8, or Shift_JIS (CP932) when the file is not UTF-8."
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="csv, parquet or jsonl (default: from the file name)."),
]
DelimOpt = Annotated[str | None, typer.Option(help="CSV delimiter (default , or tab for .tsv).")]
SkipOpt = Annotated[
    bool,
    typer.Option(
        "--skip-bad",
        help="Import the good rows and write bad ones to a rejects file, instead of importing nothing.",
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Folder for the problem report and rejects (default: WORKSPACE/imports/<time>-<kind>).",
    ),
]


@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help="What the files hold; `kizuna kinds` lists them.")],
    files: Annotated[list[Path], typer.Argument(help="CSV, Parquet or JSON Lines files.")],
    map_: MapOpt = [],  # noqa: B006 - typer needs a literal default
    ignore: IgnoreOpt = [],  # noqa: B006
    encoding: EncodingOpt = None,
    fmt: FormatOpt = None,
    delimiter: DelimOpt = None,
    skip_bad: SkipOpt = False,
    report: ReportOpt = None,
) -> None:
    """Import files of one KIND, all or nothing, upserting on the external id.

    Every bad row is reported with its file, line, column and reason; by
    default nothing is written unless every row is good. Importing the same
    file twice changes nothing.
    """
    from kizuna.ingest.kinds import get_kind

    get_kind(kind)
    _run_import([(kind, list(files))], map_, ignore, encoding, fmt, delimiter, skip_bad, report)


@app.command("import-folder")
def import_folder(
    folder: Annotated[
        Path,
        typer.Argument(
            help="Folder of files named after kinds (customers.csv, orders.parquet...)."
        ),
    ],
    encoding: EncodingOpt = None,
    skip_bad: SkipOpt = False,
    report: ReportOpt = None,
) -> None:
    """Import every kind found in FOLDER in dependency order, in one transaction."""
    from kizuna.services.imports import files_in_folder

    _run_import(files_in_folder(folder), [], [], encoding, None, None, skip_bad, report)


@app.command()
def kinds(
    kind: Annotated[str | None, typer.Argument(help="Show the columns of one kind.")] = None,
) -> None:
    """What can be imported, and the columns each kind's file has."""
    from kizuna.ingest.kinds import KINDS, get_kind

    if kind is None:
        table = Table("kind", "key", "what it holds")
        for k in KINDS.values():
            table.add_row(k.name, "+".join(k.key), k.help)
        console.print(table)
        return
    k = get_kind(kind)
    table = Table("column", "type", "required", "rule")
    for f in k.fields:
        rule = f.help
        if f.choices:
            rule = "one of " + ", ".join(f.choices)
        elif f.ref:
            rule = f"external id of {f.ref}"
        elif f.min_value is not None or f.max_value is not None:
            rule = f"{f.min_value if f.min_value is not None else ''}..{f.max_value if f.max_value is not None else ''} {rule}".strip()
        required = "yes" if f.required and not (k.derive_key and f.name in k.key) else ""
        table.add_row(f.name, f.type, required, rule)
    if k.attributes_column:
        table.add_row("attr.<name>", "text", "", "any number of free attributes")
    console.print(table)


# ---- sample data ------------------------------------------------------------------
@app.command()
def sample(
    customers: Annotated[int, typer.Option(min=1, help="How many customers to simulate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder to write the files to.")] = Path("sample"),
    timezone: Annotated[
        str, typer.Option(help="Timezone of the simulated business.")
    ] = "Asia/Tokyo",
) -> None:
    """Write a realistic data set, with its ground truth, from a documented model."""
    from rich.progress import BarColumn, MofNCompleteColumn

    from kizuna.ingest.sample import generate

    with Progress(
        SpinnerColumn(),
        TextColumn("customers"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task("sample", total=customers)
        summary = generate(
            out, customers, seed, timezone=timezone, progress=lambda n: progress.advance(task, n)
        )
    table = Table("file", "rows")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(
        f"written to {summary.out_dir}; the model is described in {summary.out_dir / 'MODEL.md'}"
    )


# ---- looking at data ---------------------------------------------------------------------
@customer_app.command("show")
def customer_show(
    customer_id: Annotated[str, typer.Argument(help="The customer's external id.")],
    limit: Annotated[int, typer.Option(min=1, help="Timeline items to show.")] = 50,
    before: Annotated[
        str | None,
        typer.Option(help="Show items before this time (ISO 8601; the 'more:' hint prints it)."),
    ] = None,
    kind: Annotated[
        list[str],
        typer.Option(
            "--kind", help="Only these item kinds (order, event, survey, contact, ...). Repeatable."
        ),
    ] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """The customer-360: profile and one merged timeline, newest first."""
    from kizuna.errors import ValidationError
    from kizuna.services.customers import customer_360

    ctx = _ctx()
    ctx.require_current_schema()
    moment = None
    if before:
        try:
            moment = datetime.fromisoformat(before)
        except ValueError:
            raise ValidationError(
                f"--before {before!r}: write a time like 2025-03-04T18:00:00+09:00"
            ) from None
    result = customer_360(
        ctx.engine, ctx.settings, customer_id, limit=limit, before=moment, kinds=kind or None
    )
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str, ensure_ascii=False))
        return
    from kizuna.cli_render import render_customer_360

    render_customer_360(result, console, ctx.settings)


@app.command()
def summary() -> None:
    """Counts, date range and revenue by month of the workspace."""
    from kizuna.cli_render import render_summary
    from kizuna.services.summary import workspace_summary

    ctx = _ctx()
    ctx.require_current_schema()
    render_summary(workspace_summary(ctx.engine, ctx.settings), console, ctx.settings)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Web processes (PostgreSQL: about one per core).")
    ] = 1,
    dashboard: Annotated[
        bool, typer.Option(help="Serve the dashboard at / beside the API.")
    ] = True,
    worker: Annotated[
        bool | None,
        typer.Option(
            help="Run the journey worker inside this process (default: on for SQLite, off for "
            "PostgreSQL, where `kizuna worker` runs on its own)."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (/v1, docs at /docs), the dashboard (/) and, on the embedded
    default, the journey worker — everything in one process."""
    import os

    import uvicorn

    ctx = _ctx()
    ctx.require_current_schema()
    in_process_worker = ctx.settings.is_sqlite if worker is None else worker
    if workers > 1 and ctx.settings.is_sqlite:
        console.print("note: SQLite serialises writers; extra processes serve reads")
    os.environ["KIZUNA_WORKSPACE"] = str(ctx.settings.workspace)
    os.environ["KIZUNA_DATABASE_URL"] = ctx.settings.database_url
    os.environ["KIZUNA_SERVE_DASHBOARD"] = "1" if dashboard else "0"
    os.environ["KIZUNA_SERVE_WORKER"] = "1" if in_process_worker else "0"
    parts = ["API /v1 (docs /docs)"] + (["dashboard /"] if dashboard else [])
    parts += ["journey worker"] if in_process_worker else []
    console.print(
        f"Kizuna on [bold]http://{host}:{port}/[/bold]: {', '.join(parts)} (Ctrl+C to stop)"
    )
    uvicorn.run(
        "kizuna.api:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        # The request middleware logs every request (with its id); uvicorn's
        # access line would only repeat it, and costs CPU even when filtered.
        access_log=False,
        server_header=False,
    )


# Feature areas register their own commands (kept in their own modules).
from kizuna import (  # noqa: E402
    cli_advocacy,
    cli_analytics,
    cli_automation,
    cli_ops,
    cli_programme,
    cli_recommend,
    cli_success,
    cli_voice,
    cli_web,
)

for _area in (
    cli_analytics,
    cli_automation,
    cli_programme,
    cli_web,
    cli_voice,
    cli_advocacy,
    cli_recommend,
    cli_success,
    cli_ops,
):
    _area.register(app)

if __name__ == "__main__":  # pragma: no cover
    # Run the copy imported as ``kizuna.cli``, not this ``__main__`` copy, so
    # that feature modules importing ``kizuna.cli`` see the parsed options.
    from kizuna.cli import run as _run

    _run()
