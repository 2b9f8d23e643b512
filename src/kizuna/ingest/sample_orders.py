"""Orders, order lines and returns from a block's simulated purchases.

The amount a customer pays for an order (``total_amount``) is the
Gamma-Gamma draw itself, z ~ Gamma(p, ν) rounded to the yen, so a fitted
spend model sees exactly the distribution it assumes. The basket is then
built to add up to that amount plus any coupon discount: lines split the
gross amount with Dirichlet weights, each line takes the product of its
category whose price fits, and the last line absorbs the remainder with a
small markdown (``amount`` below ``quantity x unit_price``). Lines keep to
the customer's *taste group* (one of
:data:`TASTE_GROUPS` interleaved slices of each category's price ladder), so
customers of a group buy the same products: the co-purchase structure a
recommender should find and a popularity ranking cannot. Cancelled orders
are extra orders placed shortly before a real one; the purchase process
counts completed orders only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kizuna.ingest import sample_text as text
from kizuna.ingest.sample_catalog import Catalog
from kizuna.ingest.sample_format import DAY, Clock, by_language, ids, ints, pick
from kizuna.ingest.sample_model import (
    APP_USER_SHARE,
    COUPON_SHARE,
    ONLINE_SHARE,
    PERSONAS,
    ModelParameters,
    Population,
    segment_starts,
)

ORDER_CHANNELS = ("store", "online", "app", "phone", "b2b")
#: (code, percent off or 0, yen off or 0)
COUPONS = (
    ("WELCOME500", 0, 500), ("SPRING10", 10, 0), ("SUMMER15", 15, 0), ("AUTUMN10", 10, 0),
    ("WINTER20", 20, 0), ("BDAY15", 15, 0), ("POINT1000", 0, 1000), ("APP300", 0, 300),
)  # fmt: skip
SALE_HUNTER = PERSONAS.index("sale_hunter")
#: Interleaved product slices per category; a customer's group is its number modulo this.
TASTE_GROUPS = 5
ORDER_WIDTH = 8
ID_WIDTH = 7


@dataclass(frozen=True)
class Orders:
    """What later generators need to know about a block's orders."""

    customer: np.ndarray  #: customer index in the block
    time: np.ndarray
    number: np.ndarray
    completed: np.ndarray
    channel: np.ndarray
    product: np.ndarray  #: one product of the order (for reviews)
    late: np.ndarray  #: delivered late (online and app orders)
    app_user: np.ndarray  #: per customer
    files: dict[str, dict[str, pa.Array]]


def generate(
    pop: Population,
    m: ModelParameters,
    catalog: Catalog,
    clock: Clock,
    order_base: int,
    return_base: int,
    rng: np.random.Generator,
) -> Orders:
    """Orders of one block; ids continue from ``order_base`` and ``return_base``."""
    n = pop.n
    done = pop.buy_customer.size
    cancel = rng.random(done) < m.cancel_share
    c_cust = pop.buy_customer[cancel]
    c_time = pop.buy_time[cancel] - rng.integers(300, DAY, c_cust.size)
    c_time = np.maximum(c_time, pop.signup[c_cust] + 60)
    cust = np.concatenate([pop.buy_customer, c_cust])
    when = np.concatenate([pop.buy_time, c_time])
    completed = np.concatenate([np.ones(done, bool), np.zeros(c_cust.size, bool)])
    order = np.lexsort((when, cust))
    cust, when, completed = cust[order], when[order], completed[order]
    count = cust.size
    number = order_base + np.arange(1, count + 1)

    paid = np.maximum(np.rint(rng.gamma(m.gg_p, 1.0 / pop.nu[cust])), m.min_order_yen)
    paid = paid.astype(np.int64)
    persona = pop.persona[cust]
    coupon = rng.random(count) < COUPON_SHARE[persona]
    code = rng.integers(len(COUPONS), size=count)
    percent = np.array([c[1] for c in COUPONS])[code]
    fixed = np.array([c[2] for c in COUPONS])[code]
    discount = np.where(percent > 0, np.rint(paid * percent / (100 - percent)), fixed)
    discount = np.where(coupon, discount, 0).astype(np.int64)
    gross = paid + discount

    app_user = rng.random(n) < APP_USER_SHARE[pop.persona]
    online = rng.random(count) < ONLINE_SHARE[persona]
    channel = np.where(online, np.where(app_user[cust] & (rng.random(count) < 0.6), 2, 1), 0)
    channel = np.where(rng.random(count) < 0.02, 3, channel)
    channel = np.where(pop.b2b[cust] & (rng.random(count) < 0.85), 4, channel)
    home = rng.integers(len(text.STORES), size=n)
    late = (channel != 0) & completed & (rng.random(count) < m.late_delivery_share)

    lines = _lines(pop, catalog, cust, gross, rng)
    line_order = lines["order"]
    first_line = segment_starts(np.bincount(line_order, minlength=count))
    orders = {
        "order_id": ids("O", number, ORDER_WIDTH),
        "customer_id": ids("C", pop.first + cust, ID_WIDTH),
        "ordered_at": clock.instants(when),
        "channel": pick(ORDER_CHANNELS, channel),
        "store": pick(text.STORES, home[cust], channel == 0),
        "status": pick(["cancelled", "completed"], completed.astype(np.int64)),
        "total_amount": ints(paid),
        "discount_amount": ints(discount),
        "coupon_code": pick([c[0] for c in COUPONS], code, coupon),
    }
    order_lines = {
        "order_id": ids("O", number[line_order], ORDER_WIDTH),
        "line_no": ints(lines["line_no"]),
        "product_id": ids("P", catalog.number[lines["product"]], 4),
        "quantity": ints(lines["quantity"]),
        "unit_price": ints(lines["unit_price"]),
        "amount": ints(lines["amount"]),
    }
    returns = _returns(pop, m, clock, lines, cust, when, completed, number, return_base, rng)
    return Orders(
        customer=cust, time=when, number=number, completed=completed, channel=channel,
        product=lines["product"][first_line], late=late, app_user=app_user,
        files={"orders": orders, "order_lines": order_lines, "returns": returns},
    )  # fmt: skip


def _lines(
    pop: Population, catalog: Catalog, cust: np.ndarray, gross: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Baskets whose line amounts add up to each order's gross amount exactly."""
    mean_extra = np.clip(2.8 + 0.35 * np.log(gross / 4000.0), 0.3, 6.0)
    size = 1 + np.minimum(rng.poisson(mean_extra), 11)
    fav = rng.choice(catalog.leaves, size=(pop.n, 2), p=catalog.popularity)
    b2b_fav = catalog.business[rng.integers(catalog.business.size, size=pop.n)]
    fav[pop.b2b, 0] = b2b_fav[pop.b2b]

    taste = (pop.first + np.arange(pop.n)) % TASTE_GROUPS
    lines = _basket(np.arange(gross.size), size, cust, gross, fav, taste, catalog, rng)
    # Rarely the first lines overshoot a small order; such orders get one line.
    bad = np.zeros(gross.size, bool)
    bad[lines["owner"][lines["rest"] < catalog.price.min()]] = True
    if bad.any():
        keep = ~bad[lines["owner"]]
        redo = np.flatnonzero(bad)
        ones = np.ones(redo.size, np.int64)
        retry = _basket(redo, ones, cust, gross, fav, taste, catalog, rng)
        lines = {k: np.concatenate([lines[k][keep], retry[k]]) for k in lines}
        order = np.lexsort((lines["line_no"], lines["owner"]))
        lines = {k: v[order] for k, v in lines.items()}

    # The last line takes the remainder: the cheapest product of the taste group that covers it.
    last = np.flatnonzero(lines["last"])
    group = taste[cust[lines["owner"][last]]]
    qty = lines["quantity"]
    rung = np.arange(catalog.price.size) - catalog.first[catalog.category]
    for g in range(TASTE_GROUPS):
        mine = last[group == g]
        rest = lines["rest"][mine]
        by_price = catalog.by_price[rung[catalog.by_price] % TASTE_GROUPS == g]
        sorted_prices = catalog.price[by_price]
        q_last = np.maximum(np.minimum(qty[mine], 3), -(-rest // int(sorted_prices[-1])))
        slot = np.searchsorted(sorted_prices, rest / q_last, side="left")
        lines["product"][mine] = by_price[np.minimum(slot, sorted_prices.size - 1)]
        qty[mine] = q_last
        lines["amount"][mine] = rest
    return {"order": lines["owner"], "line_no": lines["line_no"], "product": lines["product"],
            "quantity": qty, "unit_price": catalog.price[lines["product"]],
            "amount": lines["amount"]}  # fmt: skip


def _basket(
    orders: np.ndarray,
    sizes: np.ndarray,
    cust: np.ndarray,
    gross: np.ndarray,
    fav: np.ndarray,
    taste: np.ndarray,
    catalog: Catalog,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Lines for ``orders``; all but the last priced, ``rest`` left for the last."""
    total = int(sizes.sum())
    local = np.repeat(np.arange(orders.size), sizes)
    owner = orders[local]
    line_no = np.arange(total) - segment_starts(sizes)[local] + 1
    last = line_no == sizes[local]
    favourite = fav[cust[owner], rng.integers(0, 2, total)]
    other = rng.choice(catalog.leaves, size=total, p=catalog.popularity)
    leaf = np.where(rng.random(total) < 0.55, favourite, other)
    weight = rng.gamma(2.0, size=total)
    weight /= np.bincount(local, weight, minlength=orders.size)[local]
    target = weight * gross[owner]
    qty = 1 + rng.poisson(0.25, total)
    key = catalog.category * 1e7 + catalog.price
    want = np.minimum(target / qty, 9e6)
    # A category whose cheapest product is beyond the line's budget gives way to a cheap one.
    too_dear = catalog.price[catalog.first[leaf]] > want
    cheap = catalog.cheap[rng.integers(catalog.cheap.size, size=total)]
    leaf = np.where(too_dear, cheap, leaf)
    product = np.searchsorted(key, leaf * 1e7 + want, side="right") - 1
    product = np.maximum(product, catalog.first[leaf])
    # The dearest affordable product of the customer's taste group.
    rung = product - catalog.first[leaf]
    snapped = rung - (rung - taste[cust[owner]]) % TASTE_GROUPS
    product = np.where(~too_dear & (snapped >= 0), product - rung + snapped, product)
    price = catalog.price[product]
    qty = np.where(qty * price < 0.5 * target, np.clip(target // price, 1, 60), qty)
    amount = np.where(last, 0, qty * price).astype(np.int64)
    rest = gross[owner] - np.bincount(local, amount, minlength=orders.size).astype(np.int64)[local]
    return {"owner": owner, "line_no": line_no, "last": last, "product": product,
            "quantity": qty.astype(np.int64), "amount": amount, "rest": rest}  # fmt: skip


def _returns(
    pop: Population,
    m: ModelParameters,
    clock: Clock,
    lines: dict[str, np.ndarray],
    cust: np.ndarray,
    when: np.ndarray,
    completed: np.ndarray,
    number: np.ndarray,
    return_base: int,
    rng: np.random.Generator,
) -> dict[str, pa.Array]:
    """A few lines come back, after the order and before the window ends."""
    owner = lines["order"]
    hunter = pop.persona[cust[owner]] == SALE_HUNTER
    back = completed[owner] & (rng.random(owner.size) < m.return_share * (1.0 + hunter))
    at = when[owner] + ((2 + rng.exponential(5.0, owner.size)) * DAY).astype(np.int64)
    rows = np.flatnonzero(back & (at < clock.end))
    qty = lines["quantity"][rows]
    returned = 1 + np.floor(rng.random(rows.size) * qty).astype(np.int64)
    japanese = pop.japanese[cust[owner[rows]]]
    reason = rng.integers(len(text.RETURN_REASONS["ja"]), size=rows.size)
    return {
        "return_id": ids("RT", return_base + np.arange(1, rows.size + 1), ID_WIDTH),
        "order_id": ids("O", number[owner[rows]], ORDER_WIDTH),
        "line_no": ints(lines["line_no"][rows]),
        "quantity": ints(returned),
        "refund_amount": ints(lines["amount"][rows] * returned // qty),
        "returned_at": clock.instants(at[rows]),
        "reason": by_language(text.RETURN_REASONS, reason, japanese),
    }
