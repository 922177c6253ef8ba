"""MLflow 3.17's auth JSON for our auth entities (users, roles, grants), and ours for tokens and audit.

The shapes follow `mlflow/server/auth/entities.py` (`User.to_json`, `Role.to_json`, ...) and the
handlers in `mlflow/server/auth/__init__.py` that build a response by hand (`list_users`,
`get_current_user`, `list_user_permissions`), so `AuthServiceClient.from_json` reads ours unchanged.
A password hash never leaves the server: MLflow's `User.to_json` leaves it out too.
"""

from __future__ import annotations

from typing import Any

from mltrail.server.auth.entities import (
    AuditEvent,
    Grant,
    Role,
    RolePermission,
    Token,
    User,
    UserRoleAssignment,
)

# MLflow keeps a user's direct grants in a per-user role it names `__user_<id>__` (its "synthetic"
# role); `users/permissions/list` rows carry that name so MLflow's frontend files them under
# "Direct permissions". Our direct grants live in their own table, so their rows carry the same
# name and no role id.
DIRECT_GRANT_ROLE = "__user_{user_id}__"


def user_to_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "is_admin": user.is_admin}


def role_permission_to_json(rp: RolePermission) -> dict[str, Any]:
    return {"id": rp.id, "role_id": rp.role_id, "resource_type": rp.resource_type,
            "resource_pattern": rp.resource_pattern, "permission": rp.permission}


def role_to_json(role: Role) -> dict[str, Any]:
    return {"id": role.id, "name": role.name, "workspace": role.workspace, "description": role.description,
            "permissions": [role_permission_to_json(p) for p in role.permissions]}


def assignment_to_json(assignment: UserRoleAssignment) -> dict[str, Any]:
    return {"id": assignment.id, "user_id": assignment.user_id, "role_id": assignment.role_id}


def user_with_roles_to_json(user: User, roles: list[Role]) -> dict[str, Any]:
    """One entry of `users/list`: the user and the roles the caller may see."""
    return {**user_to_json(user), "roles": [role_to_json(r) for r in roles]}


def permission_rows(user: User, grants: list[Grant], roles: list[Role]) -> list[dict[str, Any]]:
    """`users/permissions/list` rows: the user's direct grants, then every permission of every role."""
    direct = [{"role_id": None, "role_name": DIRECT_GRANT_ROLE.format(user_id=user.id), "workspace": "default",
               "resource_type": g.resource_type, "resource_pattern": g.resource_id, "permission": g.permission}
              for g in grants]
    from_roles = [{"role_id": role.id, "role_name": role.name, "workspace": role.workspace,
                   "resource_type": rp.resource_type, "resource_pattern": rp.resource_pattern,
                   "permission": rp.permission}
                  for role in roles for rp in role.permissions]
    return direct + from_roles


def token_to_json(token: Token, username: str) -> dict[str, Any]:
    """A token's record (never its secret, which only the create answer carries, once)."""
    return {"id": token.id, "name": token.name, "user_id": token.user_id, "username": username,
            "created_at": token.created_at, "expires_at": token.expires_at, "last_used_at": token.last_used_at}


def audit_event_to_json(event: AuditEvent) -> dict[str, Any]:
    return {"id": event.id, "at": event.at, "actor": event.actor, "action": event.action, "target": event.target,
            "details": event.details, "address": event.address}


__all__ = ["DIRECT_GRANT_ROLE", "assignment_to_json", "audit_event_to_json", "permission_rows",
           "role_permission_to_json", "role_to_json", "token_to_json", "user_to_json", "user_with_roles_to_json"]
