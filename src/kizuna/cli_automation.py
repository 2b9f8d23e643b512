"""CLI commands of segments and marketing automation (segment, journey, worker, measures)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the automation commands to the main ``kizuna`` app."""
