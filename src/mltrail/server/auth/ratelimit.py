"""Failed-login limits: per (username, address) and per address, over a sliding window.

Limiting per pair stops guessing one user's password; limiting per address stops one client
spraying many usernames. Neither is per username alone, so nobody can lock a user out from
elsewhere. Failures are rows in the tracking database (`auth_login_failures`), so replicas behind
a load balancer add up to one limit: a guesser gains nothing by being spread over them. Only
failures are written; a login checks the counts with one indexed read.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, and_, case, delete, func, insert, select, update

from mltrail.errors import REQUEST_LIMIT_EXCEEDED, MltrailException
from mltrail.store.sql import engine as eng
from mltrail.store.sql.replica_schema import MAX_ADDRESS_LENGTH, auth_login_failures

PAIR_LIMIT = 10  # failures of one username from one address
ADDRESS_LIMIT = 50  # failures of any usernames from one address
WINDOW_S = 300.0
_f = auth_login_failures


class TooManyAttempts(MltrailException):
    """Too many failed logins: answered with 429 and `Retry-After`."""

    error_code = REQUEST_LIMIT_EXCEEDED

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _who(username: str) -> str:
    """What a failure row keeps of the username: a digest (any text a client sent fits, NUL included)."""
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


def _where(address: str | None) -> str:
    return (address or "unknown").replace("\x00", "")[:MAX_ADDRESS_LENGTH]


class LoginLimiter:
    """Counts failed logins in a sliding window and refuses further tries once a limit is reached.

    `engine` is the database holding the counts; `AuthStore` gives its own to a limiter made
    without one (`using`). `clock` is wall-clock seconds: every replica must read the same time.
    """

    def __init__(self, pair_limit: int = PAIR_LIMIT, address_limit: int = ADDRESS_LIMIT,
                 window_s: float = WINDOW_S, clock: Callable[[], float] = time.time,
                 engine: Engine | None = None) -> None:
        self.pair_limit = pair_limit
        self.address_limit = address_limit
        self.window_s = window_s
        self.clock = clock
        self.engine = engine

    def using(self, engine: Engine) -> LoginLimiter:
        """This limiter, counting in `engine` unless it was given a database already."""
        if self.engine is None:
            self.engine = engine
        return self

    def _db(self) -> Engine:
        if self.engine is None:
            raise MltrailException("This LoginLimiter has no database: pass engine=, or use it through AuthStore, "
                                   "which gives it the tracking database.")
        return self.engine

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def check(self, username: str, address: str | None) -> int:
        """Raise `TooManyAttempts` if `username` may not try a password from `address` now; else return
        how many recent failures that pair has (a success need only clear them when there are some)."""
        now = self._now_ms()
        where = _where(address)
        window = int(self.window_s * 1000)
        mine = _f.c.who == _who(username)
        pair_count, pair_oldest, address_count, address_oldest = self._counts(mine, where, now - window)
        for count, oldest, limit in ((pair_count, pair_oldest, self.pair_limit),
                                     (address_count, address_oldest, self.address_limit)):
            if count >= limit and oldest is not None:
                wait = max(1, math.ceil((oldest + window - now) / 1000))
                raise TooManyAttempts(
                    f"Too many failed logins for user {username!r} from {address or 'unknown'}: {count} in the last "
                    f"{int(self.window_s)} s (the limit is {limit}). Try again in {wait} s.", retry_after=wait)
        return pair_count

    def _counts(self, mine: Any, where: str, since: int) -> tuple[int, int | None, int, int | None]:
        """(the pair's failures, its oldest, the address's failures, its oldest) since `since` (ms)."""
        query = select(func.count(case((mine, 1))), func.min(case((mine, _f.c.at))), func.count(), func.min(_f.c.at)
                       ).where(and_(_f.c.address == where, _f.c.at > since))
        with eng.read(self._db()) as conn:
            pair_count, pair_oldest, address_count, address_oldest = conn.execute(query).one()
        return int(pair_count), pair_oldest, int(address_count), address_oldest

    def failed(self, username: str, address: str | None) -> None:
        """Count one failure (and drop failures older than the window, which count no more)."""
        now = self._now_ms()

        def record(conn: Any) -> None:
            conn.execute(delete(_f).where(_f.c.at <= now - int(self.window_s * 1000)))
            conn.execute(insert(_f).values(who=_who(username), address=_where(address), at=now))

        eng.run_write(self._db(), record)

    def succeeded(self, username: str, address: str | None) -> None:
        """A correct password clears that user's failures from that address (not the address's total)."""
        mine = and_(_f.c.who == _who(username), _f.c.address == _where(address))
        eng.run_write(self._db(), lambda conn: conn.execute(update(_f).where(mine).values(who=None)),
                      idempotent=True)
