"""Render the monthly loyalty report: one self-contained HTML file, optionally a PDF.

The HTML carries its CSS inline and its charts as inline SVG, so it opens
anywhere without a network (a mail attachment, an archive, an intranet).
Every number is also written as a ``data-value`` attribute next to its
formatted text, so tests and scripts can check it against the analytics.
The PDF is the same HTML printed by headless Chromium.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import jinja2

from kizuna.reports import charts
from kizuna.reports.data import ReportData, loyal_count, previous_month
from kizuna.web.i18n import LANGUAGES, Translator

TEMPLATES = Path(__file__).parent / "templates"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PERCENT_KPIS = {"csat", "repeat_rate", "retention_rate", "churn_rate"}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


def number(value: Any, kpi: str | None = None, signed: bool = False) -> str:
    """A KPI value as people read it: percentages for rates, one decimal otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    v = float(value)
    sign = "+" if signed and v > 0 else ""
    if kpi in PERCENT_KPIS:
        return f"{sign}{v * 100:.1f}{' pt' if signed else '%'}"
    if kpi in ("loyal_customers", "count"):
        return f"{sign}{v:,.0f}"
    return f"{sign}{v:,.1f}"


def _label(t: Translator, prefix: str, key: str) -> str:
    return t(f"{prefix}.{key}") if t.has(f"{prefix}.{key}") else key


def commentary(data: ReportData, t: Translator) -> dict[str, list[dict[str, Any]]]:
    """Sentences about what went up and what went down, from :attr:`ReportData.changes`."""
    out: dict[str, list[dict[str, Any]]] = {"up": [], "down": [], "flat": []}
    for c in data.changes:
        text = t(
            f"success.report.change_{c['direction']}",
            metric=t(f"success.report.kpi.{c['kpi']}"),
            before=number(c["before"], c["kpi"]),
            now=number(c["now"], c["kpi"]),
            delta=number(c["delta"], c["kpi"], signed=True),
        )
        out[c["direction"]].append({"text": text, "good": c["good"], "kpi": c["kpi"]})
    return out


def render_html(data: ReportData, lang: str = "ja") -> str:
    """The report as one HTML document in ``lang`` (ja or en)."""
    if lang not in LANGUAGES:
        from kizuna.errors import ValidationError

        raise ValidationError(f"--lang {lang!r}: choose one of {', '.join(LANGUAGES)}")
    t = Translator(lang)
    kpis = data.kpis
    months = [str(m) for m in kpis["month"]]
    nps_chart = charts.line_chart(
        months, {t("success.report.kpi.nps"): list(kpis["nps"])}, t("success.report.kpi_chart")
    )
    rate_chart = charts.line_chart(
        months,
        {
            t(f"success.report.kpi.{k}"): [None if v is None else 100 * float(v) for v in kpis[k]]
            for k in ("repeat_rate", "retention_rate", "churn_rate")
            if k in kpis.columns
        },
        t("success.report.rate_chart"),
    )
    stages = data.stages
    stage_chart = charts.stacked_bars(
        [str(i) for i in stages.index],
        {t(f"success.report.stage.{s}"): list(stages[s]) for s in stages.columns},
        t("success.report.stage_chart"),
    )
    kpi_columns = [
        c for c in ("nps", "csat", "ces", "repeat_rate", "retention_rate", "churn_rate")
        if c in kpis.columns
    ]  # fmt: skip
    template = _env.get_template("monthly.html")
    return template.render(
        t=t,
        lang=lang,
        data=data,
        month=data.label,
        previous=f"{previous_month(data.month):%Y-%m}",
        generated=data.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        kpi_rows=kpis.to_dict("records"),
        kpi_columns=kpi_columns,
        nps_chart=nps_chart,
        rate_chart=rate_chart,
        stage_chart=stage_chart,
        loyal_now=loyal_count(stages, data.label),
        flows=data.flows,
        cohorts=data.cohorts,
        comments=commentary(data, t),
        number=number,
        label=lambda prefix, key: _label(t, prefix, key),
        isnan=lambda v: v is None or (isinstance(v, float) and math.isnan(v)),
    )


def render_pdf(html: str, out: Path) -> Path:
    """Print ``html`` to ``out`` as an A4 PDF with headless Chromium (no network needed)."""
    from kizuna.errors import ConfigError

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ConfigError(
            "PDF printing needs Playwright: pip install 'kizuna[pdf]' (the HTML report needs nothing)"
        ) from None
    if not Path(CHROMIUM).exists():
        raise ConfigError(
            f"PDF printing needs Chromium at {CHROMIUM} (Debian/Ubuntu: apt install chromium)"
        )

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content(html, wait_until="load")
            page.pdf(
                path=str(out), format="A4", print_background=True,
                margin={"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"},
            )  # fmt: skip
        finally:
            browser.close()
    return out


def default_name(month: date, lang: str, pdf: bool = False) -> str:
    return f"kizuna-loyalty-report-{month:%Y-%m}-{lang}.{'pdf' if pdf else 'html'}"
