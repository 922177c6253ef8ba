"""Accounts and permissions for a shared tracking server: who is calling, and what they may do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mltrail.server.auth.entities import Identity


def identity_of(request: Any) -> Identity | None:
    """Who the authentication middleware found behind `request` (a Starlette request or an ASGI scope);
    None when no credentials came (or auth is off)."""
    scope = request if isinstance(request, dict) else request.scope
    state = scope.get("state") or {}
    found: Identity | None = state.get("identity")
    return found


__all__ = ["identity_of"]
