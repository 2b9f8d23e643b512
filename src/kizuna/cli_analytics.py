"""CLI commands of loyalty analytics (score, kpi, rfm, matrix, cohorts, clv, ...)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the analytics commands to the main ``kizuna`` app."""
