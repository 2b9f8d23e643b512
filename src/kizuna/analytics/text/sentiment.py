"""A lexicon-based sentiment score per comment, from −1 (negative) to +1 (positive).

score = (positive hits − negative hits) / (positive hits + negative hits), 0
when the comment has no lexicon word. A negated word counts with the
opposite sign (「高くない」 is positive, ``not helpful`` negative). The
lexicon and its provenance are in :mod:`.lexicon`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from kizuna.analytics.text import lexicon
from kizuna.analytics.text.normalise import detect_language
from kizuna.analytics.text.tokenise import words


@functools.cache
def polarity(language: str) -> dict[str, int]:
    """Lexicon word key → +1/−1, keyed through the comment tokeniser."""
    if language == "ja":
        pairs = ((lexicon.JA_POSITIVE, 1), (lexicon.JA_NEGATIVE, -1))
    else:
        pairs = ((lexicon.EN_POSITIVE, 1), (lexicon.EN_NEGATIVE, -1))
    out: dict[str, int] = {}
    for entries, sign in pairs:
        for entry in entries:
            found = words(entry, language)
            key = found[0].key if len(found) == 1 else entry.lower()
            out.setdefault(key, sign)
    return out


@dataclass(frozen=True)
class Sentiment:
    score: float
    positive: int
    negative: int


def sentiment(text: str, language: str | None = None) -> Sentiment:
    lang = detect_language(text, language)
    table = polarity(lang)
    pos = neg = 0
    for w in words(text, lang):
        negated = w.key.endswith("~")
        sign = table.get(w.key[:-1] if negated else w.key, 0)
        if negated:
            sign = -sign
        if sign > 0:
            pos += 1
        elif sign < 0:
            neg += 1
    hits = pos + neg
    return Sentiment((pos - neg) / hits if hits else 0.0, pos, neg)


def mean_sentiment(texts: Iterable[tuple[str, str | None]]) -> float | None:
    """The mean score of (text, language) pairs; None for no text at all."""
    scores = [sentiment(text, lang).score for text, lang in texts if text and text.strip()]
    return sum(scores) / len(scores) if scores else None
