"""The generative model of the sample: who each customer is and when they buy.

Behaviour first, attitude second. Every customer draws a purchase rate
λ ~ Gamma(r, α) per week, a dropout probability p ~ Beta(a, b) and a spend
rate ν ~ Gamma(q, γ) exactly as the BG/NBD and Gamma-Gamma models assume, so
the population marginals are the textbook ones and a fitted model can be
checked against them. Attachment is then drawn *given* behaviour through a
Gaussian copula with a modest correlation, which leaves room for the two
interesting off-diagonal groups of Dick & Basu's matrix: spurious loyalty
(high value, low attachment) and latent loyalty (attached, low value).

Purchases follow the BG/NBD story (Fader, Hardie & Lee 2005): the first
purchase is at acquisition; while alive, repeat purchases arrive as a Poisson
process of rate λ; after each repeat purchase the customer drops out with
probability p. Given N ~ Poisson(λT) arrivals in the window, the first
k = min(J, N) (J ~ Geometric(p)) of N uniform order statistics are the
purchases, generated sequentially with ``1 - U(i) = prod_j V_j^(1/(N-j+1))``,
so the cost is the number of purchases made, not the number that would have
been made had nobody left.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.special import ndtr

from kizuna.errors import ValidationError
from kizuna.ingest.sample_format import DAY, WEEK, Clock

LOYALTY_CLASSES = ("true", "latent", "spurious", "none")
PERSONAS = (
    "fan",
    "champion",
    "sale_hunter",
    "habitual",
    "contract_lockin",
    "quiet_fan",
    "follower",
    "casual",
    "dormant_member",
    "transactional",
)
#: Per persona: share of orders with a coupon, of online/app orders, of app users.
COUPON_SHARE = np.array([0.10, 0.05, 0.75, 0.12, 0.03, 0.08, 0.08, 0.12, 0.10, 0.05])
ONLINE_SHARE = np.array([0.60, 0.30, 0.80, 0.55, 0.25, 0.50, 0.60, 0.55, 0.60, 0.30])
APP_USER_SHARE = np.array([0.70, 0.40, 0.65, 0.45, 0.25, 0.45, 0.50, 0.30, 0.25, 0.20])
#: Relative weight of each local hour of the day for purchases and visits.
HOUR_WEIGHTS = np.array(
    [1.0, 0.6, 0.3, 0.2, 0.2, 0.3, 0.8, 1.6, 2.4, 3.0, 4.0, 5.0,
     6.0, 5.5, 5.0, 4.8, 5.0, 5.6, 6.4, 7.2, 8.0, 7.6, 5.6, 2.6]
)  # fmt: skip


@dataclass(frozen=True)
class ModelParameters:
    """Every number of the generative model; written to ``ground_truth.json``.

    Rates are per week, money in yen. The defaults give about 6.6 orders per
    buying customer over a three-year window, ~3.2 lines per order and a mean
    order of ~5,000 yen, in line with a Japanese speciality-food retailer.
    """

    r: float = 1.0  #: BG/NBD: shape of the Gamma of purchase rates λ
    alpha: float = 6.5  #: BG/NBD: rate of that Gamma (mean λ = r/α per week)
    a: float = 0.9  #: BG/NBD: Beta(a, b) of the dropout probability p
    b: float = 7.0
    gg_p: float = 6.0  #: Gamma-Gamma: shape of order values, z ~ Gamma(p, ν)
    gg_q: float = 4.0  #: Gamma-Gamma: ν ~ Gamma(q, γ); mean order value p·γ/(q-1)
    gg_gamma: float = 2500.0
    buyer_share: float = 0.88  #: customers who ever buy (others only register)
    acquisition_growth: float = 0.5  #: sign-up density ∝ exp(growth × elapsed share)
    attachment_rho: float = 0.35  #: copula correlation of attachment with value
    referral_lift: float = 0.5  #: added to the latent attachment of referred customers
    high_attachment: float = 0.6  #: attachment at or above this is "attached"
    high_value_share: float = 0.3  #: top share by expected first-year value is "high value"
    b2b_share: float = 0.035  #: customers who buy for a B2B account
    members_per_account: float = 8.0
    referred_share: float = 0.05
    japanese_share: float = 0.8
    cancel_share: float = 0.03  #: completed orders preceded by an order then cancelled
    return_share: float = 0.025  #: order lines returned (doubled for sale hunters)
    late_delivery_share: float = 0.04
    min_order_yen: int = 100

    def __post_init__(self) -> None:
        positive = ("r", "alpha", "a", "b", "gg_p", "gg_gamma", "members_per_account")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValidationError(f"model parameter {name} must be positive")
        if not self.gg_q > 1:
            raise ValidationError(
                "model parameter gg_q must exceed 1 (else mean spend is infinite)"
            )
        for name, value in asdict(self).items():
            if name.endswith("_share") and not 0 <= value <= 1:
                raise ValidationError(f"model parameter {name} must be between 0 and 1")

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class Calibration:
    """Population cut-offs, from one large fixed draw, so every block agrees."""

    log_value_mean: float
    log_value_sd: float
    high_value: float
    b2b_score: float


def expected_value(lam: np.ndarray, p: np.ndarray, nu: np.ndarray, gg_p: float) -> np.ndarray:
    """Expected spend in the 52 weeks after the first purchase (BG/NBD E[X(t)])."""
    repeats = (1.0 - np.exp(-lam * p * 52.0)) / p
    return (1.0 + repeats) * gg_p / nu


def draw_latent(
    m: ModelParameters, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each customer's purchase rate, drop-out chance, spend scale and whether they buy.

    Calibration and every simulated block draw these in one place, in one
    order, so the cut-offs are fitted to the population the blocks produce.
    """
    lam = rng.gamma(m.r, 1.0 / m.alpha, n)
    p = rng.beta(m.a, m.b, n)
    nu = rng.gamma(m.gg_q, 1.0 / m.gg_gamma, n)
    buyer = rng.random(n) < m.buyer_share
    return lam, p, nu, buyer


def calibrate(m: ModelParameters, rng: np.random.Generator, n: int = 200_000) -> Calibration:
    lam, p, nu, buyer = draw_latent(m, rng, n)
    logv = np.log(expected_value(lam, p, nu, m.gg_p))
    mean, sd = float(logv[buyer].mean()), float(logv[buyer].std())
    value = np.where(buyer, np.exp(logv), 0.0)
    z = np.where(buyer, (logv - mean) / sd, -1.0)
    score = 0.8 * z + 0.6 * rng.standard_normal(n)
    score[~buyer] = -np.inf
    return Calibration(
        log_value_mean=mean,
        log_value_sd=sd,
        high_value=float(np.quantile(value, 1.0 - m.high_value_share)),
        b2b_score=float(np.quantile(score, 1.0 - m.b2b_share)),
    )


@dataclass
class Population:
    """One block of customers: their truth and their completed purchases."""

    first: int  #: global number of the block's first customer (1-based)
    lam: np.ndarray
    p: np.ndarray
    nu: np.ndarray
    value: np.ndarray
    buyer: np.ndarray
    b2b: np.ndarray
    account: np.ndarray  #: account index, -1 for none
    referred: np.ndarray
    attachment: np.ndarray
    loyalty: np.ndarray  #: index into LOYALTY_CLASSES
    persona: np.ndarray  #: index into PERSONAS
    japanese: np.ndarray
    signup: np.ndarray  #: epoch seconds
    alive: np.ndarray
    dropout: np.ndarray  #: epoch seconds of the last purchase of those who left, else -1
    purchases: np.ndarray  #: completed purchases per customer
    buy_customer: np.ndarray = field(repr=False)  #: purchase -> customer index in block
    buy_time: np.ndarray = field(repr=False)  #: epoch seconds, sorted within customer

    @property
    def n(self) -> int:
        return int(self.lam.size)

    @property
    def numbers(self) -> np.ndarray:
        return np.arange(self.first, self.first + self.n, dtype=np.int64)

    def last_active(self, clock: Clock) -> np.ndarray:
        """When each customer stopped buying: dropout, or the window's end if alive."""
        return np.where(self.dropout >= 0, self.dropout, clock.end - 1)


def diurnal(seconds: np.ndarray, clock: Clock, rng: np.random.Generator) -> np.ndarray:
    """Move instants to a plausible hour of the same local day."""
    local = clock.local_seconds(seconds)
    day = np.floor_divide(local, DAY)
    cdf = np.cumsum(HOUR_WEIGHTS) / HOUR_WEIGHTS.sum()
    hour = np.searchsorted(cdf, rng.random(seconds.size), side="right")
    moved = day * DAY + hour * 3600 + rng.integers(0, 3600, seconds.size)
    return np.clip(clock.from_local(moved), clock.start, clock.end - 1)


def segment_starts(counts: np.ndarray) -> np.ndarray:
    """Index of each segment's first element in the flattened array."""
    return np.cumsum(counts) - counts


def simulate(
    m: ModelParameters,
    cal: Calibration,
    clock: Clock,
    first: int,
    n: int,
    account_weights: np.ndarray,
    rng: np.random.Generator,
) -> Population:
    """Draw a block of ``n`` customers and run their purchase processes."""
    lam, p, nu, buyer = draw_latent(m, rng, n)
    referred = rng.random(n) < m.referred_share
    japanese = rng.random(n) < m.japanese_share
    value = np.where(buyer, expected_value(lam, p, nu, m.gg_p), 0.0)
    z = np.where(
        buyer, (np.log(np.maximum(value, 1e-9)) - cal.log_value_mean) / cal.log_value_sd, -1.0
    )

    score = 0.8 * z + 0.6 * rng.standard_normal(n)
    b2b = buyer & (score > cal.b2b_score)
    account = np.full(n, -1, dtype=np.int64)
    weights = account_weights / account_weights.sum()
    account[b2b] = rng.choice(weights.size, size=int(b2b.sum()), p=weights)

    rho = m.attachment_rho
    latent = rho * z + np.sqrt(1 - rho**2) * rng.standard_normal(n) + m.referral_lift * referred
    attachment = ndtr(latent)
    attached = attachment >= m.high_attachment
    high = value >= cal.high_value
    loyalty = np.select([high & attached, attached, high], [0, 1, 2], default=3)
    persona = _personas(loyalty, b2b, buyer, rng)

    # Acquisition: density ∝ exp(g x) on the window, by inverse CDF.
    g = m.acquisition_growth
    u = rng.random(n)
    share = np.log1p(u * np.expm1(g)) / g if g else u
    span = clock.end - clock.start
    arrival = clock.start + share * span
    horizon = (clock.end - arrival) / WEEK

    arrivals = rng.poisson(lam * horizon)
    death = rng.geometric(p)
    repeats = np.where(buyer, np.minimum(death, arrivals), 0)
    alive = buyer & (death > arrivals)

    total = int(repeats.sum())
    owner = np.repeat(np.arange(n), repeats)
    j = np.arange(total) - segment_starts(repeats)[owner] + 1
    step = np.log(rng.random(total)) / (arrivals[owner] - j + 1)
    csum = np.cumsum(step)
    before = np.concatenate([[0.0], csum])[segment_starts(repeats)]
    uniform = -np.expm1(csum - before[owner])
    repeat_time = arrival[owner] + uniform * horizon[owner] * WEEK

    buyers = np.flatnonzero(buyer)
    buy_customer = np.concatenate([buyers, owner])
    raw = np.concatenate([arrival[buyers], repeat_time]).astype(np.int64)
    warped = diurnal(raw, clock, rng)
    order = np.lexsort((warped, buy_customer))
    buy_customer, buy_time = buy_customer[order], warped[order]
    purchases = np.bincount(buy_customer, minlength=n)

    starts = segment_starts(purchases)
    has = purchases > 0
    first_buy = np.full(n, -1, dtype=np.int64)
    first_buy[has] = buy_time[starts[has]]
    lead = (rng.exponential(900.0, n) + 30).astype(np.int64)
    signup = np.where(has, first_buy - lead, diurnal(arrival.astype(np.int64), clock, rng))
    signup = np.maximum(signup, clock.start)
    dropout = np.full(n, -1, dtype=np.int64)
    gone = buyer & ~alive
    dropout[gone] = buy_time[(starts + purchases - 1)[gone]]

    return Population(
        first=first, lam=lam, p=p, nu=nu, value=value, buyer=buyer, b2b=b2b, account=account,
        referred=referred, attachment=attachment, loyalty=loyalty, persona=persona,
        japanese=japanese, signup=signup, alive=alive, dropout=dropout, purchases=purchases,
        buy_customer=buy_customer, buy_time=buy_time,
    )  # fmt: skip


def _personas(
    loyalty: np.ndarray, b2b: np.ndarray, buyer: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Name the story behind each cell of the loyalty matrix (see PERSONAS)."""
    hunter = rng.random(loyalty.size) < 0.65
    conditions = [
        (loyalty == 0) & b2b, loyalty == 0,
        (loyalty == 2) & b2b, (loyalty == 2) & hunter, loyalty == 2,
        (loyalty == 1) & ~buyer, loyalty == 1,
        b2b, buyer,
    ]  # fmt: skip
    return np.select(conditions, [1, 0, 4, 2, 3, 6, 5, 9, 7], default=8)
