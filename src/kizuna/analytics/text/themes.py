"""Themes (delivery, price, support...), their monthly trends and their link to churn.

A theme is a named set of terms; a comment mentions the theme when any of
its terms is among the comment's word keys. The default themes below are
the ones shop feedback is mostly about, in Japanese and English; they are
keyed through the tokeniser like the comments, so spelling variants match.

The churn comparison asks: of customers who mentioned a theme, how many were
lost afterwards, against those who commented but did not mention it? Rates
come with Wilson 95% intervals and their difference with Newcombe's interval,
so a theme mentioned by twelve people does not look like a finding.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from kizuna.analytics.text.normalise import detect_language
from kizuna.analytics.text.stats import newcombe_difference, wilson_interval
from kizuna.analytics.text.terms import Doc
from kizuna.analytics.text.tokenise import words

# fmt: off
DEFAULT_THEMES: dict[str, tuple[str, ...]] = {
    "price": ("価格 値段 料金 割高 値上がり 高い 安い 送料 セール お得 手頃 "
              "price prices expensive cheap cost bargain overpriced sale value",),
    "quality": ("品質 味 香り 豆 鮮度 風味 "
                "quality taste aroma flavour flavor bean beans fresh stale",),
    "delivery": ("配送 配達 発送 届く 梱包 荷物 到着 翌日 "
                 "delivery deliver delivered shipping shipped package packaging arrive arrived "
                 "parcel track",),
    "support": ("サポート 問い合わせ 問合せ 返事 返信 電話 チャットボット 対応 解決 "
                "support reply answer call centre center chatbot solve solved helpdesk",),
    "staff": ("店員 スタッフ 接客 店舗 説明 "
              "staff store clerk employee shop assistant",),
    "app": ("アプリ ログイン 不具合 更新 履歴 起動 "
            "app application login log bug update crash",),
    "points": ("ポイント 還元 特典 有効期限 還元率 "
               "point points reward rewards bonus expire",),
}
# fmt: on


@functools.cache
def theme_keys(themes: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, frozenset[str]]:
    """Each theme's set of word keys (both languages), through the tokeniser."""
    out: dict[str, frozenset[str]] = {}
    for name, texts in themes:
        keys: set[str] = set()
        for text in texts:
            for entry in text.split():
                lang = detect_language(entry)
                found = words(entry, lang)
                keys.update(w.key for w in found)
                keys.add(entry.lower())
        out[name] = frozenset(keys)
    return out


def _frozen(themes: Mapping[str, Sequence[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((name, tuple(texts)) for name, texts in themes.items())


def doc_themes(doc: Doc, themes: Mapping[str, Sequence[str]] = DEFAULT_THEMES) -> set[str]:
    """The themes one comment mentions."""
    lang = detect_language(doc.text, doc.language)
    keys = {w.key for w in words(doc.text, lang)}
    return {name for name, terms in theme_keys(_frozen(themes)).items() if keys & terms}


@dataclass(frozen=True)
class ThemeMonth:
    month: str
    theme: str
    mentions: int
    comments: int

    @property
    def share(self) -> float:
        return self.mentions / self.comments if self.comments else 0.0


def theme_trends(
    docs: Iterable[Doc], themes: Mapping[str, Sequence[str]] = DEFAULT_THEMES
) -> list[ThemeMonth]:
    """Per month (``Doc.month``) and theme: comments mentioning it out of all comments."""
    comments: dict[str, int] = defaultdict(int)
    mentions: dict[tuple[str, str], int] = defaultdict(int)
    for doc in docs:
        if doc.month is None:
            continue
        comments[doc.month] += 1
        for theme in doc_themes(doc, themes):
            mentions[(doc.month, theme)] += 1
    return [
        ThemeMonth(month, theme, mentions.get((month, theme), 0), comments[month])
        for month in sorted(comments)
        for theme in themes
    ]


@dataclass(frozen=True)
class ThemeChurn:
    theme: str
    customers_with: int
    churned_with: int
    customers_without: int
    churned_without: int

    @property
    def rate_with(self) -> float | None:
        return self.churned_with / self.customers_with if self.customers_with else None

    @property
    def rate_without(self) -> float | None:
        return self.churned_without / self.customers_without if self.customers_without else None

    @property
    def ci_with(self) -> tuple[float, float]:
        return wilson_interval(self.churned_with, self.customers_with)

    @property
    def ci_without(self) -> tuple[float, float]:
        return wilson_interval(self.churned_without, self.customers_without)

    @property
    def difference(self) -> tuple[float, float, float]:
        """Churn with minus without, and its 95% interval (Newcombe)."""
        return newcombe_difference(
            self.churned_with, self.customers_with, self.churned_without, self.customers_without
        )


def theme_churn(
    docs: Iterable[Doc],
    churned: Mapping[int, bool],
    themes: Mapping[str, Sequence[str]] = DEFAULT_THEMES,
) -> list[ThemeChurn]:
    """Churn of customers who mentioned each theme against commenters who did not.

    Only customers in ``churned`` (those whose outcome is known) count; a
    customer mentions a theme if any of their comments does.
    """
    mentioned: dict[int, set[str]] = defaultdict(set)
    for doc in docs:
        if doc.customer_id is None or doc.customer_id not in churned:
            continue
        mentioned[doc.customer_id] |= doc_themes(doc, themes)
    out = []
    for theme in themes:
        with_ = [c for c, found in mentioned.items() if theme in found]
        without = [c for c, found in mentioned.items() if theme not in found]
        out.append(
            ThemeChurn(
                theme,
                len(with_),
                sum(1 for c in with_ if churned[c]),
                len(without),
                sum(1 for c in without if churned[c]),
            )
        )
    return sorted(out, key=lambda r: -(r.rate_with or 0.0) + (r.rate_without or 0.0))
