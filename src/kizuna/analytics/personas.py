"""Personas: clusters of customers, described in words (ja/en).

Customers are clustered with k-means on standardised features of their
latest scores (purchase frequency, recency, spend, P(alive), attitude, and
whether the attitude is known at all, so silent customers form their own
groups instead of being imputed). Each cluster is then described by the
features that set it apart most: the ones whose cluster mean is furthest
from the overall mean in standard deviations, e.g. "buys often, recent
purchase, attached".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kizuna.errors import ValidationError

#: Feature -> (words when high, words when low), in English and Japanese.
WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "frequency": {"en": ("buys often", "rarely buys"), "ja": ("購入頻度が高い", "購入が少ない")},
    "recency_days": {
        "en": ("long since the last purchase", "bought recently"),
        "ja": ("最終購入から時間が経過", "最近購入"),
    },
    "total_amount": {
        "en": ("spends a lot", "spends little"),
        "ja": ("購入金額が大きい", "購入金額が小さい"),
    },
    "p_alive": {
        "en": ("likely still active", "likely gone"),
        "ja": ("稼働中の可能性が高い", "離反の可能性が高い"),
    },
    "attitude_score": {
        "en": ("attached to the brand", "not attached"),
        "ja": ("ブランドへの愛着が強い", "愛着が弱い"),
    },
    "attitude_known": {
        "en": ("gives feedback", "silent (no feedback)"),
        "ja": ("声を寄せる", "声がない"),
    },
}
FEATURES = tuple(WORDS)


@dataclass(frozen=True)
class Personas:
    """Per-customer cluster labels and one described row per cluster."""

    assignments: pd.DataFrame
    clusters: pd.DataFrame


def _matrix(scores: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("frequency", "recency_days", "total_amount", "p_alive", "attitude_score")
               if c not in scores.columns]  # fmt: skip
    if missing:
        raise ValidationError(f"persona features missing from the scores: {', '.join(missing)}")
    known = scores["attitude_score"].notna()
    return pd.DataFrame(
        {
            "frequency": np.log1p(scores["frequency"].astype(float)),
            "recency_days": scores["recency_days"].astype(float),
            "total_amount": np.log1p(scores["total_amount"].astype(float).clip(lower=0)),
            "p_alive": scores["p_alive"].astype(float),
            # Unknown attitude sits at the mean: the flag below carries it.
            "attitude_score": scores["attitude_score"]
            .astype(float)
            .fillna(float(scores["attitude_score"].mean()) if known.any() else 0.0),
            "attitude_known": known.astype(float),
        }
    )


def personas(scores: pd.DataFrame, k: int = 6, seed: int = 0, top: int = 3) -> Personas:
    """Cluster ``scores`` (a frame of per-customer scores) into ``k`` described personas."""
    from sklearn.cluster import MiniBatchKMeans

    if len(scores) < k:
        raise ValidationError(f"need at least {k} customers for {k} personas")
    raw = _matrix(scores)
    mean, std = raw.mean(), raw.std(ddof=0).replace(0, 1.0)
    z = ((raw - mean) / std).to_numpy()
    model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=5, batch_size=4096)
    labels = model.fit_predict(z)
    rows = []
    for c in range(k):
        members = labels == c
        centre = z[members].mean(axis=0)
        order = np.argsort(-np.abs(centre))[:top]
        words = {
            lang: ("、" if lang == "ja" else ", ").join(
                WORDS[FEATURES[i]][lang][0 if centre[i] > 0 else 1] for i in order
            )
            for lang in ("en", "ja")
        }
        rows.append(
            {
                "persona": c,
                "customers": int(members.sum()),
                "share": float(members.mean()),
                "en": words["en"],
                "ja": words["ja"],
                **{f"mean_{f}": float(raw[f].to_numpy()[members].mean()) for f in FEATURES},
            }
        )
    clusters = pd.DataFrame(rows).sort_values("customers", ascending=False).reset_index(drop=True)
    assignments = pd.DataFrame({"customer_id": scores["customer_id"].to_numpy(), "persona": labels})
    return Personas(assignments, clusters)
