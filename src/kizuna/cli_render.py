"""Rich renderings of service results for the terminal.

Kept apart from :mod:`kizuna.cli` so commands stay short and the same
renderings can serve ``--json``-less scripting and docs.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from kizuna.config import Settings
from kizuna.domain.money import format_money
from kizuna.services.customers import Customer360
from kizuna.services.summary import Summary


def _money(minor: int, settings: Settings) -> str:
    return format_money(minor, settings.currency, settings.currency_exponent)


def render_customer_360(result: Customer360, console: Console, settings: Settings) -> None:
    """Profile, consents, totals and the merged timeline, newest first."""
    p, s = result.profile, result.profile.stats
    title = f"{p.name or '(no name)'}  [dim]{p.customer_id}[/dim]"
    profile = Table.grid(padding=(0, 2))
    profile.add_column(style="bold")
    profile.add_column()
    for label, value in (
        ("email", p.email),
        ("phone", p.phone),
        ("birthday", p.birthday),
        ("gender", p.gender),
        ("region", p.region),
        ("occupation", p.occupation),
        ("language", p.language),
        (
            "signed up",
            p.signup_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if p.signup_at else None,
        ),
        ("account", f"{p.account_name} ({p.account_id})" if p.account_id else None),
    ):
        if value not in (None, ""):
            profile.add_row(label, str(value))
    for key, value in sorted(p.attributes.items()):
        profile.add_row(f"attr.{key}", str(value))
    if p.consents:
        profile.add_row(
            "consent",
            ", ".join(f"{c.channel} {'yes' if c.granted else 'no'}" for c in p.consents.values()),
        )
    console.rule(title)
    console.print(profile)
    fmt = "%Y-%m-%d"
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column()
    cancelled = f" (+{s.cancelled_orders} cancelled)" if s.cancelled_orders else ""
    for label, value in (
        ("orders", f"{s.orders:,}{cancelled}"),
        (
            "revenue (net)",
            f"{_money(s.revenue, settings)} after {_money(s.refunds, settings)} refunds",
        ),
        (
            "first / last order",
            " / ".join(
                d.astimezone(settings.tz).strftime(fmt) if d else "-"
                for d in (s.first_order_at, s.last_order_at)
            ),
        ),
        (
            "surveys",
            f"{s.surveys_answered}"
            + (f", latest NPS {s.latest_nps}" if s.latest_nps is not None else ""),
        ),
        ("contacts / reviews / referrals", f"{s.contacts} / {s.reviews} / {s.referrals_made}"),
    ):
        totals.add_row(label, value)
    console.print(totals)
    timeline = Table(
        "when", "what", "", title=f"timeline ({settings.timezone})", title_justify="left"
    )
    for item in result.timeline:
        timeline.add_row(item.local_at.strftime("%Y-%m-%d %H:%M"), item.kind, item.title)
    console.print(timeline)
    if result.has_more and result.next_before is not None:
        console.print(f"[dim]more: --before {result.next_before.isoformat()}[/dim]")


def render_summary(summary: Summary, console: Console, settings: Settings) -> None:
    """Row counts, the order period and revenue by local month."""
    counts = Table("table", "rows", title="what is in the workspace", title_justify="left")
    for name, rows in summary.counts.items():
        counts.add_row(name, f"{rows:,}")
    console.print(counts)
    if summary.first_order_on is None:
        console.print("no orders yet")
        return
    console.print(
        f"orders from {summary.first_order_on} to {summary.last_order_on} "
        f"({settings.timezone}); {summary.customers_with_orders:,} customers bought; "
        f"revenue {_money(summary.revenue, settings)} net of "
        f"{_money(summary.refunds, settings)} refunds"
    )
    months = Table(
        "month", "orders", "gross", "refunds", "net", title="revenue by month", title_justify="left"
    )
    for m in summary.revenue_by_month:
        months.add_row(
            m.month.strftime("%Y-%m"),
            f"{m.orders:,}",
            _money(m.gross, settings),
            _money(m.refunds, settings),
            _money(m.net, settings),
        )
    console.print(months)
