"""`AuthMiddleware`: finds who is calling and puts it in `scope["state"]["identity"]`.

In order: an identity header from a trusted reverse proxy (`--auth-proxy-header`, honoured only
when the peer address is in `--trusted-proxies`), `Authorization: Basic` (username and password),
`Authorization: Bearer` (an API token), then the session cookie. Credentials that are given but
wrong are answered 401 here (with MLflow's words and `WWW-Authenticate: Basic`); too many wrong
passwords from one place, 429 with `Retry-After`. A request with no credentials goes on with
identity None: whether its route needs one is the rule table's decision (`authorize.py`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

import anyio.to_thread
import orjson

from mltrail.errors import (
    REQUEST_LIMIT_EXCEEDED,
    UNAUTHENTICATED,
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from mltrail.server.auth import sessions
from mltrail.server.auth.entities import Identity, User
from mltrail.server.auth.ratelimit import TooManyAttempts
from mltrail.server.auth.store import AuthStore, acting_as, check_username

logger = logging.getLogger("mltrail.server.auth")
NOT_AUTHENTICATED = ("You are not authenticated. Please see "
                     "https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow "
                     "on how to authenticate.")
ANONYMOUS = "anonymous"
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadCredentials(Exception):
    """Credentials were sent and are wrong (answered 401; `reason` says which part)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_networks(entries: Iterable[str]) -> list[IpNetwork]:
    """`--trusted-proxies` entries (addresses or CIDR networks) as networks; a bad one is named."""
    networks: list[IpNetwork] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as e:
            raise InvalidParameterValue(
                f"Invalid --trusted-proxies entry {entry!r}: expected an IP address or a CIDR network "
                "such as 10.0.0.0/8.") from e
    return networks


def in_networks(address: str | None, networks: list[IpNetwork]) -> bool:
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cookie_value(scope: dict[str, Any], name: str) -> str | None:
    """The value of cookie `name` in the request's Cookie header(s)."""
    for key, value in scope.get("headers") or ():
        if key != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            k, eq, v = part.strip().partition("=")
            if eq and k == name:
                return v.strip().strip('"')
    return None


class AuthMiddleware:
    """Pure ASGI middleware: authenticate every HTTP request (see the module docstring)."""

    def __init__(self, app: Any, store: AuthStore, proxy_header: str | None = None,
                 trusted_proxies: Iterable[str] = ()) -> None:
        self.app = app
        self.store = store
        self.proxy_header = proxy_header.lower().encode("latin-1") if proxy_header else None
        self.proxy_header_name = proxy_header or ""
        self.trusted = parse_networks(trusted_proxies)

    # ------------------------------------------------------------------ who is calling
    def client_address(self, scope: dict[str, Any]) -> str | None:
        """The caller's address: the peer's, or the one a trusted proxy saw (last X-Forwarded-For hop)."""
        client = scope.get("client")
        peer = str(client[0]) if client else None
        if in_networks(peer, self.trusted):
            forwarded = _header(scope, b"x-forwarded-for")
            if forwarded and forwarded.split(",")[-1].strip():
                return forwarded.split(",")[-1].strip()
        return peer

    @staticmethod
    def _basic_pair(value: str) -> tuple[str, str]:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as e:
            raise BadCredentials("the Basic credentials are not base64 of 'username:password'") from e
        username, colon, password = decoded.partition(":")
        if not colon or not username:
            raise BadCredentials("the Basic credentials are not 'username:password'")
        return username, password

    def _basic(self, value: str, address: str | None) -> Identity:
        username, password = self._basic_pair(value)
        user = self.store.verify_password(username, password, address=address)
        if user is None:
            raise BadCredentials("wrong username or password")
        return Identity(user=user, via="password")

    def _bearer(self, value: str) -> Identity:
        user = self.store.verify_token(value.strip())
        if user is None:
            raise BadCredentials("the token is unknown, revoked or expired")
        return Identity(user=user, via="token")

    def _proxy_user(self, username: str, address: str | None) -> Identity:
        """The user a trusted proxy named, created on first sight (no password; audited)."""
        try:
            check_username(username)
        except InvalidParameterValue as e:
            raise BadCredentials(f"the {self.proxy_header_name} header names no valid user: {e.message}") from e
        try:
            return Identity(user=self.store.get_user(username), via="proxy")
        except ResourceDoesNotExist:
            pass
        try:
            with acting_as("proxy", address):
                user: User = self.store.create_user(username, None)
        except ResourceAlreadyExists:  # a concurrent first request created it
            user = self.store.get_user(username)
        return Identity(user=user, via="proxy")

    def remembered(self, scope: dict[str, Any]) -> Identity | None:
        """The identity of a request whose Authorization this process verified moments ago, without
        touching the database (so it runs on the event loop); None: `identify` must decide."""
        if self.proxy_header is not None and _header(scope, self.proxy_header) is not None:
            return None
        authorization = _header(scope, b"authorization")
        if authorization is None:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        user: User | None = None
        if scheme == "basic":
            try:
                user = self.store.remembered_password(*self._basic_pair(value))
            except BadCredentials:
                return None
            via = "password"
        elif scheme == "bearer":
            user, via = self.store.remembered_token(value.strip()), "token"
        return None if user is None else Identity(user=user, via=via)

    def identify(self, scope: dict[str, Any], address: str | None) -> tuple[Identity | None, Any]:
        """(identity, session) of a request; raises BadCredentials or TooManyAttempts. Blocking (database)."""
        if self.proxy_header is not None:
            named = _header(scope, self.proxy_header)
            if named is not None and named.strip():
                client = scope.get("client")
                if in_networks(str(client[0]) if client else None, self.trusted):
                    return self._proxy_user(named.strip(), address), None
                logger.warning("Ignored %s header from %s: not a trusted proxy (--trusted-proxies).",
                               self.proxy_header.decode(), client[0] if client else "an unknown peer")
        authorization = _header(scope, b"authorization")
        if authorization is not None:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() == "basic":
                return self._basic(value, address), None
            if scheme.lower() == "bearer":
                return self._bearer(value), None
            raise BadCredentials(f"the Authorization scheme {scheme!r} is not supported; expected Basic or Bearer")
        cookie = cookie_value(scope, sessions.COOKIE)
        if cookie:
            found = sessions.read_with_user(self.store, cookie)
            if found is not None:
                return Identity(user=found[1], via="session"), found[0]
        return None, None

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        address = self.client_address(scope)
        try:
            identity, session = self.remembered(scope), None
            if identity is None:  # database reads (and maybe an argon2 hash): off the event loop
                identity, session = await anyio.to_thread.run_sync(self.identify, scope, address)
        except BadCredentials as e:
            await self._refuse(scope, send, 401, UNAUTHENTICATED, f"{NOT_AUTHENTICATED} ({e.reason}.)",
                               [(b"www-authenticate", b'Basic realm="mltrail"')])
            return
        except TooManyAttempts as e:
            await self._refuse(scope, send, 429, REQUEST_LIMIT_EXCEEDED, e.message,
                               [(b"retry-after", str(e.retry_after).encode())])
            return
        state = scope.setdefault("state", {})
        state["identity"] = identity
        state["session"] = session
        with acting_as(identity.user.username if identity else ANONYMOUS, address):
            await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: dict[str, Any], send: Any, status: int, code: str, message: str,
                      headers: list[tuple[bytes, bytes]]) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = orjson.dumps({"error_code": code, "message": message})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *headers]})
        await send({"type": "http.response.body", "body": body})
