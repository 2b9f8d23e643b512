"""Kizuna (絆): find, grow and keep loyal customers.

The Python API for analysts::

    import kizuna

    with kizuna.open("my-workspace") as ws:      # a folder or a database URL
        orders = ws.orders(since="2025-01-01")   # a pandas DataFrame
        ws.customer("C-0001").timeline           # the customer 360

Importing :mod:`kizuna` loads neither SQLAlchemy nor pandas and touches no
database, so the CLI starts fast and tools can import it freely; both load
on the first :func:`open`.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kizuna.workspace import Workspace

try:
    __version__ = metadata.version("kizuna")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["Workspace", "__version__", "open"]


def open(workspace: str | Path | None = None, **settings: Any) -> Workspace:  # noqa: A001
    """Open a workspace folder (default: ``KIZUNA_WORKSPACE`` or the current folder)
    or a database URL, for reading tables as DataFrames.

    Keyword arguments override settings for this session only, e.g.
    ``timezone="UTC"``. Raises :class:`kizuna.errors.WorkspaceError` when the
    folder is not a workspace or its database schema is not current.
    """
    from kizuna.workspace import Workspace

    return Workspace.open(workspace, **settings)


def __getattr__(name: str) -> Any:
    # PEP 562: `kizuna.Workspace` is importable without loading it at import time.
    if name == "Workspace":
        from kizuna.workspace import Workspace

        return Workspace
    raise AttributeError(f"module 'kizuna' has no attribute {name!r}")
