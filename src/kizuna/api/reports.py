"""/v1/reports/monthly: the monthly loyalty report as HTML or PDF.

Rendered on request by :mod:`kizuna.reports` (seconds to a minute on large
workspaces; for a mailing list, prefer the ``send_report`` journey action or
``kizuna report`` from cron).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from kizuna.api.deps import CtxDep, allow
from kizuna.reports import data as report_data
from kizuna.reports import monthly

router = APIRouter(tags=["reports"])


@router.get(
    "/reports/monthly",
    dependencies=[allow("read")],
    summary="The monthly loyalty report of a month (self-contained HTML, or PDF)",
    responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
)
def monthly_report(
    ctx: CtxDep,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
    lang: Annotated[Literal["ja", "en"], Query()] = "ja",
    format: Annotated[Literal["html", "pdf"], Query()] = "html",
) -> Response:
    first = report_data.parse_month(month)
    html = monthly.render_html(report_data.collect(ctx, first), lang)
    name = monthly.default_name(first, lang, pdf=format == "pdf")
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "html":
        return HTMLResponse(html, headers=disposition)
    with tempfile.TemporaryDirectory() as folder:
        pdf = monthly.render_pdf(html, Path(folder) / name).read_bytes()
    return Response(pdf, media_type="application/pdf", headers=disposition)
