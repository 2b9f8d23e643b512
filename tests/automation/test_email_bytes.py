"""The byte-built campaign message reads, in a mail parser, exactly like the ``email`` package's."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from kizuna.automation.actions import PermanentFailure
from kizuna.automation.channels.email import OutgoingEmail, build_email, build_message
from kizuna.config import Settings, load_settings

CUSTOMERS = [
    {"id": 7, "name": "顧客七", "email": "c7@example.jp"},
    {"id": 8, "name": 'Ann "the" Buyer, Jr.', "email": "ann+news@example.com"},
    {"id": 9, "name": "長い名前" * 20, "email": "c9@example.jp"},
    {"id": 10, "name": "", "email": "c10@example.jp"},
]
STEPS = [
    {
        "subject": "{{ name }}様、お誕生日おめでとうございます",
        "text": "{{ name }}様\n.\n{{ unsubscribe_url }}",
    },
    {"subject": "Hello {{ name }}", "text": "plain ascii"},
    {"subject": "Points " + "expiring soon " * 8, "text": "x", "html": "<p>{{ name }} &</p>"},
    {"subject": "ニュース", "text": "本文", "html": "<b>{{ name }}</b>", "topic": "newsletter"},
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(tmp_path)


def parsed(msg: Message | OutgoingEmail) -> Any:
    raw = msg.data if isinstance(msg, OutgoingEmail) else msg.as_bytes()
    return message_from_bytes(raw, policy=policy.default)


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("customer", CUSTOMERS, ids=lambda c: str(c["id"]))
def test_the_fast_message_has_the_same_headers_and_bodies(
    settings: Settings, step: dict[str, str], customer: dict[str, Any]
) -> None:
    fast = build_email(settings, step, customer, "run1:greet")
    assert isinstance(fast, OutgoingEmail)
    assert fast.recipient == customer["email"]
    a, b = parsed(fast), parsed(build_message(settings, step, customer, "run1:greet"))
    for header in ("Subject", "From", "To", "Message-ID", "List-Unsubscribe", "MIME-Version"):
        assert str(a[header]).strip() == str(b[header]).strip(), header
    assert a["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert fast.message_id == str(b["Message-ID"])
    parts_a, parts_b = list(a.walk()), list(b.walk())
    assert [p.get_content_type() for p in parts_a] == [p.get_content_type() for p in parts_b]
    for x, y in zip(parts_a, parts_b, strict=True):
        if not x.is_multipart():
            assert x.get_content() == y.get_content()
            assert x.get_content_charset() == "utf-8"
    # Every line fits SMTP's limit and ends in CRLF.
    assert all(len(line) <= 998 for line in fast.data.split(b"\r\n"))
    assert b"\n" not in fast.data.replace(b"\r\n", b"")


def test_a_name_or_subject_cannot_add_headers(settings: Settings) -> None:
    customer = {"id": 1, "name": "Eve\r\nBcc: victim@example.com", "email": "e@example.jp"}
    step = {"subject": "hi\r\nBcc: other@example.com {{ name }}", "text": "x"}
    msg = parsed(build_email(settings, step, customer, "run1:x"))
    assert msg["Bcc"] is None
    assert "victim@example.com" in str(msg["To"]) and "e@example.jp" in str(msg["To"])


def test_a_quoted_address_goes_through_the_email_package(settings: Settings) -> None:
    customer = {"id": 2, "name": "Q", "email": '"john doe"@example.jp'}
    assert isinstance(build_email(settings, STEPS[1], customer, "run1:x"), Message)


def test_a_non_ascii_address_is_a_permanent_failure_not_a_crash(settings: Settings) -> None:
    customer = {"id": 3, "name": "花子", "email": "花子@例え.jp"}
    with pytest.raises(PermanentFailure, match="not plain ASCII"):
        build_email(settings, STEPS[0], customer, "run1:x")
