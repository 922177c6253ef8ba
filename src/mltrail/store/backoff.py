"""The retry policy of everything that waits out a tracking server: capped exponential backoff with jitter.

A transient failure (a connection error, 429, 5xx) is retried for as long as the process lives: the
first retry comes after about `FIRST_DELAY_S`, each next one after twice as long, never more than
`MAX_DELAY_S`; each delay is jittered (x0.5..1.0) so many clients coming back together do not
arrive in step. A server's `Retry-After` (seconds) is honoured, within the same cap.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

FIRST_DELAY_S = 0.1
MAX_DELAY_S = 5.0
# how finely a wait checks whether to stop (so closing a store never waits a whole delay)
_TICK_S = 0.05


def parse_retry_after(value: str | None) -> float | None:
    """A `Retry-After` header given in seconds (the HTTP-date form is not used by tracking servers)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class Backoff:
    """The delays of one call's retries: `delay()` grows per failure; `reset()` after a success."""

    def __init__(self, first: float = FIRST_DELAY_S, cap: float = MAX_DELAY_S) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def delay(self, retry_after: float | None = None) -> float:
        """The wait before the next attempt (counts one more failure)."""
        self.failures += 1
        base = min(self.first * 2 ** min(self.failures - 1, 30), self.cap)
        wait = base * (0.5 + random.random() / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap))
        return wait

    def reset(self) -> None:
        self.failures = 0

    def sleep(self, retry_after: float | None = None, stop: Callable[[], bool] = lambda: False) -> bool:
        """Wait the next delay; False (at once) when `stop()` turns true meanwhile."""
        deadline = time.monotonic() + self.delay(retry_after)
        while True:
            if stop():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, _TICK_S))
