"""Purchase lines as a binary customer x product matrix, and its split by time.

Binary, not quantities: buying ten bags of the same coffee says as much
about taste as buying one, and counts would let bulk buyers dominate the
co-purchase statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Interactions:
    """``matrix[u, i] = 1`` when customer ``customers[u]`` bought product ``products[i]``."""

    matrix: sp.csr_matrix
    customers: np.ndarray  #: external key (database id) of each row
    products: np.ndarray  #: external key (database id) of each column

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.matrix.shape[0]), int(self.matrix.shape[1]))


def binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A 0/1 float32 CSR matrix with a one wherever (row, col) occurs at least once."""
    m = sp.csr_matrix(
        (np.ones(rows.size, np.float32), (rows.astype(np.int64), cols.astype(np.int64))),
        shape=shape,
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def interactions(
    customer: np.ndarray, product: np.ndarray, products: np.ndarray | None = None
) -> Interactions:
    """The matrix of purchase lines given as parallel arrays of customer and product keys.

    ``products`` fixes the column set (e.g. the whole catalogue, so products
    nobody bought yet still get a column); by default it is the bought ones.
    """
    if customer.shape != product.shape:
        raise ValueError("customer and product arrays must have the same length")
    cust_keys, rows = np.unique(customer, return_inverse=True)
    prod_keys = np.unique(product) if products is None else np.unique(products)
    cols = np.searchsorted(prod_keys, product)
    if product.size and (
        (cols >= prod_keys.size).any()
        or (prod_keys[np.minimum(cols, prod_keys.size - 1)] != product).any()
    ):
        raise ValueError("a purchase line refers to a product outside the given catalogue")
    matrix = binary(rows, cols, (cust_keys.size, prod_keys.size))
    return Interactions(matrix=matrix, customers=cust_keys, products=prod_keys)


@dataclass(frozen=True)
class Split:
    """Training matrix before the cut and, for the same rows, what was bought *new* after it."""

    train: sp.csr_matrix
    truth: sp.csr_matrix
    users: np.ndarray  #: rows with history before the cut and at least one new product after


def time_split(
    customer: np.ndarray,
    product: np.ndarray,
    when: np.ndarray,
    cut: float,
    n_products: int,
) -> Split:
    """Split purchase lines (row and column indices, ``when`` in epoch seconds) at ``cut``.

    The truth holds only products the customer had not bought before the
    cut, because those are the ones a recommender is allowed to show (items
    already bought are excluded by rule).
    """
    n_customers = int(customer.max()) + 1 if customer.size else 0
    before = when < cut
    shape = (n_customers, n_products)
    train = binary(customer[before], product[before], shape)
    after = binary(customer[~before], product[~before], shape)
    truth = (after - after.multiply(train)).tocsr()
    truth.eliminate_zeros()
    has_history = np.diff(train.indptr) > 0
    has_new = np.diff(truth.indptr) > 0
    return Split(train=train, truth=truth, users=np.flatnonzero(has_history & has_new))
