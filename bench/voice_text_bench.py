"""Feedback text analysis benchmark: comments/s through the whole ja/en pipeline.

For N distinct comments (sentences of the sample generator's feedback corpus,
two to three per comment with an order number, so no two are alike and the
tokeniser cache cannot help), it measures:

* analysis: normalise + tokenise (SudachiPy mode C / regex) + terms and
  phrases + sentiment + themes, per comment;
* log-odds: the detractor-vs-promoter comparison over all N;
* reference, in the same run: bare SudachiPy ``tokenize`` of the Japanese
  comments and ``str.split`` of the English ones — the floor any Japanese
  analysis pays.

    python bench/voice_text_bench.py --comments 20000
    python bench/voice_text_bench.py --smoke          # tiny, for CI
"""

from __future__ import annotations

import argparse
import random
import time

from kizuna.analytics.text import Doc, doc_terms, doc_themes, sentiment, term_table
from kizuna.analytics.text.tokenise import _cached
from kizuna.ingest.sample_text import CLOSERS, FEEDBACK
from kizuna.services.survey_feedback import compare


def corpus(n: int, seed: int = 1) -> list[Doc]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        lang = "ja" if rng.random() < 0.7 else "en"
        polarity = rng.choice(("pos", "neg"))
        themes = FEEDBACK[lang]
        parts = [rng.choice(themes[rng.choice(list(themes))][polarity]) for _ in range(2)]
        parts.append(rng.choice(CLOSERS[lang][polarity]))
        order = f"（注文番号{i}）" if lang == "ja" else f" (order {i})"
        group = "promoter" if polarity == "pos" else "detractor"
        docs.append(Doc("".join(parts) + order if lang == "ja" else " ".join(parts) + order,
                        lang, group))  # fmt: skip
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=20_000)
    parser.add_argument("--smoke", action="store_true", help="300 comments, for CI")
    args = parser.parse_args()
    n = 300 if args.smoke else args.comments
    docs = corpus(n)
    sentiment("warm up", "en"), doc_terms("配送が遅い", "ja")  # dictionary load is not measured

    from sudachipy import dictionary, tokenizer

    raw = dictionary.Dictionary(dict="core").tokenizer()
    mode = tokenizer.Tokenizer.SplitMode.C
    start = time.perf_counter()
    for d in docs:
        if d.language == "ja":
            list(raw.tokenize(d.text, mode))
        else:
            d.text.lower().split()
    reference = time.perf_counter() - start

    _cached.cache_clear()
    start = time.perf_counter()
    for d in docs:
        doc_terms(d.text, d.language)
        sentiment(d.text, d.language)
        doc_themes(d)
    analysis = time.perf_counter() - start

    start = time.perf_counter()
    result = compare(docs)
    logodds = time.perf_counter() - start
    table = term_table(docs)

    print(f"comments: {n} ({sum(d.language == 'ja' for d in docs)} Japanese), "
          f"distinct terms: {len(table.counts)}")  # fmt: skip
    print(f"analysis (normalise, tokenise, terms, sentiment, themes): {n / analysis:,.0f} comments/s"
          f" ({analysis:.2f} s)")  # fmt: skip
    print(f"reference (bare SudachiPy tokenize / str.split): {n / reference:,.0f} comments/s "
          f"({reference:.2f} s)")  # fmt: skip
    print(f"ratio analysis/reference time: {analysis / reference:.2f}x")
    print(f"log-odds compare over {n} comments (cache warm): {logodds:.2f} s; "
          f"top detractor term {result[0].term!r} z={result[0].z:+.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
