"""Masking of personal data for roles that may not see it.

Admins and marketers act on individual customers and see them in full;
analysts work on aggregates and see every personal field masked, on pages and
in CSV exports alike, so an export handed on cannot leak what its reader was
never shown. Masks keep just enough to tell rows apart while reading
(``t***@example.jp``, ``山田 *``) and nothing that identifies a person.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

#: The personal fields of a customer, each with its mask.
PERSONAL_FIELDS: tuple[str, ...] = ("name", "email", "phone", "birthday", "postal_code")


def mask_email(value: str | None) -> str | None:
    """``taro@example.jp`` → ``t***@example.jp``: the domain stays, the person goes."""
    if not value:
        return value
    local, at, domain = value.partition("@")
    if not at:
        return (local[:1] + "***") if local else "***"
    return f"{local[:1]}***@{domain}"


def mask_name(value: str | None) -> str | None:
    """``山田 太郎`` → ``山田 *``; one-word names keep their first character."""
    if not value:
        return value
    parts = value.split()
    if len(parts) > 1:
        return parts[0] + " " + " ".join("*" for _ in parts[1:])
    return parts[0][:1] + "*"


def mask_phone(value: str | None) -> str | None:
    """Every digit but the last two becomes ``*``: ``090-1234-5678`` → ``***-****-**78``."""
    if not value:
        return value
    digits = sum(ch.isdigit() for ch in value)
    seen = 0
    out = []
    for ch in value:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 2 else "*")
        else:
            out.append(ch)
    return "".join(out)


def mask_birthday(value: date | str | None) -> str | None:
    """A birthday (even its year narrows a person down) is hidden entirely."""
    return None if value in (None, "") else "****-**-**"


def mask_postal_code(value: str | None) -> str | None:
    """``150-0001`` → ``150-****``: the area stays, the street goes."""
    if not value:
        return value
    return value[:3] + re.sub(r"[0-9A-Za-z]", "*", value[3:])


MASKS: dict[str, Callable[..., str | None]] = {
    "name": mask_name,
    "email": mask_email,
    "phone": mask_phone,
    "birthday": mask_birthday,
    "postal_code": mask_postal_code,
}


def masked(field: str, value: object, visible: bool) -> object:
    """``value`` as a reader allowed (``visible``) or not allowed to see it should get it."""
    if visible or field not in MASKS:
        return value
    return MASKS[field](value)
