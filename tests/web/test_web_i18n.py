"""Both message catalogues are complete, and the pages ask only for keys they have."""

from __future__ import annotations

import re
import string
from datetime import date

import pytest

from kizuna.ingest.kinds import KINDS
from kizuna.services.customers import TIMELINE_KINDS
from kizuna.store.web_tables import ROLES
from kizuna.web.format import Formatter
from kizuna.web.i18n import LANGUAGES, catalogue, choose_language, parse_accept_language
from kizuna.web.nav import NAV
from kizuna.web.render import TEMPLATES


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_exists_in_every_language_with_the_same_fields() -> None:
    ja, en = catalogue("ja"), catalogue("en")
    assert sorted(set(ja) ^ set(en)) == []
    for key in en:
        assert _fields(ja[key]) == _fields(en[key]), key
        assert ja[key].strip() and en[key].strip(), key


def test_every_key_the_templates_and_code_name_exists() -> None:
    known = set(catalogue("en"))
    literal = re.compile(r"""\bt\(\s*["']([a-z_.]+)["']""")
    used = {
        m
        for path in TEMPLATES.glob("*.html")
        for m in literal.findall(path.read_text())
        if not m.endswith(".")  # t("kind." ~ k): the dynamic keys are listed below
    }
    assert used, "found no t('...') calls in the templates"
    in_code = re.compile(r'(?:_key|upload_error)=\s*"([a-z_.]+)"')
    named = {
        m for path in (TEMPLATES.parent).rglob("*.py") for m in in_code.findall(path.read_text())
    }
    assert {"error.forbidden_title", "data.error_kind"} <= named
    dynamic = (
        {item.label_key for item in NAV}
        | {f"table.{kind}" for kind in KINDS}
        | {f"kind.{kind}" for kind in TIMELINE_KINDS}
        | {f"role.{role}" for role in ROLES}
        | {f"lang.{language}" for language in LANGUAGES}
        | {f"status.{s}" for s in ("running", "committed", "rejected")}
        | {f"audit.{a}" for a in ("login", "import", "export")}
    )
    assert sorted((used | named | dynamic) - known) == []


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, "ja-JP,ja;q=0.9,en-US;q=0.8", "ja"),
        (None, "en-GB,en;q=0.9,ja;q=0.5", "en"),
        (None, "fr-FR,en;q=0.3,ja;q=0.7", "ja"),
        (None, "fr-FR", "ja"),
        (None, None, "ja"),
        ("en", "ja", "en"),
        ("xx", "en", "en"),
    ],
)
def test_the_language_is_the_cookie_then_the_browser_then_japanese(
    cookie: str | None, header: str | None, expected: str
) -> None:
    assert choose_language(cookie, header) == expected


def test_accept_language_is_ordered_by_quality() -> None:
    assert parse_accept_language("en;q=0.5, ja , de;q=0") == ["ja", "en"]


def test_yen_numbers_and_dates_are_formatted_for_the_locale() -> None:
    ja = Formatter("ja_JP", "JPY", 0, "Asia/Tokyo")
    en = Formatter("en_US", "JPY", 0, "Asia/Tokyo")
    assert ja.money(1980) == "￥1,980"
    assert en.money(1980) == "¥1,980"
    assert ja.month(date(2025, 1, 1)) == "2025年1月" and en.month(date(2025, 1, 1)) == "Jan 2025"
    assert (
        ja.date(date(2025, 1, 31)) == "2025/01/31" and en.date(date(2025, 1, 31)) == "Jan 31, 2025"
    )
    assert Formatter("en_US", "USD", 2, "UTC").money(1250) == "$12.50"
