"""/v1/imports: batch ingestion of customers, orders, events, survey answers, contacts, ...

Two ways in, one importer: a JSON body with a list of records per kind, or
one uploaded file (CSV, JSON Lines or Parquet, the formats of ``kizuna
import``). Both are written to the workspace's ``imports/`` folder (the
audit copy the dashboard's upload keeps too) and loaded by
:mod:`kizuna.services.imports` in one transaction: **all or nothing**. When
any row is bad nothing is written and the 422 answer lists every bad row
with its kind, line (the record's position in its list, from 1, for JSON
bodies) and reason, so a client can fix them all in one go.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, File, Path, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kizuna.api.auth import ApiKey
from kizuna.api.deps import CtxDep, allow, write
from kizuna.api.errors import problem
from kizuna.bootstrap import Context
from kizuna.errors import ImportRejected, ValidationError
from kizuna.ingest.importer import ImportOptions
from kizuna.ingest.kinds import KINDS, import_order
from kizuna.ingest.problems import ImportReport
from kizuna.ingest.readers import CSV_SUFFIXES, JSONL_SUFFIXES, PARQUET_SUFFIXES
from kizuna.services import imports

router = APIRouter(tags=["ingestion"])
#: Records per request: bigger loads belong in files (``kizuna import``).
MAX_RECORDS = 50_000
Records = Annotated[list[dict[str, Any]] | None, Field(None, max_length=MAX_RECORDS)]


class ImportIn(BaseModel):
    """Records per kind; every kind is optional. Columns as in docs (``kizuna import``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customers": [
                        {"customer_id": "C1", "name": "山田 太郎", "email": "taro@example.jp"}
                    ],
                    "orders": [
                        {
                            "order_id": "O1",
                            "customer_id": "C1",
                            "ordered_at": "2026-11-20T12:00:00+09:00",
                            "total_amount": 4800,
                        }
                    ],
                    "events": [
                        {
                            "event_id": "E1",
                            "customer_id": "C1",
                            "type": "page_view",
                            "occurred_at": "2026-11-21T09:00:00+09:00",
                            "page": "/products/42",
                        }
                    ],
                    "survey_answers": [
                        {
                            "answer_id": "A1",
                            "customer_id": "C1",
                            "kind": "nps",
                            "score": 9,
                            "answered_at": "2026-11-22T10:00:00+09:00",
                        }
                    ],
                    "contacts": [
                        {
                            "contact_id": "T1",
                            "customer_id": "C1",
                            "touchpoint": "call_centre",
                            "opened_at": "2026-11-23T10:00:00+09:00",
                        }
                    ],
                }
            ]
        },
    )
    accounts: Records = None
    customers: Records = None
    consents: Records = None
    categories: Records = None
    products: Records = None
    orders: Records = None
    order_lines: Records = None
    returns: Records = None
    events: Records = None
    survey_answers: Records = None
    contacts: Records = None
    community_events: Records = None
    community_activity: Records = None
    trainings: Records = None
    reviews: Records = None
    referrals: Records = None


class KindResult(BaseModel):
    rows_read: int
    inserted: int
    updated: int
    unchanged: int


class ImportOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "committed": True,
                    "summary": "imported: 5 new, 0 updated, 0 unchanged",
                    "kinds": {
                        "orders": {"rows_read": 1, "inserted": 1, "updated": 0, "unchanged": 0}
                    },
                    "notes": [],
                }
            ]
        }
    )
    committed: bool
    summary: str
    kinds: dict[str, KindResult]
    notes: list[str]


def _folder(ctx: Context, label: str) -> FilePath:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    folder = FilePath(ctx.settings.workspace) / "imports" / f"{stamp}-{label}-api"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _result(report: ImportReport) -> dict[str, Any]:
    return {
        "committed": report.committed,
        "summary": report.summary_line(),
        "kinds": {
            kind: {
                "rows_read": s.rows_read,
                "inserted": s.inserted,
                "updated": s.updated,
                "unchanged": s.unchanged,
            }
            for kind, s in report.stats.items()
        },
        "notes": report.notes,
    }


def _rejected(exc: ImportRejected, kind_of: dict[str, str]) -> JSONResponse:
    report = exc.report
    assert isinstance(report, ImportReport)
    rows = [
        {
            "kind": kind_of.get(FilePath(p.file).name, FilePath(p.file).stem),
            "line": p.line,
            "unit": p.unit,
            "column": p.column,
            "reason": p.reason,
            "value": p.value,
        }
        for p in report.problems
    ]
    shown = "; ".join(
        f"{r['kind']} line {r['line']}"
        + (f" {r['column']}" if r["column"] else "")
        + f": {r['reason']}"
        for r in rows[:5]
    )
    more = f" (and {len(rows) - 5} more in `problems`)" if len(rows) > 5 else ""
    return problem(
        422,
        "import-rejected",
        f"nothing imported: {len(rows):,} problem(s); fix them and send the batch again. "
        f"{shown}{more}",
        problems=rows,
    )


def _run(
    ctx: Context, files: list[tuple[str, list[FilePath]]], kind_of: dict[str, str]
) -> JSONResponse:
    command = imports.ImportFiles(files, ImportOptions())
    ctx.require_current_schema()
    try:
        report = write(ctx, lambda uow: imports.handle(command, uow))
    except ImportRejected as exc:
        return _rejected(exc, kind_of)
    return JSONResponse(_result(report), status_code=201)


@router.post(
    "/imports",
    status_code=201,
    response_model=ImportOut,
    summary="Ingest records of one or more kinds, all or nothing",
    description="Kinds are loaded in dependency order (customers before their orders), in "
    "one transaction. Records are upserted by their id (`order_id`, `event_id`, ...), so "
    "sending a batch again changes nothing. On any bad row nothing is written and the 422 "
    "lists every problem: `kind`, `line` (position in that kind's list, from 1), `column`, "
    "`reason`.",
)
def import_records(
    body: ImportIn, ctx: CtxDep, _: Annotated[ApiKey, allow("ingest")]
) -> JSONResponse:
    given = {k: v for k, v in body.model_dump().items() if v}
    if not given:
        raise ValidationError(
            f"nothing to import: send at least one non-empty list of records, one of "
            f"{', '.join(KINDS)}"
        )
    total = sum(len(v) for v in given.values())
    if total > MAX_RECORDS:
        raise ValidationError(
            f"{total:,} records in one request; send at most {MAX_RECORDS:,} "
            "(split the batch, or upload a file with `kizuna import`)"
        )
    folder = _folder(ctx, "records")
    files: list[tuple[str, list[FilePath]]] = []
    kind_of: dict[str, str] = {}
    for kind in import_order():
        if kind not in given:
            continue
        path = folder / f"{kind}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for record in given[kind]:
                out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        files.append((kind, [path]))
        kind_of[path.name] = kind
    return _run(ctx, files, kind_of)


UPLOAD_SUFFIXES = CSV_SUFFIXES | JSONL_SUFFIXES | PARQUET_SUFFIXES


@router.post(
    "/imports/{kind}/file",
    status_code=201,
    response_model=ImportOut,
    summary="Ingest one uploaded file (CSV, JSON Lines or Parquet) of one kind, all or nothing",
    description="Send `multipart/form-data` with the file in the field `file`; its name's "
    "suffix says the format (.csv, .tsv, .jsonl, .parquet). The encoding (UTF-8, "
    "Shift_JIS, ...) is detected. Problems give the file's line (or Parquet row).",
)
def import_file(
    kind: Annotated[
        str, Path(min_length=1, max_length=40, description=f"One of {', '.join(KINDS)}.")
    ],
    file: Annotated[UploadFile, File(description="The file to import.")],
    ctx: CtxDep,
    _: Annotated[ApiKey, allow("ingest")],
) -> JSONResponse:
    if kind not in KINDS:
        raise ValidationError(f"unknown import kind {kind!r}; use one of {', '.join(KINDS)}")
    original = FilePath(file.filename or "upload").name
    suffix = FilePath(original).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValidationError(
            f"cannot tell the format of {original!r}; name the file with one of "
            f"{', '.join(sorted(UPLOAD_SUFFIXES))}"
        )
    folder = _folder(ctx, kind)
    stem = re.sub(r"[^\w.\-]+", "_", original)[-100:] or "upload"
    path = folder / f"{kind}-{stem}"
    with path.open("wb") as out:
        shutil.copyfileobj(file.file, out)
    return _run(ctx, [(kind, [path])], {path.name: kind})
