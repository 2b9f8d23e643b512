"""The polarity lexicon of the sentiment score (Japanese and English).

Provenance, honestly: this is a *small hand-written* lexicon made for Kizuna
by its developers (2026) from the vocabulary of shop feedback — delivery,
price, quality, support, staff, app and points — in the two languages the
product speaks. It is not derived from, nor a substitute for, a published
lexicon (such as the Japanese Sentiment Polarity Dictionary of Tohoku
University or VADER); it has about 140 entries per language, each +1 or −1,
no intensities. Words are written as people write them and keyed at load time
through the same tokeniser as the comments, so Japanese spelling variants
match (Sudachi's normalised form). Extend it by adding words here.

Known limits, by design of any lexicon: domain words flip with context
(「価格が高い」 is bad, 「品質が高い」 good; 高い is counted negative because in
feedback it is mostly about price), irony is missed, and negation is handled
only within a clause (:mod:`.tokenise`).
"""

from __future__ import annotations


def _entries(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# fmt: off
JA_POSITIVE = _entries(
    "良い よい いい 素晴らしい すばらしい 満足 大満足 丁寧 親切 親身 便利 簡単 早い 速い 美味しい おいしい "
    "嬉しい うれしい 楽しい 楽しみ 助かる 安い 手頃 お得 安定 信頼 的確 分かりやすい 使いやすい 快適 "
    "最高 感謝 ありがとう 好き おすすめ 期待以上 応援 解決 感じ良い 素敵 心地よい 安心 迅速 "
    "貯まりやすい 豊か 新鮮 きれい 綺麗 魅力 喜ぶ 気に入る 愛用 リピート 優しい 誠実 お気に入り "
    "勧める 足りる 利用 スムーズ 明るい 頼もしい 楽 得 満喫 充実 上質 高品質 絶品 香ばしい 清潔 感動 優秀"
)
JA_NEGATIVE = _entries(
    "悪い 遅い 高い 割高 不満 残念 不安 困る 不具合 雑 冷たい 使いにくい 分かりにくい 重い "
    "破損 遅れる 不便 最悪 期待外れ いまひとつ 値上がり ばらつき 落ちる 下がる 失望 不親切 面倒 "
    "壊れる 不良 汚い 酷い ひどい 不快 苛立つ がっかり 怒る 迷惑 不足 苦情 ミス 間違い 間違える "
    "遅延 不十分 わかりにくい 使いづらい 不愉快 損 欠陥 劣化 まずい 不味い 高価 高額 "
    "つぶれる 潰れる 切れる 足りない 期待以下 不誠実 乱暴 故障 紛失 焦げる 傷 汚れ 心配 "
    "不信 解約 変える 過ぎる 改善 見直す"
)
EN_POSITIVE = _entries(
    "great good excellent wonderful outstanding fast quick quickly friendly helpful easy simple "
    "convenient handy love loved lovely bargain fair consistent careful politely polite recommend "
    "rewarding enjoy enjoyed fun happy satisfied best perfect nice thank thanks value amazing "
    "awesome delicious fresh reliable smooth kind clean beautiful pleasant glad impressed superb "
    "fantastic favourite favorite like liked comfortable efficient professional worth solved "
    "accurate tasty generous appreciate appreciated definitely help helped recommendation "
    "spot reply meet"
)
EN_NEGATIVE = _entries(
    "bad poor slow late expensive damaged worse worst inconsistent unfriendly unclear hard "
    "difficult bug disappointing disappointed disappointment problem issue broken rude terrible "
    "awful missed wrong crash unhappy annoying complaint overpriced dirty stale cold delay "
    "delayed lost confusing useless horrible mistake faulty unreliable frustrating frustrated "
    "angry upset fail failed failure refund cancel cancelled unacceptable mediocre bland "
    "crushed leak leaked leaking careless unhelpful ignored waiting high expire "
    "reconsider improve switch"
)
# fmt: on
