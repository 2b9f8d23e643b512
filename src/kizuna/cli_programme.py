"""CLI commands of the loyalty programme engine (program, points, coupons, member)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the programme commands to the main ``kizuna`` app."""
