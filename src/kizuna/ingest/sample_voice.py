"""The voice of the customer: support contacts, survey answers, reviews.

Scores follow attachment, and bad experiences pull them down: an NPS answer
is ``round(1.6 + 8·attachment + N(0, 1.3) - 1.5·[unresolved contact] -
1.0·[late delivery])`` clipped to 0-10, so promoters are the attached and the
key-driver analysis has two real drivers to find. Comments pick a theme by
sentiment (promoters praise quality and staff, detractors complain about
price and delivery; an unresolved contact makes "support" the likely
complaint) and the theme of every comment is written to the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kizuna.ingest import sample_text as text
from kizuna.ingest.sample_format import DAY, WEEK, Clock, ids, ints, join, pick
from kizuna.ingest.sample_model import PERSONAS, Population
from kizuna.ingest.sample_orders import ORDER_CHANNELS, Orders

TOUCHPOINTS = ("inquiry_form", "support_desk", "chatbot", "call_centre")
CONTACT_TOPICS = tuple(text.CONTACT_TEXTS)
#: Theme probabilities of praise and of complaints, in THEMES order.
PRAISE = np.array([0.06, 0.35, 0.10, 0.07, 0.18, 0.10, 0.14])
COMPLAINT = np.array([0.26, 0.10, 0.20, 0.16, 0.05, 0.14, 0.09])
SALE_HUNTER = PERSONAS.index("sale_hunter")
WIDTH = 8


@dataclass(frozen=True)
class Counters:
    answers: int
    contacts: int
    reviews: int


def _phrases() -> tuple[list[str], int]:
    """All feedback sentences flattened: index ((lang·themes + theme)·2 + sentiment)·k + i."""
    k = max(len(v) for lang in text.FEEDBACK.values() for t in lang.values() for v in t.values())
    flat: list[str] = []
    for lang in ("ja", "en"):
        for theme in text.THEMES:
            for sentiment in ("neg", "pos"):
                options = text.FEEDBACK[lang][theme][sentiment]
                flat.extend(options[i % len(options)] for i in range(k))
    return flat, k


PHRASES, VARIANTS = _phrases()
CLOSERS = [c for lang in ("ja", "en") for s in ("neg", "pos") for c in text.CLOSERS[lang][s]]
TITLES = [c for lang in ("ja", "en") for s in ("neg", "pos") for c in text.REVIEW_TITLES[lang][s]]


def comments(
    japanese: np.ndarray,
    positive: np.ndarray,
    theme: np.ndarray,
    rng: np.random.Generator,
) -> pa.Array:
    """A sentence on ``theme`` in the row's language, sometimes with a closing remark."""
    lang = (~japanese).astype(np.int64)
    pos = positive.astype(np.int64)
    variant = rng.integers(VARIANTS, size=theme.size)
    sentence = pick(PHRASES, ((lang * len(text.THEMES) + theme) * 2 + pos) * VARIANTS + variant)
    per = len(text.CLOSERS["ja"]["pos"])
    closer = pick(CLOSERS, (lang * 2 + pos) * per + rng.integers(per, size=theme.size))
    with_closer = join([sentence, closer], pick(["", " "], lang))
    return pc.if_else(pa.array(rng.random(theme.size) < 0.5), with_closer, sentence)


def themes(
    positive: np.ndarray, nudge: np.ndarray, nudged: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw a theme per comment; where ``nudge``, complaints favour theme ``nudged``."""
    praise = rng.choice(len(text.THEMES), size=positive.size, p=PRAISE)
    complaint = rng.choice(len(text.THEMES), size=positive.size, p=COMPLAINT)
    complaint = np.where(nudge & (rng.random(positive.size) < 0.6), nudged, complaint)
    return np.where(positive, praise, complaint)


def _after(start: np.ndarray, days: np.ndarray, clock: Clock) -> tuple[np.ndarray, np.ndarray]:
    at = start + (days * DAY).astype(np.int64)
    return at, at < clock.end


def generate(
    pop: Population, orders: Orders, clock: Clock, base: Counters, rng: np.random.Generator
) -> tuple[dict[str, dict[str, pa.Array]], dict[str, np.ndarray], Counters]:
    """Contacts, survey answers and reviews of one block; returns files, flags, counters."""
    n = pop.n
    truth: list[tuple[str, pa.Array, np.ndarray, np.ndarray, np.ndarray]] = []
    customer_ids = ids("C", pop.numbers, 7)
    lang = pick(["en", "ja"], pop.japanese.astype(np.int64))
    done = orders.completed
    late_any = np.bincount(orders.customer[orders.late], minlength=n) > 0

    # Support contacts: after late deliveries, some other orders, and now and then.
    o_rows = np.flatnonzero(done & ((orders.late & (rng.random(done.size) < 0.5))
                                    | (rng.random(done.size) < 0.04)))  # fmt: skip
    o_topic = np.where(orders.late[o_rows], 0, rng.integers(1, len(CONTACT_TOPICS), o_rows.size))
    tenure = (clock.end - pop.signup) / (52 * WEEK)
    bg = rng.poisson(0.08 * tenure)
    bg_cust = np.repeat(np.arange(n), bg)
    bg_at = pop.signup[bg_cust] + (rng.random(bg_cust.size) * (clock.end - pop.signup[bg_cust]))
    c_cust = np.concatenate([orders.customer[o_rows], bg_cust])
    c_open, ok = _after(np.concatenate([orders.time[o_rows], bg_at.astype(np.int64)]),
                        rng.uniform(0.05, 7, c_cust.size), clock)  # fmt: skip
    c_topic = np.concatenate([o_topic, rng.choice([3, 5, 6], bg_cust.size)])
    c_cust, c_open, c_topic = c_cust[ok], c_open[ok], c_topic[ok]
    order = np.lexsort((c_open, c_cust))
    c_cust, c_open, c_topic = c_cust[order], c_open[order], c_topic[order]
    m = c_cust.size
    att = pop.attachment[c_cust]
    b2b_tp = rng.choice(4, m, p=[0.2, 0.55, 0.1, 0.15])
    b2c_tp = rng.choice(4, m, p=[0.3, 0.1, 0.35, 0.25])
    touch = np.where(pop.b2b[c_cust], b2b_tp, b2c_tp)
    p_resolve = np.array([0.90, 0.95, 0.75, 0.93])[touch] - 0.2 * (1 - att)
    hours = np.array([24.0, 8.0, 0.1, 0.5])[touch] * rng.lognormal(0, 0.8, m)
    closed = c_open + (hours * 3600).astype(np.int64)
    resolved = (rng.random(m) < p_resolve) & (closed < clock.end)
    satisfaction = np.clip(np.rint(1.2 + 2.8 * att + 1.0 * resolved + rng.normal(0, 0.7, m)), 1, 5)
    ja = pop.japanese[c_cust]
    variant = rng.integers(2, size=m)
    contact_text = [pair[v][lg] for pair in text.CONTACT_TEXTS.values()
                    for v in range(2) for lg in range(2)]  # fmt: skip
    contact_ids = ids("CT", base.contacts + np.arange(1, m + 1), WIDTH)
    contacts = {
        "contact_id": contact_ids,
        "customer_id": customer_ids.take(pa.array(c_cust)),
        "touchpoint": pick(TOUCHPOINTS, touch),
        "topic": pick(CONTACT_TOPICS, c_topic),
        "opened_at": clock.instants(c_open),
        "resolved": pa.array(resolved),
        "resolved_at": clock.instants(closed, resolved),
        "satisfaction": ints(satisfaction, rng.random(m) < 0.6),
        "comment": pick(contact_text, (c_topic * 2 + variant) * 2 + (~ja)),
        "language": lang.take(pa.array(c_cust)),
    }
    unresolved = np.bincount(c_cust[~resolved], minlength=n) > 0

    # Survey answers: relationship NPS twice a year, CSAT after orders, CES after contacts.
    last = np.where(pop.buyer, pop.last_active(clock), pop.signup) + 26 * WEEK
    invites = np.maximum(0, (np.minimum(last, clock.end) - pop.signup) // (26 * WEEK))
    i_cust = np.repeat(np.arange(n), invites)
    k = np.arange(i_cust.size) - np.repeat(np.cumsum(invites) - invites, invites) + 1
    answer = rng.random(i_cust.size) < 0.10 + 0.35 * pop.attachment[i_cust]
    nps_at, ok = _after(
        pop.signup[i_cust] + k * 26 * WEEK, rng.exponential(3.0, i_cust.size), clock
    )
    nps_cust, nps_at = i_cust[answer & ok], nps_at[answer & ok]
    a = pop.attachment[nps_cust]
    nps = 1.6 + 8 * a + rng.normal(0, 1.3, a.size) - 1.5 * unresolved[nps_cust] - late_any[nps_cust]
    nps = np.clip(np.rint(nps), 0, 10)

    csat_rows = np.flatnonzero(done & (rng.random(done.size) < 0.05))
    csat_at, ok = _after(orders.time[csat_rows], rng.uniform(2, 6, csat_rows.size), clock)
    csat_rows, csat_at = csat_rows[ok], csat_at[ok]
    csat_cust = orders.customer[csat_rows]
    a = pop.attachment[csat_cust]
    csat = 1.6 + 3 * a + rng.normal(0, 0.7, a.size) - 1.2 * orders.late[csat_rows]
    csat = np.clip(np.rint(csat), 1, 5)

    ces_rows = np.flatnonzero(rng.random(m) < 0.3)
    ces_cust = c_cust[ces_rows]
    ces_at = np.where(resolved[ces_rows], closed[ces_rows], c_open[ces_rows]) + 600
    a = pop.attachment[ces_cust]
    ces = 2.2 + 3.2 * resolved[ces_rows] + 1.5 * a + rng.normal(0, 1.0, a.size)
    ces = np.clip(np.rint(ces), 1, 7)

    kind = np.repeat([0, 1, 2], [nps_cust.size, csat_cust.size, ces_cust.size])
    s_cust = np.concatenate([nps_cust, csat_cust, ces_cust])
    s_at = np.minimum(np.concatenate([nps_at, csat_at, ces_at]), clock.end - 1)
    score = np.concatenate([nps, csat, ces]).astype(np.int64)
    touchpoint = pa.concat_arrays([
        pick(["email", "app"], orders.app_user[nps_cust].astype(np.int64)),
        pick(ORDER_CHANNELS, orders.channel[csat_rows]),
        pick(TOUCHPOINTS, touch[ces_rows]),
    ])  # fmt: skip
    order = np.lexsort((s_at, s_cust))
    s_cust, s_at, score, kind = s_cust[order], s_at[order], score[order], kind[order]
    touchpoint = touchpoint.take(pa.array(order))
    good = np.select([kind == 0, kind == 1], [9, 4], default=5)
    bad = np.select([kind == 0, kind == 1], [6, 2], default=3)
    positive = (score >= good) | ((score > bad) & (rng.random(score.size) < 0.5))
    extreme = (score >= good) | (score <= bad)
    has_comment = rng.random(score.size) < np.where(extreme, 0.55, 0.3)
    theme = themes(positive, unresolved[s_cust] | (kind == 2), 3, rng)
    theme = np.where(~positive & late_any[s_cust] & (rng.random(score.size) < 0.4), 2, theme)
    hunter = pop.persona[s_cust] == SALE_HUNTER
    theme = np.where(~positive & hunter & (rng.random(score.size) < 0.4), 0, theme)
    s_ja = pop.japanese[s_cust]
    answer_ids = ids("SV", base.answers + np.arange(1, score.size + 1), WIDTH)
    surveys = {
        "answer_id": answer_ids,
        "customer_id": customer_ids.take(pa.array(s_cust)),
        "survey": pick(["relationship_nps", "post_purchase_csat", "support_ces"], kind),
        "kind": pick(["nps", "csat", "ces"], kind),
        "score": ints(score),
        "comment": pc.if_else(
            pa.array(has_comment),
            comments(s_ja, positive, theme, rng),
            pa.scalar(None, pa.string()),
        ),  # fmt: skip
        "language": lang.take(pa.array(s_cust)),
        "touchpoint": touchpoint,
        "answered_at": clock.instants(s_at),
    }
    truth.append(("survey_answers", answer_ids, theme, positive, has_comment))

    # Reviews: attached customers write more, and rate higher.
    r_rows = np.flatnonzero(
        done & (rng.random(done.size) < 0.02 + 0.08 * pop.attachment[orders.customer])
    )
    r_at, ok = _after(orders.time[r_rows], 3 + rng.exponential(7.0, r_rows.size), clock)
    r_rows, r_at = r_rows[ok], r_at[ok]
    r_cust = orders.customer[r_rows]
    a = pop.attachment[r_cust]
    rating = np.clip(np.rint(1.4 + 3.8 * a + rng.normal(0, 0.8, a.size)), 1, 5).astype(np.int64)
    r_pos = (rating >= 4) | ((rating == 3) & (rng.random(rating.size) < 0.5))
    r_theme = themes(r_pos, orders.late[r_rows], 2, rng)
    r_theme = np.where(rng.random(rating.size) < 0.5, 1, r_theme)
    r_ja = pop.japanese[r_cust]
    ugc = rng.random(rating.size) < 0.1
    review_ids = ids("RV", base.reviews + np.arange(1, rating.size + 1), WIDTH)
    per = len(text.REVIEW_TITLES["ja"]["pos"])
    title = pick(TITLES, ((~r_ja) * 2 + r_pos) * per + rng.integers(per, size=rating.size))
    channel = np.where(
        ugc, rng.integers(2, 5, rating.size), orders.app_user[r_cust].astype(np.int64)
    )
    reviews = {
        "review_id": review_ids,
        "customer_id": customer_ids.take(pa.array(r_cust)),
        "product_id": ids("P", orders.product[r_rows] + 1, 4),
        "kind": pick(["review", "ugc"], ugc.astype(np.int64)),
        "rating": ints(rating),
        "title": title,
        "body": comments(r_ja, r_pos, r_theme, rng),
        "language": lang.take(pa.array(r_cust)),
        "channel": pick(["site", "app", "instagram", "x", "blog"], channel),
        "url": pc.if_else(
            pa.array(ugc),
            join([pa.scalar("https://example.com/ugc/"), review_ids]),
            pa.scalar(None, pa.string()),
        ),  # fmt: skip
        "posted_at": clock.instants(r_at),
    }
    truth.append(("reviews", review_ids, r_theme, r_pos, np.ones(rating.size, bool)))

    feedback = _truth(truth)
    flags = {"unresolved": unresolved, "late": late_any}
    counts = Counters(base.answers + score.size, base.contacts + m, base.reviews + rating.size)
    files = {"contacts": contacts, "survey_answers": surveys, "reviews": reviews,
             "ground_truth_feedback": feedback}  # fmt: skip
    return files, flags, counts


def _truth(
    parts: list[tuple[str, pa.Array, np.ndarray, np.ndarray, np.ndarray]],
) -> dict[str, pa.Array]:
    """One row per comment: which file, which record, which theme, which sentiment."""
    kinds, records, theme, sentiment = [], [], [], []
    for kind, record_ids, th, pos, has in parts:
        rows = np.flatnonzero(has)
        kinds.append(pick([kind], np.zeros(rows.size, np.int64)))
        records.append(record_ids.take(pa.array(rows)))
        theme.append(pick(text.THEMES, th[rows]))
        sentiment.append(pick(["negative", "positive"], pos[rows].astype(np.int64)))
    return {
        "file": pa.concat_arrays(kinds),
        "record_id": pa.concat_arrays(records),
        "theme": pa.concat_arrays(theme),
        "sentiment": pa.concat_arrays(sentiment),
    }
