"""The one error tree of Kizuna.

Every error a person can cause or fix is a :class:`KizunaError` subclass whose
message says what to do next. The domain raises these without knowing about
HTTP or exit codes; the CLI maps them to exit codes and the API (later) to
HTTP statuses, each in one place.
"""

from __future__ import annotations


class KizunaError(Exception):
    """Base of every error Kizuna raises on purpose."""

    exit_code = 1


class ConfigError(KizunaError):
    """A setting has a value Kizuna cannot use."""

    exit_code = 2


class WorkspaceError(KizunaError):
    """The workspace is missing, not initialised or not migrated."""

    exit_code = 3


class NotFound(KizunaError):
    """A customer, order or other record named by the caller does not exist."""

    exit_code = 4


class ValidationError(KizunaError):
    """Input data breaks a rule; the message names the field and the fix."""

    exit_code = 5


class ImportRejected(ValidationError):
    """An import found bad rows and, being all-or-nothing, wrote nothing.

    ``report`` holds every problem with its file, line, column and reason.
    """

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report


class MoneyError(ValidationError):
    """An amount cannot be represented exactly in the workspace currency."""


class InsufficientPoints(KizunaError):
    """A redemption or debit asks for more points than the member can spend."""

    exit_code = 7


class Conflict(KizunaError):
    """The request clashes with what is already recorded (a reused id or key)."""

    exit_code = 8


class Unauthorized(KizunaError):
    """No API key, or one Kizuna does not know; send ``Authorization: Bearer <key>``."""

    exit_code = 9


class Forbidden(KizunaError):
    """The API key is valid but its scope does not allow this call."""

    exit_code = 10


class SegmentError(ValidationError):
    """A segment rule is invalid; ``path`` points at the bad node (``/rule/and/1/value``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"segment rule {path}: {message}")
        self.path = path
        self.reason = message


class JourneyError(ValidationError):
    """A journey definition or action is invalid, or an action is not available yet."""


class TemplateError(ValidationError):
    """A message template failed to render or tried to escape its sandbox."""
