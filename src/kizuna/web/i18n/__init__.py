"""Message catalogues (``ja.toml``, ``en.toml``, ``<area>.ja.toml``…) and the choice of language.

Every string a person reads on the dashboard comes from a catalogue key;
templates call ``t("key", name=value)``. Keys are dotted (``nav.overview``)
and values use ``str.format`` fields. A test proves both catalogues have
exactly the same keys and fields, so a page can never be half translated.
"""

from __future__ import annotations

import functools
import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LANGUAGES: tuple[str, ...] = ("ja", "en")
#: Japan first: a browser that names neither language gets Japanese.
DEFAULT_LANGUAGE = "ja"
#: The Babel locale of each language (formats numbers, dates and money).
LOCALES: dict[str, str] = {"ja": "ja_JP", "en": "en_US"}
LANGUAGE_COOKIE = "kizuna_lang"

_HERE = Path(__file__).parent
log = logging.getLogger(__name__)


def _flatten(prefix: str, table: Mapping[str, Any], out: dict[str, str]) -> None:
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            _flatten(name, value, out)
        else:
            out[name] = str(value)


@functools.cache
def catalogue(language: str) -> dict[str, str]:
    """Every message of ``language``, by dotted key."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    out: dict[str, str] = {}
    # The main catalogue plus one file per feature area (``<area>.<lang>.toml``),
    # so areas add their pages' strings without touching each other's files.
    paths = [_HERE / f"{language}.toml", *sorted(_HERE.glob(f"*.{language}.toml"))]
    for path in paths:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        part: dict[str, str] = {}
        _flatten("", data, part)
        clash = sorted(set(part) & set(out))
        if clash:
            raise ValueError(f"{path.name} redefines message keys {', '.join(clash[:5])}")
        out.update(part)
    return out


class Translator:
    """``t(key, **fields)`` for one language."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.locale = LOCALES[language]
        self._messages = catalogue(language)

    def __call__(self, key: str, **fields: Any) -> str:
        try:
            text = self._messages[key]
        except KeyError:
            log.warning("missing %s message %r", self.language, key)
            return key
        return text.format(**fields) if fields else text

    def has(self, key: str) -> bool:
        return key in self._messages


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags of an ``Accept-Language`` header, most preferred first."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's choice if valid, else the browser's first ja/en, else Japanese."""
    if cookie in LANGUAGES:
        return str(cookie)
    for tag in parse_accept_language(accept_language):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE
