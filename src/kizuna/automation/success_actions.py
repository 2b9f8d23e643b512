"""Journey action ``send_report``: mail the monthly loyalty report to a person.

Put the recipients (managers, the CS team) in a segment and run a journey
with a date trigger on the first of every month::

    steps:
      - action: send_report
        lang: ja          # or en
        month: previous   # or a fixed YYYY-MM
        pdf: true         # also attach the PDF printed by Chromium

The message carries a short text summary (what went up, what went down) and
the self-contained HTML report as an attachment. It is an external action:
the runner records it in the send ledger before sending, so a crash or a
retry never mails the same report twice under the same step. It is an
internal report to staff, not marketing: no marketing consent is needed,
frequency caps and quiet hours do not apply, but an email address is.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any

from kizuna.automation.actions import ActionContext, Outcome, register_action
from kizuna.automation.channels.email import SMTPSender
from kizuna.domain.clock import local_date
from kizuna.errors import JourneyError, KizunaError, ValidationError


class SendReport:
    """Mail the monthly loyalty report (HTML attached, PDF optional)."""

    name = "send_report"
    external = True
    marketing = False

    def __init__(self) -> None:
        self.sender = SMTPSender()

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        from kizuna.reports.data import parse_month

        if params.get("lang", "ja") not in ("ja", "en"):
            raise JourneyError(f"journey {path}/lang: send_report lang is ja or en")
        month = params.get("month", "previous")
        if month != "previous":
            try:
                parse_month(str(month))
            except ValidationError:
                raise JourneyError(
                    f"journey {path}/month: 'previous' or a month such as 2026-10"
                ) from None
        if not isinstance(params.get("pdf", False), bool):
            raise JourneyError(f"journey {path}/pdf: true or false")
        subject = params.get("subject")
        if subject is not None and (not isinstance(subject, str) or not subject.strip()):
            raise JourneyError(f"journey {path}/subject: a non-empty text")

    def compose(self, ctx: ActionContext) -> EmailMessage:
        """The report message for this step (collects and renders the report)."""
        from kizuna.bootstrap import Context
        from kizuna.reports import data as report_data
        from kizuna.reports import monthly
        from kizuna.web.i18n import Translator

        params = ctx.params
        lang = str(params.get("lang", "ja"))
        month_text = str(params.get("month", "previous"))
        first = (
            report_data.previous_month(local_date(ctx.now, ctx.tz))
            if month_text == "previous"
            else report_data.parse_month(month_text)
        )
        reading = Context(ctx.settings)
        try:
            collected = report_data.collect(reading, first)
        finally:
            reading.dispose()
        html = monthly.render_html(collected, lang)
        t = Translator(lang)
        msg = EmailMessage()
        msg["Subject"] = str(params.get("subject") or f"{t('success.report.title')} {first:%Y-%m}")
        msg["From"] = ctx.settings.email_from
        msg["To"] = formataddr(
            (str(ctx.customer.get("name") or ""), str(ctx.customer["email"])), charset="utf-8"
        )
        domain = parseaddr(ctx.settings.email_from)[1].partition("@")[2] or "kizuna.local"
        digest = hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:32]
        msg["Message-ID"] = f"<{digest}@{domain}>"
        notes = monthly.commentary(collected, t)
        lines = [f"{t('success.report.title')} {first:%Y-%m}", ""]
        for key, title in (("up", "success.report.what_up"), ("down", "success.report.what_down")):
            lines.append(t(title))
            lines.extend(f"- {c['text']}" for c in notes[key])
            lines.append("")
        msg.set_content("\n".join(lines), charset="utf-8")
        name = monthly.default_name(first, lang)
        msg.add_attachment(html.encode("utf-8"), maintype="text", subtype="html", filename=name)
        if params.get("pdf"):
            with tempfile.TemporaryDirectory() as folder:
                pdf = monthly.render_pdf(html, Path(folder) / "report.pdf")
                msg.add_attachment(
                    pdf.read_bytes(), maintype="application", subtype="pdf",
                    filename=monthly.default_name(first, lang, pdf=True),
                )  # fmt: skip
        return msg

    def perform(self, ctx: ActionContext) -> Outcome:
        if not ctx.customer.get("email"):
            return Outcome("skipped", "no email address")
        try:
            msg = self.compose(ctx)
        except KizunaError as exc:  # no data for the month: nothing to send, say why
            return Outcome("skipped", str(exc)[:500])
        self.sender.send(ctx.settings, msg)
        return Outcome("sent", message_id=str(msg["Message-ID"]))


register_action(SendReport())
