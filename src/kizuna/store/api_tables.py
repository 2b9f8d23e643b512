"""Tables of the HTTP API: the per-key rate-limit buckets.

Defined on the shared :data:`kizuna.store.tables.metadata`; migration 0012.
The API keys themselves live in ``api_keys`` (programme tables, migration
0002). A bucket is one row per key, updated by one statement per request, so
every API process on every machine draws from the same bucket.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import metadata

#: One token bucket per API key: ``tokens`` left at ``refilled_at`` (Unix
#: seconds, as a float so the refill arithmetic is one portable expression).
api_rate_buckets = sa.Table(
    "api_rate_buckets",
    metadata,
    sa.Column("key_prefix", sa.String(16), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("refilled_at", sa.Float, nullable=False),
)
