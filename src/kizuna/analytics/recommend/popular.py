"""Popularity: the fallback for customers without history and the baseline to beat.

Popularity is the number of distinct buyers, not units sold, so one office
ordering a pallet of paper does not make paper everyone's recommendation.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Popularity:
    """Scores every product by its share of buyers, the same for every customer."""

    name = "popular"

    def __init__(self) -> None:
        self.share = np.zeros(0, np.float32)

    def fit(self, matrix: sp.csr_matrix) -> Popularity:
        buyers = np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.float64)
        self.share = (buyers / max(1, matrix.shape[0])).astype(np.float32)
        return self

    def candidates(
        self, history: sp.csr_matrix, rows: np.ndarray, n: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """No model candidates: every slot is the popularity fallback of :func:`top_n`."""
        return np.full((history.shape[0], n), -1, np.int64), np.zeros(
            (history.shape[0], n), np.float32
        )
