"""Exactly-once creation: a create request resent with the same idempotency key gets the first answer.

mltrail's REST client sends a fresh key (the `mltrail_idempotency_key` body field) with each
`create_run` and `create_logged_model`, and resends the request when the answer was lost (the
connection dropped after the server had stored the run). The server keeps key -> answer for
`TTL_S` seconds in the tracking database (`idempotency_keys`), so the resend returns the run
created the first time instead of a second run, whichever replica behind a load balancer it
reaches, and after a restart too.

The first request claims the key (a row without an answer, committed before it creates), creates,
then stores the answer. A resend that finds the claim waits for that answer; a claim older than
`CLAIM_TIMEOUT_S` without one was left by a replica that died mid-create, and is taken over (the
only window in which a resend creates anew: a replica dying between the create's commit and the
answer's). A failed create removes its claim, so a resend tries again. Requests without a key
(MLflow's client) behave as before.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mltrail.errors import InvalidParameterValue
from mltrail.store.sql import engine as eng
from mltrail.store.sql.replica_schema import MAX_IDEMPOTENCY_KEY_LENGTH, idempotency_keys

KEY_FIELD = "mltrail_idempotency_key"
TTL_S = 3600.0
CLAIM_TIMEOUT_S = 120.0  # a create still unanswered after this long was abandoned by its replica
PRUNE_EVERY_S = 60.0  # how often one process deletes expired keys (on a claim)
_POLL_S = (0.02, 0.5)  # first and longest pause between looks at another request's claim
_k = idempotency_keys


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidParameterValue(
            f"Invalid value for '{KEY_FIELD}': expected a string of at most {MAX_IDEMPOTENCY_KEY_LENGTH} "
            f"characters, received {str(key)[:80]!r}.")
    if "\x00" in key:  # PostgreSQL text cannot hold it
        raise InvalidParameterValue(f"Invalid value for '{KEY_FIELD}': it must not contain NUL characters.")
    return key


class IdempotencyRecords:
    """Answers of keyed create requests, in the tracking database, kept for `ttl` seconds."""

    def __init__(self, engine: Engine, ttl: float = TTL_S, claim_timeout: float = CLAIM_TIMEOUT_S) -> None:
        self.engine = engine
        self.ttl = ttl
        self.claim_timeout = claim_timeout
        self._pruned_at = 0.0  # monotonic time of this process's last prune

    def once(self, scope: str, key: Any, create: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """`create()`'s answer; the stored one when `key` was seen in `scope` (None or "": just create)."""
        if key is None or key == "":
            return create()
        key = _check_key(key)
        pause = _POLL_S[0]
        while True:
            mine, answer = self._claim(scope, key)
            if answer is not None:
                return answer
            if mine:
                break
            time.sleep(pause)  # the first request with this key is still creating: wait for its answer
            pause = min(pause * 2, _POLL_S[1])
        try:
            created = create()
        except BaseException:  # a failed create remembers nothing: a resend tries again
            with contextlib.suppress(Exception):  # the create's own error is the one to report
                self._release(scope, key)
            raise
        text = orjson.dumps(created).decode("utf-8")
        eng.run_write(self.engine, lambda conn: conn.execute(
            update(_k).where(and_(_k.c.scope == scope, _k.c.key == key)).values(answer=text)), idempotent=True)
        return created

    def _claim(self, scope: str, key: str) -> tuple[bool, dict[str, Any] | None]:
        """(claimed by this request, the stored answer): (False, None) means another request is creating."""
        where = and_(_k.c.scope == scope, _k.c.key == key)
        prune = time.monotonic() - self._pruned_at >= PRUNE_EVERY_S

        def claim(conn: Connection) -> tuple[bool, str | None]:
            now = _now_ms()
            if prune:
                conn.execute(delete(_k).where(_k.c.created_at < now - int(self.ttl * 1000)))
            row = conn.execute(select(_k.c.created_at, _k.c.claimed_at, _k.c.answer).where(where)).first()
            if row is None or row.created_at < now - int(self.ttl * 1000):  # new, or expired
                if row is not None:
                    conn.execute(delete(_k).where(where))
                conn.execute(insert(_k).values(scope=scope, key=key, created_at=now, claimed_at=now, answer=None))
                return True, None
            if row.answer is not None:
                return False, str(row.answer)
            if row.claimed_at < now - int(self.claim_timeout * 1000):  # its replica died mid-create
                conn.execute(update(_k).where(where).values(claimed_at=now))
                return True, None
            return False, None

        try:
            mine, text = eng.run_write(self.engine, claim)
        except IntegrityError:  # a concurrent first claim of the same key (PostgreSQL): it is theirs
            return False, None
        if prune:
            self._pruned_at = time.monotonic()
        return mine, None if text is None else orjson.loads(text)

    def _release(self, scope: str, key: str) -> None:
        eng.run_write(self.engine, lambda conn: conn.execute(delete(_k).where(and_(
            _k.c.scope == scope, _k.c.key == key, _k.c.answer.is_(None)))), idempotent=True)
