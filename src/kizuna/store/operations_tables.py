"""Tables of privacy, retention and operations (issue 9)."""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401

from kizuna.store.tables import metadata  # noqa: F401
