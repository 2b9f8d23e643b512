"""Engagement: consents, web and app events, community, trainings, referrals.

Attached customers visit more, join community events (rate ∝ attachment⁶,
so attendance is mostly the attached), and refer friends (referrers are
drawn with weight attachment⁴, i.e. mostly promoters). B2B members read
about research topics, and the members of an account that is "in market"
read far more about its one topic from the surge start on: the intent
signal. A fifth of accounts are "at risk" (:func:`account_risk`): from a
day eight to sixteen weeks before the window's end their people use the
product far less (85% of their events after it are dropped) and finish
fewer trainings; that is the truth the health score should find. Every
event happens after sign-up and before the window ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kizuna.ingest import sample_text as text
from kizuna.ingest.sample_catalog import PRODUCTS_PER_CATEGORY, Accounts, Catalog, Community
from kizuna.ingest.sample_format import DAY, WEEK, Clock, ids, ints, pick
from kizuna.ingest.sample_model import Population, segment_starts
from kizuna.ingest.sample_orders import Orders

EVENT_TYPES = (
    "page_view", "product_view", "search", "add_to_cart", "app_open", "login",
    "feature_use", "email_open", "email_click", "download", "webinar_view",
)  # fmt: skip
PV, PRODUCT, SEARCH, CART, APP, LOGIN, FEATURE, OPEN, CLICK, DOWNLOAD, WEBINAR = range(11)
CAPACITY_WEIGHT = np.array([40.0, 3000.0, 80.0, 20.0, 5000.0])
LEAF_SLUGS = tuple(c[0] for c in text.LEAF_CATEGORIES)
PROPERTIES = (
    [json.dumps({"query": q}, ensure_ascii=False) for q in text.SEARCH_QUERIES]
    + [json.dumps({"platform": p}) for p in ("ios", "android")]
    + [json.dumps({"campaign": c}) for c in ("newsletter", "new_arrivals", "member_sale")]
    + [json.dumps({"feature": f}) for f in ("reorder", "invoices", "user_admin", "api_keys")]
)
N_QUERIES = len(text.SEARCH_QUERIES)
YEAR = 52 * WEEK
#: Research sessions per person and week on the topic of an in-market account.
SURGE_PER_WEEK = 2.0
#: Share of an at-risk account's events after its decline starts that are dropped.
RISK_THINNING = 0.85
#: Mean uses of the B2B ordering portal per person and week (x 0.5 + attachment).
PRODUCT_USE_PER_WEEK = 0.6


@dataclass(frozen=True)
class AccountRisk:
    """Which accounts are fading away, and since when: the health score's truth."""

    at_risk: np.ndarray  #: bool per account
    since: np.ndarray  #: epoch seconds when usage began to fade (meaningful if at_risk)

    def truth(self, clock: Clock) -> dict[str, pa.Array]:
        """Columns for ``ground_truth_accounts.csv``."""
        return {
            "at_risk": pa.array(self.at_risk),
            "at_risk_since": clock.instants(self.since, self.at_risk),
        }

    def members(self, pop: Population) -> tuple[np.ndarray, np.ndarray]:
        """(member of an at-risk account, its decline start) per customer of ``pop``."""
        account = np.maximum(pop.account, 0)
        member = (pop.account >= 0) & self.at_risk[account]
        return member, np.where(member, self.since[account], np.iinfo(np.int64).max)


def account_risk(n: int, clock: Clock, rng: np.random.Generator) -> AccountRisk:
    """Plant at-risk accounts: a fifth of them, fading from 8-16 weeks before the end."""
    at_risk = rng.random(n) < 0.2
    since = clock.end - rng.integers(8, 17, n) * WEEK
    return AccountRisk(at_risk=at_risk, since=since)


def consents(
    pop: Population, orders: Orders, clock: Clock, rng: np.random.Generator
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Consent rows per customer and channel; returns the e-mail opt-in per customer."""
    n = pop.n
    a = pop.attachment
    channels = ("email", "sms", "line", "push", "phone", "post")
    chance = np.stack([0.55 + 0.3 * a, np.full(n, 0.15), 0.3 + 0.3 * a,
                       np.where(orders.app_user, 0.7, 0.0), np.where(pop.b2b, 0.5, 0.0),
                       np.full(n, 0.1)], axis=1)  # fmt: skip
    asked = np.stack([np.ones(n, bool), np.ones(n, bool), np.ones(n, bool), orders.app_user,
                      pop.b2b, rng.random(n) < 0.2], axis=1)  # fmt: skip
    granted = rng.random((n, 6)) < chance
    # Customers who stopped buying sometimes unsubscribe from e-mail later.
    leave = pop.dropout + ((2 + rng.exponential(10.0, n)) * WEEK).astype(np.int64)
    withdraw = (
        granted[:, 0] & (pop.dropout >= 0) & (leave < clock.end) & (rng.random(n) < 0.4 * (1 - a))
    )
    cust, chan = np.nonzero(asked)
    at = pop.signup[cust]
    granted_first = granted[cust, chan]
    source = np.where(granted_first & (chan == 2), 1, np.where(granted_first & (chan == 3), 2, 0))
    is_withdrawal = (chan == 0) & withdraw[cust]
    at = np.where(is_withdrawal, leave[cust], at)
    source = np.where(is_withdrawal, 3, source)
    g = granted[cust, chan] & ~is_withdrawal
    columns = {
        "customer_id": ids("C", pop.first + cust, 7),
        "channel": pick(channels, chan),
        "granted": pa.array(g),
        "changed_at": clock.instants(at),
        "source": pick(
            ["signup_form", "line_friend_add", "app_prompt", "unsubscribe_link"], source
        ),
    }
    return columns, granted[:, 0] & ~withdraw


def events(
    pop: Population,
    orders: Orders,
    catalog: Catalog,
    accounts: Accounts,
    email_ok: np.ndarray,
    clock: Clock,
    base: int,
    session_base: int,
    rng: np.random.Generator,
    risk: AccountRisk | None = None,
    risk_rng: np.random.Generator | None = None,
) -> tuple[dict[str, pa.Array], int, int]:
    """Web, app and e-mail events; returns the columns and the next event and session numbers.

    With ``risk``, B2B people also use the ordering portal
    (:func:`_product_use`), and members of at-risk accounts lose most events
    after their account's decline starts. Both are drawn from ``risk_rng``,
    so the other event draws stay as they were.
    """
    n = pop.n
    a = pop.attachment
    stop = np.where(pop.buyer, np.minimum(pop.last_active(clock) + 8 * WEEK, clock.end),
                    np.minimum(pop.signup + (rng.exponential(12.0, n) * WEEK).astype(np.int64),
                               clock.end))  # fmt: skip
    span = np.maximum(stop - pop.signup, 0)

    # Browsing sessions; B2B members also research, more so when their account is in market.
    sessions = rng.poisson((0.02 + 0.05 * a) * span / WEEK)
    b2b = pop.b2b
    research = np.where(b2b, rng.poisson(0.08 * span / WEEK), 0)
    surge_topic = np.where(b2b, accounts.surge_topic[np.maximum(pop.account, 0)], -1)
    surge_from = np.maximum(accounts.surge_start[np.maximum(pop.account, 0)], pop.signup)
    surging = (surge_topic >= 0) & (surge_from < stop)
    surge = np.where(
        surging, rng.poisson(SURGE_PER_WEEK * np.maximum(stop - surge_from, 0) / WEEK), 0
    )
    kind = np.concatenate([np.zeros(sessions.sum(), np.int64), np.ones(research.sum(), np.int64),
                           np.full(surge.sum(), 2, np.int64)])  # fmt: skip
    s_cust = np.concatenate([np.repeat(np.arange(n), sessions), np.repeat(np.arange(n), research),
                             np.repeat(np.arange(n), surge)])  # fmt: skip
    lo = np.where(kind == 2, surge_from[s_cust], pop.signup[s_cust])
    s_start = lo + (rng.random(s_cust.size) * (stop[s_cust] - lo)).astype(np.int64)
    length = 1 + rng.poisson(np.where(kind == 0, 1.5, 1.0))
    e_session = np.repeat(np.arange(s_cust.size), length)
    e_cust = s_cust[e_session]
    pos = np.arange(e_session.size) - segment_starts(length)[e_session]
    e_kind = kind[e_session]
    app_session = (orders.app_user[s_cust] & (rng.random(s_cust.size) < 0.5))[e_session]
    browse = rng.choice(
        [PV, PRODUCT, SEARCH, CART, LOGIN], e_cust.size, p=[0.35, 0.38, 0.12, 0.07, 0.08]
    )
    browse = np.where(app_session & (pos == 0), APP, browse)
    b2b_type = rng.choice([PV, DOWNLOAD, FEATURE, WEBINAR], e_cust.size, p=[0.6, 0.15, 0.15, 0.1])
    e_type = np.where(e_kind == 0, browse, b2b_type)
    e_topic_b2b = np.where(
        e_kind == 2, surge_topic[e_cust], rng.integers(len(text.B2B_TOPICS), size=e_cust.size)
    )
    e_time = s_start[e_session] + (pos * rng.uniform(20, 180, e_cust.size)).astype(np.int64)

    # Views and cart adds shortly before online orders.
    web = np.flatnonzero(orders.completed & ((orders.channel == 1) | (orders.channel == 2)))
    views = 1 + rng.poisson(1.0, web.size)
    v_order = np.repeat(web, views)
    v_first = np.zeros(v_order.size, bool)
    v_first[segment_starts(views)] = True
    v_cust = orders.customer[v_order]
    v_time = orders.time[v_order] - np.where(
        v_first, rng.integers(60, 600, v_order.size), rng.integers(600, 3600, v_order.size)
    )

    # E-mail opens and clicks for those who opted in.
    months = span / (YEAR / 12)
    opens = np.where(email_ok, rng.poisson(months * (0.05 + 0.25 * a)), 0)
    m_cust = np.repeat(np.arange(n), opens)
    m_time = pop.signup[m_cust] + (rng.random(m_cust.size) * span[m_cust]).astype(np.int64)
    m_type = np.where(rng.random(m_cust.size) < 0.25, CLICK, OPEN)

    cust = np.concatenate([e_cust, v_cust, m_cust])
    etype = np.concatenate([e_type, np.where(v_first, CART, PRODUCT), m_type])
    time = np.concatenate([e_time, np.maximum(v_time, pop.signup[v_cust]), m_time])
    session = np.concatenate([session_base + e_session + 1, np.full(v_cust.size + m_cust.size, -1)])
    b2b_topic = np.concatenate([np.where(e_kind > 0, e_topic_b2b, -1),
                                np.full(v_cust.size + m_cust.size, -1)])  # fmt: skip
    viewed = np.concatenate([
        _browsed(e_cust, orders, catalog, n, rng),
        np.where(v_first, orders.product[v_order], _related(orders.product[v_order], catalog, rng)),
        np.zeros(m_cust.size, np.int64),
    ])  # fmt: skip
    time = np.clip(time, clock.start, clock.end - 1)
    if risk is not None:
        r = risk_rng or rng
        u_cust, u_type, u_time = _product_use(pop, stop, r)
        cust = np.concatenate([cust, u_cust])
        etype = np.concatenate([etype, u_type])
        time = np.concatenate([time, np.clip(u_time, clock.start, clock.end - 1)])
        session = np.concatenate([session, np.full(u_cust.size, -1)])
        b2b_topic = np.concatenate([b2b_topic, np.full(u_cust.size, -1)])
        viewed = np.concatenate([viewed, np.zeros(u_cust.size, np.int64)])
        fading, since = risk.members(pop)
        chance = r.random(cust.size)
        keep = ~(fading[cust] & (time >= since[cust]) & (chance < RISK_THINNING))
        cust, etype, time, session = cust[keep], etype[keep], time[keep], session[keep]
        b2b_topic, viewed = b2b_topic[keep], viewed[keep]
    order = np.lexsort((time, cust))
    cust, etype, time, session = cust[order], etype[order], time[order], session[order]
    b2b_topic, viewed = b2b_topic[order], viewed[order]
    rows = cust.size

    is_product = (etype == PRODUCT) | (etype == CART)
    leaf = catalog.category[viewed]
    topics = list(LEAF_SLUGS) + list(text.B2B_TOPICS)
    topic_index = np.where(b2b_topic >= 0, b2b_topic + len(LEAF_SLUGS), leaf)
    page_kind = np.select(
        [b2b_topic >= 0, is_product, etype == SEARCH, etype == PV, etype == LOGIN],
        [0, 1, 2, 3, 4],
        default=-1,
    )
    has_topic = (page_kind == 0) | (page_kind == 1) | (page_kind == 3)
    topic = pick(topics, topic_index, has_topic)
    page = _page(page_kind, topic, ids("", catalog.number[viewed], 4))
    dwell = np.rint(
        rng.lognormal(np.where(b2b_topic >= 0, 4.6, 3.6) + 0.5 * pop.attachment[cust], 0.8)
    )
    timed = np.isin(etype, [PV, PRODUCT, DOWNLOAD, WEBINAR])
    props = np.select(
        [etype == SEARCH, etype == APP, (etype == OPEN) | (etype == CLICK), etype == FEATURE],
        [
            rng.integers(N_QUERIES, size=rows),
            N_QUERIES + rng.integers(2, size=rows),
            N_QUERIES + 2 + rng.integers(3, size=rows),
            N_QUERIES + 5 + rng.integers(4, size=rows),
        ],
        default=-1,
    )
    columns = {
        "event_id": ids("EV", base + np.arange(1, rows + 1), 9),
        "customer_id": ids("C", pop.first + cust, 7),
        "type": pick(EVENT_TYPES, etype),
        "occurred_at": clock.instants(time),
        "page": page,
        "topic": topic,
        "dwell_seconds": ints(dwell, timed),
        "session_id": ids("SS", np.maximum(session, 0), 9, session >= 0),
        "properties": pick(PROPERTIES, np.maximum(props, 0), props >= 0),
    }
    return columns, base + rows, session_base + s_cust.size


def _product_use(
    pop: Population, stop: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """B2B people use the ordering portal: logins, app opens and feature use while active.

    About one use a week (more for the attached) from sign-up until they stop:
    the habit the health score's usage component measures.
    """
    b2b = np.flatnonzero(pop.b2b)
    span = np.maximum(stop[b2b] - pop.signup[b2b], 0)
    uses = rng.poisson(PRODUCT_USE_PER_WEEK * (0.5 + pop.attachment[b2b]) * span / WEEK)
    cust = np.repeat(b2b, uses)
    time = pop.signup[cust] + (rng.random(cust.size) * (stop[cust] - pop.signup[cust])).astype(
        np.int64
    )
    etype = rng.choice([LOGIN, APP, FEATURE], cust.size, p=[0.4, 0.2, 0.4])
    return cust, etype, time


def _related(product: np.ndarray, catalog: Catalog, rng: np.random.Generator) -> np.ndarray:
    """A random product of the same category as each of ``product``."""
    leaf = catalog.category[product]
    return catalog.first[leaf] + rng.integers(PRODUCTS_PER_CATEGORY, size=product.size)


def _browsed(
    cust: np.ndarray, orders: Orders, catalog: Catalog, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Products looked at while browsing: mostly near what the customer buys."""
    count = np.bincount(orders.customer, minlength=n)
    start = segment_starts(count)
    pick = start[cust] + (rng.random(cust.size) * count[cust]).astype(np.int64)
    bought = orders.product[np.minimum(pick, max(orders.product.size - 1, 0))] if count.any() else 0
    anything = rng.integers(catalog.category.size, size=cust.size)
    near = (count[cust] > 0) & (rng.random(cust.size) < 0.6)
    return np.where(near, _related(np.where(near, bought, 0), catalog, rng), anything)


def _page(kind: np.ndarray, topic: pa.Array, product: pa.Array) -> pa.Array:
    """Site paths: /business/<topic>, /products/P0001, /search, /c/<category>, /login."""
    base = pick(["/business/", "/products/P", "/search", "/c/", "/login"], np.maximum(kind, 0))
    with_topic = pc.binary_join_element_wise(base, topic, "")
    item = pc.binary_join_element_wise(base, product, "")
    chosen = pc.if_else(pa.array((kind == 0) | (kind == 3)), with_topic,
                        pc.if_else(pa.array(kind == 1), item, base))  # fmt: skip
    return pc.if_else(pa.array(kind >= 0), chosen, pa.scalar(None, pa.string()))


def community(
    pop: Population, events: Community, clock: Clock, base: int, rng: np.random.Generator
) -> tuple[dict[str, pa.Array], int]:
    """Registrations, attendance, posts and comments; mostly from the attached."""
    n = pop.n
    a = pop.attachment
    years = (clock.end - pop.signup) / YEAR
    regs = rng.poisson(years * (0.01 + 0.4 * a**6))
    r_cust = np.repeat(np.arange(n), regs)
    weight = np.concatenate([[0.0], np.cumsum(CAPACITY_WEIGHT[events.kind])])
    first = np.searchsorted(events.start, pop.signup[r_cust] + 2 * DAY)
    ok = first < events.start.size
    r_cust, first = r_cust[ok], first[ok]
    u = weight[first] + rng.random(r_cust.size) * (weight[-1] - weight[first])
    event = np.minimum(np.searchsorted(weight, u, side="right") - 1, events.start.size - 1)
    starts = events.start[event]
    registered = np.maximum(starts - (rng.uniform(1, 30, r_cust.size) * DAY).astype(np.int64),
                            pop.signup[r_cust] + 3600)  # fmt: skip
    attend = rng.random(r_cust.size) < 0.55 + 0.4 * a[r_cust]
    att_cust, att_event = r_cust[attend], event[attend]
    attended = events.start[att_event] + rng.integers(0, 900, att_cust.size)

    posts = rng.poisson(years * 0.6 * a**6)
    comments = rng.poisson(years * 1.2 * a**6)
    p_cust = np.concatenate([np.repeat(np.arange(n), posts), np.repeat(np.arange(n), comments)])
    p_kind = np.repeat([2, 3], [posts.sum(), comments.sum()])
    p_time = pop.signup[p_cust] + (
        rng.random(p_cust.size) * (clock.end - pop.signup[p_cust])
    ).astype(np.int64)

    cust = np.concatenate([r_cust, att_cust, p_cust])
    kind = np.concatenate(
        [np.zeros(r_cust.size, np.int64), np.ones(att_cust.size, np.int64), p_kind]
    )
    time = np.minimum(np.concatenate([registered, attended, p_time]), clock.end - 1)
    event_no = np.concatenate([event, att_event, np.full(p_cust.size, -1)])
    order = np.lexsort((time, cust))
    cust, kind, time, event_no = cust[order], kind[order], time[order], event_no[order]
    rows = cust.size
    ja = pop.japanese[cust]
    which = rng.integers(len(text.COMMUNITY_POSTS["ja"]), size=rows)
    is_post = kind == 2
    columns = {
        "activity_id": ids("CA", base + np.arange(1, rows + 1), 8),
        "customer_id": ids("C", pop.first + cust, 7),
        "kind": pick(["event_registration", "event_attendance", "post", "comment"], kind),
        "community_event_id": ids("CE", event_no + 1, 4, event_no >= 0),
        "occurred_at": clock.instants(time),
        "title": _post_text(which, ja, 0, is_post),
        "body": _post_text(which, ja, 1, kind >= 2),
    }
    return columns, base + rows


def _post_text(which: np.ndarray, ja: np.ndarray, part: int, valid: np.ndarray) -> pa.Array:
    flat = [p[part] for lang in ("ja", "en") for p in text.COMMUNITY_POSTS[lang]]
    per = len(text.COMMUNITY_POSTS["ja"])
    return pick(flat, (~ja) * per + which, valid)


def trainings(
    pop: Population,
    clock: Clock,
    base: int,
    rng: np.random.Generator,
    risk: AccountRisk | None = None,
    risk_rng: np.random.Generator | None = None,
) -> tuple[dict[str, pa.Array], int]:
    """Onboarding, courses and certifications for the people of B2B accounts.

    People of at-risk accounts rarely finish what they start after (or just
    before) their account's decline begins.
    """
    b2b = np.flatnonzero(pop.b2b)
    a = pop.attachment[b2b]
    onboard = rng.random(b2b.size) < 0.85
    courses = rng.poisson(0.3 + 1.2 * a)
    certify = rng.random(b2b.size) < 0.1 + 0.5 * a
    counts = onboard.astype(np.int64) + courses + certify
    cust = np.repeat(b2b, counts)
    slot = np.arange(cust.size) - np.repeat(segment_starts(counts), counts)
    n_on = np.repeat(onboard.astype(np.int64), counts)
    n_course = np.repeat(courses, counts)
    kind = np.where(slot < n_on, 0, np.where(slot < n_on + n_course, 1, 2))
    signup = pop.signup[cust]
    span = clock.end - signup
    enrolled = np.where(kind == 0, signup + (rng.uniform(0, 14, cust.size) * DAY).astype(np.int64),
                        signup + (rng.random(cust.size) * span).astype(np.int64))  # fmt: skip
    enrolled = np.maximum(np.minimum(enrolled, clock.end - DAY), signup)
    att = pop.attachment[cust]
    finished = enrolled + (rng.uniform(1, 20, cust.size) * DAY).astype(np.int64)
    completed = (rng.random(cust.size) < 0.55 + 0.4 * att) & (finished < clock.end)
    if risk is not None:
        fading, since = risk.members(pop)
        late = enrolled >= since[cust] - 4 * WEEK
        completed &= ~(fading[cust] & late & ((risk_rng or rng).random(cust.size) < 0.8))
    score = np.clip(np.rint(55 + 40 * att + rng.normal(0, 8, cust.size)), 0, 100)
    scored = completed & (kind > 0)
    certified = scored & (kind == 2) & (score >= 70)
    course = rng.integers(4, size=cust.size)
    names = [c for k in ("onboarding", "course", "certification")
             for c in (list(text.TRAINING_COURSES[k]) * 4)[:4]]  # fmt: skip
    rows = cust.size
    number = base + np.arange(1, rows + 1)
    columns = {
        "training_id": ids("TR", number, 7),
        "customer_id": ids("C", pop.first + cust, 7),
        "course": pick(names, kind * 4 + course),
        "kind": pick(["onboarding", "course", "certification"], kind),
        "enrolled_at": clock.instants(enrolled),
        "completed_at": clock.instants(finished, completed),
        "score": ints(score, scored),
        "certificate_id": ids("CERT-", number, 7, certified),
    }
    return columns, base + rows


def referrals(
    pop: Population, clock: Clock, base: int, rng: np.random.Generator
) -> tuple[dict[str, pa.Array], np.ndarray, int]:
    """Who brought whom: referred customers get a referrer who joined before them.

    Referrers are drawn with weight attachment⁴ among earlier customers of
    the block; attached customers also send invitations nobody took up.
    Returns the columns, each customer's referrer index (-1) and the counter.
    """
    n = pop.n
    order = np.argsort(pop.signup, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(pop.attachment[order] ** 4)])
    referee = np.flatnonzero(pop.referred)
    before = np.searchsorted(pop.signup[order], pop.signup[referee] - DAY)
    ok = cum[before] > 0
    referee, before = referee[ok], before[ok]
    pos = np.searchsorted(cum, rng.random(referee.size) * cum[before], side="right") - 1
    referrer = order[np.minimum(pos, np.maximum(before - 1, 0))]
    referred_by = np.full(n, -1, dtype=np.int64)
    referred_by[referee] = referrer
    lead = (rng.uniform(0.05, 14, referee.size) * DAY).astype(np.int64)
    at = np.maximum(pop.signup[referee] - lead, pop.signup[referrer] + 3600)
    status = np.where(pop.buyer[referee], np.where(rng.random(referee.size) < 0.8, 2, 1), 0)
    status = np.where(rng.random(referee.size) < 0.02, 3, status)

    years = (clock.end - pop.signup) / YEAR
    invites = rng.poisson(years * 0.4 * pop.attachment**4)
    i_cust = np.repeat(np.arange(n), invites)
    i_at = pop.signup[i_cust] + (rng.random(i_cust.size) * (clock.end - pop.signup[i_cust])).astype(
        np.int64
    )

    who = np.concatenate([referrer, i_cust])
    whom = np.concatenate([referee, np.full(i_cust.size, -1)])
    when = np.concatenate([at, i_at])
    state = np.concatenate([status, np.zeros(i_cust.size, np.int64)])
    rank = np.lexsort((when, who))
    who, whom, when, state = who[rank], whom[rank], when[rank], state[rank]
    rows = who.size
    columns = {
        "referral_id": ids("RF", base + np.arange(1, rows + 1), 7),
        "referrer_id": ids("C", pop.first + who, 7),
        "referee_id": ids("C", pop.first + np.maximum(whom, 0), 7, whom >= 0),
        "code": ids("REF", pop.first + who, 7),
        "referred_at": clock.instants(np.minimum(when, clock.end - 1)),
        "status": pick(["pending", "qualified", "rewarded", "rejected"], state),
    }
    return columns, referred_by, base + rows
