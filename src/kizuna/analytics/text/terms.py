"""Key terms and phrases of comments: what log-odds, trends and themes count.

A comment contributes each of its terms **once** (document frequency): one
customer repeating 「遅い」 five times is one voice, not five. Terms are the
content words of :mod:`.tokenise` and two-word phrases of adjacent content
words in the same clause (「配送 遅い」, ``delivery late``), which keep the
*what* and the *how* of a complaint together. Phrase keys join the word keys
with a space.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from kizuna.analytics.text.normalise import detect_language
from kizuna.analytics.text.tokenise import Word, words


@dataclass(frozen=True)
class Doc:
    """One comment with what the analyses group it by."""

    text: str
    language: str | None = None
    group: str | None = None
    customer_id: int | None = None
    month: str | None = None
    source: str = "survey"
    at: datetime | None = None
    #: The row it came from (``survey_answers.id``...), to link back to it.
    ref: int | None = None


@dataclass
class TermTable:
    """Document frequencies of terms, and how to show each key to people."""

    counts: Counter[str] = field(default_factory=Counter)
    display: dict[str, Counter[str]] = field(default_factory=dict)
    docs: int = 0

    def add(self, found: Mapping[str, str]) -> None:
        self.docs += 1
        for key, shown in found.items():
            self.counts[key] += 1
            self.display.setdefault(key, Counter())[shown] += 1

    def show(self, key: str) -> str:
        """The most frequent way the term was written (its dictionary form or surface)."""
        shown = self.display.get(key)
        return shown.most_common(1)[0][0] if shown else key


def doc_terms(text: str, language: str | None = None, phrases: bool = True) -> dict[str, str]:
    """The distinct terms of one comment: key → display text."""
    lang = detect_language(text, language)
    found: dict[str, str] = {}
    ws: list[Word] = words(text, lang)
    for w in ws:
        found.setdefault(w.key, w.display)
    if phrases:
        for a, b in zip(ws, ws[1:], strict=False):
            if a.clause == b.clause and a.key != b.key:
                found.setdefault(f"{a.key} {b.key}", f"{a.display} {b.display}")
    return found


def term_table(docs: Iterable[Doc], phrases: bool = True) -> TermTable:
    table = TermTable()
    for doc in docs:
        table.add(doc_terms(doc.text, doc.language, phrases))
    return table


def key_terms(docs: Iterable[Doc], top: int = 20, phrases: bool = True) -> list[tuple[str, int]]:
    """The most mentioned terms (display text, comments mentioning it)."""
    table = term_table(docs, phrases)
    return [(table.show(k), n) for k, n in table.counts.most_common(top)]
