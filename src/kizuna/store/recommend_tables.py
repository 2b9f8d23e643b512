"""Tables of recommendations and next-best offers (issue 8)."""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401

from kizuna.store.tables import metadata  # noqa: F401
