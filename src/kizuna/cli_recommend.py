"""CLI commands of recommendations and next-best offers.

``kizuna recommend evaluate`` prints how each model does on a time split
against the popularity baseline; ``kizuna recommend fit`` stores a run that
templates, the API and the dashboard read; ``kizuna recommend show`` prints
one customer's list. ``kizuna offers`` manages offers and chooses the next
best one per customer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from typing import Annotated, Any

import typer
from rich.table import Table

recommend_app = typer.Typer(
    help="Product recommendations: evaluate models, fit and store a run, show a customer's list.",
    no_args_is_help=True,
)
offers_app = typer.Typer(
    help="Next-best offers: define offers, choose the best per customer, assign in batches.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Use purchases before this day (YYYY-MM-DD; default: now)."),
]


def _as_of(value: str | None) -> datetime | None:
    from datetime import date

    from kizuna.errors import ValidationError

    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"--as-of={value!r} is not a date; use YYYY-MM-DD") from None
    return datetime.combine(day, time(0), tzinfo=UTC)


def _print_json(doc: Any) -> None:
    from kizuna.cli import console

    console.print_json(json.dumps(doc, default=str, ensure_ascii=False))


def _progress(enabled: bool) -> Any:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from kizuna.cli import console

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True, disable=not enabled,
    )  # fmt: skip


def _metrics_table(models: dict[str, dict[str, Any]], k: int) -> Table:
    base = models.get("popular", {}).get("precision", 0.0)
    table = Table(
        "model", f"precision@{k}", f"recall@{k}", f"NDCG@{k}", "vs popularity", "customers"
    )
    for name, m in models.items():
        lift = f"{m['precision'] / base - 1:+.0%}" if base and name != "popular" else "baseline"
        table.add_row(
            name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['ndcg']:.4f}", lift,
            f"{m['users']:,}",
        )  # fmt: skip
    return table


@recommend_app.command("evaluate")
def evaluate_cmd(
    as_of: AsOfOpt = None,
    holdout_days: Annotated[
        int | None, typer.Option(help="Days held out (default: recommend_holdout_days).")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="List length to evaluate.")] = 10,
    als: Annotated[bool, typer.Option("--als/--no-als", help="Also evaluate ALS.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate item-to-item (and ALS) against popularity on a time split: precision, recall, NDCG@k."""
    from kizuna.cli import _ctx, console
    from kizuna.services import recommendations

    ctx = _ctx()
    ctx.require_current_schema()
    with _progress(not as_json) as bar:
        task = bar.add_task("starting", total=None)
        report = recommendations.evaluation_report(
            ctx, _as_of(as_of), k=k, holdout_days=holdout_days, with_als=als,
            progress=lambda step, what: bar.update(task, description=f"[bold]{step}[/bold] {what}"),
        )  # fmt: skip
    doc = report.to_dict()
    if as_json:
        _print_json(doc)
        return
    console.print(
        f"trained on purchases before {report.cut:%Y-%m-%d}, tested on the "
        f"{report.holdout_days} days after (products new to each customer)"
    )
    console.print(_metrics_table(doc["models"], k))
    console.print(f"model used by `kizuna recommend fit`: [bold]{report.chosen}[/bold]")


@recommend_app.command("fit")
def fit_cmd(
    as_of: AsOfOpt = None,
    model: Annotated[
        str, typer.Option(help="auto (ALS only if it beats item-to-item), similar or als.")
    ] = "auto",
    per_customer: Annotated[
        int | None, typer.Option("--per-customer", help="Products per customer.")
    ] = None,
    als: Annotated[
        bool, typer.Option("--als/--no-als", help="Evaluate the ALS challenger.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate, fit the chosen model and store every buyer's top N as a new run."""
    from kizuna.cli import _ctx, console
    from kizuna.services import recommendations

    ctx = _ctx()
    ctx.require_current_schema()
    with _progress(not as_json) as bar:
        task = bar.add_task("starting", total=None)
        run = recommendations.fit(
            ctx, _as_of(as_of), model=model, per_customer=per_customer, with_als=als,
            progress=lambda step, what: bar.update(task, description=f"[bold]{step}[/bold] {what}"),
        )  # fmt: skip
    if as_json:
        _print_json({k: v for k, v in run.__dict__.items() if k != "popular"})
        return
    console.print(
        f"recommendation run [bold]{run.id}[/bold] ({run.model}): top {run.per_customer} "
        f"for {run.customers:,} customers over {run.products:,} products"
        + (f", scoring run {run.scoring_run_id}" if run.scoring_run_id else "")
    )
    if "models" in run.evaluation:
        console.print(_metrics_table(run.evaluation["models"], run.evaluation["k"]))
    elif "skipped" in run.evaluation:
        console.print(f"[yellow]not evaluated:[/yellow] {run.evaluation['skipped']}")
    timings = Table("step", "seconds")
    for key, value in run.timings.items():
        timings.add_row(key, f"{value:.2f}")
    console.print(timings)


@recommend_app.command("show")
def show_cmd(
    customer: Annotated[str, typer.Argument(help="Customer id (external), e.g. C0000001.")],
    n: Annotated[int, typer.Option("-n", help="How many products.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Print a customer's recommended products from the latest run."""
    from kizuna.cli import _ctx, console
    from kizuna.services import recommendations

    ctx = _ctx()
    ctx.require_current_schema()
    with ctx.engine.connect() as conn:
        recommendations.require_latest_run(conn)
        items = recommendations.recommendations_for(
            conn, recommendations.customer_id_of(conn, customer), n
        )
    if as_json:
        _print_json([i.to_dict() for i in items])
        return
    table = Table("rank", "product", "name", "price", "score", "source")
    for i in items:
        table.add_row(
            str(i.rank), i.product_id, i.name, "" if i.price is None else f"{i.price:,}",
            f"{i.score:.3f}", i.source,
        )  # fmt: skip
    console.print(table)


@recommend_app.command("stock")
def stock_cmd(
    product: Annotated[str, typer.Argument(help="Product id (external), e.g. P0001.")],
    quantity: Annotated[int, typer.Argument(help="Units in stock; 0 stops recommending it.")],
) -> None:
    """Record a product's stock; products at 0 are never recommended."""
    from kizuna.cli import _ctx, console
    from kizuna.services import recommendations

    ctx = _ctx()
    ctx.require_current_schema()
    recommendations.set_stock(ctx, product, quantity)
    console.print(f"{product}: {quantity} in stock")


@offers_app.command("add")
def offers_add(
    code: Annotated[str, typer.Argument(help="Short unique code, e.g. BEANS-TO-GRINDER.")],
    name: Annotated[str, typer.Option(help="What marketers see.")],
    kind: Annotated[str, typer.Option(help="coupon, reward or content.")],
    margin: Annotated[int, typer.Option(help="Worth of one response, in minor units.")],
    cost: Annotated[int, typer.Option(help="Budget taken by one assignment.")] = 0,
    reference: Annotated[
        str | None, typer.Option(help="Coupon batch (kind coupon) or reward id (kind reward).")
    ] = None,
    budget: Annotated[int | None, typer.Option(help="Total budget, minor units.")] = None,
    max_total: Annotated[int | None, typer.Option(help="At most this many assignments.")] = None,
    per_customer: Annotated[
        int, typer.Option("--per-customer", help="At most this many per customer.")
    ] = 1,
    rules: Annotated[
        str,
        typer.Option(
            help='Eligibility as JSON, e.g. \'{"bought_any": ["P0001"], "not_bought": ["P0002"]}\'.'
        ),
    ] = "{}",
) -> None:
    """Create or replace an offer (coupon, reward or content) with its margin, caps and budget."""
    from kizuna.cli import _ctx, console
    from kizuna.errors import ValidationError
    from kizuna.services import offers

    try:
        rule_doc = json.loads(rules)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"--rules is not valid JSON: {exc}") from None
    ctx = _ctx()
    ctx.require_current_schema()
    offer = offers.save_offer(
        ctx,
        offers.OfferSpec(
            code=code, name=name, kind=kind, margin=margin, cost=cost, reference=reference,
            budget=budget, max_total=max_total, max_per_customer=per_customer, rules=rule_doc,
        ),
    )  # fmt: skip
    console.print(f"offer [bold]{offer.code}[/bold] saved ({offer.kind}, margin {offer.margin:,})")


@offers_app.command("list")
def offers_list(as_json: JsonOpt = False) -> None:
    """Every offer with its budget, spend, assignments and coupon redemptions."""
    from kizuna.cli import _ctx, console
    from kizuna.services import offers

    ctx = _ctx()
    ctx.require_current_schema()
    with ctx.engine.connect() as conn:
        rows = offers.offer_table(conn)
    if as_json:
        _print_json(rows)
        return
    table = Table(
        "code", "kind", "margin", "cost", "budget", "spent", "assigned", "cap", "redeemed"
    )
    for r in rows:
        table.add_row(
            r["code"], r["kind"], f"{r['margin']:,}", f"{r['cost']:,}",
            "-" if r["budget"] is None else f"{r['budget']:,}", f"{r['spent']:,}",
            str(r["assigned"]), "-" if r["max_total"] is None else str(r["max_total"]),
            "-" if r["redeemed"] is None else str(r["redeemed"]),
        )  # fmt: skip
    console.print(table)


@offers_app.command("best")
def offers_best(
    customer: Annotated[str, typer.Argument(help="Customer id (external), e.g. C0000001.")],
    show_all: Annotated[
        bool, typer.Option("--all", help="Also show offers the customer cannot get, and why.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The next best offer for one customer: expected value = propensity x margin, with reasons."""
    from kizuna.cli import _ctx, console
    from kizuna.services import offers

    ctx = _ctx()
    ctx.require_current_schema()
    with ctx.engine.connect() as conn:
        ranked = offers.ranked_for(conn, offers.customer_id_of(conn, customer))
    shown = ranked if show_all else [c for c in ranked if c.eligible]
    if as_json:
        _print_json([c.to_dict() for c in shown])
        return
    if not shown:
        console.print(f"no eligible offer for {customer}" + ("" if show_all else "; try --all"))
        return
    table = Table("offer", "kind", "eligible", "expected value", "reasons")
    for c in shown:
        table.add_row(
            c.offer.code, c.offer.kind, "yes" if c.eligible else "no",
            f"{c.expected_value:,.1f}", "; ".join(c.reasons),
        )  # fmt: skip
    console.print(table)


@offers_app.command("assign")
def offers_assign(
    batch: Annotated[
        str, typer.Option(help="Name of this batch; re-running it assigns nobody twice.")
    ],
    limit: Annotated[int | None, typer.Option(help="Consider at most this many customers.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Assign each scored customer their best eligible offer, within every cap and budget."""
    from kizuna.cli import _ctx, console
    from kizuna.services import offers

    ctx = _ctx()
    ctx.require_current_schema()
    report = offers.assign(ctx, batch, limit=limit)
    if as_json:
        _print_json(report.__dict__)
        return
    console.print(
        f"batch [bold]{report.batch}[/bold]: {report.assigned:,} of "
        f"{report.customers_considered:,} customers got an offer"
    )
    table = Table("offer", "assigned", "spent")
    for code, count in sorted(report.by_offer.items()):
        table.add_row(code, f"{count:,}", f"{report.spent.get(code, 0):,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root ``kizuna`` app."""
    app.add_typer(recommend_app, name="recommend")
    app.add_typer(offers_app, name="offers")
