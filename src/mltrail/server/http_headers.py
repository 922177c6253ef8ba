"""CORS and security headers for the tracking server, with MLflow's options, defaults and answers.

- `--cors-allowed-origins`: cross-origin API calls are answered (preflights included) for the
  origins listed (exact, or fnmatch patterns such as `https://*.example.com`), and by default for
  `http://localhost`, `http://127.0.0.1` and `http://[::1]` on any port, as MLflow does. A
  state-changing API request (POST, PUT, PATCH, DELETE) from any other origin is refused with
  MLflow's 403 "Cross-origin request blocked": browsers send simple cross-site POSTs without a
  preflight, so only refusing them on the server keeps a hostile page from writing. `*` allows
  every origin, without credentials (a wildcard with credentials breaks the CORS spec).
- `--x-frame-options`: `SAMEORIGIN` by default, `DENY`, or `NONE` (no header); every answer also
  carries `X-Content-Type-Options: nosniff`.

Where we differ on purpose: a request whose Origin is the server's own (it equals the Host the
request was sent to, which the Host check already vetted) is same-origin, so our own UI works when
served on a real domain without listing itself in --cors-allowed-origins (MLflow refuses it).
"""

from __future__ import annotations

import fnmatch
from typing import Any
from urllib.parse import urlsplit

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from mltrail.server.middleware import HostCheckMiddleware, route_path
from mltrail.server.settings import ServerSettings

# MLflow's default: its own dev servers and notebooks on this machine, on any port
LOCALHOST_ORIGIN_REGEX = r"^http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?$"
_LOCALHOST_NAMES = ("localhost", "127.0.0.1", "::1")
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PATH_PREFIXES = ("/api/", "/ajax-api/")
CORS_BLOCKED_MSG = "Cross-origin request blocked"


def header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class OriginPolicy:
    """Which origins may make cross-origin API calls (MLflow's rules plus same-origin)."""

    def __init__(self, allowed: list[str] | None) -> None:
        self.allowed = allowed or []
        self.any = "*" in self.allowed
        self.exact = frozenset(o for o in self.allowed if "*" not in o)
        self.patterns = [o for o in self.allowed if "*" in o and o != "*"]

    def regex(self) -> str:
        """One regex for CORSMiddleware: localhost origins and the fnmatch patterns."""
        return "|".join([LOCALHOST_ORIGIN_REGEX, *(fnmatch.translate(p) for p in self.patterns)])

    def allows(self, origin: str, host: str) -> bool:
        if self.any or origin in self.exact:
            return True
        parts = urlsplit(origin)
        if parts.hostname in _LOCALHOST_NAMES:  # MLflow allows localhost origins on any scheme and port
            return True
        if host and parts.netloc.lower() == host.strip().lower():  # same origin as the request's target
            return True
        return any(fnmatch.fnmatchcase(origin, p) for p in self.patterns)


class CorsBlockingMiddleware:
    """Refuse state-changing API requests from origins the policy does not allow (MLflow's 403)."""

    def __init__(self, app: Any, policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (scope["type"] == "http" and scope["method"] in STATE_CHANGING_METHODS
                and route_path(scope).startswith(API_PATH_PREFIXES)):
            origin = header(scope, b"origin")
            if origin and not self.policy.allows(origin, header(scope, b"host")):
                body = CORS_BLOCKED_MSG.encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """`X-Content-Type-Options: nosniff` and `X-Frame-Options` (unless NONE) on every answer."""

    def __init__(self, app: Any, x_frame_options: str = "SAMEORIGIN") -> None:
        self.app = app
        self.extra = [(b"x-content-type-options", b"nosniff")]
        if x_frame_options.upper() != "NONE":
            self.extra.append((b"x-frame-options", x_frame_options.upper().encode()))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers") or ()}
                message["headers"] = [*(message.get("headers") or ()),
                                      *(kv for kv in self.extra if kv[0] not in names)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_middleware(settings: ServerSettings) -> list[Middleware]:
    """The stack, outermost first: headers, the Host check, CORS answers, CORS refusals."""
    stack = [Middleware(HostCheckMiddleware, allowed_hosts=settings.allowed_hosts)]
    if settings.disable_security_middleware:
        return stack  # resolved settings allow every host here
    policy = OriginPolicy(settings.cors_allowed_origins)
    if policy.any:  # MLflow: wildcard origins, no credentials, nothing refused
        cors = Middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=False, allow_methods=["*"],
                          allow_headers=["*"], expose_headers=["*"])
        return [Middleware(SecurityHeadersMiddleware, x_frame_options=settings.x_frame_options), *stack, cors]
    cors = Middleware(CORSMiddleware, allow_origins=sorted(policy.exact), allow_origin_regex=policy.regex(),
                      allow_credentials=True, allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"],
                      allow_headers=["*"], expose_headers=["*"])
    return [Middleware(SecurityHeadersMiddleware, x_frame_options=settings.x_frame_options), *stack, cors,
            Middleware(CorsBlockingMiddleware, policy=policy)]
