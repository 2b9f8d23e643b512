"""A brake on password guessing: too many failed logins for one user name
within a window lock that name out for the rest of the window.

Kept in process memory: with several dashboard processes each has its own
count, which still bounds guessing to ``processes × MAX_FAILURES`` per window.
"""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60


class LoginThrottle:
    """Failed-login times per user name, forgetting those older than the window."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, username: str) -> bool:
        key = username.casefold()
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.max_failures

    def failed(self, username: str) -> None:
        key = username.casefold()
        with self._lock:
            self._recent(key, time.monotonic()).append(time.monotonic())
            if len(self._failures) > 100_000:  # bound memory under a spray of names
                self._failures.clear()

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username.casefold(), None)
