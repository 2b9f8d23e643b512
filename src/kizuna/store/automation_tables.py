"""Tables of segments and marketing automation (journeys, runs, sends, tasks).

Defined on the shared :data:`kizuna.store.tables.metadata`; migration 0005.
"""

from __future__ import annotations
