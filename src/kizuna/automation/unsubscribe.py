"""Signed unsubscribe tokens and the one-click unsubscribe handler.

A token names a customer and a channel and is signed with a key derived
from the workspace secret, so a link cannot be edited to unsubscribe
someone else; it needs no database row, so every email can carry one. A
channel of ``email:<topic>`` leaves one topic (newsletter, events, ...) and
keeps the email consent; ``email`` withdraws the consent itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from kizuna.config import Settings
from kizuna.errors import ValidationError
from kizuna.services.uow import UnitOfWork
from kizuna.store import automation_tables as at
from kizuna.store import tables as t

SECRET_FILE = ".secret_key"


def _workspace_secret(settings: Settings) -> bytes:
    """The ``secret_key`` setting, else the workspace's key file (shared with the dashboard)."""
    configured = str.__str__(settings.secret_key)
    if configured:
        return configured.encode()
    path = Path(settings.workspace) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_urlsafe(48) + "\n")
        except FileExistsError:
            pass
    return path.read_text(encoding="ascii").strip().encode()


_KEYS: dict[tuple[str, str], bytes] = {}


def _key(settings: Settings) -> bytes:
    # A derived key: a leaked unsubscribe signature says nothing about sessions.
    # Cached per secret and workspace: a campaign signs one link per message.
    cache_key = (str.__str__(settings.secret_key), str(settings.workspace))
    key = _KEYS.get(cache_key)
    if key is None:
        key = hmac.new(
            _workspace_secret(settings), b"kizuna-unsubscribe-v1", hashlib.sha256
        ).digest()
        _KEYS[cache_key] = key
    return key


def make_token(settings: Settings, customer_id: int, channel: str = "email") -> str:
    payload = f"{customer_id}.{channel}"
    mac = hmac.new(_key(settings), payload.encode(), hashlib.sha256).digest()[:16]
    return f"{payload}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def read_token(settings: Settings, token: str) -> tuple[int, str]:
    """The (customer id, channel) of a valid token; :class:`ValidationError` otherwise."""
    try:
        customer, channel, _sig = token.split(".")
        customer_id = int(customer)
    except ValueError:
        raise ValidationError("this unsubscribe link is malformed") from None
    if not hmac.compare_digest(make_token(settings, customer_id, channel), token):
        raise ValidationError("this unsubscribe link is not valid for this workspace")
    return customer_id, channel


#: Email topics: lower-case letters, digits, ``_`` or ``-``; a token's channel is ``email:<topic>``.
TOPIC = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def topic_of(channel: str) -> str | None:
    """The topic a token's channel names (``email:newsletter``), or None for the whole channel."""
    kind, _, topic = channel.partition(":")
    return topic if kind == "email" and topic else None


def set_topic(
    conn: sa.Connection, customer_id: int, topic: str, subscribed: bool, moment: datetime,
    source: str,
) -> None:  # fmt: skip
    """Subscribe to or unsubscribe from one email topic (upsert, in the caller's transaction)."""
    if not TOPIC.match(topic):
        raise ValidationError(
            f"topic {topic!r}: use lower-case letters, digits, '_' or '-' (at most 40)"
        )
    ts = at.topic_subscriptions
    values = {"subscribed": subscribed, "changed_at": moment, "source": source}
    updated = conn.execute(
        sa.update(ts).where(ts.c.customer_id == customer_id, ts.c.topic == topic).values(**values)
    ).rowcount
    if not updated:
        conn.execute(sa.insert(ts).values(customer_id=customer_id, topic=topic, **values))


def unsubscribed_topics(conn: sa.Connection, customer_ids: list[int], topic: str) -> set[int]:
    """Which of the customers have left ``topic`` (no row = still subscribed)."""
    ts = at.topic_subscriptions
    return set(
        conn.execute(
            sa.select(ts.c.customer_id).where(
                ts.c.customer_id.in_(customer_ids), ts.c.topic == topic, ts.c.subscribed.is_(False)
            )
        ).scalars()
    )


def unsubscribe_url(settings: Settings, customer_id: int, channel: str = "email") -> str:
    return f"{settings.public_url.rstrip('/')}/unsubscribe?token={make_token(settings, customer_id, channel)}"


def handle_unsubscribe(token: str, uow: UnitOfWork, now: datetime | None = None) -> int:
    """Withdraw consent for the token's channel (RFC 8058 one-click); returns the customer id.

    Idempotent: a second click changes nothing but the timestamp.
    """
    customer_id, channel = read_token(uow.settings, token)
    moment = now or datetime.now(UTC)
    c = t.consents
    topic = topic_of(channel)
    if topic is not None:
        # A topic's link leaves only that topic; the email consent stays.
        with uow:
            set_topic(uow.conn, customer_id, topic, False, moment, "unsubscribe_link")
            uow.commit()
        return customer_id
    with uow:
        updated = uow.conn.execute(
            sa.update(c)
            .where(c.c.customer_id == customer_id, c.c.channel == channel)
            .values(granted=False, changed_at=moment, source="unsubscribe_link")
        ).rowcount
        if not updated:
            uow.conn.execute(
                sa.insert(c).values(
                    customer_id=customer_id, channel=channel, granted=False, changed_at=moment,
                    source="unsubscribe_link",
                )
            )  # fmt: skip
        uow.commit()
    return customer_id
