"""The shared tables of the sample: categories, products, accounts, community events.

They are drawn once per seed, before any customer, from their own random
stream, so the catalogue is the same whatever the number of customers (only
the number of accounts grows with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from kizuna.ingest import sample_text as text
from kizuna.ingest.sample_format import DAY, WEEK, Clock, dates, ids, ints, pick

PRODUCTS_PER_CATEGORY = 25
EVENT_KINDS = ("meetup", "webinar", "user_group", "workshop", "conference")


@dataclass(frozen=True)
class Catalog:
    """Products sorted by (leaf category, price), for basket building."""

    category: np.ndarray  #: leaf category index per product
    price: np.ndarray  #: yen
    number: np.ndarray  #: product number (P0001 -> 1)
    by_price: np.ndarray  #: product indices sorted by price
    first: np.ndarray  #: first product index of each leaf category
    popularity: np.ndarray  #: leaf category weights for a random line
    business: np.ndarray  #: leaf categories of the B2B side
    cheap: np.ndarray  #: leaf categories with something under 500 yen

    @property
    def leaves(self) -> int:
        return int(self.first.size)


@dataclass(frozen=True)
class Accounts:
    """B2B accounts and the truth about what each is researching."""

    weight: np.ndarray  #: chance of a B2B customer belonging to each
    surge_topic: np.ndarray  #: index into B2B_TOPICS, -1 if not in market
    surge_start: np.ndarray  #: epoch seconds when the research surge began
    touch: np.ndarray  #: 0 high-touch, 1 low-touch, 2 tech-touch

    @property
    def n(self) -> int:
        return int(self.weight.size)


@dataclass(frozen=True)
class Community:
    start: np.ndarray  #: epoch seconds, sorted
    kind: np.ndarray  #: index into EVENT_KINDS


def categories() -> dict[str, pa.Array]:
    parents = [f"CAT{i + 1:03d}" for i in range(len(text.PARENT_CATEGORIES))]
    parent_of = {slug: parents[i] for i, (slug, _) in enumerate(text.PARENT_CATEGORIES)}
    leaf_ids = [f"CAT{len(parents) + i + 1:03d}" for i in range(len(text.LEAF_CATEGORIES))]
    names = [name for _, name in text.PARENT_CATEGORIES] + [c[2] for c in text.LEAF_CATEGORIES]
    parent = [None] * len(parents) + [parent_of[c[1]] for c in text.LEAF_CATEGORIES]
    return {
        "category_id": pa.array(parents + leaf_ids),
        "name": pa.array(names),
        "parent_id": pa.array(parent, pa.string()),
    }


def leaf_category_id(leaf: np.ndarray) -> np.ndarray:
    """Category number (CATnnn) of leaf category indices."""
    return leaf + len(text.PARENT_CATEGORIES) + 1


def products(rng: np.random.Generator) -> tuple[Catalog, dict[str, pa.Array]]:
    """Twenty-five products per leaf category on a log-spaced price ladder.

    Prices end in 0 or 80 like shop prices; the dense ladder lets a basket hit
    any order value to within about one percent.
    """
    leaves = len(text.LEAF_CATEGORIES)
    k = PRODUCTS_PER_CATEGORY
    category = np.repeat(np.arange(leaves), k)
    lo = np.log([c[3] for c in text.LEAF_CATEGORIES])[category]
    hi = np.log([c[4] for c in text.LEAF_CATEGORIES])[category]
    step = np.tile(np.arange(k), leaves) / (k - 1)
    raw = np.exp(lo + (hi - lo) * step) * np.exp(rng.normal(0, 0.02, category.size))
    price = np.where(raw < 1000, np.round(raw / 10) * 10, np.round(raw / 100) * 100 - 20)
    price = np.maximum(price, 100).astype(np.int64)
    order = np.lexsort((price, category))
    category, price = category[order], price[order]
    number = np.arange(1, category.size + 1)

    stems = [c[5] for c in text.LEAF_CATEGORIES]
    stem = np.array([rng.integers(len(stems[c])) for c in category])
    variant = rng.integers(len(text.PRODUCT_VARIANTS), size=category.size)
    names = [
        f"{stems[c][s]} {text.PRODUCT_VARIANTS[v]} No.{i % 100 + 1}"
        for i, (c, s, v) in enumerate(zip(category, stem, variant, strict=True))
    ]
    business = np.array([i for i, c in enumerate(text.LEAF_CATEGORIES) if c[1] == "business"])
    popularity = np.array([3.0 if c[1] in ("coffee", "tea", "sweets") else 1.0
                           for c in text.LEAF_CATEGORIES])  # fmt: skip
    popularity[business] = 0.0
    active = rng.random(category.size) > 0.04
    catalog = Catalog(
        category=category, price=price, number=number, by_price=np.argsort(price, kind="stable"),
        first=np.arange(leaves) * k, popularity=popularity / popularity.sum(), business=business,
        cheap=np.array([i for i, c in enumerate(text.LEAF_CATEGORIES) if c[3] < 500]),
    )  # fmt: skip
    columns = {
        "product_id": ids("P", number, 4),
        "name": pa.array(names),
        "category_id": ids("CAT", leaf_category_id(category), 3),
        "price": ints(price),
        "active": pa.array(active),
    }
    return catalog, columns


def accounts(
    n: int, clock: Clock, rng: np.random.Generator
) -> tuple[Accounts, dict[str, pa.Array], dict[str, pa.Array]]:
    """Companies with a log-normal head count; members are drawn by size.

    A third of accounts are "in market" at the end of the window: over its
    last four to ten weeks their people read about one topic far more than
    usual. That is the truth the intent score should find.
    """
    employees = np.maximum(5, np.round(np.exp(rng.normal(4.2, 1.3, n)))).astype(np.int64)
    weight = employees.astype(np.float64) ** 0.6
    cores, words = len(text.COMPANY_CORES), len(text.COMPANY_WORDS)
    combo = rng.permutation(cores * words)
    names = []
    for i in range(n):
        c = combo[i % combo.size]
        base = text.COMPANY_CORES[c // words] + text.COMPANY_WORDS[c % words]
        repeat = i // combo.size
        name = f"株式会社{base}" if c % 3 else f"{base}株式会社"
        names.append(name if repeat == 0 else f"{name} 第{repeat + 1}事業部")
    region = rng.choice(len(text.PREFECTURES), n, p=_prefecture_weights())
    industry = rng.integers(len(text.INDUSTRIES), size=n)
    start_day = (clock.start // DAY) - rng.integers(30, 3 * 365, n)
    end_day = clock.end // DAY
    years = np.ceil((end_day - 30 - start_day) / 365.25).astype(np.int64)
    renewal = np.array(
        [_anniversary(int(s), int(y)) for s, y in zip(start_day, years, strict=True)], np.int64
    )
    in_market = rng.random(n) < 1 / 3
    surge_topic = np.where(in_market, rng.integers(len(text.B2B_TOPICS), size=n), -1)
    surge_start = clock.end - rng.integers(4, 11, n) * WEEK
    touch = np.select([employees >= 300, employees >= 50], [0, 1], default=2)
    plan = np.where(employees >= 300, 1, 0)
    columns = {
        "account_id": ids("A", np.arange(1, n + 1), 4),
        "name": pa.array(names),
        "industry": pick(text.INDUSTRIES, industry),
        "employees": ints(employees),
        "region": pick([p[0] for p in text.PREFECTURES], region),
        "contract_start": dates(start_day),
        "renewal_date": dates(renewal),
        "attr.plan": pick(["office_standard", "office_premium"], plan),
        "attr.touch_model": pick(["high_touch", "low_touch", "tech_touch"], touch),
    }
    truth = {
        "account_id": columns["account_id"],
        "name": columns["name"],
        "employees": columns["employees"],
        "touch_model": columns["attr.touch_model"],
        "in_market_topic": pick(text.B2B_TOPICS, np.maximum(surge_topic, 0), surge_topic >= 0),
        "in_market_since": clock.instants(surge_start, surge_topic >= 0),
    }
    info = Accounts(weight=weight, surge_topic=surge_topic, surge_start=surge_start, touch=touch)
    return info, columns, truth


def _anniversary(start_day: int, years: int) -> int:
    start = date(1970, 1, 1) + timedelta(days=start_day)
    try:
        day = start.replace(year=start.year + years)
    except ValueError:
        day = date(start.year + years, 2, 28)
    return (day - date(1970, 1, 1)).days


def _prefecture_weights() -> np.ndarray:
    w = np.array([p[2] for p in text.PREFECTURES], dtype=np.float64)
    return w / w.sum()


def community_events(
    clock: Clock, rng: np.random.Generator
) -> tuple[Community, dict[str, pa.Array]]:
    """About one community event a week: meetups, webinars, user groups, workshops."""
    weeks = int((clock.end - clock.start) // WEEK)
    kind = rng.choice(len(EVENT_KINDS), weeks, p=[0.3, 0.3, 0.12, 0.25, 0.03])
    day = clock.start // DAY + np.arange(weeks) * 7 + rng.integers(0, 7, weeks)
    hour = np.where(kind == 1, 20, np.where(kind == 2, 16, 14))
    start = np.minimum(day * DAY + hour * 3600 - clock.offsets(day * DAY), clock.end - DAY)
    names = [text.COMMUNITY_EVENT_NAMES[EVENT_KINDS[k]] for k in kind]
    title = [f"{n[rng.integers(len(n))]} #{i + 1}" for i, n in enumerate(names)]
    online = kind == 1
    venue = rng.integers(len(text.STORES), size=weeks)
    location = pick(["オンライン"] + [f"Kizuna {s}" for s in text.STORES],
                    np.where(online, 0, venue + 1))  # fmt: skip
    capacity = np.select([online, kind == 4], [500, 800], default=30)
    columns = {
        "community_event_id": ids("CE", np.arange(1, weeks + 1), 4),
        "name": pa.array(title),
        "kind": pick(EVENT_KINDS, kind),
        "starts_at": clock.instants(start),
        "location": location,
        "capacity": ints(capacity),
    }
    return Community(start=start, kind=kind), columns
