"""CSV exports of dashboard tables, with personal data masked by role and every
export written to the audit log (what, how many rows, masked or not; never
the data itself nor the search text, which may be an e-mail address)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi.responses import StreamingResponse

from kizuna.services.users import User, record_audit

log = logging.getLogger(__name__)


def _lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str | int]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        count += 1
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
    yield count


def csv_response(
    engine: sa.Engine,
    user: User,
    table: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    detail: dict[str, Any] | None = None,
) -> StreamingResponse:
    """Stream ``rows`` as a UTF-8 CSV (with BOM, so Excel reads Japanese) and audit it."""
    masked = not user.sees_personal_data

    def body() -> Iterator[bytes]:
        yield "\ufeff".encode()
        for part in _lines(header, rows):
            if isinstance(part, int):
                info = {"table": table, "rows": part, "masked": masked, **(detail or {})}
                record_audit(engine, user.username, "export", info)
                log.info(
                    "export of %s by %s: %d rows, masked=%s", table, user.username, part, masked
                )
            else:
                yield part.encode("utf-8")

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="kizuna-{table}-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
