"""The auth store's plain data: users, tokens, grants, roles, audit events and who is calling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class User:
    """An account; `has_password` is False for users a trusted proxy header created."""

    id: int
    username: str
    is_admin: bool
    created_at: int
    has_password: bool


@dataclass(frozen=True)
class Token:
    """An API token's record; its secret is shown once at creation and stored only as a hash."""

    id: int
    user_id: int
    name: str
    created_at: int
    expires_at: int | None
    last_used_at: int | None


@dataclass(frozen=True)
class Grant:
    """A permission given to one user directly on one resource."""

    user_id: int
    username: str
    resource_type: str
    resource_id: str
    permission: str


@dataclass(frozen=True)
class RolePermission:
    """One line of a role: a permission on the resources whose id matches a pattern (`*` = all)."""

    id: int
    role_id: int
    resource_type: str
    resource_pattern: str
    permission: str


@dataclass(frozen=True)
class Role:
    """A named set of permissions, assigned to users."""

    id: int
    name: str
    workspace: str
    description: str | None
    permissions: list[RolePermission] = field(default_factory=list)


@dataclass(frozen=True)
class UserRoleAssignment:
    """A role given to a user."""

    id: int
    user_id: int
    role_id: int


@dataclass(frozen=True)
class AuditEvent:
    """One row of the audit table: who did what to what, when and from where."""

    id: int
    at: int
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    address: str | None


@dataclass(frozen=True)
class Identity:
    """Who is calling and how they proved it: "password", "token", "session" or "proxy"."""

    user: User
    via: str


@dataclass(frozen=True)
class GrantSet:
    """One user's direct grants ((resource_type, resource_id) -> permission) and role patterns
    ((resource_type, fnmatch pattern, permission))."""

    direct: dict[tuple[str, str], str]
    patterns: list[tuple[str, str, str]]
