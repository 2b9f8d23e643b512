"""Next-best offer: eligibility, expected value, caps and budgets, as pure functions.

For each customer the candidate offers are those whose rules the customer
meets and whose caps and budget still allow one more; among them the best
is the one with the highest expected value, ``propensity x margin`` (the
chance the customer responds times what a response is worth). Every
decision carries its reasons in plain words, because a marketer must be
able to say why a customer got this offer and not another.

Batch assignment is greedy over all (customer, offer) pairs by expected
value: the most valuable pairs take the budget first, each customer gets
at most one offer per batch, and no cap or budget is ever exceeded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kizuna.errors import ValidationError

KINDS = ("coupon", "reward", "content")
_RULE_KEYS = {"bought_any", "not_bought", "tiers", "lifecycle", "loyalty", "min_propensity",
              "min_orders"}  # fmt: skip


def _strings(doc: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = doc.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError(f"{where}: {key} must be a list of ids or names, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class Rules:
    """Who may get an offer. Empty tuples mean "anyone"."""

    bought_any: tuple[str, ...] = ()  #: "bought A": at least one of these products
    not_bought: tuple[str, ...] = ()  #: "not yet B": none of these products
    tiers: tuple[str, ...] = ()
    lifecycle: tuple[str, ...] = ()
    loyalty: tuple[str, ...] = ()
    min_propensity: float = 0.0
    min_orders: int = 0

    @classmethod
    def parse(cls, doc: Mapping[str, Any] | None, where: str = "rules") -> Rules:
        """Rules from their JSON form; unknown keys and bad values are refused by name."""
        doc = doc or {}
        if not isinstance(doc, Mapping):
            raise ValidationError(f'{where} must be an object such as {{"not_bought": ["P0002"]}}')
        unknown = set(doc) - _RULE_KEYS
        if unknown:
            raise ValidationError(
                f"{where}: unknown rule {sorted(unknown)[0]!r}; rules are {', '.join(sorted(_RULE_KEYS))}"
            )
        p = doc.get("min_propensity", 0.0)
        if not isinstance(p, int | float) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValidationError(
                f"{where}: min_propensity must be a number from 0 to 1, got {p!r}"
            )
        o = doc.get("min_orders", 0)
        if not isinstance(o, int) or isinstance(o, bool) or o < 0:
            raise ValidationError(f"{where}: min_orders must be a whole number >= 0, got {o!r}")
        return cls(
            bought_any=_strings(doc, "bought_any", where),
            not_bought=_strings(doc, "not_bought", where),
            tiers=_strings(doc, "tiers", where),
            lifecycle=_strings(doc, "lifecycle", where),
            loyalty=_strings(doc, "loyalty", where),
            min_propensity=float(p),
            min_orders=o,
        )

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for key in ("bought_any", "not_bought", "tiers", "lifecycle", "loyalty"):
            if getattr(self, key):
                doc[key] = list(getattr(self, key))
        if self.min_propensity:
            doc["min_propensity"] = self.min_propensity
        if self.min_orders:
            doc["min_orders"] = self.min_orders
        return doc


@dataclass(frozen=True)
class Offer:
    """An offer with its economics and limits; money in minor units."""

    id: int
    code: str
    name: str
    kind: str
    margin: int  #: what one response is worth
    cost: int = 0  #: what one assignment takes from the budget
    budget: int | None = None
    max_total: int | None = None
    max_per_customer: int = 1
    rules: Rules = field(default_factory=Rules)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError(f"offer {self.code}: kind must be one of {', '.join(KINDS)}")
        if self.margin < 0 or self.cost < 0:
            raise ValidationError(f"offer {self.code}: margin and cost cannot be negative")
        if self.budget is not None and self.budget < 0:
            raise ValidationError(f"offer {self.code}: budget cannot be negative")
        if self.max_per_customer < 1 or (self.max_total is not None and self.max_total < 0):
            raise ValidationError(f"offer {self.code}: caps must be positive")


@dataclass(frozen=True)
class Facts:
    """What the rules look at for one customer."""

    customer_id: int
    propensity: float | None
    propensity_source: str = "loyal_propensity"
    tier: str | None = None
    lifecycle: str | None = None
    loyalty: str | None = None
    orders: int = 0
    bought: frozenset[str] = frozenset()


@dataclass
class Usage:
    """How much of an offer is used: in total, its budget, and per customer."""

    assigned: int = 0
    spent: int = 0
    per_customer: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    """One offer assessed for one customer."""

    offer: Offer
    eligible: bool
    propensity: float
    expected_value: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer": self.offer.code,
            "name": self.offer.name,
            "kind": self.offer.kind,
            "eligible": self.eligible,
            "propensity": round(self.propensity, 6),
            "margin": self.offer.margin,
            "expected_value": round(self.expected_value, 4),
            "reasons": list(self.reasons),
        }


def assess(offer: Offer, facts: Facts, usage: Usage) -> Choice:
    """Whether ``offer`` may go to the customer, its expected value, and why."""
    r = offer.rules
    why: list[str] = []
    blocked: list[str] = []
    if r.bought_any:
        hit = sorted(set(r.bought_any) & facts.bought)
        if hit:
            why.append(f"bought {', '.join(hit)}")
        else:
            blocked.append(f"has not bought any of {', '.join(r.bought_any)}")
    if r.not_bought:
        had = sorted(set(r.not_bought) & facts.bought)
        if had:
            blocked.append(f"already bought {', '.join(had)}")
        else:
            why.append(f"has not bought {', '.join(r.not_bought)} yet")
    for name, allowed, current in (("tier", r.tiers, facts.tier), ("lifecycle stage", r.lifecycle,
                                 facts.lifecycle), ("loyalty", r.loyalty, facts.loyalty)):  # fmt: skip
        if allowed:
            if current in allowed:
                why.append(f"{name} {current} is targeted")
            else:
                blocked.append(f"{name} {current or 'unknown'} is not among {', '.join(allowed)}")
    if r.min_orders and facts.orders < r.min_orders:
        blocked.append(f"{facts.orders} orders, fewer than the {r.min_orders} required")
    propensity = facts.propensity if facts.propensity is not None else 0.0
    if facts.propensity is None:
        blocked.append("no propensity score yet (run `kizuna score`)")
    elif propensity < r.min_propensity:
        blocked.append(f"propensity {propensity:.2f} is below the minimum {r.min_propensity:.2f}")
    used = usage.per_customer.get(facts.customer_id, 0)
    if used >= offer.max_per_customer:
        blocked.append(f"already offered {used} of at most {offer.max_per_customer} times")
    if offer.max_total is not None and usage.assigned >= offer.max_total:
        blocked.append(f"total cap reached ({usage.assigned} of {offer.max_total})")
    if offer.budget is not None and usage.spent + offer.cost > offer.budget:
        blocked.append(f"budget exhausted ({usage.spent:,} of {offer.budget:,} spent)")
    value = propensity * offer.margin
    why.append(
        f"expected value {value:,.0f} = {facts.propensity_source} {propensity:.3g} x margin {offer.margin:,}"
    )
    return Choice(offer, not blocked, propensity, value, tuple(blocked + why if blocked else why))


def rank(offers: Iterable[Offer], facts: Facts, usage: Mapping[int, Usage]) -> list[Choice]:
    """Every offer for one customer: eligible ones first, by expected value, then the rest."""
    choices = [assess(o, facts, usage.get(o.id, Usage())) for o in offers]
    return sorted(choices, key=lambda c: (not c.eligible, -c.expected_value, c.offer.code))


def best(offers: Iterable[Offer], facts: Facts, usage: Mapping[int, Usage]) -> Choice | None:
    """The eligible offer with the highest expected value, or None."""
    ranked = rank(offers, facts, usage)
    return ranked[0] if ranked and ranked[0].eligible else None


def assign(
    offers: Sequence[Offer], customers: Iterable[Facts], usage: dict[int, Usage]
) -> list[tuple[Facts, Choice]]:
    """One offer per customer at most, best expected value first, within every cap and budget.

    ``usage`` is updated in place with what is assigned.
    """
    pairs: list[tuple[float, int, str, Facts, Offer]] = []
    for facts in customers:
        for offer in offers:
            choice = assess(offer, facts, usage.setdefault(offer.id, Usage()))
            if choice.eligible and choice.expected_value > 0:
                pairs.append((choice.expected_value, facts.customer_id, offer.code, facts, offer))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    done: set[int] = set()
    out: list[tuple[Facts, Choice]] = []
    for _, cid, _, facts, offer in pairs:
        if cid in done:
            continue
        u = usage[offer.id]
        choice = assess(offer, facts, u)  # caps and budget as they stand now
        if not choice.eligible:
            continue
        u.assigned += 1
        u.spent += offer.cost
        u.per_customer[cid] = u.per_customer.get(cid, 0) + 1
        done.add(cid)
        out.append((facts, choice))
    return out
