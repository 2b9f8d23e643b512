"""Structured logs: one JSON object per line, request id attached, personal data masked.

Log aggregators (Loki, CloudWatch, Elasticsearch) index JSON fields, so a
request is followed across API and dashboard lines by its ``request_id``.
Personal data must not reach logs, whatever a developer passes to them:
:class:`MaskPersonal` rewrites e-mail addresses and phone numbers in every
message and every extra field, and hides extra fields named like personal
columns (``email``, ``phone``, ``name``...) entirely.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from kizuna.observability.context import request_id

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
#: Japanese and international phone numbers: 03-1234-5678, 090 1234 5678, +81 90-1234-5678.
PHONE = re.compile(r"(?<![\w-])(?:\+\d{1,3}[ -]?)?\(?0?\d{1,4}\)?[ -]\d{1,4}[ -]\d{3,4}(?![\w-])")
PERSONAL_FIELDS = frozenset(
    {"email", "phone", "name", "birthday", "postal_code", "address", "comment", "body"}
)
#: Attributes every LogRecord has; anything else was passed in ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
}


def mask(text: str) -> str:
    """``hana@example.jp`` -> ``h***@example.jp``; phone numbers -> ``[phone]``."""
    return PHONE.sub("[phone]", EMAIL.sub(r"\1***@\2", text))


def _mask_value(key: str, value: Any) -> Any:
    if key in PERSONAL_FIELDS:
        return "***"
    if isinstance(value, str):
        return mask(value)
    return value


class MaskPersonal(logging.Filter):
    """Mask personal data in the message, its arguments and extra fields of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        for key in set(record.__dict__) - _STANDARD:
            record.__dict__[key] = _mask_value(key, record.__dict__[key])
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id.get()),
        }
        for key in set(record.__dict__) - _STANDARD:
            doc[key] = record.__dict__[key]
        if record.exc_info:
            doc["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


_HANDLER_NAME = "kizuna-ops"


def configure_logging(log_format: str = "json", level: str = "INFO", stream: Any = None) -> None:
    """Send the logs of Kizuna and uvicorn to ``stream`` (stderr) in ``log_format``.

    Idempotent: a second call replaces the handler instead of adding one, so
    every uvicorn worker process may call it from the app factory.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(MaskPersonal())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    for name in ("kizuna", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        if name == "kizuna" or name == "uvicorn":
            logger.addHandler(handler)
            logger.setLevel(level)
            logger.propagate = False
    # uvicorn's access lines repeat what the request middleware logs with more detail.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
