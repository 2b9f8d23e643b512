"""Each customer's best N products, under the exclusion rules, in batches.

Rules, in order: a product the customer already bought is never shown, nor
one that is inactive or out of stock (``allowed``); the model's products
come first by score (only positive scores count); when the model has fewer
than N (a new customer, or a very narrow history) the rest are the most
popular allowed products the customer has not bought.

Each model proposes its own candidates (:meth:`Scorer.candidates`): the
item-to-item model only ever looks at the sparse neighbourhood of what a
customer bought, ALS uses ``implicit``'s multithreaded top-k, so nothing
ever materialises a customers x products matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp


class Scorer(Protocol):
    name: str

    def candidates(
        self, history: sp.csr_matrix, rows: np.ndarray, n: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(len(rows), n) products and scores, best first; -1 / 0 where there are fewer."""
        ...


@dataclass(frozen=True)
class TopN:
    """``items[r]`` are row r's products best first; ``from_model`` False means popularity fallback."""

    items: np.ndarray  #: (rows, n) column indices, -1 where fewer than n products are allowed
    scores: np.ndarray  #: (rows, n) model score, or popularity share for fallback slots
    from_model: np.ndarray  #: (rows, n) bool


def sparse_top(scores: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row top ``n`` positive entries of a sparse matrix: (rows, n) columns and values."""
    rows = scores.shape[0]
    items = np.full((rows, n), -1, np.int64)
    values = np.zeros((rows, n), np.float32)
    data = scores.data
    if data.size == 0:
        return items, values
    counts = np.diff(scores.indptr)
    row = np.repeat(np.arange(rows), counts)
    keep = data > 0
    row, col, val = row[keep], scores.indices[keep], data[keep]
    # One sort for the whole batch: row ascending, score descending within a row.
    order = np.argsort(row + 1.0 / (2.0 + val.astype(np.float64)), kind="stable")
    row, col, val = row[order], col[order], val[order]
    starts = np.searchsorted(row, np.arange(rows))
    pos = np.arange(row.size) - starts[row]
    top = pos < n
    items[row[top], pos[top]] = col[top]
    values[row[top], pos[top]] = val[top]
    return items, values


def top_n(
    model: Scorer,
    history: sp.csr_matrix,
    rows: np.ndarray,
    popularity: np.ndarray,
    n: int,
    allowed: np.ndarray | None = None,
    batch: int = 8192,
    progress: Callable[[int], None] | None = None,
) -> TopN:
    """Top ``n`` products for ``rows`` of ``history`` (a customers x products matrix)."""
    n_items = int(history.shape[1])
    allowed = np.ones(n_items, bool) if allowed is None else allowed.astype(bool)
    n = int(min(n, n_items))
    pop = popularity.astype(np.float32)
    popular_order = np.array(
        [i for i in np.argsort(-pop, kind="stable") if allowed[i]], dtype=np.int64
    )
    items = np.full((rows.size, n), -1, np.int64)
    scores = np.zeros((rows.size, n), np.float32)
    from_model = np.zeros((rows.size, n), bool)
    for start in range(0, rows.size, batch):
        chunk = rows[start : start + batch]
        h = history[chunk]
        cand, vals = model.candidates(h, chunk, n, allowed)
        ok = (cand >= 0) & (vals > 0)
        cand = np.where(ok, cand, -1)
        got = ok.sum(axis=1)
        short = np.flatnonzero(got < n)
        for r in short:
            have = set(cand[r, : got[r]].tolist())
            have.update(h.indices[h.indptr[r] : h.indptr[r + 1]].tolist())
            slot = int(got[r])
            for item in popular_order:
                if slot >= n:
                    break
                if int(item) not in have:
                    cand[r, slot] = item
                    vals[r, slot] = pop[item]
                    slot += 1
        items[start : start + chunk.size] = cand
        scores[start : start + chunk.size] = np.where(cand >= 0, vals, 0.0)
        from_model[start : start + chunk.size] = ok
        if progress:
            progress(chunk.size)
    return TopN(items=items, scores=scores, from_model=from_model)
