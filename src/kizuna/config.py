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
    analytics_engine: str = "duckdb"
    loyalty_behaviour_weights: str = "monetary=0.6,clv=0.2,frequency=0.2"
    loyalty_attitude_weights: str = "nps=1,csat=0.7,support=0.3,review=0.5,referral=1,community=0.8"
    loyalty_behaviour_threshold: float = 0.7
    loyalty_attitude_threshold: float = 0.6
    loyalty_half_life_days: float = 365.0
    rfm_bins: int = 5
    churn_window_days: int = 90
    clv_horizon_months: int = 12
    clv_discount_rate: float = 0.1
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_tls: str = "none"
    email_from: str = "Kizuna <kizuna@localhost>"
    public_url: str = "http://127.0.0.1:8080"
    frequency_cap: str = ""
    quiet_hours: str = ""
    smtp_connections: int = 4
    global_control_percent: float = 0.0
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
