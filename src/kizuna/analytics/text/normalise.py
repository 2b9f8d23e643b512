"""Text normalisation before tokenising: one spelling per word.

Customers type the same word many ways: full-width digits and letters
(``１００``, ``ＡＰＰ``), half-width katakana (``ﾎﾟｲﾝﾄ``), several long-vowel
and dash marks, stray spaces. NFKC folds width and compatibility forms;
the long-vowel marks are folded by hand because NFKC keeps them apart; SudachiPy's
``normalized_form`` then folds spelling variants of Japanese words (おいしい /
美味しい) when terms are keyed (see :mod:`.tokenise`).
"""

from __future__ import annotations

import re
import unicodedata

#: Dash-like characters written after katakana where the long-vowel mark was meant.
_LONG_VOWEL_LOOKALIKES = "-‐‑‒–—―−ｰ～〜"
_KATAKANA_BEFORE = re.compile(rf"(?<=[ァ-ヴ])[{re.escape(_LONG_VOWEL_LOOKALIKES)}]")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC, long-vowel marks after katakana unified to ``ー``, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text)
    folded = _KATAKANA_BEFORE.sub("ー", folded)
    return _SPACES.sub(" ", folded).strip()


_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


def detect_language(text: str, hint: str | None = None) -> str:
    """``ja`` or ``en``: the row's own language when it names one, else kana/kanji decide."""
    if hint in ("ja", "en"):
        return hint
    return "ja" if _JAPANESE.search(text) else "en"
