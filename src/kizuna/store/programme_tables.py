"""Tables of the loyalty programme engine (ledger, lots, tiers, rewards, coupons).

Defined on the shared :data:`kizuna.store.tables.metadata`; migration 0002.
"""

from __future__ import annotations
