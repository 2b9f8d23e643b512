"""Item-to-item collaborative filtering on co-purchases.

The similarity of products i and j is the number of customers who bought
both, divided by ``n_i**alpha * n_j**(1 - alpha) + shrink`` (``alpha = 0.5``
is the cosine of the two buyer vectors; the shrinkage term damps pairs seen
only a handful of times). Only each product's ``neighbours`` most similar
products are kept, so the model is a sparse products x products matrix
whatever the number of customers, and a customer's score for j is the sum of
j's similarity to everything the customer bought.

Co-occurrences are computed a block of products at a time
(``X[:, block].T @ X``), so memory stays at one dense block of
``block x products`` floats however many customers there are; this is what
lets the model fit 1M customers x 10k products on a small machine.

References
----------
Linden, G., Smith, B., York, J. (2003). Amazon.com recommendations:
item-to-item collaborative filtering. IEEE Internet Computing 7(1), 76-80.
Deshpande, M., Karypis, G. (2004). Item-based top-N recommendation
algorithms. ACM TOIS 22(1), 143-177.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kizuna.analytics.recommend.topn import sparse_top


class ItemItem:
    """Sparse co-purchase cosine with top-``neighbours`` pruning."""

    name = "similar"

    def __init__(
        self, neighbours: int = 100, alpha: float = 0.5, shrink: float = 5.0, block: int = 1024
    ) -> None:
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("alpha must be between 0 and 1")
        self.neighbours = neighbours
        self.alpha = alpha
        self.shrink = shrink
        self.block = block
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        #: The most co-purchased pairs: (i, j, customers who bought both), i < j.
        self.top_pairs: list[tuple[int, int, int]] = []

    def fit(self, matrix: sp.csr_matrix, pairs: int = 20) -> ItemItem:
        """Learn the neighbour matrix from a binary customer x product matrix."""
        x = matrix.tocsc().astype(np.float32)
        xr = matrix.tocsr().astype(np.float32)
        n_items = int(matrix.shape[1])
        buyers = np.asarray(x.getnnz(axis=0), dtype=np.float32)
        k = min(self.neighbours, max(1, n_items - 1))
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        best: list[tuple[int, int, int]] = []
        for start in range(0, n_items, self.block):
            stop = min(n_items, start + self.block)
            co = (x[:, start:stop].T @ xr).toarray()  # (block, items) co-purchase counts
            local = np.arange(stop - start)
            co[local, local + start] = 0.0
            best = _merge_pairs(best, co, start, pairs)
            denom = (
                np.power(buyers[start:stop, None], self.alpha)
                * np.power(buyers[None, :], 1.0 - self.alpha)
                + self.shrink
            )
            sim = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
            top = (
                np.argpartition(-sim, k - 1, axis=1)[:, :k]
                if k < n_items
                else np.tile(np.arange(n_items), (stop - start, 1))
            )
            v = np.take_along_axis(sim, top, axis=1)
            keep = v > 0
            rows.append(np.repeat(local + start, k)[keep.ravel()])
            cols.append(top.ravel()[keep.ravel()])
            vals.append(v.ravel()[keep.ravel()])
        self.similarity = sp.csr_matrix(
            (
                np.concatenate(vals) if vals else np.zeros(0, np.float32),
                (
                    np.concatenate(rows) if rows else np.zeros(0, np.int64),
                    np.concatenate(cols) if cols else np.zeros(0, np.int64),
                ),
            ),
            shape=(n_items, n_items),
            dtype=np.float32,
        )
        self.top_pairs = best
        return self

    def candidates(
        self, history: sp.csr_matrix, rows: np.ndarray, n: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` by summed similarity to what each customer bought, bought ones excluded.

        Only the sparse neighbourhood of the history is ever scored.
        """
        h = history.astype(np.float32)
        scores = (h @ self.similarity).tocsr()
        scores = (scores - scores.multiply(h > 0)).tocsr()
        scores.data[~allowed[scores.indices]] = 0.0
        scores.eliminate_zeros()
        return sparse_top(scores, n)

    def neighbours_of(self, item: int, n: int = 10) -> list[tuple[int, float]]:
        """The ``n`` products most similar to ``item`` with their similarity."""
        row = self.similarity.getrow(item)
        order = np.argsort(-row.data)[:n]
        return [(int(row.indices[o]), float(row.data[o])) for o in order]


def _merge_pairs(
    best: list[tuple[int, int, int]], co: np.ndarray, start: int, n: int
) -> list[tuple[int, int, int]]:
    """Keep the ``n`` largest co-purchase counts of pairs i < j seen so far."""
    if n <= 0:
        return best
    flat = co.ravel()
    m = min(flat.size, n * 4)
    cand = np.argpartition(-flat, m - 1)[:m] if m < flat.size else np.arange(flat.size)
    items = co.shape[1]
    found = [
        (start + int(c // items), int(c % items), int(flat[c]))
        for c in cand
        if flat[c] > 0 and start + int(c // items) < int(c % items)
    ]
    return sorted(best + found, key=lambda p: (-p[2], p[0], p[1]))[:n]
