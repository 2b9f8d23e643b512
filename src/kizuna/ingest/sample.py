"""``kizuna sample``: a realistic data set whose ground truth is known.

Analytics can only be trusted if they find what is known to be there. This
module writes one import file per kind (see :mod:`kizuna.ingest.kinds`) from
a documented generative model, and writes the model's hidden variables
beside them: ``ground_truth.csv`` (per customer), ``ground_truth.json``
(parameters), ``ground_truth_accounts.csv`` (B2B intent and at-risk accounts),
``ground_truth_feedback.csv`` (the theme of every comment) and ``MODEL.md``.

The model
---------
*Acquisition.* Customers sign up over the window (default: the three years
ending 2026-10-31, Asia/Tokyo) with a density growing as exp(0.5·elapsed
share); 88% buy at sign-up, the rest only register.

*Purchases: BG/NBD* (Fader, Hardie & Lee 2005, "Counting your customers
the easy way", Marketing Science 24(2)). Each customer has a purchase rate
λ ~ Gamma(r, α) per week and a dropout probability p ~ Beta(a, b). While
alive, repeat purchases arrive as a Poisson process of rate λ; after each
repeat purchase the customer becomes inactive with probability p.
Defaults r = 1.0, α = 6.5, a = 0.9, b = 7.0. Purchase times are moved to a
plausible hour of their local day (at most a day's shift).

*Spend: Gamma-Gamma* (Fader, Hardie & Lee 2005, "RFM and CLV: using
iso-value curves for customer base analysis", JMR 42(4); Fader & Hardie
2013, "The Gamma-Gamma model of monetary value"). The amount paid for an
order is z ~ Gamma(p, ν) with ν ~ Gamma(q, γ) per customer; defaults
p = 6, q = 4, γ = 2,500 yen (mean order ~5,000 yen). Baskets are built to
add up to z plus any coupon discount.

*Attitude.* Attachment is Φ(ρ·v + √(1-ρ²)·ε + 0.5·[referred]) where v is
the standardised log of expected first-year spend and ρ = 0.35. The truth
class follows Dick & Basu (1994): *true* (top 30% by expected value and
attachment ≥ 0.6), *spurious* (high value, low attachment: sale hunters who
buy with coupons, habitual buyers, B2B contract lock-in), *latent*
(attached, low value) and *none*. NPS, CSAT, CES, review ratings,
referrals and community participation follow attachment; unresolved
support contacts and late deliveries lower scores and steer complaints.

Output and speed
----------------
Customers are made in blocks of 10,000, each from its own random stream
``SeedSequence([seed, 2, block, stream])``, and streamed to CSV with Arrow,
so memory stays flat and the files depend only on ``seed``, the number of
customers, the window and the timezone, never on ``chunk_size``. Ids
(``C0000001``, ``O00000001``...) are numbered in customer order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa

from kizuna.errors import ValidationError
from kizuna.ingest import kinds, sample_catalog, sample_engage, sample_orders, sample_people
from kizuna.ingest import sample_voice as voice
from kizuna.ingest.sample_format import Clock, CsvOut
from kizuna.ingest.sample_model import (
    LOYALTY_CLASSES,
    Calibration,
    ModelParameters,
    calibrate,
    simulate,
)
from kizuna.ingest.sample_report import model_markdown

#: Customers per random stream; part of what makes a seed reproducible.
BLOCK = 10_000
DEFAULT_END = date(2026, 10, 31)
#: Files whose values never contain commas or quotes are written unquoted.
UNQUOTED = {"orders", "order_lines", "consents", "ground_truth"}
TRUTH_COLUMNS = {
    "ground_truth": (
        "customer_id", "persona", "loyalty_class", "attachment", "lambda", "p", "nu",
        "mean_spend", "expected_annual_value", "buyer", "b2b", "account_id", "referred_by",
        "n_purchases", "alive_at_end", "dropout_at", "unresolved_contact", "late_delivery",
    ),
    "ground_truth_feedback": ("file", "record_id", "theme", "sentiment"),
}  # fmt: skip
PER_BLOCK = (
    "customers", "consents", "orders", "order_lines", "returns", "events", "survey_answers",
    "contacts", "community_activity", "trainings", "reviews", "referrals",
)  # fmt: skip
CUSTOMER_ATTRIBUTES = ("attr.member_rank", "attr.acquisition_channel", "attr.app_user")
ACCOUNT_ATTRIBUTES = ("attr.plan", "attr.touch_model")


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate` wrote: the folder, the customers and rows per file."""

    out_dir: Path
    customers: int
    rows: dict[str, int]


def columns_of(kind: str) -> tuple[str, ...]:
    """The header of ``<kind>.csv``: every field of the kind, plus free attributes."""
    names = tuple(f.name for f in kinds.KINDS[kind].fields)
    extra = {"customers": CUSTOMER_ATTRIBUTES, "accounts": ACCOUNT_ATTRIBUTES}
    return names + extra.get(kind, ())


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _years_before(day: date, years: int) -> date:
    """The first day of the ``years`` years that end with ``day``."""
    earlier = day.replace(day=28) if (day.month, day.day) == (2, 29) else day
    return earlier.replace(year=day.year - years) + timedelta(days=1)


def _check(
    customers: int, seed: int, start: date, end: date, chunk_size: int, timezone: str
) -> None:
    if customers < 1:
        raise ValidationError(f"customers must be at least 1, got {customers}")
    if seed < 0:
        raise ValidationError(f"seed must be zero or positive, got {seed}")
    if end <= start:
        raise ValidationError(f"the window must end after it starts ({start} .. {end})")
    if chunk_size < 1:
        raise ValidationError(f"chunk_size must be at least 1, got {chunk_size}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown IANA timezone {timezone!r} (try 'Asia/Tokyo' or 'UTC')"
        ) from None


def generate(
    out_dir: Path,
    customers: int,
    seed: int = 0,
    *,
    start: date | None = None,
    end: date | None = None,
    timezone: str = "Asia/Tokyo",
    chunk_size: int = 50_000,
    progress: Callable[[int], None] | None = None,
    model: ModelParameters | None = None,
) -> SampleSummary:
    """Write the sample data set for ``customers`` customers into ``out_dir``.

    ``start`` and ``end`` are local days, both included (default: three
    years ending 2026-10-31). ``chunk_size`` is how many customers are held
    in memory between writes, rounded up to whole blocks of 10,000; it
    changes speed and memory, not the data. ``progress`` is called with the
    number of customers written since its last call. ``model`` overrides the
    generative parameters, e.g. to test a fit against another truth.
    """
    end = end or DEFAULT_END
    start = start or _years_before(end, 3)
    _check(customers, seed, start, end, chunk_size, timezone)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    clock = Clock(timezone, start, end)
    params = model or ModelParameters()
    cal = calibrate(params, _rng(seed, 1, 0))
    catalog, product_cols = sample_catalog.products(_rng(seed, 1, 1))
    n_accounts = max(1, round(customers * params.b2b_share / params.members_per_account))
    accounts, account_cols, account_truth = sample_catalog.accounts(
        n_accounts, clock, _rng(seed, 1, 2)
    )
    risk = sample_engage.account_risk(n_accounts, clock, _rng(seed, 1, 4))
    account_truth = {**account_truth, **risk.truth(clock)}
    community, community_cols = sample_catalog.community_events(clock, _rng(seed, 1, 3))
    rows: dict[str, int] = {}
    for name, cols in (
        ("categories", sample_catalog.categories()),
        ("products", product_cols),
        ("accounts", account_cols),
        ("community_events", community_cols),
    ):
        rows[name] = _write_once(
            out_dir / f"{name}.csv", columns_of(name), cols, name not in UNQUOTED
        )
    rows["ground_truth_accounts"] = _write_once(
        out_dir / "ground_truth_accounts.csv", tuple(account_truth), account_truth, True
    )

    files = {k: CsvOut(out_dir / f"{k}.csv", columns_of(k), k not in UNQUOTED) for k in PER_BLOCK}
    for k, header in TRUTH_COLUMNS.items():
        files[k] = CsvOut(out_dir / f"{k}.csv", header, k not in UNQUOTED)
    state = _State()
    blocks_per_chunk = max(1, -(-chunk_size // BLOCK))
    try:
        for chunk_first in range(0, customers, blocks_per_chunk * BLOCK):
            pending: dict[str, list[dict[str, pa.Array]]] = {k: [] for k in files}
            chunk_end = min(customers, chunk_first + blocks_per_chunk * BLOCK)
            for first in range(chunk_first, chunk_end, BLOCK):
                n = min(BLOCK, customers - first)
                block = _block(seed, first // BLOCK, first + 1, n, params, cal, clock,
                               catalog, accounts, community, state, risk)  # fmt: skip
                for k, cols in block.items():
                    pending[k].append(cols)
            for k, parts in pending.items():
                for cols in parts:
                    files[k].write(cols)
            if progress is not None:
                progress(chunk_end - chunk_first)
    finally:
        for f in files.values():
            f.close()
    rows.update({k: f.rows for k, f in files.items()})

    summary = {k: rows[k] for k in kinds.KINDS}
    _write_truth(out_dir, seed, customers, clock, params, cal, state, summary)
    (out_dir / "MODEL.md").write_text(
        model_markdown(params, cal, clock, seed, customers, summary, state.classes),
        encoding="utf-8",
    )
    return SampleSummary(out_dir=out_dir, customers=customers, rows=summary)


@dataclass
class _State:
    """Running id counters and tallies carried from block to block."""

    orders: int = 0
    returns: int = 0
    events: int = 0
    sessions: int = 0
    activity: int = 0
    trainings: int = 0
    referrals: int = 0
    voice: voice.Counters = voice.Counters(0, 0, 0)
    classes: dict[str, int] | None = None

    def tally(self, loyalty: np.ndarray) -> None:
        counts = np.bincount(loyalty, minlength=len(LOYALTY_CLASSES))
        prior = self.classes or dict.fromkeys(LOYALTY_CLASSES, 0)
        self.classes = {c: prior[c] + int(counts[i]) for i, c in enumerate(LOYALTY_CLASSES)}


def _block(
    seed: int,
    index: int,
    first: int,
    n: int,
    params: ModelParameters,
    cal: Calibration,
    clock: Clock,
    catalog: sample_catalog.Catalog,
    accounts: sample_catalog.Accounts,
    community: sample_catalog.Community,
    state: _State,
    risk: sample_engage.AccountRisk | None = None,
) -> dict[str, dict[str, pa.Array]]:
    """Every file's rows for customers ``first .. first + n - 1``."""

    def rng(stream: int) -> np.random.Generator:
        return _rng(seed, 2, index, stream)

    pop = simulate(params, cal, clock, first, n, accounts.weight, rng(0))
    state.tally(pop.loyalty)
    orders = sample_orders.generate(
        pop, params, catalog, clock, state.orders, state.returns, rng(1)
    )
    state.orders += orders.number.size
    state.returns += len(orders.files["returns"]["return_id"])
    said, flags, state.voice = voice.generate(pop, orders, clock, state.voice, rng(2))
    consents, email_ok = sample_engage.consents(pop, orders, clock, rng(3))
    events, state.events, state.sessions = sample_engage.events(
        pop,
        orders,
        catalog,
        accounts,
        email_ok,
        clock,
        state.events,
        state.sessions,
        rng(4),
        risk,
        rng(9),
    )
    activity, state.activity = sample_engage.community(
        pop, community, clock, state.activity, rng(5)
    )
    trainings, state.trainings = sample_engage.trainings(
        pop, clock, state.trainings, rng(6), risk, rng(10)
    )
    referrals, referred_by, state.referrals = sample_engage.referrals(
        pop, clock, state.referrals, rng(7)
    )
    return {
        "customers": sample_people.customers(pop, params, cal, clock, orders.app_user, rng(8)),
        "consents": consents,
        **orders.files,
        "events": events,
        **said,
        "community_activity": activity,
        "trainings": trainings,
        "referrals": referrals,
        "ground_truth": sample_people.truth(pop, params, clock, flags, referred_by),
    }


def _write_once(path: Path, header: tuple[str, ...], cols: dict[str, pa.Array], quote: bool) -> int:
    out = CsvOut(path, header, quote)
    out.write(cols)
    out.close()
    return out.rows


def _write_truth(
    out_dir: Path,
    seed: int,
    customers: int,
    clock: Clock,
    params: ModelParameters,
    cal: Calibration,
    state: _State,
    rows: dict[str, int],
) -> None:
    """``ground_truth.json``: every parameter, so a fit can be scored against it."""
    doc = {
        "seed": seed,
        "customers": customers,
        "window": {
            "start": clock.instants(np.array([clock.start]))[0].as_py(),
            "end": clock.instants(np.array([clock.end]))[0].as_py(),
            "timezone": clock.name,
            "time_unit": "week",
        },
        "bg_nbd": {"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b},
        "gamma_gamma": {"p": params.gg_p, "q": params.gg_q, "gamma": params.gg_gamma},
        "parameters": params.to_dict(),
        "calibration": {
            "high_value_threshold_yen": cal.high_value,
            "log_value_mean": cal.log_value_mean,
            "log_value_sd": cal.log_value_sd,
        },
        "loyalty_classes": state.classes,
        "rows": rows,
    }
    (out_dir / "ground_truth.json").write_text(
        json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
