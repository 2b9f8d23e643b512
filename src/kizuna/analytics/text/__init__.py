"""Feedback text analysis in Japanese and English (issue 7).

Pure functions over comments (:class:`~.terms.Doc`); reading them from the
database is :mod:`kizuna.services.survey_feedback`'s job.

* :mod:`.normalise` — NFKC, long-vowel marks, language detection;
* :mod:`.tokenise` — SudachiPy (ja) and a regex tokenizer (en), content words;
* :mod:`.terms` — key terms and two-word phrases, counted once per comment;
* :mod:`.logodds` — weighted log-odds with an informative Dirichlet prior;
* :mod:`.themes` — themes, monthly trends, churn by theme with intervals;
* :mod:`.sentiment` and :mod:`.lexicon` — a lexicon-based score per comment.
"""

from __future__ import annotations

from kizuna.analytics.text.logodds import LogOdds, weighted_log_odds
from kizuna.analytics.text.normalise import detect_language, normalise
from kizuna.analytics.text.sentiment import Sentiment, mean_sentiment, sentiment
from kizuna.analytics.text.terms import Doc, TermTable, doc_terms, key_terms, term_table
from kizuna.analytics.text.themes import (
    DEFAULT_THEMES,
    ThemeChurn,
    ThemeMonth,
    doc_themes,
    theme_churn,
    theme_trends,
)
from kizuna.analytics.text.tokenise import Word, words

__all__ = [
    "DEFAULT_THEMES",
    "Doc",
    "LogOdds",
    "Sentiment",
    "TermTable",
    "ThemeChurn",
    "ThemeMonth",
    "Word",
    "detect_language",
    "doc_terms",
    "doc_themes",
    "key_terms",
    "mean_sentiment",
    "normalise",
    "sentiment",
    "term_table",
    "theme_churn",
    "theme_trends",
    "weighted_log_odds",
    "words",
]
