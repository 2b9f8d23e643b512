"""Product recommendations from purchase history (PRODUCT.md item 7, issue 8).

Pure computation on sparse matrices, no database: :mod:`.interactions`
turns purchase lines into a customer x product matrix and splits it by time,
:mod:`.similar` is the item-to-item model (co-purchase cosine), :mod:`.als`
wraps the ``implicit`` package's ALS, :mod:`.popular` is the fallback and
the baseline, :mod:`.topn` picks each customer's best N under the exclusion
rules and :mod:`.metrics` scores a model offline.
"""

from __future__ import annotations

from kizuna.analytics.recommend.interactions import Interactions, interactions, time_split
from kizuna.analytics.recommend.metrics import Evaluation, evaluate
from kizuna.analytics.recommend.popular import Popularity
from kizuna.analytics.recommend.similar import ItemItem
from kizuna.analytics.recommend.topn import TopN, top_n

__all__ = [
    "Evaluation",
    "Interactions",
    "ItemItem",
    "Popularity",
    "TopN",
    "evaluate",
    "interactions",
    "time_split",
    "top_n",
]
