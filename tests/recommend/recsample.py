"""Helpers shared by the recommendation tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from kizuna.bootstrap import Context
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths

#: The day after the generator's default last day.
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def load(ctx: Context, folder: Path) -> None:
    import_paths(ctx, ImportFiles(files_in_folder(folder)))
