"""CLI commands of the dashboard (users and roles)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the dashboard commands to the main ``kizuna`` app."""
