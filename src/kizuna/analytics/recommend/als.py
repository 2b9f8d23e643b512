"""Implicit-feedback ALS from the ``implicit`` package, as a challenger to item-to-item.

Purchases are confidences ``1 + alpha`` on observed pairs (Hu, Koren &
Volinsky 2008); ``implicit`` solves the alternating least squares with
conjugate gradients. BLAS is held to one thread while it runs, because
``implicit`` parallelises over users itself and nested thread pools on a
two-core machine only thrash.

References
----------
Hu, Y., Koren, Y., Volinsky, C. (2008). Collaborative filtering for implicit
feedback datasets. ICDM 2008, 263-272.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class ALS:
    """``implicit.cpu.als.AlternatingLeastSquares`` behind the recommender interface."""

    name = "als"

    def __init__(
        self,
        factors: int = 32,
        regularization: float = 0.05,
        iterations: int = 15,
        alpha: float = 10.0,
        threads: int = 2,
        seed: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.threads = threads
        self.seed = seed
        self.user_factors = np.zeros((0, factors), np.float32)
        self.item_factors = np.zeros((0, factors), np.float32)

    def fit(self, matrix: sp.csr_matrix) -> ALS:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                iterations=self.iterations,
                num_threads=self.threads,
                random_state=self.seed,
                calculate_training_loss=False,
            )
            model.fit((matrix * self.alpha).astype(np.float32).tocsr(), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, np.float32)
        self.item_factors = np.asarray(model.item_factors, np.float32)
        return self

    def candidates(
        self, history: sp.csr_matrix, rows: np.ndarray, n: int, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``implicit``'s own top-k over the factors of the fitted customers ``rows``."""
        from implicit.cpu.topk import topk
        from threadpoolctl import threadpool_limits

        blocked = np.flatnonzero(~allowed).astype(np.int32)
        with threadpool_limits(1, "blas"):
            ids, scores = topk(
                self.item_factors, self.user_factors[rows], n,
                filter_query_items=history.tocsr(),
                filter_items=blocked if blocked.size else None, num_threads=self.threads,
            )  # fmt: skip
        ids = np.asarray(ids, np.int64)
        scores = np.asarray(scores, np.float32)
        bad = ~np.isfinite(scores) | (ids < 0)
        return np.where(bad, -1, ids), np.where(bad, 0.0, scores).astype(np.float32)
