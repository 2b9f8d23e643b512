"""Data: upload an import file, see its validation report, list past imports."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from kizuna.errors import ImportRejected, KizunaError
from kizuna.ingest.importer import ImportOptions
from kizuna.ingest.kinds import KINDS, import_order
from kizuna.ingest.problems import ImportReport
from kizuna.ingest.readers import CSV_SUFFIXES, JSONL_SUFFIXES, PARQUET_SUFFIXES
from kizuna.services.import_runs import recent_import_runs
from kizuna.services.imports import ImportFiles, import_paths
from kizuna.services.users import User, record_audit
from kizuna.web.auth import AnyUser, Editor, context_of
from kizuna.web.export import csv_response
from kizuna.web.nav import EDITORS
from kizuna.web.pages_common import problem_text
from kizuna.web.render import render, translator

router = APIRouter()
log = logging.getLogger(__name__)
UPLOAD_SUFFIXES = CSV_SUFFIXES | PARQUET_SUFFIXES | JSONL_SUFFIXES
#: The report page lists this many problems; the report.csv keeps them all.
SHOWN_PROBLEMS = 2000


def _page(request: Request, user: User, status: int = 200, **extra: Any) -> Response:
    ctx = context_of(request)
    return render(
        request,
        "data.html",
        status,
        runs=recent_import_runs(ctx.engine, 50),
        kinds=[k for k in import_order() if k in KINDS],
        can_upload=user.role in EDITORS,
        suffixes=sorted(UPLOAD_SUFFIXES),
        shown_problems=SHOWN_PROBLEMS,
        **extra,
    )


@router.get("/data")
def data_page(request: Request, user: AnyUser) -> Response:
    return _page(request, user)


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^\w.\-]+", "_", Path(name).name)[-100:]
    return stem or "upload"


@router.post("/data/upload")
def upload(
    request: Request,
    user: Editor,
    kind: Annotated[str, Form()],
    file: Annotated[UploadFile, File()],
    skip_bad: Annotated[bool, Form()] = False,
) -> Response:
    """Keep the file in the workspace, import it, and show what the import found."""
    ctx = context_of(request)
    original = Path(file.filename or "upload").name
    suffix = Path(original).suffix.lower()
    if kind not in KINDS:
        return _page(request, user, 400, upload_error="data.error_kind")
    if suffix not in UPLOAD_SUFFIXES:
        return _page(request, user, 400, upload_error="data.error_format")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    folder = Path(ctx.settings.workspace) / "imports" / f"{stamp}-{kind}-web"
    folder.mkdir(parents=True, exist_ok=True)
    # The kind's name leads the file name: the readers and files_in_folder
    # recognise the kind and format from it.
    path = folder / f"{kind}-{_safe_name(original)}"
    with path.open("wb") as out:
        shutil.copyfileobj(file.file, out)
    options = ImportOptions(skip_bad=skip_bad, rejects_dir=folder)
    report: ImportReport
    try:
        report = import_paths(ctx, ImportFiles([(kind, [path])], options, report_dir=folder))
    except ImportRejected as exc:
        report = exc.report  # type: ignore[assignment]
    except KizunaError as exc:
        log.info("dashboard upload of %s failed: %s", kind, exc)
        return _page(
            request, user, 400, upload_error="data.error_unreadable", upload_message=str(exc)
        )
    stats = report.stats.get(kind)
    record_audit(
        ctx.engine,
        user.username,
        "import",
        {
            "kind": kind,
            "committed": report.committed,
            "problems": len(report.problems),
            "rows_read": stats.rows_read if stats else 0,
        },
    )
    problems = [
        {
            "file": original if Path(p.file).name == path.name else Path(p.file).name,
            "line": p.line,
            "unit": p.unit,
            "column": p.column,
            "reason": problem_text(p, translator(request)),
            "value": p.value,
        }
        for p in report.problems[:SHOWN_PROBLEMS]
    ]
    return _page(
        request,
        user,
        200 if report.committed else 422,
        report=report,
        stats=stats,
        problems=problems,
        uploaded=original,
        uploaded_kind=kind,
    )


@router.get("/data/runs.csv")
def runs_csv(request: Request, user: AnyUser) -> Response:
    ctx = context_of(request)

    def rows() -> Iterator[tuple[Any, ...]]:
        for r in recent_import_runs(ctx.engine, 10_000):
            yield (
                r.id,
                r.kind,
                " ".join(Path(f).name for f in r.files),
                r.started_at.isoformat(),
                r.finished_at.isoformat() if r.finished_at else None,
                r.status,
                r.rows_read,
                r.rows_inserted,
                r.rows_updated,
                r.rows_unchanged,
                r.rows_rejected,
            )

    header = (
        "run",
        "kind",
        "files",
        "started_at",
        "finished_at",
        "status",
        "rows_read",
        "inserted",
        "updated",
        "unchanged",
        "rejected",
    )
    return csv_response(ctx.engine, user, "import_runs", header, rows())
