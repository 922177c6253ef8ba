"""Signed session cookies: who signed in, when, and the session's CSRF nonce.

The value is `<payload>.<signature>`: the payload is base64url JSON of the user id, the issue time
(ms), a random CSRF nonce and a fingerprint of the user's credentials; the signature an
HMAC-SHA256 over it with the database's `session` secret, so every replica accepts every other's
cookies and nobody can forge one. A session ends after `LIFETIME_S`, when its user is deleted, or
when the user's password changes (the fingerprint no longer matches), so a reset logs every
browser out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from mltrail.server.auth.entities import User
from mltrail.server.auth.store import AuthStore

COOKIE = "mltrail_session"
LIFETIME_S = 12 * 3600
_SECRET_NAME = "session"


@dataclass(frozen=True)
class Session:
    """A valid session: its user, when it was issued (ms since the epoch), and its CSRF nonce."""

    user_id: int
    issued_at: int
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(store: AuthStore, data: str) -> str:
    return _b64(hmac.new(store.secret(_SECRET_NAME), data.encode("utf-8"), hashlib.sha256).digest())


def _fingerprint(store: AuthStore, credentials: str) -> str:
    """A keyed digest of the user's credentials stamp: it says nothing about them, but changes with them."""
    return _mac(store, "credentials:" + credentials)[:22]


def issue(store: AuthStore, user: User) -> str:
    """A new signed session value for `user` (the cookie's value)."""
    stamp = store.credentials_stamp(user.id)
    body = {"u": user.id, "t": int(time.time() * 1000), "c": secrets.token_urlsafe(24),
            "f": _fingerprint(store, stamp[1] if stamp else "")}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_mac(store, payload)}"


def read_with_user(store: AuthStore, value: str) -> tuple[Session, User] | None:
    """The session `value` carries and its user, or None when it is forged, malformed, expired or ended."""
    payload, dot, signature = value.partition(".")
    if not dot or not payload or not hmac.compare_digest(signature.encode(), _mac(store, payload).encode()):
        return None
    try:
        body = json.loads(_unb64(payload))
        session = Session(user_id=int(body["u"]), issued_at=int(body["t"]), csrf=str(body["c"]))
        fingerprint = str(body["f"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if not 0 <= int(time.time() * 1000) - session.issued_at < LIFETIME_S * 1000:
        return None
    stamp = store.credentials_stamp(session.user_id)
    if stamp is None or not hmac.compare_digest(fingerprint.encode(), _fingerprint(store, stamp[1]).encode()):
        return None
    return session, stamp[0]


def read(store: AuthStore, value: str) -> Session | None:
    """The session `value` carries, or None when it is forged, malformed, expired or ended."""
    found = read_with_user(store, value)
    return None if found is None else found[0]
