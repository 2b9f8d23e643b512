"""Offline evaluation on a time split: precision, recall and NDCG at k.

The model is fitted on purchases before the cut and asked for each
customer's top k; the truth is what the customer bought *for the first
time* after the cut (already-bought products are excluded by rule, so
counting repeats would reward nothing the recommender could show). Every
model, the popularity baseline included, is scored on the same customers.

References
----------
Järvelin, K., Kekäläinen, J. (2002). Cumulated gain-based evaluation of IR
techniques. ACM TOIS 20(4), 422-446 (NDCG with log2 discounts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from kizuna.analytics.recommend.topn import Scorer, top_n


@dataclass(frozen=True)
class Evaluation:
    """Mean metrics at ``k`` over ``users`` customers."""

    model: str
    k: int
    users: int
    precision: float
    recall: float
    ndcg: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ranking_metrics(
    recommended: np.ndarray, truth: sp.csr_matrix, k: int
) -> tuple[float, float, float]:
    """Mean precision@k, recall@k and NDCG@k of rows of ``recommended`` against ``truth`` rows."""
    rec = recommended[:, :k]
    users = rec.shape[0]
    if users == 0:
        return 0.0, 0.0, 0.0
    rows = np.repeat(np.arange(users), rec.shape[1])
    flat = rec.ravel()
    valid = flat >= 0
    hit = np.zeros(flat.size, bool)
    hit[valid] = np.asarray(truth[rows[valid], flat[valid]]).ravel() > 0
    hits = hit.reshape(rec.shape)
    n_true = np.diff(truth.indptr).astype(np.float64)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discount[: rec.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_true, k).astype(np.int64) - 1]
    precision = hits.sum(axis=1) / k
    recall = hits.sum(axis=1) / np.maximum(n_true, 1.0)
    ndcg = np.where(n_true > 0, dcg / ideal, 0.0)
    return float(precision.mean()), float(recall.mean()), float(ndcg.mean())


def evaluate(
    model: Scorer,
    train: sp.csr_matrix,
    truth: sp.csr_matrix,
    users: np.ndarray,
    popularity: np.ndarray,
    k: int = 10,
    allowed: np.ndarray | None = None,
) -> Evaluation:
    """Score a fitted ``model`` on ``users`` (rows of ``train``/``truth``)."""
    top = top_n(model, train, users, popularity, k, allowed)
    p, r, nd = ranking_metrics(top.items, truth[users], k)
    return Evaluation(model=model.name, k=k, users=int(users.size), precision=p, recall=r, ndcg=nd)
