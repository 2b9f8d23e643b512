"""Tables of scoring runs (per-customer scores stored as dated, versioned runs).

Defined on the shared :data:`kizuna.store.tables.metadata`; migration 0003.
"""

from __future__ import annotations
