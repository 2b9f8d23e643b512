"""Creating and migrating workspaces."""

from __future__ import annotations

from pathlib import Path

import tomli_w

from kizuna.bootstrap import Context, open_context
from kizuna.config import CONFIG_FILE, load_settings
from kizuna.errors import WorkspaceError
from kizuna.store import schema


def init_workspace(
    directory: str | Path,
    *,
    timezone: str | None = None,
    currency: str | None = None,
    database_url: str | None = None,
) -> Context:
    """Make ``directory`` a workspace: write ``kizuna.toml`` and create the schema.

    Running it on an existing workspace only upgrades the schema; it never
    rewrites settings a person has edited.
    """
    ws = Path(directory).resolve()
    ws.mkdir(parents=True, exist_ok=True)
    config = ws / CONFIG_FILE
    if not config.exists():
        values: dict[str, str] = {}
        if timezone:
            values["timezone"] = timezone
        if currency:
            values["currency"] = currency
        if database_url:
            values["database_url"] = database_url
        # Validate before writing so a bad value never lands in the file.
        load_settings(ws, env={}, overrides=values)
        body = {
            "timezone": values.get("timezone", "Asia/Tokyo"),
            "currency": values.get("currency", "JPY"),
        }
        if "database_url" in values:
            body["database_url"] = values["database_url"]
        header = (
            "# Kizuna workspace settings. Every setting can also come from a\n"
            "# KIZUNA_<NAME> environment variable, which wins over this file.\n"
            "# `kizuna settings` lists them all with their help.\n"
        )
        config.write_text(header + tomli_w.dumps({"kizuna": body}), encoding="utf-8")
    elif timezone or currency or database_url:
        raise WorkspaceError(
            f"{config} already exists; edit it to change settings instead of passing them to init"
        )
    ctx = open_context(ws)
    schema.upgrade(ctx.engine)
    return ctx


def upgrade_database(ctx: Context, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the schema; returns the revision before and after."""
    before = schema.current_revision(ctx.engine)
    schema.upgrade(ctx.engine, revision)
    return before, schema.current_revision(ctx.engine)
