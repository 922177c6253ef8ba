"""CSRF protection for requests whose identity came from the UI's session cookie.

A browser attaches the session cookie to any request it sends to this server, including one a
page on another site makes it send. So every unsafe request (POST/PUT/PATCH/DELETE) signed in
through the cookie must carry the session's CSRF nonce (the `X-CSRF-Token` header, or a
`csrf_token` form field for plain HTML forms) and must not come from another site, judged by
the browser's own `Sec-Fetch-Site` header and by `Origin`. Requests that authenticate with an
`Authorization` header (basic auth, tokens) need none of this: a browser never adds that header
on its own. The login form has no session yet; it gets the cross-site check alone (so another
site cannot sign a visitor in as someone else). The middleware also refuses the sessions signed out
(`EndedSessions`, in the database), so a logged-out cookie, replayed to any replica, signs nobody in.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio.to_thread
import orjson
from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from mltrail.errors import PERMISSION_DENIED
from mltrail.server.auth.middleware import in_networks, parse_networks
from mltrail.server.auth.sessions import LIFETIME_S
from mltrail.store.sql import engine as eng
from mltrail.store.sql.replica_schema import auth_ended_sessions

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
HEADER = "x-csrf-token"
FORM_FIELD = "csrf_token"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 1024 * 1024  # our forms are a few hundred bytes; a bigger "form" is not one of ours
# Sec-Fetch-Site values a state change may carry: the page itself, or the user typing a URL.
# "same-site" is refused too: a sibling subdomain is another application the cookie must not serve.
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
END_SESSION = "end_session"  # the scope-state key of the hook that signs a session out

Scope = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


def header(scope: Scope, name: str) -> str | None:
    """The first value of header `name` (lower case) in an ASGI scope."""
    key = name.encode("latin-1")
    for k, v in scope.get("headers") or ():
        if k == key:
            return str(v.decode("latin-1"))
    return None


def from_trusted_proxy(scope: Scope, trusted_proxies: Iterable[str]) -> bool:
    """Whether the peer address lies in `trusted_proxies` (addresses or CIDR networks)."""
    client = scope.get("client")
    return in_networks(str(client[0]) if client else None, parse_networks(trusted_proxies))


def _forwarded(scope: Scope, name: str, trusted_proxies: Iterable[str]) -> str | None:
    """A proxy's `X-Forwarded-*` value (its first hop), only when the peer is a trusted proxy."""
    value = header(scope, name)
    if not value or not from_trusted_proxy(scope, trusted_proxies):
        return None
    return value.split(",")[0].strip() or None


def is_https(scope: Scope, trusted_proxies: Iterable[str]) -> bool:
    """Whether the browser reached us over TLS: our own scheme, or a trusted proxy's X-Forwarded-Proto."""
    proto = _forwarded(scope, "x-forwarded-proto", trusted_proxies)
    return (proto or scope.get("scheme", "http")).lower() in ("https", "wss")


def own_host(scope: Scope, trusted_proxies: Iterable[str]) -> str:
    """The host (and port) the browser addressed: `Host`, or a trusted proxy's X-Forwarded-Host."""
    host = _forwarded(scope, "x-forwarded-host", trusted_proxies) or header(scope, "host") or ""
    return host.strip().lower()


def cross_site_reason(scope: Scope, trusted_proxies: Iterable[str]) -> str | None:
    """Why this request comes from another site (None when nothing says it does).

    Non-browser clients send neither header, and pass: they cannot be made to carry a victim's cookie.
    """
    site = header(scope, "sec-fetch-site")
    if site is not None and site.strip().lower() not in ALLOWED_FETCH_SITES:
        return f"the browser marked it Sec-Fetch-Site: {site!r} (expected 'same-origin')"
    origin = header(scope, "origin")
    if origin is None:
        return None
    # Compare host and port only: a TLS-terminating proxy may hide the scheme the browser used.
    origin_host = urlsplit(origin.strip()).netloc.lower() if "://" in origin else ""
    host = own_host(scope, trusted_proxies)
    if not origin_host or origin_host != host:
        return f"its Origin {origin!r} is not this server's own (host {host!r})"
    return None


def csrf_token_of(scope: Scope) -> str | None:
    """The session's CSRF nonce for a request signed in by the session cookie (for the pages' meta tag)."""
    state = scope.get("state")
    session = state.get("session") if isinstance(state, dict) else None
    value = getattr(session, "csrf", None)
    return value if isinstance(value, str) else None


def _refusal(message: str) -> dict[str, Any]:
    return {"error_code": PERMISSION_DENIED, "message": message}


async def _send_json(send: Send, status: int, obj: dict[str, Any]) -> None:
    body = orjson.dumps(obj)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole request body, and whether it stayed within `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already-read body to the app once, then defers to the real one."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: dict[str, Any] = await receive()
        return message

    return replay


class EndedSessions:
    """Sessions signed out: a logout must end the session, not just drop the cookie, on every replica.

    Session cookies are signed, not stored, so nothing else can revoke one before it expires; this
    keeps the digests of ended sessions' nonces in the tracking database (`auth_ended_sessions`)
    until their cookies would have expired anyway, so a logged-out cookie replayed to any replica
    signs nobody in. (A password change ends a user's sessions everywhere by itself.)
    """

    def __init__(self, engine: Engine, lifetime_s: float = LIFETIME_S, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.lifetime_s = lifetime_s
        self.clock = clock  # wall-clock seconds: the expiry is compared across replicas

    def end(self, nonce: str) -> None:
        """Record the session as ended (and forget those whose cookies have expired meanwhile)."""
        now = int(self.clock() * 1000)
        digest = _nonce_digest(nonce)
        ended = auth_ended_sessions

        def record(conn: Connection) -> None:
            conn.execute(delete(ended).where(ended.c.expires_at <= now))
            if conn.execute(select(ended.c.nonce_hash).where(ended.c.nonce_hash == digest)).first() is None:
                conn.execute(insert(ended).values(nonce_hash=digest, expires_at=now + int(self.lifetime_s * 1000)))

        try:
            eng.run_write(self.engine, record)
        except IntegrityError:  # the same session signed out at once through another replica: ended
            pass

    def is_ended(self, nonce: str) -> bool:
        """Whether the session with this nonce was signed out (a database read: call it off the event loop)."""
        ended = auth_ended_sessions
        with eng.read(self.engine) as conn:
            found = conn.execute(select(ended.c.expires_at).where(ended.c.nonce_hash == _nonce_digest(nonce))).first()
        return found is not None and int(found.expires_at) > int(self.clock() * 1000)


def _nonce_digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8", "surrogatepass")).hexdigest()


def end_session(scope: Scope) -> None:
    """End the session this request came with (the logout page calls it; the middleware put the hook)."""
    state = scope.get("state")
    hook = state.get(END_SESSION) if isinstance(state, dict) else None
    nonce = csrf_token_of(scope)
    if callable(hook) and nonce:
        hook(nonce)


class CsrfMiddleware:
    """Refuse unsafe session-cookie requests without the session's CSRF nonce, or from another site.

    Runs after the authentication middleware, which puts the `Identity` and, for a session cookie,
    the `sessions.Session` (holding the nonce) in `scope["state"]`.
    """

    def __init__(self, app: Any, engine: Engine, trusted_proxies: Iterable[str] = (),
                 login_paths: Iterable[str] = ("/login",)) -> None:
        self.app = app
        self.trusted_proxies = list(trusted_proxies)
        self.login_paths = frozenset(login_paths)
        self.ended = EndedSessions(engine)  # in the tracking database: a logout holds on every replica

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["auth_on"] = True  # the header offers "Log in" to anonymous visitors
        state[END_SESSION] = self.ended.end
        nonce = csrf_token_of(scope)
        if nonce is not None and await anyio.to_thread.run_sync(self.ended.is_ended, nonce):  # signed out
            state["identity"] = state["session"] = None
            nonce = None
        identity = state.get("identity")
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        via_session = identity is not None and getattr(identity, "via", None) == "session"
        path = str(scope.get("path", ""))
        on_login = path in self.login_paths or path.endswith("/login")  # under a --static-prefix too
        if not via_session and not on_login:
            await self.app(scope, receive, send)
            return
        reason = cross_site_reason(scope, self.trusted_proxies)
        if reason is not None:
            await _send_json(send, 403, _refusal(
                f"Permission denied: cross-site request refused ({scope['method']} {scope.get('path')}): {reason}. "
                "State changes through the session cookie must come from this server's own pages."))
            return
        if not via_session:
            await self.app(scope, receive, send)
            return
        given = header(scope, HEADER)
        if not given and (header(scope, "content-type") or "").split(";")[0].strip().lower() == FORM_TYPE:
            body, complete = await _read_body(receive, MAX_FORM_BYTES)
            if not complete:
                await _send_json(send, 413, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message":
                                             f"Form body over {MAX_FORM_BYTES} bytes refused."})
                return
            receive = _replay(body, receive)
            given = next(iter(parse_qs(body.decode("latin-1")).get(FORM_FIELD) or []), None)
        if not given:
            await _send_json(send, 403, _refusal(
                f"Permission denied: CSRF token missing on {scope['method']} {scope.get('path')}. A request "
                "signed in by the session cookie must send the session's token in the X-CSRF-Token header "
                "(or a csrf_token form field); the pages put it in <meta name=\"csrf-token\">. Received "
                "neither. API clients should authenticate with a token or basic auth instead."))
            return
        if nonce is None or not hmac.compare_digest(given.encode("utf-8", "replace"), nonce.encode()):
            await _send_json(send, 403, _refusal(
                f"Permission denied: CSRF token mismatch on {scope['method']} {scope.get('path')}: the "
                "X-CSRF-Token (or csrf_token field) received is not this session's. Reload the page and retry."))
            return
        await self.app(scope, receive, send)


__all__ = ["CsrfMiddleware", "EndedSessions", "cross_site_reason", "csrf_token_of", "end_session", "from_trusted_proxy", "is_https", "own_host"]
