"""Tokenising Japanese (SudachiPy + sudachidict_core) and English (a regex).

Each comment becomes a list of :class:`Word`: content words only (nouns,
verbs, adjectives, adjectival nouns; particles, auxiliaries, symbols and
stop words dropped), each with

* ``key`` — what terms are counted by: Sudachi's ``normalized_form`` for
  Japanese (so spelling variants count together), the lower-cased word for
  English; a negated word gets ``~`` appended (``高い~`` is "not expensive");
* ``display`` — what people read: the dictionary form (``遅い``), or the
  surface span for a negated word (``届かない``), never the normalised form,
  which can be archaic (``とても`` → ``迚も``).

Japanese uses Sudachi's split mode C (longest units), so compounds such as
``配送料金`` stay one noun.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from kizuna.analytics.text.normalise import normalise

#: Parts of speech that carry content.
_CONTENT_POS = ("名詞", "動詞", "形容詞", "形状詞")
#: Content words too general to tell anything (する, ある, こと...), by normalised form.
_JA_STOP_TEXT = (
    "する ある いる 居る なる 成る できる 出来る 思う 感じる 為る 事 こと もの 物 よう 様 "
    "ため 為 方 とき 時 今回 前回 これ それ あれ ここ そこ さん 私 自分 みる 見る くる 来る "
    "いく 行く おる 下さる くださる 致す いたす 頂く いただく 知れる 他 まま 侭 度 感じ"
)
JA_STOPWORDS = frozenset(_JA_STOP_TEXT.split())
#: Words after a Japanese content word that negate it.
_JA_NEGATORS = frozenset({"ない", "無い", "ぬ", "ず", "ん"})
_NEGATION_WINDOW = 4
_KANJI = re.compile(r"[\u4e00-\u9fff]")

_EN_WORD = re.compile(r"[a-z][a-z'’]*[a-z]|[a-z]")
_EN_NEGATORS = frozenset(
    {"not", "no", "never", "cannot", "cant", "dont", "didnt", "doesnt", "isnt", "wasnt",
     "wont", "couldnt", "arent", "werent", "hardly"}
)  # fmt: skip


def _english_stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    extra = {
        "im",
        "ive",
        "ill",
        "id",
        "s",
        "t",
        "got",
        "get",
        "really",
        "just",
        "shop",
        "order",
        "did",
        "does",
        "do",
        "done",
        "went",
        "getting",
        "seem",
        "seemed",
        "make",
        "made",
    }
    return frozenset(ENGLISH_STOP_WORDS | extra) - _EN_NEGATORS


EN_STOPWORDS = _english_stopwords()


@dataclass(frozen=True)
class Word:
    key: str
    display: str
    pos: str
    negated: bool = False
    #: Index of the clause the word is in: phrases never cross punctuation.
    clause: int = 0


@functools.cache
def _sudachi() -> Any:
    from sudachipy import dictionary

    return dictionary.Dictionary(dict="core").tokenizer()


@functools.cache
def _mode_c() -> Any:
    from sudachipy import tokenizer

    return tokenizer.Tokenizer.SplitMode.C


@dataclass(frozen=True, slots=True)
class _Morpheme:
    """What the rules read of a Sudachi morpheme, read once (each read crosses into Rust)."""

    surface: str
    pos: tuple[str, ...]
    dictionary: str
    normalized: str


def _negation_end(morphemes: list[_Morpheme], i: int) -> int | None:
    """The index after the negator that negates morpheme ``i``, if one follows it closely.

    The scan stops at punctuation and at the next content word, so in
    「高くないが、遅い」 only 高い is negated.
    """
    pos = morphemes[i].pos
    start = i + 1
    if pos[0] == "名詞":
        # A verbal noun is negated through する: 解決しません, 対応できない.
        if pos[2] != "サ変可能" or start >= len(morphemes):
            return None
        if morphemes[start].dictionary not in ("する", "できる", "出来る"):
            return None
        start += 1
    for j in range(start, min(start + _NEGATION_WINDOW, len(morphemes))):
        m = morphemes[j]
        if m.dictionary in _JA_NEGATORS or m.normalized in _JA_NEGATORS:
            return j + 1
        head = m.pos[0]
        if head == "補助記号" or head in _CONTENT_POS and m.pos[1] != "非自立可能":
            return None
    return None


def _ja_words(text: str) -> list[Word]:
    morphemes = [
        _Morpheme(m.surface(), tuple(m.part_of_speech()), m.dictionary_form(), m.normalized_form())
        for m in _sudachi().tokenize(text, _mode_c())
    ]
    out: list[Word] = []
    clause = 0
    for i, m in enumerate(morphemes):
        pos = m.pos
        if pos[0] == "補助記号":
            clause += 1
            continue
        if pos[0] not in _CONTENT_POS or pos[0] == "名詞" and pos[1] in ("数詞", "固有名詞"):
            continue
        key = m.normalized
        if key in JA_STOPWORDS or key in _JA_NEGATORS:
            continue
        if len(key) == 1 and not _KANJI.match(key):
            continue
        display = m.dictionary
        last = i
        after = morphemes[i + 1] if i + 1 < len(morphemes) else None
        if after is not None and after.pos[:2] == ("接尾辞", "形容詞的"):
            # 使いにくい and 使いやすい are opposite complaints: keep the suffix.
            display = key = m.surface + after.dictionary
            last = i + 1
        end = _negation_end(morphemes, last)
        if end is not None:
            display = "".join(mm.surface for mm in morphemes[i:end])
            out.append(Word(key + "~", display, pos[0], True, clause))
        else:
            out.append(Word(key, display, pos[0], False, clause))
    return out


def _en_lemma(word: str) -> str:
    """A light plural fold (``prices`` → ``price``); enough to count terms together."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _en_words(text: str) -> list[Word]:
    out: list[Word] = []
    for clause, piece in enumerate(re.split(r"[.!?;,:()]+", text.lower())):
        negate = False
        for raw in _EN_WORD.findall(piece):
            word = raw.replace("’", "").replace("'", "")
            if word in _EN_NEGATORS:
                negate = True  # applies to the next content word of the clause
                continue
            if word in EN_STOPWORDS or len(word) < 2:
                continue
            lemma = _en_lemma(word)
            if negate:
                out.append(Word(lemma + "~", f"not {word}", "word", True, clause))
                negate = False
            else:
                out.append(Word(lemma, lemma, "word", False, clause))
    return out


@functools.lru_cache(maxsize=65536)
def _cached(text: str, language: str) -> tuple[Word, ...]:
    # Feedback repeats itself ("配送が遅い"): tokenising each distinct text once
    # makes analysing a year of comments cheap.
    return tuple(_ja_words(text) if language == "ja" else _en_words(text))


def words(text: str, language: str) -> list[Word]:
    """The content words of ``text`` (``language`` is ``ja`` or ``en``), normalised first."""
    return list(_cached(normalise(text), language))
