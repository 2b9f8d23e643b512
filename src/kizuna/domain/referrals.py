"""The rules of referrals: codes, identity fingerprints and the fraud verdict.

Pure functions, so every fraud rule is tested without a database. The
service layer gathers the facts (:class:`ReferralFacts`) under the
referrer's lock and applies :func:`fraud_reasons`; the reasons are stored
with the referral so staff can see why one was refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Crockford-style alphabet without 0/O, 1/I/L and U: read aloud or typed from
#: a flyer without mistakes.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
#: 8 symbols of 30 = 39 bits: short enough to type, and with at most millions
#: of issued codes a guess hits one with odds below 1 in 100,000.
CODE_LENGTH = 8

STATUSES = ("pending", "qualified", "rewarded", "rejected")

#: Why a referral earned nothing; each maps to a sentence in the catalogues.
REASONS = (
    "self_referral",
    "same_email",
    "same_phone",
    "same_address",
    "already_customer",
    "order_cancelled",
    "order_returned",
    "cap_monthly",
    "cap_lifetime",
)


def new_code() -> str:
    """A fresh random code (the caller retries on the rare clash with an existing one)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """What a person typed, as the stored code: case, spaces, dashes and full width forgiven."""
    folded = unicodedata.normalize("NFKC", text).upper()
    return re.sub(r"[\s\-_]", "", folded)


def looks_like_code(text: str) -> bool:
    return len(text) == CODE_LENGTH and all(ch in ALPHABET for ch in text)


def referral_link(template: str, code: str, public_url: str) -> str:
    return template.replace("{public_url}", public_url.rstrip("/")).replace("{code}", code)


# -- identity fingerprints -------------------------------------------------


def normalise_email(email: str | None) -> str | None:
    """Lower case, and for Gmail without dots and +tags (one inbox, many spellings)."""
    if not email or "@" not in email:
        return None
    local, _, domain = unicodedata.normalize("NFKC", email).strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local else None


def normalise_phone(phone: str | None) -> str | None:
    """Digits only, with a Japanese +81 prefix turned back into the national 0."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", phone))
    if digits.startswith("81") and len(digits) >= 11:
        digits = "0" + digits[2:]
    return digits if len(digits) >= 6 else None


def normalise_address(address: str | None, postal_code: str | None) -> str | None:
    """Postal code plus the address without spaces, dashes and case (NFKC-folded)."""
    if not address:
        return None
    text = unicodedata.normalize("NFKC", f"{postal_code or ''}{address}").lower()
    text = re.sub(r"[\s\-‐ー−_,、。.]", "", text)
    return text or None


def fingerprints(
    key: bytes,
    *,
    email: str | None,
    phone: str | None,
    address: str | None,
    postal_code: str | None,
) -> dict[str, str]:
    """HMAC-SHA256 of each normalised identifier: comparable, never reversible without the key.

    A plain SHA-256 of a phone number falls to a dictionary of all numbers in
    minutes; the workspace secret as HMAC key prevents that.
    """
    values = {
        "email": normalise_email(email),
        "phone": normalise_phone(phone),
        "address": normalise_address(address, postal_code),
    }
    return {
        kind: hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        for kind, value in values.items()
        if value
    }


# -- the verdict ------------------------------------------------------------


@dataclass(frozen=True)
class Caps:
    per_month: int
    lifetime: int


@dataclass(frozen=True)
class ReferralFacts:
    """Everything the verdict needs, read under the referrer's lock."""

    referrer_id: int
    referee_id: int
    referrer_prints: Mapping[str, str]
    referee_prints: Mapping[str, str]
    #: Orders of the referee placed before the referral was captured.
    earlier_orders: int
    order_cancelled: bool
    order_returned: bool
    rewarded_this_month: int
    rewarded_lifetime: int


def fraud_reasons(facts: ReferralFacts, caps: Caps) -> list[str]:
    """Every reason this referral must not be rewarded; empty means reward it."""
    reasons: list[str] = []
    if facts.referrer_id == facts.referee_id:
        reasons.append("self_referral")
    for kind in ("email", "phone", "address"):
        mine = facts.referrer_prints.get(kind)
        if mine is not None and mine == facts.referee_prints.get(kind):
            reasons.append(f"same_{kind}")
    if facts.earlier_orders > 0:
        reasons.append("already_customer")
    if facts.order_cancelled:
        reasons.append("order_cancelled")
    if facts.order_returned:
        reasons.append("order_returned")
    if facts.rewarded_lifetime >= caps.lifetime:
        reasons.append("cap_lifetime")
    elif facts.rewarded_this_month >= caps.per_month:
        reasons.append("cap_monthly")
    return reasons


def due_at(first_order_at: datetime, window_days: int) -> datetime:
    """When the referee's first order has passed its return window."""
    return first_order_at + timedelta(days=window_days)
