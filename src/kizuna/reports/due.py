"""``loyalty_report_due``: the monthly event a report-mailing journey starts on.

Journeys trigger on events, not on calendar months, so a daily cron job
announces the report month to the recipients (the members of a segment of
staff records)::

    5 7 * * *  kizuna report-due report-recipients

Each recipient gets one ``loyalty_report_due`` event per report month (keyed
by month and person), however often the job runs; a journey with
``trigger: {event: loyalty_report_due}`` and a ``send_report`` step mails it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from kizuna.services.events import record_event

if TYPE_CHECKING:
    from kizuna.bootstrap import Context


def announce(ctx: Context, segment: str, month: date, now: datetime | None = None) -> int:
    """Record the due event of ``month`` for every member of ``segment``; returns how many were new."""
    from kizuna.services import segments
    from kizuna.services.uow import UnitOfWork

    moment = now or datetime.now(UTC)
    uow = UnitOfWork(ctx.engine, ctx.settings)
    with uow:
        _, definition = segments.get_definition(segment, uow)
    recipients = segments.evaluate(definition, UnitOfWork(ctx.engine, ctx.settings), moment)
    label = f"{month:%Y-%m}"
    new = 0
    with ctx.engine.begin() as conn:
        for customer_id in recipients:
            new += record_event(
                conn, key=f"loyalty_report_due:{label}:{customer_id}", customer_id=customer_id,
                type="loyalty_report_due", occurred_at=moment,
                properties={"month": label, "segment": segment},
            )  # fmt: skip
    return new
