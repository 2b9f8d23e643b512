"""Tables of surveys, survey tokens and feedback analysis (issue 7)."""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401

from kizuna.store.tables import metadata  # noqa: F401
