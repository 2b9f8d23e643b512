"""CLI commands of B2B intent, health scores, touch models and the monthly report."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root ``kizuna`` app."""
