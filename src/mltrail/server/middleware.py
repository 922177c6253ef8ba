"""ASGI middleware: the Host header allowlist (a guard against DNS rebinding).

A browser page on an attacker's domain that rebinds its name to 127.0.0.1 still sends its own
name in the Host header; answering only known host names keeps such pages out of a server
that listens on localhost.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from mltrail.errors import PERMISSION_DENIED


def host_name(host: str) -> str:
    """The host part of a Host header value: `[::1]:5000` -> `[::1]`, `a.b:80` -> `a.b`."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def route_path(scope: dict[str, Any]) -> str:
    """The path below the app's mount point (a `--static-prefix` stripped)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class HostCheckMiddleware:
    """Answer 403 unless the Host header matches the allowlist (`*`, exact names, `*.suffix`)."""

    def __init__(self, app: Any, allowed_hosts: Iterable[str] | None = None) -> None:
        self.app = app
        allowed = [h.strip().lower() for h in (allowed_hosts or ["*"])]
        self.allow_all = "*" in allowed
        self.exact = {h for h in allowed if not h.startswith("*.")}
        self.exact |= {host_name(h) for h in self.exact if ":" in h and not h.startswith("[")}
        self.suffixes = tuple(h[1:] for h in allowed if h.startswith("*."))

    def allowed(self, host: str | None) -> bool:
        if self.allow_all:
            return True
        if not host:
            return False
        full = host.strip().lower()
        name = host_name(full)
        if full in self.exact or name in self.exact:
            return True
        if name.startswith("[") and name[1:-1] in self.exact:
            return True
        return bool(self.suffixes) and name.endswith(self.suffixes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and not self.allow_all:
            host = None
            for k, v in scope.get("headers") or ():
                if k == b"host":
                    host = v.decode("latin-1")
                    break
            if not self.allowed(host):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = orjson.dumps({"error_code": PERMISSION_DENIED,
                                     "message": f"Host {host!r} is not allowed; start the server with "
                                                "--allowed-hosts to accept it."})
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
