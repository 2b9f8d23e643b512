"""Settings, declared once.

Each setting is a (name, default, help, parser) row in :data:`SETTINGS`. A value
is read from the environment (``KIZUNA_<NAME>``), then from the workspace's
``kizuna.toml``, then the default. A bad value fails loudly with the name of
the setting and where the value came from, because a silently ignored
timezone or currency corrupts every report built on it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kizuna.errors import ConfigError

CONFIG_FILE = "kizuna.toml"
DEFAULT_DB_FILE = "kizuna.sqlite"

#: ISO 4217 minor-unit exponents for the currencies we expect to meet; money is
#: stored as an integer number of minor units, so the exponent must be known.
CURRENCY_EXPONENTS: dict[str, int] = {
    "JPY": 0,
    "KRW": 0,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "AUD": 2,
    "CAD": 2,
    "CNY": 2,
    "HKD": 2,
    "SGD": 2,
    "TWD": 2,
    "THB": 2,
    "CHF": 2,
}


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {value!r} (try 'Asia/Tokyo' or 'UTC')") from exc
    return value


def _currency(value: str) -> str:
    code = value.upper()
    if code not in CURRENCY_EXPONENTS:
        known = ", ".join(sorted(CURRENCY_EXPONENTS))
        raise ValueError(f"unsupported currency {value!r}; supported: {known}")
    return code


def _positive_int(value: str | int) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"must be a positive whole number, got {value!r}")
    return number


def _non_negative_int(value: str | int) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(f"must be a whole number of 0 or more, got {value!r}")
    return number


def _text(value: str) -> str:
    return str(value)


class Secret(str):
    """A secret value: usable as text, but shown as ``********`` when printed."""

    def __str__(self) -> str:
        return "********" if self else ""

    def __repr__(self) -> str:
        return "Secret('********')" if self else "Secret('')"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _secret(value: str) -> Secret:
    return Secret(value)


def _smtp_tls(value: str) -> str:
    if value not in ("none", "starttls", "ssl"):
        raise ValueError(f"must be none, starttls or ssl, got {value!r}")
    return value


def _frequency_cap(value: str) -> str:
    if value:
        count, _, days = str(value).partition("/")
        if not (count.isdigit() and days.isdigit() and int(count) > 0 and int(days) > 0):
            raise ValueError(f"expected N/DAYS such as 3/7, got {value!r}")
    return str(value)


def _global_control(value: str | float) -> float:
    share = float(value)
    if not 0 <= share <= 50:
        raise ValueError(f"expected a percentage from 0 to 50, got {value!r}")
    return share


def _quiet_hours(value: str) -> str:
    if value:
        from datetime import time

        start, _, end = str(value).partition("-")
        try:
            time.fromisoformat(start), time.fromisoformat(end)
        except ValueError:
            raise ValueError(f"expected HH:MM-HH:MM such as 21:00-09:00, got {value!r}") from None
    return str(value)


def _rate_limits(value: str) -> str:
    """``scope=requests per minute`` pairs; 0 means that scope is not limited."""
    for part in filter(None, (p.strip() for p in str(value).split(","))):
        scope, _, number = part.partition("=")
        if scope.strip() not in ("admin", "marketer", "analyst", "pos") or not (
            number.strip().isdigit()
        ):
            raise ValueError(
                f"expected scope=requests-per-minute pairs such as admin=3000,pos=0 "
                f"(scopes admin, marketer, analyst, pos), got {part!r}"
            )
    return str(value)


def _retention(value: str) -> str:
    for part in filter(None, (p.strip() for p in str(value).split(","))):
        name, _, period = part.partition("=")
        amount, unit = period.strip()[:-1], period.strip()[-1:]
        if not name.strip() or not amount.isdigit() or int(amount) <= 0 or unit not in "md":
            raise ValueError(
                f"expected RULE=PERIOD pairs such as events=24m,idempotency_keys=30d, got {part!r}"
            )
    return str(value)


def _log_format(value: str) -> str:
    if value not in ("json", "text"):
        raise ValueError(f"must be json or text, got {value!r}")
    return value


def _log_level(value: str) -> str:
    level = str(value).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
    return level


def _auto_on_off(value: str | bool) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    text = str(value).strip().lower()
    if text not in ("auto", "on", "off"):
        raise ValueError(f"must be auto, on or off, got {value!r}")
    return text


def _yes_no(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ValueError(f"must be true or false, got {value!r}")
    return text in ("true", "1", "yes", "on")


@dataclass(frozen=True)
class Setting:
    """One documented setting: its name, default and why you would change it."""

    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = _text

    @property
    def env_var(self) -> str:
        return f"KIZUNA_{self.name.upper()}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        "",
        "SQLAlchemy URL of the system of record. Empty means the workspace's own "
        f"SQLite file ({DEFAULT_DB_FILE}); use postgresql+psycopg://user:pass@host/db "
        "for PostgreSQL.",
    ),
    Setting(
        "database_pool_size",
        16,
        "PostgreSQL connections each process keeps open (plus half as many again under "
        "a burst). Size the server's max_connections for every API process and worker "
        "times 1.5 × this, or put PgBouncer in front. Ignored for SQLite.",
        _positive_int,
    ),
    Setting(
        "earn_group_commit",
        "auto",
        "Till earn calls (POST /v1/orders) arriving together in one API process share one "
        "transaction (group commit): on, off, or auto (on for PostgreSQL, off for SQLite). "
        "Answers are those of one call at a time; a refused order never fails another.",
        _auto_on_off,
    ),
    Setting(
        "timezone",
        "Asia/Tokyo",
        "IANA timezone of the business. Times are stored in UTC and shown in this "
        "zone; day boundaries (birthdays, 'last 30 days', months in reports) follow it.",
        _timezone,
    ),
    Setting(
        "currency",
        "JPY",
        "ISO 4217 code of the workspace currency. Amounts are stored as whole minor "
        "units (yen for JPY, cents for USD), never as floats.",
        _currency,
    ),
    Setting(
        "import_batch_rows",
        200_000,
        "Rows read, validated and written per batch by imports; bigger is faster "
        "and uses more memory.",
        _positive_int,
    ),
    Setting(
        "max_field_chars",
        20_000,
        "Longest text value an import accepts in any free-text field (comments, "
        "review bodies). Longer values are reported as bad rows, not truncated.",
        _positive_int,
    ),
    Setting(
        "secret_key",
        "",
        "Key that signs the dashboard's session cookies. Empty means a random key "
        "generated once into WORKSPACE/.secret_key (mode 0600); set it when several "
        "dashboard processes must accept the same sessions. Never printed.",
        _secret,
    ),
    Setting(
        "dashboard_refresh_seconds",
        300,
        "How stale a dashboard figure that follows the data (overview, KPIs, cohorts, "
        "lifecycle, voice, ambassadors) may get: after a write the page shows the stored "
        "figure with its time while one process recomputes it in the background, at most "
        "once per this many seconds per figure. 0 recomputes on the page view itself "
        "(always current; tens of seconds per view on a million customers).",
        _non_negative_int,
    ),
    Setting(
        "analytics_engine",
        "duckdb",
        "Where loyalty analytics run: duckdb (in-process, the default) or pyspark "
        "(the same code on Apache Spark; see KIZUNA_SPARK_MASTER in the README).",
    ),
    Setting(
        "loyalty_behaviour_weights",
        "monetary=0.6,clv=0.2,frequency=0.2",
        "Behavioural loyalty score: weights of the percentile ranks of monetary "
        "(historical spend), clv (predicted), frequency and recency.",
    ),
    Setting(
        "loyalty_attitude_weights",
        "nps=1,csat=0.7,support=0.3,review=0.5,referral=1,community=0.8",
        "Attitudinal loyalty score: weight of each signal (nps, csat, support "
        "satisfaction, review rating, referral, community participation).",
    ),
    Setting(
        "loyalty_behaviour_threshold",
        0.7,
        "Behaviour score (a percentile, 0-1) at or above which a customer counts as "
        "high value in the loyalty matrix; 0.7 means the top 30%.",
        float,
    ),
    Setting(
        "loyalty_attitude_threshold",
        0.6,
        "Attitude score (0-1) at or above which a customer counts as attached in the "
        "loyalty matrix.",
        float,
    ),
    Setting(
        "loyalty_half_life_days",
        365.0,
        "Age in days at which an attitudinal signal (survey answer, review...) "
        "counts half as much as a fresh one.",
        float,
    ),
    Setting(
        "rfm_bins",
        5,
        "Number of RFM score bins (5 gives quintile scores 1-5).",
        _positive_int,
    ),
    Setting(
        "churn_window_days",
        90,
        "A customer with no purchase in this many days counts as churned in the "
        "retention and churn KPIs.",
        _positive_int,
    ),
    Setting(
        "clv_horizon_months",
        12,
        "Horizon of the predicted customer lifetime value, in months.",
        _positive_int,
    ),
    Setting(
        "clv_discount_rate",
        0.1,
        "Annual discount rate applied to future value in the CLV (0.1 = 10%).",
        float,
    ),
    Setting(
        "lifecycle_rules",
        "at_risk_days=90,lapsed_days=180,ambassador_window_days=365,"
        "loyal_min_purchases=5,repeat_min_purchases=2",
        "Lifecycle stage rules as NAME=VALUE pairs (days without purchase to become "
        "at risk / lapsed, the ambassador's window for referrals and community acts, "
        "purchase days for loyal / repeat); names left out keep these defaults.",
    ),
    Setting("smtp_host", "127.0.0.1", "SMTP server that journeys send email through."),
    Setting(
        "smtp_port", 25, "Port of the SMTP server (587 for STARTTLS, 465 for TLS).", _positive_int
    ),
    Setting("smtp_user", "", "SMTP login; empty sends without authentication."),
    Setting("smtp_password", "", "SMTP password; never printed.", _secret),
    Setting(
        "smtp_tls",
        "none",
        "Encryption to the SMTP server: none, starttls or ssl.",
        _smtp_tls,
    ),
    Setting("email_from", "Kizuna <kizuna@localhost>", "From address of journey emails."),
    Setting(
        "survey_link_days",
        30,
        "Days a survey link stays valid; within them a customer may edit their answer, "
        "after them the link shows an 'expired' page.",
        _positive_int,
    ),
    Setting(
        "public_url",
        "http://127.0.0.1:8080",
        "Public base URL of this Kizuna; unsubscribe links in emails point here.",
    ),
    Setting(
        "frequency_cap",
        "",
        "Marketing messages per customer per period across all journeys, as N/DAYS "
        "(3/7 = at most 3 in 7 days); empty means no cap. Transactional messages bypass it.",
        _frequency_cap,
    ),
    Setting(
        "quiet_hours",
        "",
        "Local hours in which no marketing message is sent, as HH:MM-HH:MM "
        "(21:00-09:00); messages wait until the end instead of being dropped.",
        _quiet_hours,
    ),
    Setting(
        "global_control_percent",
        0.0,
        "Share of customers (0-50 %) in the workspace-wide control group: no journey sends "
        "them marketing, so `kizuna measures global` can measure all campaigns together.",
        _global_control,
    ),
    Setting(
        "smtp_connections",
        4,
        "SMTP connections each worker sends a campaign batch over in parallel; "
        "1 sends one message at a time.",
        _positive_int,
    ),
    Setting(
        "retention",
        "",
        "Retention rules applied by `kizuna retention apply`, as RULE=PERIOD pairs "
        "(events=24m,programme_events=6m,idempotency_keys=30d,dashboard_audit=36m; m months, "
        "d days). Old raw events are summarised into daily counts, then deleted. Empty keeps "
        "everything.",
        _retention,
    ),
    Setting(
        "log_format",
        "json",
        "Log lines of the API, dashboard and worker processes: json (one object per line, "
        "with request id, personal data masked) or text.",
        _log_format,
    ),
    Setting("log_level", "INFO", "Lowest level logged: DEBUG, INFO, WARNING or ERROR.", _log_level),
    Setting(
        "api_rate_limits",
        "admin=3000,marketer=3000,analyst=1200,pos=0",
        "Requests per minute each API key may make, per scope (a key may burst up to a "
        "minute's worth at once); 0 = unlimited. POS keys are unlimited by default so a "
        "checkout is never refused. Shared by all API processes (kept in the database).",
        _rate_limits,
    ),
    Setting(
        "health_weights",
        "usage=0.3,breadth=0.15,support=0.15,nps=0.15,training=0.15,renewal=0.1",
        "Customer-success health score: weight of each 0-1 component (usage, breadth, "
        "support, nps, training, renewal); a component without data is left out and "
        "the others are re-weighted. See docs/success.md.",
    ),
    Setting(
        "touch_thresholds",
        "high_value=0.8,low_value=0.5,healthy=0.7,at_risk=0.4",
        "Touch model of an account: value percentile for high-touch (high_value) and "
        "low-touch (low_value), health from which an account is healthy and below "
        "which it is at risk. See docs/success.md.",
    ),
    Setting(
        "intent_half_life_days",
        7.0,
        "B2B intent score: age in days at which a research event counts half.",
        float,
    ),
    Setting(
        "intent_baseline_weeks",
        26,
        "B2B intent surge: weeks before the current one that make an account's own "
        "baseline research rate per topic.",
        _positive_int,
    ),
    Setting(
        "intent_surge_p",
        0.001,
        "B2B intent surge: an account surges on a topic when this week's events are "
        "this improbable (one-sided Poisson tail) under its baseline rate.",
        float,
    ),
    Setting(
        "referral_return_window_days",
        30,
        "Days after the referee's first order before a referral is rewarded "
        "(an order returned or cancelled within them earns nothing).",
        _positive_int,
    ),
    Setting(
        "referral_referrer_points",
        500,
        "Points for the referrer of a rewarded referral.",
        _positive_int,
    ),
    Setting(
        "referral_referee_points",
        500,
        "Points for the referee of a rewarded referral.",
        _positive_int,
    ),
    Setting(
        "referral_cap_per_month",
        5,
        "Rewarded referrals per referrer per calendar month.",
        _positive_int,
    ),
    Setting(
        "referral_cap_lifetime", 50, "Rewarded referrals per referrer in total.", _positive_int
    ),
    Setting(
        "referral_link_template",
        "{public_url}/r/{code}",
        "The referral link shown to a customer; {code} is their code, {public_url} this Kizuna.",
    ),
    Setting(
        "review_reward_points", 50, "Points for each approved review or UGC post.", _positive_int
    ),
    Setting(
        "review_reward_cap_per_month",
        3,
        "Approved reviews per customer per calendar month that earn points; later ones earn none.",
        _positive_int,
    ),
    Setting(
        "recommend_per_customer",
        10,
        "Products stored per customer by each recommendation run (templates and the API read them).",
        _positive_int,
    ),
    Setting(
        "recommend_holdout_days",
        90,
        "Days at the end of the history held out to evaluate recommenders (precision@10 etc.).",
        _positive_int,
    ),
    Setting(
        "recommend_neighbours",
        100,
        "Most similar products kept per product by the item-to-item recommender.",
        _positive_int,
    ),
    Setting(
        "recommend_als_factors",
        32,
        "Latent factors of the ALS challenger (used only if it beats item-to-item).",
        _positive_int,
    ),
    Setting(
        "recommend_on_score",
        False,
        "Also fit and store recommendations at the end of every `kizuna score` run.",
        _yes_no,
    ),
    Setting(
        "programme_webhook_url",
        "",
        "Where the worker POSTs the programme's signed webhooks (tier changed, points "
        "expiring, reward redeemed), retrying failures with backoff; empty: no delivery.",
    ),
    Setting(
        "programme_webhook_secret",
        "",
        "Shared HMAC secret the programme's webhooks are signed with (never logged).",
    ),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one workspace."""

    workspace: Path
    database_url: str
    timezone: str
    currency: str
    import_batch_rows: int
    max_field_chars: int
    secret_key: str = ""
    dashboard_refresh_seconds: int = 300
    analytics_engine: str = "duckdb"
    database_pool_size: int = 16
    earn_group_commit: str = "auto"
    loyalty_behaviour_weights: str = "monetary=0.6,clv=0.2,frequency=0.2"
    loyalty_attitude_weights: str = "nps=1,csat=0.7,support=0.3,review=0.5,referral=1,community=0.8"
    loyalty_behaviour_threshold: float = 0.7
    loyalty_attitude_threshold: float = 0.6
    loyalty_half_life_days: float = 365.0
    rfm_bins: int = 5
    churn_window_days: int = 90
    clv_horizon_months: int = 12
    clv_discount_rate: float = 0.1
    lifecycle_rules: str = (
        "at_risk_days=90,lapsed_days=180,ambassador_window_days=365,"
        "loyal_min_purchases=5,repeat_min_purchases=2"
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_tls: str = "none"
    email_from: str = "Kizuna <kizuna@localhost>"
    survey_link_days: int = 30
    public_url: str = "http://127.0.0.1:8080"
    frequency_cap: str = ""
    quiet_hours: str = ""
    smtp_connections: int = 4
    global_control_percent: float = 0.0
    retention: str = ""
    log_format: str = "json"
    log_level: str = "INFO"
    api_rate_limits: str = "admin=3000,marketer=3000,analyst=1200,pos=0"
    health_weights: str = "usage=0.3,breadth=0.15,support=0.15,nps=0.15,training=0.15,renewal=0.1"
    touch_thresholds: str = "high_value=0.8,low_value=0.5,healthy=0.7,at_risk=0.4"
    intent_half_life_days: float = 7.0
    intent_baseline_weeks: int = 26
    intent_surge_p: float = 0.001
    referral_return_window_days: int = 30
    referral_referrer_points: int = 500
    referral_referee_points: int = 500
    referral_cap_per_month: int = 5
    referral_cap_lifetime: int = 50
    referral_link_template: str = "{public_url}/r/{code}"
    review_reward_points: int = 50
    review_reward_cap_per_month: int = 3
    recommend_per_customer: int = 10
    recommend_holdout_days: int = 90
    recommend_neighbours: int = 100
    recommend_als_factors: int = 32
    recommend_on_score: bool = False
    programme_webhook_url: str = ""
    programme_webhook_secret: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def currency_exponent(self) -> int:
        return CURRENCY_EXPONENTS[self.currency]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def read_toml(workspace: Path) -> dict[str, Any]:
    path = workspace / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    section = data.get("kizuna", data)
    unknown = sorted(set(section) - set(SETTINGS_BY_NAME))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; "
            f"known settings are {', '.join(SETTINGS_BY_NAME)}"
        )
    return dict(section)


def load_settings(
    workspace: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve every setting for ``workspace`` (default: ``KIZUNA_WORKSPACE`` or cwd)."""
    env = os.environ if env is None else env
    ws = Path(workspace or env.get("KIZUNA_WORKSPACE") or ".").resolve()
    file_values = read_toml(ws)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if overrides and overrides.get(setting.name) not in (None, ""):
            raw, source = overrides[setting.name], "argument"
        elif env.get(setting.env_var):
            raw, source = env[setting.env_var], f"environment variable {setting.env_var}"
        elif setting.name in file_values:
            raw, source = file_values[setting.name], f"{ws / CONFIG_FILE}"
        else:
            raw, source = setting.default, "default"
        try:
            values[setting.name] = setting.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {setting.name} from {source}: {exc}") from exc
        sources[setting.name] = source
    if not values["database_url"]:
        values["database_url"] = f"sqlite:///{ws / DEFAULT_DB_FILE}"
    return Settings(workspace=ws, sources=sources, **values)
