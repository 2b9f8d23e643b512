"""The next-best-offer use cases: define offers, pick the best per customer, assign in batches.

The decision rules live in :mod:`kizuna.domain.offers`; this module gathers
the facts they need (the latest scoring run's propensity, tier, lifecycle,
what the customer bought) and keeps the ledger of assignments that caps
and budgets are counted from. An assignment batch runs in one transaction
with the offer rows locked (``FOR UPDATE`` on PostgreSQL; on SQLite the
second of two concurrent writers fails instead of writing over a stale
read), so two batches at once cannot overspend a budget, and
``(offer, customer, batch)`` is unique so re-running a batch after a crash
assigns nobody twice. Each assignment also records an ``offer_assigned``
event, so a journey (``trigger: {event: offer_assigned}``) can deliver it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from kizuna.domain import offers as domain
from kizuna.errors import NotFound, ValidationError
from kizuna.services.events import record_event
from kizuna.store import programme_tables as pt
from kizuna.store import tables as t
from kizuna.store.recommend_tables import offer_assignments, offers
from kizuna.store.scoring_tables import customer_scores, scoring_runs

if TYPE_CHECKING:
    from kizuna.bootstrap import Context

#: Customers whose facts are read per query during a batch.
CHUNK = 5_000


@dataclass(frozen=True)
class OfferSpec:
    """An offer as the CLI or a file defines it (money in minor units)."""

    code: str
    name: str
    kind: str
    margin: int
    cost: int = 0
    reference: str | None = None
    budget: int | None = None
    max_total: int | None = None
    max_per_customer: int = 1
    rules: dict[str, Any] = field(default_factory=dict)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    active: bool = True


@dataclass(frozen=True)
class AssignReport:
    """What one batch assigned."""

    batch: str
    customers_considered: int
    assigned: int
    by_offer: dict[str, int]
    spent: dict[str, int]
    scoring_run_id: int | None


def save_offer(ctx: Context, spec: OfferSpec) -> domain.Offer:
    """Create or replace an offer by its code, after checking every field."""
    code = spec.code.strip()
    if not code or len(code) > 64:
        raise ValidationError("offer code must be 1 to 64 characters")
    rules = domain.Rules.parse(spec.rules, f"offer {code} rules")
    offer = domain.Offer(
        id=0, code=code, name=spec.name, kind=spec.kind, margin=spec.margin, cost=spec.cost,
        budget=spec.budget, max_total=spec.max_total, max_per_customer=spec.max_per_customer,
        rules=rules,
    )  # fmt: skip
    values = {
        "name": spec.name, "kind": spec.kind, "reference": spec.reference, "margin": spec.margin,
        "cost": spec.cost, "budget": spec.budget, "max_total": spec.max_total,
        "max_per_customer": spec.max_per_customer, "rules": rules.to_dict(),
        "active": spec.active, "valid_from": spec.valid_from, "valid_until": spec.valid_until,
    }  # fmt: skip
    with ctx.engine.begin() as conn:
        _check_reference(conn, spec.kind, spec.reference, code)
        _check_products(conn, rules, code)
        existing = conn.execute(
            sa.select(offers.c.id).where(offers.c.code == code)
        ).scalar_one_or_none()
        if existing is None:
            oid = conn.execute(
                offers.insert()
                .values(code=code, created_at=datetime.now(UTC), **values)
                .returning(offers.c.id)
            ).scalar_one()
        else:
            oid = existing
            conn.execute(offers.update().where(offers.c.id == oid).values(**values))
    return domain.Offer(**{**offer.__dict__, "id": int(oid)})


def _check_reference(conn: sa.Connection, kind: str, reference: str | None, code: str) -> None:
    if kind == "coupon":
        if not reference:
            raise ValidationError(f"offer {code}: a coupon offer needs --reference BATCH")
        found = conn.execute(
            sa.select(pt.coupons.c.id).where(pt.coupons.c.batch == reference).limit(1)
        ).first()
        if found is None:
            raise ValidationError(
                f"offer {code}: no coupon batch {reference!r}; create it with "
                "`kizuna coupons generate --batch ...` first"
            )
    elif kind == "reward":
        if not reference:
            raise ValidationError(f"offer {code}: a reward offer needs --reference REWARD_ID")
        found = conn.execute(
            sa.select(pt.rewards.c.id).where(pt.rewards.c.external_id == reference)
        ).first()
        if found is None:
            raise ValidationError(f"offer {code}: no reward {reference!r} in the catalogue")


def _check_products(conn: sa.Connection, rules: domain.Rules, code: str) -> None:
    named = set(rules.bought_any) | set(rules.not_bought)
    if not named:
        return
    known = set(
        conn.execute(
            sa.select(t.products.c.external_id).where(t.products.c.external_id.in_(sorted(named)))
        ).scalars()
    )
    missing = sorted(named - known)
    if missing:
        raise ValidationError(f"offer {code} rules: unknown product {missing[0]!r}")


def _offer(row: Any) -> domain.Offer:
    return domain.Offer(
        id=int(row.id), code=row.code, name=row.name, kind=row.kind, margin=int(row.margin),
        cost=int(row.cost), budget=row.budget, max_total=row.max_total,
        max_per_customer=int(row.max_per_customer), rules=domain.Rules.parse(row.rules),
    )  # fmt: skip


def load_offers(conn: sa.Connection, now: datetime, lock: bool = False) -> list[domain.Offer]:
    """Active offers valid at ``now``; ``lock`` takes their rows for update (batches)."""
    o = offers.c
    query = (
        sa.select(offers)
        .where(
            o.active.is_(True),
            sa.or_(o.valid_from.is_(None), o.valid_from <= now),
            sa.or_(o.valid_until.is_(None), o.valid_until > now),
        )
        .order_by(o.code)
    )
    if lock:
        query = query.with_for_update()
    return [_offer(r) for r in conn.execute(query)]


def usage(
    conn: sa.Connection, offer_ids: Sequence[int], customer_ids: Sequence[int] | None = None
) -> dict[int, domain.Usage]:
    """Totals per offer, and per-customer counts for ``customer_ids`` (all when None)."""
    a = offer_assignments.c
    out = {oid: domain.Usage() for oid in offer_ids}
    if not offer_ids:
        return out
    for row in conn.execute(
        sa.select(a.offer_id, sa.func.count(), sa.func.coalesce(sa.func.sum(a.cost), 0))
        .where(a.offer_id.in_(list(offer_ids)))
        .group_by(a.offer_id)
    ):
        out[row[0]].assigned, out[row[0]].spent = int(row[1]), int(row[2])
    query = sa.select(a.offer_id, a.customer_id, sa.func.count()).where(
        a.offer_id.in_(list(offer_ids))
    )
    if customer_ids is not None:
        query = query.where(a.customer_id.in_(list(customer_ids)))
    for row in conn.execute(query.group_by(a.offer_id, a.customer_id)):
        out[row[0]].per_customer[int(row[1])] = int(row[2])
    return out


def latest_scoring_run(conn: sa.Connection) -> int | None:
    return conn.execute(
        sa.select(scoring_runs.c.id)
        .where(scoring_runs.c.status == "complete")
        .order_by(scoring_runs.c.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def facts(
    conn: sa.Connection,
    customer_ids: Sequence[int],
    run_id: int | None,
    products: set[str] | None = None,
) -> list[domain.Facts]:
    """The facts the rules need, for each customer; ``products`` limits the purchase lookup."""
    ids = list(customer_ids)
    scores: dict[int, Any] = {}
    if run_id is not None:
        s = customer_scores.c
        for row in conn.execute(
            sa.select(
                s.customer_id, s.loyal_propensity, s.p_alive, s.lifecycle, s.loyalty, s.frequency
            ).where(s.run_id == run_id, s.customer_id.in_(ids))  # fmt: skip
        ):
            scores[int(row.customer_id)] = row
    tiers = dict(
        conn.execute(
            sa.select(pt.point_accounts.c.customer_id, pt.point_accounts.c.tier).where(
                pt.point_accounts.c.customer_id.in_(ids)
            )
        ).all()
    )
    bought: dict[int, set[str]] = {}
    if products:
        line, p, o = t.order_lines, t.products, t.orders
        for cid, pid in conn.execute(
            sa.select(line.c.customer_id, p.c.external_id)
            .select_from(
                line.join(p, p.c.id == line.c.product_id).join(o, o.c.id == line.c.order_id)
            )
            .where(
                line.c.customer_id.in_(ids),
                p.c.external_id.in_(sorted(products)),
                o.c.status != "cancelled",
            )
            .distinct()
        ):
            bought.setdefault(int(cid), set()).add(str(pid))
    out = []
    for cid in ids:
        sc = scores.get(cid)
        propensity, source = None, "propensity"
        if sc is not None and sc.loyal_propensity is not None:
            propensity, source = float(sc.loyal_propensity), "propensity"
        elif sc is not None:
            # Too few customers to fit the propensity model: P(alive) is the next best guess.
            propensity, source = float(sc.p_alive), "P(alive)"
        out.append(
            domain.Facts(
                customer_id=cid,
                propensity=propensity,
                propensity_source=source,
                tier=tiers.get(cid),
                lifecycle=None if sc is None else sc.lifecycle,
                loyalty=None if sc is None else sc.loyalty,
                orders=0 if sc is None else int(sc.frequency) + 1,
                bought=frozenset(bought.get(cid, set())),
            )  # fmt: skip
        )
    return out


def _named_products(all_offers: Sequence[domain.Offer]) -> set[str]:
    return {p for o in all_offers for p in (*o.rules.bought_any, *o.rules.not_bought)}


def customer_id_of(conn: sa.Connection, external_id: str) -> int:
    cid = conn.execute(
        sa.select(t.customers.c.id).where(t.customers.c.external_id == external_id)
    ).scalar_one_or_none()
    if cid is None:
        raise NotFound(f"customer {external_id!r} does not exist; check the customer_id")
    return int(cid)


def ranked_for(
    conn: sa.Connection, customer_id: int, now: datetime | None = None
) -> list[domain.Choice]:
    """Every active offer assessed for one customer, best first, each with its reasons."""
    now = now or datetime.now(UTC)
    all_offers = load_offers(conn, now)
    run_id = latest_scoring_run(conn)
    (fact,) = facts(conn, [customer_id], run_id, _named_products(all_offers))
    used = usage(conn, [o.id for o in all_offers], [customer_id])
    return domain.rank(all_offers, fact, used)


def best_for(
    conn: sa.Connection, customer_id: int, now: datetime | None = None
) -> domain.Choice | None:
    """The next best offer for one customer, or None when nothing is eligible."""
    ranked = ranked_for(conn, customer_id, now)
    return ranked[0] if ranked and ranked[0].eligible else None


def assign(
    ctx: Context, batch: str, now: datetime | None = None, limit: int | None = None
) -> AssignReport:
    """Assign at most one offer to each scored customer, best expected value first."""
    batch = batch.strip()
    if not batch or len(batch) > 100:
        raise ValidationError("batch must be 1 to 100 characters, e.g. 2026-11-newsletter")
    now = now or datetime.now(UTC)
    with ctx.engine.begin() as conn:
        all_offers = load_offers(conn, now, lock=True)
        run_id = latest_scoring_run(conn)
        if run_id is None:
            raise NotFound("no scoring run yet; run `kizuna score` so offers have propensities")
        query = (
            sa.select(customer_scores.c.customer_id)
            .where(customer_scores.c.run_id == run_id)
            .order_by(customer_scores.c.customer_id)
        )
        if limit:
            query = query.limit(limit)
        customer_ids = [int(c) for c in conn.execute(query).scalars()]
        done_in_batch = set(
            conn.execute(
                sa.select(offer_assignments.c.customer_id).where(offer_assignments.c.batch == batch)
            ).scalars()
        )
        todo = [c for c in customer_ids if c not in done_in_batch]
        named = _named_products(all_offers)
        used = usage(conn, [o.id for o in all_offers])
        everyone: list[domain.Facts] = []
        for start in range(0, len(todo), CHUNK):
            everyone += facts(conn, todo[start : start + CHUNK], run_id, named)
        chosen = domain.assign(all_offers, everyone, used)
        by_offer: dict[str, int] = {}
        spent: dict[str, int] = {}
        rows = []
        for fact, choice in chosen:
            o = choice.offer
            by_offer[o.code] = by_offer.get(o.code, 0) + 1
            spent[o.code] = spent.get(o.code, 0) + o.cost
            rows.append(
                {
                    "offer_id": o.id, "customer_id": fact.customer_id, "batch": batch,
                    "assigned_at": now, "cost": o.cost, "propensity": choice.propensity,
                    "expected_value": choice.expected_value, "reasons": list(choice.reasons),
                    "scoring_run_id": run_id,
                }
            )  # fmt: skip
            record_event(
                conn, key=f"offer:{batch}:{o.code}:{fact.customer_id}",
                customer_id=fact.customer_id, type="offer_assigned", occurred_at=now,
                properties={"offer": o.code, "kind": o.kind, "batch": batch,
                            "expected_value": round(choice.expected_value, 2)},
            )  # fmt: skip
        if rows:
            conn.execute(offer_assignments.insert(), rows)
    return AssignReport(
        batch=batch, customers_considered=len(todo), assigned=len(rows), by_offer=by_offer,
        spent=spent, scoring_run_id=run_id,
    )  # fmt: skip


def offer_table(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every offer with its budget, what is spent, assignments and (for coupons) redemptions."""
    a = offer_assignments.c
    used = {
        int(r[0]): (int(r[1]), int(r[2]))
        for r in conn.execute(
            sa.select(
                a.offer_id, sa.func.count(), sa.func.coalesce(sa.func.sum(a.cost), 0)
            ).group_by(a.offer_id)
        )
    }
    redeemed = dict(
        conn.execute(
            sa.select(
                pt.coupons.c.batch, sa.func.coalesce(sa.func.sum(pt.coupons.c.uses), 0)
            ).group_by(pt.coupons.c.batch)
        ).all()
    )
    out = []
    for row in conn.execute(sa.select(offers).order_by(offers.c.code)):
        assigned, cost = used.get(int(row.id), (0, 0))
        out.append(
            {
                "code": row.code, "name": row.name, "kind": row.kind, "reference": row.reference,
                "margin": int(row.margin), "cost": int(row.cost), "budget": row.budget,
                "spent": cost, "max_total": row.max_total, "assigned": assigned,
                "redeemed": int(redeemed.get(row.reference, 0)) if row.kind == "coupon" else None,
                "active": bool(row.active), "rules": row.rules,
            }
        )  # fmt: skip
    return out
