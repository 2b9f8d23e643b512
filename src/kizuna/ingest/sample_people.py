"""Customer profiles and the per-customer truth.

Profiles look like a Japanese sign-up form: kanji names from frequency lists,
prefectures by population, occupations as the form's labels, ``090-`` mobile
numbers and e-mail addresses on the reserved ``example.*`` domains. A fifth
of customers prefer English and carry Western names. Some fields are left
blank, as real forms are.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kizuna.ingest import sample_text as text
from kizuna.ingest.sample_format import DAY, Clock, dates, fixed_strings, floats, ids, join, pick
from kizuna.ingest.sample_model import (
    LOYALTY_CLASSES,
    PERSONAS,
    Calibration,
    ModelParameters,
    Population,
)

GENDERS = ("female", "male", "other", "unknown")
ACQUISITION = ("web_ad", "search", "sns", "store", "app_store", "referral", "b2b_sales")


def _weights(values: tuple[int, ...] | list[int]) -> np.ndarray:
    w = np.asarray(values, dtype=np.float64)
    return w / w.sum()


def _phones(rng: np.random.Generator, n: int, valid: np.ndarray) -> pa.Array:
    """``0X0-NNNN-NNNN`` Japanese mobile numbers."""
    out = np.empty((n, 13), dtype=np.uint8)
    out[:, 0] = ord("0")
    out[:, 1] = rng.choice(np.frombuffer(b"987", np.uint8), n, p=[0.55, 0.35, 0.10])
    out[:, 2] = ord("0")
    out[:, [3, 8]] = ord("-")
    digits = rng.integers(ord("0"), ord("9") + 1, size=(n, 8), dtype=np.uint8)
    out[:, 4:8] = digits[:, :4]
    out[:, 9:13] = digits[:, 4:]
    return fixed_strings(out, valid)


def customers(
    pop: Population,
    m: ModelParameters,
    cal: Calibration,
    clock: Clock,
    app_user: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, pa.Array]:
    """The customers file for one block."""
    n = pop.n
    ja = pop.japanese
    gender = rng.choice(4, n, p=[0.52, 0.43, 0.01, 0.04])
    female = (gender == 0) | ((gender >= 2) & (rng.random(n) < 0.5))
    fam = rng.choice(len(text.FAMILY_NAMES), n, p=_weights([f[2] for f in text.FAMILY_NAMES]))
    giv_f = rng.integers(len(text.GIVEN_FEMALE), size=n)
    giv_m = rng.integers(len(text.GIVEN_MALE), size=n)
    given_list = [g[0] for g in text.GIVEN_FEMALE] + [g[0] for g in text.GIVEN_MALE]
    given_roman = [g[1] for g in text.GIVEN_FEMALE] + [g[1] for g in text.GIVEN_MALE]
    given = np.where(female, giv_f, len(text.GIVEN_FEMALE) + giv_m)
    w_given = rng.integers(len(text.WESTERN_GIVEN), size=n)
    w_family = rng.integers(len(text.WESTERN_FAMILY), size=n)
    lang = pa.array(ja)
    name = pc.if_else(
        lang,
        join([pick([f[0] for f in text.FAMILY_NAMES], fam), pick(given_list, given)], " "),
        join([pick(text.WESTERN_GIVEN, w_given), pick(text.WESTERN_FAMILY, w_family)], " "),
    )
    local_part = pc.if_else(
        lang,
        join([pick(given_roman, given), pick([f[1] for f in text.FAMILY_NAMES], fam)], "."),
        pc.utf8_lower(
            join([pick(text.WESTERN_GIVEN, w_given), pick(text.WESTERN_FAMILY, w_family)], ".")
        ),
    )
    domain = pick(
        text.EMAIL_DOMAINS,
        rng.choice(len(text.EMAIL_DOMAINS), n, p=[0.3, 0.15, 0.15, 0.2, 0.1, 0.1]),
    )
    email = join(
        [local_part, ids("", pop.numbers, 7), pick(["@"], np.zeros(n, np.int64)), domain], ""
    )
    email = pc.if_else(pa.array(rng.random(n) < 0.95), email, pa.scalar(None, pa.string()))

    signup_day = np.floor_divide(clock.local_seconds(pop.signup), DAY)
    age = np.clip(rng.normal(44, 14, n), 18, 88)
    birthday = signup_day - (age * 365.25).astype(np.int64)
    pref = rng.choice(len(text.PREFECTURES), n, p=_weights([p[2] for p in text.PREFECTURES]))
    postal = join(
        [pick([p[3] for p in text.PREFECTURES], pref), ids("", rng.integers(0, 10_000, n), 4)], "-"
    )
    occupation = rng.choice(len(text.OCCUPATIONS), n, p=_weights([o[1] for o in text.OCCUPATIONS]))

    rank = np.select([pop.value >= 2 * cal.high_value, pop.value >= cal.high_value,
                      pop.value >= cal.high_value / 3], [3, 2, 1], default=0)  # fmt: skip
    channel = np.select(
        [pop.b2b, pop.referred], [6, 5], default=rng.choice(5, n, p=[0.25, 0.25, 0.2, 0.2, 0.1])
    )
    return {
        "customer_id": ids("C", pop.numbers, 7),
        "name": name,
        "email": email,
        "phone": _phones(rng, n, rng.random(n) < 0.85),
        "birthday": dates(birthday, rng.random(n) < 0.8),
        "gender": pick(GENDERS, gender),
        "region": pick([p[0] for p in text.PREFECTURES], pref),
        "postal_code": pc.if_else(
            pa.array(rng.random(n) < 0.7), postal, pa.scalar(None, pa.string())
        ),
        "occupation": pick([o[0] for o in text.OCCUPATIONS], occupation, rng.random(n) < 0.75),
        "language": pick(["en", "ja"], ja.astype(np.int64)),
        "timezone": pick([clock.name], np.zeros(n, np.int64)),
        "signup_at": clock.instants(pop.signup),
        "account_id": ids("A", pop.account + 1, 4, pop.account >= 0),
        "attr.member_rank": pick(["regular", "silver", "gold", "platinum"], rank),
        "attr.acquisition_channel": pick(ACQUISITION, channel),
        "attr.app_user": pa.array(app_user),
    }


def truth(
    pop: Population,
    m: ModelParameters,
    clock: Clock,
    flags: dict[str, np.ndarray],
    referred_by: np.ndarray,
) -> dict[str, pa.Array]:
    """``ground_truth.csv``: the latent quantities behind each customer's data."""
    buyer = pop.buyer
    return {
        "customer_id": ids("C", pop.numbers, 7),
        "persona": pick(PERSONAS, pop.persona),
        "loyalty_class": pick(LOYALTY_CLASSES, pop.loyalty),
        "attachment": floats(pop.attachment, 4),
        "lambda": floats(pop.lam),
        "p": floats(pop.p),
        "nu": pa.array(np.round(pop.nu, 9)),
        "mean_spend": floats(m.gg_p / pop.nu, 1),
        "expected_annual_value": floats(pop.value, 1),
        "buyer": pa.array(buyer),
        "b2b": pa.array(pop.b2b),
        "account_id": ids("A", pop.account + 1, 4, pop.account >= 0),
        "referred_by": ids("C", pop.first + np.maximum(referred_by, 0), 7, referred_by >= 0),
        "n_purchases": pa.array(pop.purchases.astype(np.int64)),
        "alive_at_end": pa.array(pop.alive, mask=~buyer),
        "dropout_at": clock.instants(pop.dropout, pop.dropout >= 0),
        "unresolved_contact": pa.array(flags["unresolved"]),
        "late_delivery": pa.array(flags["late"]),
    }
