"""Tables of B2B intent, health scores, touch models and reports (issue 8)."""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401

from kizuna.store.tables import metadata  # noqa: F401
