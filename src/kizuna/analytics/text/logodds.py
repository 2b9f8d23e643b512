"""Weighted log-odds ratios with an informative Dirichlet prior.

Which words do detractors use more than promoters? Raw frequency ratios
over-rank rare words (one mention against none) and plain frequencies
over-rank common ones. Monroe, Colaresi & Quinn (2008) shrink each word's
log-odds towards its rate in a background corpus and divide by the estimate's
standard error, giving a z-score that is large only when the difference is
both big and well supported.

References
----------
Monroe, B. L., Colaresi, M. P. & Quinn, K. M. (2008). Fightin' Words: Lexical
Feature Selection and Evaluation for Identifying the Content of Political
Conflict. *Political Analysis* 16(4), 372-403. Section 3.5, eqs. 15-22.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LogOdds:
    term: str
    count_a: int
    count_b: int
    #: δ̂_w: log-odds of the term in group a minus in group b (eq. 16).
    delta: float
    #: δ̂_w / sqrt(σ̂²): positive means characteristic of a, negative of b (eq. 22).
    z: float


def weighted_log_odds(
    counts_a: Mapping[str, int],
    counts_b: Mapping[str, int],
    prior: Mapping[str, float] | None = None,
    prior_scale: float | None = None,
    min_count: int = 1,
) -> list[LogOdds]:
    """Every term's weighted log-odds (group a vs b), most characteristic of a first.

    ``prior`` is a background count per term (by default the pooled counts of
    a and b, i.e. the whole corpus, as in the paper); ``prior_scale``
    rescales it to a total of α₀ (default: the prior's own total). Terms seen
    fewer than ``min_count`` times in a and b together are left out.
    """
    vocab = sorted(
        term for term in set(counts_a) | set(counts_b)
        if counts_a.get(term, 0) + counts_b.get(term, 0) >= min_count
    )  # fmt: skip
    if not vocab:
        return []
    y_a = np.array([counts_a.get(w, 0) for w in vocab], dtype=float)
    y_b = np.array([counts_b.get(w, 0) for w in vocab], dtype=float)
    background = [float(prior.get(w, 0.0)) for w in vocab] if prior is not None else None
    alpha = y_a + y_b if background is None else np.array(background)
    # A term absent from the background still needs a positive pseudo-count.
    alpha = np.maximum(alpha, 0.01)
    if prior_scale is not None:
        alpha = alpha * (prior_scale / alpha.sum())
    alpha_0 = alpha.sum()
    n_a, n_b = float(sum(counts_a.values())), float(sum(counts_b.values()))
    # Eq. 16: the difference of the two smoothed log-odds.
    log_odds_a = np.log(y_a + alpha) - np.log(n_a + alpha_0 - y_a - alpha)
    log_odds_b = np.log(y_b + alpha) - np.log(n_b + alpha_0 - y_b - alpha)
    delta = log_odds_a - log_odds_b
    # Eq. 20: the approximate variance of δ̂.
    variance = 1.0 / (y_a + alpha) + 1.0 / (y_b + alpha)
    z = delta / np.sqrt(variance)
    order = np.argsort(-z, kind="stable")
    return [
        LogOdds(vocab[i], int(y_a[i]), int(y_b[i]), float(delta[i]), float(z[i])) for i in order
    ]
