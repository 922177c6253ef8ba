"""Exactly-once creation: a create request resent with the same idempotency key gets the first answer.

mltrail's REST client sends a fresh key (the `mltrail_idempotency_key` body field) with each
`create_run` and `create_logged_model`, and resends the request when the answer was lost (the
connection dropped after the server had stored the run). The server remembers key -> answer for
`TTL_S` seconds, so the resend returns the run created the first time instead of a second run. A
resend that arrives while the first request is still running waits for it. The memory is the
server process's: a resend after a server restart creates anew (the window is the instant between
the commit and the answer). Requests without a key (MLflow's client) behave as before.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from mltrail.errors import InvalidParameterValue

KEY_FIELD = "mltrail_idempotency_key"
TTL_S = 3600.0
MAX_KEYS = 100_000
_MAX_KEY_LENGTH = 200


class IdempotencyCache:
    """Answers of keyed create requests, kept for `ttl` seconds (at most `max_keys` of them)."""

    def __init__(self, ttl: float = TTL_S, max_keys: int = MAX_KEYS) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._running: dict[str, threading.Event] = {}

    def once(self, scope: str, key: Any, create: Callable[[], Any]) -> Any:
        """`create()`'s answer; the remembered one when `key` was seen in `scope` (None: no key, just create)."""
        if key is None or key == "":
            return create()
        if not isinstance(key, str) or len(key) > _MAX_KEY_LENGTH:
            raise InvalidParameterValue(
                f"Invalid value for '{KEY_FIELD}': expected a string of at most {_MAX_KEY_LENGTH} characters, "
                f"received {str(key)[:80]!r}.")
        full = f"{scope}\0{key}"
        while True:
            with self._lock:
                self._expire(time.monotonic())
                hit = self._answers.get(full)
                if hit is not None:
                    return hit[1]
                running = self._running.get(full)
                if running is None:
                    done = self._running[full] = threading.Event()
                    break
            running.wait()  # the first request with this key is still creating: take its answer
        try:
            answer = create()
            with self._lock:
                self._answers[full] = (time.monotonic(), answer)
                while len(self._answers) > self.max_keys:
                    self._answers.popitem(last=False)
            return answer
        finally:  # a failed create remembers nothing: a resend tries again
            with self._lock:
                self._running.pop(full, None)
            done.set()

    def _expire(self, now: float) -> None:
        while self._answers:
            stamp, _ = next(iter(self._answers.values()))
            if now - stamp < self.ttl:
                return
            self._answers.popitem(last=False)
