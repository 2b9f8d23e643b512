"""Feedback text analysis: tokenising, normalising, log-odds, sentiment, themes, churn."""

from __future__ import annotations

import numpy as np
import pytest

from kizuna.analytics.text import (
    Doc,
    doc_terms,
    doc_themes,
    normalise,
    sentiment,
    theme_churn,
    theme_trends,
    weighted_log_odds,
    words,
)
from kizuna.analytics.text.stats import newcombe_difference, wilson_interval


def keys(text: str, lang: str) -> list[str]:
    return [w.key for w in words(text, lang)]


def shown(text: str, lang: str) -> list[str]:
    return [w.display for w in words(text, lang)]


def test_japanese_sentences_become_content_words_in_dictionary_form() -> None:
    assert shown("配送が遅い", "ja") == ["配送", "遅い"]
    # とても is normalised to 迚も by Sudachi; people never see that form.
    assert shown("対応がとても丁寧でした", "ja") == ["対応", "丁寧"]
    assert shown("サポートの対応が遅く、解決しませんでした。", "ja") == [
        "サポート", "対応", "遅い", "解決しません",
    ]  # fmt: skip
    assert keys("サポートの対応が遅く、解決しませんでした。", "ja")[-1] == "解決~"  # negated
    assert shown("アプリが使いにくいです。", "ja") == ["アプリ", "使いにくい"]
    assert shown("アプリが使いやすい", "ja") == ["アプリ", "使いやすい"]
    assert keys("送料が高くない", "ja") == ["送料", "高い~"]


def test_width_and_kana_variants_are_normalised() -> None:
    assert normalise("ﾎﾟｲﾝﾄが１００点　ＡＰＰ") == "ポイントが100点 APP"
    assert normalise("コーヒ－とコーヒ―") == "コーヒーとコーヒー"
    assert keys("ﾎﾟｲﾝﾄが貯まらない", "ja") == keys("ポイントが貯まらない", "ja")
    # Spelling variants meet in Sudachi's normalised form.
    assert keys("おいしい", "ja") == keys("美味しい", "ja")


def test_english_words_phrases_and_negation() -> None:
    assert shown("Delivery was late and the prices are high!", "en") == [
        "delivery", "late", "price", "high",
    ]  # fmt: skip
    assert keys("Support did not solve my problem", "en") == ["support", "solve~", "problem"]
    terms = doc_terms("配送が遅い。", "ja")
    assert terms["配送 遅い"] == "配送 遅い"  # the phrase keeps what and how together


def test_sentiment_sign_on_clear_sentences() -> None:
    for text in (
        "対応がとても丁寧でした",
        "商品の品質が良く、大満足です",
        "Fast delivery, great staff!",
    ):
        assert sentiment(text).score > 0, text
    for text in ("配送が遅い", "アプリが使いにくくて残念です", "The package arrived damaged."):
        assert sentiment(text).score < 0, text
    assert sentiment("送料が高くない").score > 0  # negation flips
    assert sentiment("The staff were not helpful").score < 0
    assert sentiment("注文しました").score == 0.0


def test_sample_feedback_sentiment_agrees_with_its_intended_polarity() -> None:
    from kizuna.ingest.sample_text import FEEDBACK

    right = wrong = 0
    for lang, themes in FEEDBACK.items():
        for options in themes.values():
            for polarity, sentences in options.items():
                for s in sentences:
                    score = sentiment(s, lang).score
                    if score == 0:
                        continue
                    right += (score > 0) == (polarity == "pos")
                    wrong += (score > 0) != (polarity == "pos")
    assert right >= 60 and wrong <= 2


def _synthetic(rng: np.random.Generator, planted: dict[str, float], n: int) -> dict[str, int]:
    """Document counts: common words at the same rate in both groups, planted ones raised."""
    common = {f"common{i}": 0.5 / (i + 1) for i in range(40)}  # Zipf-like, shared
    rare = {f"rare{i}": 0.01 for i in range(100)}
    rates = {**common, **rare, **planted}
    return {term: int(rng.binomial(n, min(rate, 0.95))) for term, rate in rates.items()}


def test_log_odds_recovers_planted_terms_and_ignores_common_words() -> None:
    rng = np.random.default_rng(7)
    base = {"late": 0.03, "rude": 0.03, "friendly": 0.03, "fast": 0.03}
    a = _synthetic(rng, {**base, "late": 0.30, "rude": 0.15}, 1500)
    b = _synthetic(rng, {**base, "friendly": 0.25, "fast": 0.20}, 1500)
    result = weighted_log_odds(a, b)
    ranked = [r.term for r in result]
    z = {r.term: r.z for r in result}
    assert set(ranked[:2]) == {"late", "rude"}
    assert set(ranked[-2:]) == {"friendly", "fast"}
    assert z["late"] > 8 and z["rude"] > 5 and z["friendly"] < -8 and z["fast"] < -5
    # Very common words differ only by chance: |z| stays small and they rank in the middle.
    for i in range(5):
        assert abs(z[f"common{i}"]) < 3, (f"common{i}", z[f"common{i}"])
    assert max(abs(z[f"rare{i}"]) for i in range(100)) < 4


def test_log_odds_on_real_comments_finds_the_complaint() -> None:
    rng = np.random.default_rng(3)
    neutral = ["商品を注文しました。", "コーヒーを買いました。", "I ordered coffee beans."]
    detractors = [
        Doc(
            str(rng.choice(neutral)) + ("配送が遅いです。" if rng.random() < 0.6 else ""), group="d"
        )
        for _ in range(300)
    ]
    promoters = [
        Doc(
            str(rng.choice(neutral)) + ("対応がとても丁寧でした。" if rng.random() < 0.6 else ""),
            group="p",
        )
        for _ in range(300)
    ]
    from kizuna.analytics.text import term_table

    ta, tb = term_table(detractors), term_table(promoters)
    result = weighted_log_odds(ta.counts, tb.counts)
    top = [r.term for r in result[:3]]
    bottom = [r.term for r in result[-3:]]
    assert "遅い" in top and "配送 遅い" in top
    assert "丁寧" in bottom
    z = {r.term: r.z for r in result}
    assert abs(z["注文"]) < 2.5 and abs(z["coffee"]) < 2.5


def test_themes_trends_and_churn_with_intervals() -> None:
    assert doc_themes(Doc("配送が遅く、予定日に届きませんでした。")) == {"delivery"}
    assert doc_themes(Doc("The app keeps logging me out.")) == {"app"}
    docs = [Doc("配送が遅い", month="2026-01"), Doc("価格が高い", month="2026-01"),
            Doc("配送が遅れた", month="2026-02")]  # fmt: skip
    rows = {(r.month, r.theme): r for r in theme_trends(docs)}
    assert rows[("2026-01", "delivery")].share == 0.5
    assert rows[("2026-02", "delivery")].share == 1.0
    assert rows[("2026-02", "price")].mentions == 0
    # 200 customers complain about delivery and churn at 60%; 400 others at 20%.
    rng = np.random.default_rng(1)
    docs, churned = [], {}
    for cid in range(600):
        delivery = cid < 200
        docs.append(Doc("配送が遅い" if delivery else "品質が良い", customer_id=cid))
        churned[cid] = bool(rng.random() < (0.6 if delivery else 0.2))
    result = {r.theme: r for r in theme_churn(docs, churned)}
    d = result["delivery"]
    assert d.customers_with == 200 and d.customers_without == 400
    low, high = d.ci_with
    assert low < 0.6 < high and d.rate_with is not None and 0.5 < d.rate_with < 0.7
    diff, lo, hi = d.difference
    assert lo > 0.25 and hi < 0.55 and lo < diff < hi


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    # Newcombe (1998), table II example (56/70 vs 48/80): difference 0.2, CI 0.0524 to 0.3339.
    diff, lo, hi = newcombe_difference(56, 70, 48, 80)
    assert diff == pytest.approx(0.2)
    assert lo == pytest.approx(0.0524, abs=1e-3) and hi == pytest.approx(0.3339, abs=1e-3)
