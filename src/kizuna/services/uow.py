"""The unit of work: one transaction around one use case.

Handlers run ``with uow: ...; uow.commit()``. Leaving the block without a
commit rolls everything back, which is how an import that finds a bad row
leaves the database exactly as it was.
"""

from __future__ import annotations

from types import TracebackType

import sqlalchemy as sa

from kizuna.config import Settings


class UnitOfWork:
    """A connection and its transaction, opened on ``__enter__``."""

    def __init__(self, engine: sa.Engine, settings: Settings | None = None) -> None:
        self.engine = engine
        self._settings = settings
        self._conn: sa.Connection | None = None
        self._tx: sa.RootTransaction | None = None

    @property
    def conn(self) -> sa.Connection:
        if self._conn is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        return self._conn

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise RuntimeError("this unit of work was built without workspace settings")
        return self._settings

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __enter__(self) -> UnitOfWork:
        self._conn = self.engine.connect()
        self._tx = self._conn.begin()
        return self

    def commit(self) -> None:
        assert self._tx is not None
        self._tx.commit()
        self._tx = self.conn.begin()

    def rollback(self) -> None:
        assert self._tx is not None
        self._tx.rollback()
        self._tx = self.conn.begin()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        finally:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._tx = None
