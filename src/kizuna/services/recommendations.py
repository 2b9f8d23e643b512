"""The recommendation use cases: evaluate, fit and store a run, read a customer's list.

``kizuna recommend fit`` (and ``kizuna score`` when ``recommend_on_score``
is on) calls :func:`fit`: it evaluates the models on a time split, keeps
ALS only if it beats item-to-item on precision@k, fits the chosen model on
all purchases and stores each buyer's top N as a new, immutable run linked
to the latest scoring run. Readers (templates, the API, the dashboard, the
Customer 360 page) call :func:`recommendations_for`, which needs only a
connection and answers customers without history from the run's popular
list.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from kizuna.analytics.recommend import ItemItem, Popularity, evaluate, time_split, top_n
from kizuna.analytics.recommend.als import ALS
from kizuna.analytics.recommend.interactions import binary
from kizuna.analytics.recommend.metrics import Evaluation
from kizuna.errors import NotFound, ValidationError
from kizuna.store import bulk
from kizuna.store import tables as t
from kizuna.store.arrow_io import select_to_arrow
from kizuna.store.recommend_tables import product_stock, recommendation_runs, recommendations
from kizuna.store.scoring_tables import scoring_runs

if TYPE_CHECKING:
    from kizuna.bootstrap import Context

Progress = Callable[[str, str], None]
MODELS = ("auto", "similar", "als")
#: How many popular products a run keeps for customers without history.
POPULAR_KEPT = 50


@dataclass(frozen=True)
class Purchases:
    """Completed purchase lines: database customer and product ids, epoch seconds."""

    customer: np.ndarray
    product: np.ndarray
    when: np.ndarray


@dataclass(frozen=True)
class Catalogue:
    """Every product (sorted database ids) and whether it may be recommended."""

    ids: np.ndarray
    allowed: np.ndarray


@dataclass
class EvaluationReport:
    """Every model's metrics on one time split, and the model chosen for production."""

    k: int
    cut: datetime
    holdout_days: int
    results: dict[str, Evaluation] = field(default_factory=dict)
    chosen: str = "similar"

    def lift(self, model: str) -> float:
        """Relative precision gain of ``model`` over the popularity baseline."""
        base = self.results["popular"].precision
        return self.results[model].precision / base - 1.0 if base > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "cut": self.cut.isoformat(),
            "holdout_days": self.holdout_days,
            "chosen": self.chosen,
            "models": {name: e.to_dict() for name, e in self.results.items()},
        }


@dataclass(frozen=True)
class RunSummary:
    """One stored recommendation run."""

    id: int
    scoring_run_id: int | None
    created_at: datetime
    as_of: datetime
    model: str
    customers: int
    products: int
    per_customer: int
    evaluation: dict[str, Any]
    popular: list[int]
    pairs: list[dict[str, Any]]
    timings: dict[str, float]


@dataclass(frozen=True)
class Recommended:
    """One recommended product, as templates, the API and pages show it."""

    rank: int
    id: int  #: database id of the product
    product_id: str  #: the product's own id (external), as files and the API name it
    name: str
    price: int | None
    url: str | None
    score: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "product_id": self.product_id,
            "name": self.name,
            "price": self.price,
            "url": self.url,
            "score": round(self.score, 6),
            "source": self.source,
        }

    def __str__(self) -> str:
        # ``{{ recommendations(3) | join(", ") }}`` in a template shows names.
        return self.name


def load_purchases(conn: sa.Connection, until: datetime | None = None) -> Purchases:
    """Completed (not cancelled) purchase lines with a product, optionally before ``until``."""
    o, line = t.orders, t.order_lines
    query = (
        sa.select(line.c.customer_id, line.c.product_id, o.c.ordered_at)
        .select_from(line.join(o, o.c.id == line.c.order_id))
        .where(o.c.status != "cancelled", line.c.product_id.is_not(None))
    )
    data = select_to_arrow(
        conn,
        query,
        ["customer_id", "product_id", "ordered_at"],
        [pa.int64(), pa.int64(), pa.string()],
    )
    when = pd.to_datetime(data["ordered_at"].to_pandas(), utc=True, format="ISO8601")
    seconds = ((when - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    customer = data["customer_id"].to_numpy()
    product = data["product_id"].to_numpy()
    if until is not None:
        keep = seconds < until.timestamp()
        customer, product, seconds = customer[keep], product[keep], seconds[keep]
    return Purchases(customer=customer, product=product, when=seconds)


def load_catalogue(conn: sa.Connection) -> Catalogue:
    """All products; allowed = active and not out of stock (no stock row means in stock)."""
    p, s = t.products, product_stock
    rows = conn.execute(
        sa.select(p.c.id, p.c.active, s.c.quantity)
        .select_from(p.outerjoin(s, s.c.product_id == p.c.id))
        .order_by(p.c.id)
    ).all()
    ids = np.array([r.id for r in rows], np.int64)
    allowed = np.array(
        [bool(r.active) and (r.quantity is None or r.quantity > 0) for r in rows], bool
    )
    return Catalogue(ids=ids, allowed=allowed)


def _columns(
    purchases: Purchases, catalogue: Catalogue
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row (customer) and column (product) indices of each purchase line, and the customer keys."""
    customers, rows = np.unique(purchases.customer, return_inverse=True)
    cols = np.searchsorted(catalogue.ids, purchases.product)
    return rows.astype(np.int64), cols.astype(np.int64), customers


def _make(model: str, settings: Any) -> ItemItem | ALS:
    if model == "als":
        return ALS(factors=settings.recommend_als_factors, threads=2)
    return ItemItem(neighbours=settings.recommend_neighbours)


def evaluation_report(
    ctx: Context,
    as_of: datetime | None = None,
    k: int = 10,
    holdout_days: int | None = None,
    with_als: bool = True,
    progress: Progress | None = None,
    data: tuple[Purchases, Catalogue] | None = None,
) -> EvaluationReport:
    """Fit every model on purchases before ``as_of - holdout_days`` and score the holdout."""
    as_of = as_of or datetime.now(UTC)
    holdout = holdout_days or ctx.settings.recommend_holdout_days
    cut = as_of - timedelta(days=holdout)
    if data is None:
        with ctx.engine.connect() as conn:
            data = (load_purchases(conn, as_of), load_catalogue(conn))
    purchases, catalogue = data
    rows, cols, _ = _columns(purchases, catalogue)
    split = time_split(rows, cols, purchases.when, cut.timestamp(), catalogue.ids.size)
    report = EvaluationReport(k=k, cut=cut, holdout_days=holdout)
    if split.users.size == 0:
        raise ValidationError(
            f"no customer bought before {cut:%Y-%m-%d} and something new after it; "
            "import more order history or shorten recommend_holdout_days"
        )
    popular = Popularity().fit(split.train)
    names = ["popular", "similar"] + (["als"] if with_als else [])
    for name in names:
        if progress:
            progress("evaluate", f"{name} on {split.users.size} customers")
        model = popular if name == "popular" else _make(name, ctx.settings).fit(split.train)
        report.results[name] = evaluate(
            model, split.train, split.truth, split.users, popular.share, k, catalogue.allowed
        )
    if with_als and report.results["als"].precision > report.results["similar"].precision:
        report.chosen = "als"
    return report


def _latest_scoring_run(conn: sa.Connection) -> int | None:
    return conn.execute(
        sa.select(scoring_runs.c.id)
        .where(scoring_runs.c.status == "complete")
        .order_by(scoring_runs.c.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def fit(
    ctx: Context,
    as_of: datetime | None = None,
    model: str = "auto",
    per_customer: int | None = None,
    with_als: bool = True,
    scoring_run_id: int | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Evaluate, fit the chosen model on all purchases and store every buyer's top N."""
    if model not in MODELS:
        raise ValidationError(f"model={model!r} is unknown; use one of {', '.join(MODELS)}")
    n = per_customer or ctx.settings.recommend_per_customer
    as_of = as_of or datetime.now(UTC)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if progress:
        progress("extract", "reading purchases and the catalogue")
    with ctx.engine.connect() as conn:
        purchases = load_purchases(conn, as_of)
        catalogue = load_catalogue(conn)
        if scoring_run_id is None:
            scoring_run_id = _latest_scoring_run(conn)
    if purchases.customer.size == 0:
        raise ValidationError("no purchases to learn from; import orders first")
    timings["extract"] = time.perf_counter() - started
    step = time.perf_counter()
    try:
        report = evaluation_report(
            ctx, as_of, k=10, with_als=with_als and model != "similar",
            progress=progress, data=(purchases, catalogue),
        )  # fmt: skip
        evaluation = report.to_dict()
        chosen = report.chosen if model == "auto" else model
    except ValidationError as exc:
        # Too little history for a holdout: fit anyway, and say why nothing was measured.
        evaluation = {"skipped": str(exc)}
        chosen = "similar" if model == "auto" else model
    evaluation["chosen"] = chosen
    timings["evaluate"] = time.perf_counter() - step

    step = time.perf_counter()
    if progress:
        progress("fit", f"{chosen} on {purchases.customer.size} purchase lines")
    rows, cols, customers = _columns(purchases, catalogue)
    matrix = binary(rows, cols, (customers.size, catalogue.ids.size))
    popular = Popularity().fit(matrix)
    fitted = _make(chosen, ctx.settings).fit(matrix)
    timings["fit"] = time.perf_counter() - step

    step = time.perf_counter()
    if progress:
        progress("recommend", f"top {n} for {customers.size} customers")
    top = top_n(fitted, matrix, np.arange(customers.size), popular.share, n, catalogue.allowed)
    timings["recommend"] = time.perf_counter() - step

    order = np.argsort(-popular.share, kind="stable")
    popular_ids = [int(catalogue.ids[i]) for i in order if catalogue.allowed[i]][:POPULAR_KEPT]
    pairs = [
        {"a": int(catalogue.ids[i]), "b": int(catalogue.ids[j]), "customers": c}
        for i, j, c in getattr(fitted, "top_pairs", [])
    ]
    if not pairs:
        pairs = [
            {"a": int(catalogue.ids[i]), "b": int(catalogue.ids[j]), "customers": c}
            for i, j, c in ItemItem(neighbours=1).fit(matrix).top_pairs
        ]
    step = time.perf_counter()
    if progress:
        progress("store", "writing the recommendation run")
    run = _store(ctx, scoring_run_id, as_of, chosen, customers, catalogue, top, n, evaluation,
                 popular_ids, pairs, timings)  # fmt: skip
    timings["store"] = time.perf_counter() - step
    timings["total"] = time.perf_counter() - started
    with ctx.engine.begin() as conn:
        conn.execute(
            recommendation_runs.update()
            .where(recommendation_runs.c.id == run.id)
            .values(timings=timings)
        )
    return RunSummary(**{**run.__dict__, "timings": timings})


def after_scoring(
    ctx: Context, scoring_run_id: int, as_of: date, progress: Progress | None = None
) -> RunSummary | None:
    """Fit recommendations for a scoring run just stored, when ``recommend_on_score`` is on.

    Purchases up to the end of the scoring day count; a workspace whose history
    is too short to learn from gets no run rather than a failed ``kizuna score``.
    """
    if not ctx.settings.recommend_on_score:
        return None
    end = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=ctx.settings.tz)
    try:
        return fit(ctx, end.astimezone(UTC), scoring_run_id=scoring_run_id, progress=progress)
    except ValidationError:
        return None


def _store(
    ctx: Context,
    scoring_run_id: int | None,
    as_of: datetime,
    model: str,
    customers: np.ndarray,
    catalogue: Catalogue,
    top: Any,
    n: int,
    evaluation: dict[str, Any],
    popular: list[int],
    pairs: list[dict[str, Any]],
    timings: dict[str, float],
) -> RunSummary:
    """Write the run row and its lists in one transaction; ``complete`` only at the end."""
    created = datetime.now(UTC)
    valid = top.items >= 0
    rank = np.broadcast_to(np.arange(1, top.items.shape[1] + 1), top.items.shape)
    with ctx.engine.begin() as conn:
        run_id = conn.execute(
            recommendation_runs.insert()
            .values(
                scoring_run_id=scoring_run_id,
                created_at=created,
                as_of=as_of,
                status="writing",
                model=model,
                customers=int(customers.size),
                products=int(catalogue.ids.size),
                per_customer=n,
                evaluation=evaluation,
                popular=popular,
                pairs=pairs,
                timings=timings,
            )  # fmt: skip
            .returning(recommendation_runs.c.id)
        ).scalar_one()
        cust = np.broadcast_to(customers[:, None], top.items.shape)
        data = pa.table(
            {
                "run_id": pa.array(np.full(int(valid.sum()), run_id, np.int64)),
                "customer_id": pa.array(cust[valid].astype(np.int64)),
                "rank": pa.array(rank[valid].astype(np.int16)),
                "product_id": pa.array(catalogue.ids[top.items[valid]]),
                "score": pa.array(top.scores[valid].astype(np.float64)),
                "source": pa.array(np.where(top.from_model[valid], model, "popular").tolist()),
            }
        )
        if data.num_rows:
            bulk.upsert(conn, recommendations, data, ["run_id", "customer_id", "rank"])
        conn.execute(
            recommendation_runs.update()
            .where(recommendation_runs.c.id == run_id)
            .values(status="complete")
        )
    return RunSummary(
        id=int(run_id), scoring_run_id=scoring_run_id, created_at=created, as_of=as_of,
        model=model, customers=int(customers.size), products=int(catalogue.ids.size),
        per_customer=n, evaluation=evaluation, popular=popular, pairs=pairs, timings=timings,
    )  # fmt: skip


def _summary(row: sa.Row[Any]) -> RunSummary:
    return RunSummary(
        id=row.id, scoring_run_id=row.scoring_run_id, created_at=row.created_at,
        as_of=row.as_of, model=row.model, customers=row.customers, products=row.products,
        per_customer=row.per_customer, evaluation=row.evaluation, popular=row.popular,
        pairs=row.pairs, timings=row.timings,
    )  # fmt: skip


def latest_run(conn: sa.Connection) -> RunSummary | None:
    """The newest complete recommendation run, or None before the first fit."""
    row = conn.execute(
        sa.select(recommendation_runs)
        .where(recommendation_runs.c.status == "complete")
        .order_by(recommendation_runs.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _summary(row)


def require_latest_run(conn: sa.Connection) -> RunSummary:
    run = latest_run(conn)
    if run is None:
        raise NotFound("no recommendation run yet; run `kizuna recommend fit` first")
    return run


def recommendations_for(conn: sa.Connection, customer_id: int, n: int = 10) -> list[Recommended]:
    """The customer's top ``n`` products from the latest run (popular ones if no history).

    Read-only and cheap (one indexed query), so templates, API handlers and
    pages (the Customer 360 page included) can call it per customer. Products
    that went inactive or out of stock since the run are skipped.
    """
    run = latest_run(conn)
    if run is None or n <= 0:
        return []
    r, p, s = recommendations, t.products, product_stock
    available = sa.and_(p.c.active.is_(True), sa.or_(s.c.quantity.is_(None), s.c.quantity > 0))
    rows = conn.execute(
        sa.select(
            r.c.rank,
            r.c.score,
            r.c.source,
            p.c.id,
            p.c.external_id,
            p.c.name,
            p.c.price,
            p.c.attributes,
        )  # fmt: skip
        .select_from(r.join(p, p.c.id == r.c.product_id).outerjoin(s, s.c.product_id == p.c.id))
        .where(r.c.run_id == run.id, r.c.customer_id == customer_id, available)
        .order_by(r.c.rank)
        .limit(n)
    ).all()
    if rows:
        return [_recommended(i + 1, row, row.score, row.source) for i, row in enumerate(rows)]
    if not run.popular:
        return []
    bought = sa.select(t.order_lines.c.product_id).where(t.order_lines.c.customer_id == customer_id)
    fallback = conn.execute(
        sa.select(p.c.id, p.c.external_id, p.c.name, p.c.price, p.c.attributes)
        .select_from(p.outerjoin(s, s.c.product_id == p.c.id))
        .where(p.c.id.in_(run.popular), available, p.c.id.not_in(bought))
    ).all()
    position = {pid: i for i, pid in enumerate(run.popular)}
    best = sorted(fallback, key=lambda row: position[row.id])[:n]
    return [_recommended(i + 1, row, 0.0, "popular") for i, row in enumerate(best)]


def _recommended(rank: int, row: Any, score: float, source: str) -> Recommended:
    attributes = row.attributes if isinstance(row.attributes, dict) else {}
    url = attributes.get("url")
    return Recommended(
        rank=rank, id=int(row.id), product_id=str(row.external_id), name=str(row.name),
        price=None if row.price is None else int(row.price),
        url=str(url) if url else None, score=float(score), source=source,
    )  # fmt: skip


def set_stock(ctx: Context, product: str, quantity: int) -> None:
    """Record a product's stock (by external id); 0 or less stops it being recommended."""
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        pid = conn.execute(
            sa.select(t.products.c.id).where(t.products.c.external_id == product)
        ).scalar_one_or_none()
        if pid is None:
            raise NotFound(f"product {product!r} does not exist; check its product_id")
        updated = conn.execute(
            product_stock.update()
            .where(product_stock.c.product_id == pid)
            .values(quantity=quantity, updated_at=now)
        ).rowcount
        if not updated:
            conn.execute(
                product_stock.insert().values(product_id=pid, quantity=quantity, updated_at=now)
            )


def product_names(conn: sa.Connection, ids: list[int]) -> dict[int, tuple[str, str]]:
    """``id -> (external id, name)`` of the given products."""
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(t.products.c.id, t.products.c.external_id, t.products.c.name).where(
            t.products.c.id.in_(ids)
        )
    ).all()
    return {r.id: (r.external_id, r.name) for r in rows}


def customer_id_of(conn: sa.Connection, external_id: str) -> int:
    """The database id of a customer named by external id; :class:`NotFound` otherwise."""
    cid = conn.execute(
        sa.select(t.customers.c.id).where(t.customers.c.external_id == external_id)
    ).scalar_one_or_none()
    if cid is None:
        raise NotFound(f"customer {external_id!r} does not exist; check the customer_id")
    return int(cid)
