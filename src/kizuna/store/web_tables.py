"""Tables of the dashboard: users, their roles and sessions.

Defined on the shared :data:`kizuna.store.tables.metadata`; migration 0004.
"""

from __future__ import annotations
