"""The request id of the work in progress, visible to every log line it produces."""

from __future__ import annotations

from contextvars import ContextVar

#: Set by the request middleware; "-" outside any request (CLI, worker loop).
request_id: ContextVar[str] = ContextVar("kizuna_request_id", default="-")
