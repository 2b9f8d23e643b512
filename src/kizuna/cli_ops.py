"""CLI commands of privacy, backup and restore, and deployment checks."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root ``kizuna`` app."""
