"""Failed-login limits: per (username, address) and per address, over a sliding window.

Limiting per pair stops guessing one user's password; limiting per address stops one client
spraying many usernames. Neither is per username alone, so nobody can lock a user out from
elsewhere. Counts live in the server process (each replica limits on its own).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from mltrail.errors import REQUEST_LIMIT_EXCEEDED, MltrailException

PAIR_LIMIT = 10  # failures of one username from one address
ADDRESS_LIMIT = 50  # failures of any usernames from one address
WINDOW_S = 300.0
_ANY = "\x00any"  # the per-address count's key (no username holds a control character)


class TooManyAttempts(MltrailException):
    """Too many failed logins: answered with 429 and `Retry-After`."""

    error_code = REQUEST_LIMIT_EXCEEDED

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginLimiter:
    """Counts failed logins in a sliding window and refuses further tries once a limit is reached."""

    def __init__(self, pair_limit: int = PAIR_LIMIT, address_limit: int = ADDRESS_LIMIT,
                 window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.pair_limit = pair_limit
        self.address_limit = address_limit
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def check(self, username: str, address: str | None) -> None:
        """Raise `TooManyAttempts` if `username` may not try a password from `address` now."""
        now = self.clock()
        where = address or "unknown"
        with self._lock:
            for key, limit in (((username, where), self.pair_limit), ((_ANY, where), self.address_limit)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = max(1, math.ceil(times[0] + self.window_s - now))
                    raise TooManyAttempts(
                        f"Too many failed logins for user {username!r} from {where}: {len(times)} in the last "
                        f"{int(self.window_s)} s (the limit is {limit}). Try again in {wait} s.", retry_after=wait)

    def failed(self, username: str, address: str | None) -> None:
        now = self.clock()
        where = address or "unknown"
        with self._lock:
            for key in ((username, where), (_ANY, where)):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str, address: str | None) -> None:
        """A correct password clears that user's failures from that address (not the address's total)."""
        with self._lock:
            self._failures.pop((username, address or "unknown"), None)
