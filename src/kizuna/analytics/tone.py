"""Feedback tone as an attitudinal signal: the sentiment of what customers write.

Each comment (survey answer, support contact or review) is scored by the lexicon
sentiment of :mod:`kizuna.analytics.text.sentiment` (−1 … +1) and becomes
an attitudinal signal of value (score + 1) / 2 in [0, 1], dated when it was
written. In the attitude score it is weighted like every other signal, by
its weight in ``loyalty_attitude_weights`` (``tone``, 0 by default) and by
its age (half-life), so the score reflects the customer's mean *recent*
tone. A comment with no lexicon word scores 0, i.e. a neutral 0.5.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from kizuna.errors import ValidationError


def comment_tone(comments: pa.Table) -> pa.Table:
    """``customer_id, day, tone`` (−1 … +1) per comment of ``comments``.

    ``comments`` has ``customer_id``, ``text``, ``language`` (may be null:
    detected) and ``written_at_day``. Identical (text, language) pairs are
    scored once: short survey comments repeat a lot.
    """
    from kizuna.analytics.text.sentiment import sentiment

    missing = {"customer_id", "text", "language", "written_at_day"} - set(comments.column_names)
    if missing:
        raise ValidationError(f"comments lack column(s) {', '.join(sorted(missing))}")
    texts = comments["text"].to_pylist()
    langs = comments["language"].to_pylist()
    cache: dict[tuple[str, str | None], float] = {}
    tone = np.empty(len(texts))
    for i, (text, lang) in enumerate(zip(texts, langs, strict=True)):
        key = (text or "", lang or None)
        if key not in cache:
            cache[key] = sentiment(key[0], key[1]).score if key[0].strip() else 0.0
        tone[i] = cache[key]
    return pa.table(
        {
            "customer_id": comments["customer_id"].cast(pa.int64()),
            "day": comments["written_at_day"].cast(pa.int64()),
            "tone": pa.array(tone),
        }
    )
