"""The grant half of the account store: direct grants on experiments and registered models, roles
with their resource patterns and members, and each user's effective grants (remembered briefly)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mltrail.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from mltrail.server.auth.entities import Grant, GrantSet, Role, RolePermission, UserRoleAssignment
from mltrail.server.auth.levels import check_resource_type, level
from mltrail.server.auth.store_base import StoreBase, new_id
from mltrail.store.sql import auth_schema as a
from mltrail.store.sql import engine as eng

GRANTS_MEMO_S = 5.0  # another replica's grant change reaches this process within this long


def role_permission_of(row: Any) -> RolePermission:
    return RolePermission(id=row.id, role_id=row.role_id, resource_type=row.resource_type,
                          resource_pattern=row.resource_pattern, permission=row.permission)


class GrantStore(StoreBase):
    """Direct grants, roles and effective grants over the tracking database."""

    # ------------------------------------------------------------------ direct grants
    def set_permission(self, username: str, resource_type: str, resource_id: str, permission: str) -> Grant:
        """Give `username` `permission` on one resource, replacing what they had there."""
        check_resource_type(resource_type)
        level(permission)
        resource_id = str(resource_id)

        def upsert(conn: Connection) -> Grant:
            user = self._user_row(conn, username)
            where = and_(a.auth_permissions.c.user_id == user.id, a.auth_permissions.c.resource_type == resource_type,
                         a.auth_permissions.c.resource_id == resource_id)
            if not conn.execute(update(a.auth_permissions).where(where).values(permission=permission)).rowcount:
                conn.execute(insert(a.auth_permissions).values(user_id=user.id, resource_type=resource_type,
                                                               resource_id=resource_id, permission=permission))
            self._audit_row(conn, "grant", username, {"resource_type": resource_type, "resource_id": resource_id,
                                                      "permission": permission})
            return Grant(user_id=int(user.id), username=username, resource_type=resource_type,
                         resource_id=resource_id, permission=permission)

        try:
            grant = self._write(upsert)
        except IntegrityError:  # a concurrent first grant on PostgreSQL: the row exists now, update it
            grant = self._write(upsert)
        self._forget_grants()
        return grant

    def delete_permission(self, username: str, resource_type: str, resource_id: str) -> None:
        resource_id = str(resource_id)

        def remove(conn: Connection) -> None:
            user = self._user_row(conn, username)
            gone = conn.execute(delete(a.auth_permissions).where(and_(
                a.auth_permissions.c.user_id == user.id, a.auth_permissions.c.resource_type == resource_type,
                a.auth_permissions.c.resource_id == resource_id))).rowcount
            if not gone:
                raise ResourceDoesNotExist(self._no_grant(username, resource_type, resource_id))
            self._audit_row(conn, "revoke", username, {"resource_type": resource_type, "resource_id": resource_id})

        self._write(remove)
        self._forget_grants()

    @staticmethod
    def _no_grant(username: str, resource_type: str, resource_id: str) -> str:
        return (f"Permission for user={username} on resource_type={resource_type}, "
                f"resource_id={resource_id} not found.")

    def get_permission(self, username: str, resource_type: str, resource_id: str) -> Grant:
        grants = self.list_permissions(username, resource_type, str(resource_id))
        if not grants:
            with eng.read(self.engine) as conn:
                self._user_row(conn, username)  # an unknown user is named as such
            raise ResourceDoesNotExist(self._no_grant(username, resource_type, str(resource_id)))
        return grants[0]

    def list_permissions(self, username: str | None = None, resource_type: str | None = None,
                         resource_id: str | None = None) -> list[Grant]:
        p, u = a.auth_permissions, a.auth_users
        query = select(p, u.c.username).join(u, u.c.id == p.c.user_id)
        if username is not None:
            query = query.where(u.c.username == username)
        if resource_type is not None:
            query = query.where(p.c.resource_type == resource_type)
        if resource_id is not None:
            query = query.where(p.c.resource_id == str(resource_id))
        with eng.read(self.engine) as conn:
            rows = conn.execute(query.order_by(u.c.username, p.c.resource_type, p.c.resource_id)).all()
        return [Grant(user_id=r.user_id, username=r.username, resource_type=r.resource_type,
                      resource_id=r.resource_id, permission=r.permission) for r in rows]

    def rename_resource(self, resource_type: str, old_id: str, new_id: str) -> None:
        """Move the grants on `old_id` to `new_id` (a renamed registered model keeps who may use it)."""
        p = a.auth_permissions

        def move(conn: Connection) -> None:
            # grants left on the new name by a deleted resource of that name must not apply to this one
            conn.execute(delete(p).where(and_(p.c.resource_type == resource_type, p.c.resource_id == str(new_id))))
            moved = conn.execute(update(p).where(and_(p.c.resource_type == resource_type,
                                                      p.c.resource_id == str(old_id))).values(resource_id=str(new_id)))
            if moved.rowcount:
                self._audit_row(conn, "grants_move", f"{resource_type}:{old_id}",
                                {"resource_type": resource_type, "from": str(old_id), "to": str(new_id)})

        self._write(move)
        self._forget_grants()

    def forget_resource(self, resource_type: str, resource_id: str) -> None:
        """Drop every direct grant on a deleted resource, so a new one with the same id starts clean."""
        p = a.auth_permissions

        def remove(conn: Connection) -> None:
            gone = conn.execute(delete(p).where(and_(p.c.resource_type == resource_type,
                                                     p.c.resource_id == str(resource_id)))).rowcount
            if gone:
                self._audit_row(conn, "grants_drop", f"{resource_type}:{resource_id}", {"grants": gone})

        self._write(remove)
        self._forget_grants()

    # ------------------------------------------------------------------ roles
    def _role_row(self, conn: Connection, role_id: int) -> Any:
        row = conn.execute(select(a.auth_roles).where(a.auth_roles.c.id == role_id)).first()
        if row is None:
            raise ResourceDoesNotExist(f"Role with id={role_id} not found")
        return row

    def _roles(self, conn: Connection, rows: list[Any]) -> list[Role]:
        ids = [r.id for r in rows]
        perms: dict[int, list[RolePermission]] = {i: [] for i in ids}
        if ids:
            for p in conn.execute(select(a.auth_role_permissions).where(a.auth_role_permissions.c.role_id.in_(ids))
                                  .order_by(a.auth_role_permissions.c.id)):
                perms[p.role_id].append(role_permission_of(p))
        return [Role(id=r.id, name=r.name, workspace=r.workspace, description=r.description,
                     permissions=perms[r.id]) for r in rows]

    def create_role(self, name: str, workspace: str = "default", description: str | None = None) -> Role:
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameterValue("Role name cannot be empty.")

        def create(conn: Connection) -> Role:
            if conn.execute(select(a.auth_roles.c.id).where(and_(a.auth_roles.c.workspace == workspace,
                                                                 a.auth_roles.c.name == name))).first():
                raise ResourceAlreadyExists(f"Role (name={name}, workspace={workspace}) already exists.")
            rid = new_id(conn.execute(insert(a.auth_roles).values(name=name, workspace=workspace,
                                                                    description=description)))
            self._audit_row(conn, "role_create", f"role:{rid}", {"name": name, "workspace": workspace})
            return Role(id=int(rid), name=name, workspace=workspace, description=description, permissions=[])

        try:
            return self._write(create)
        except IntegrityError as e:
            raise ResourceAlreadyExists(f"Role (name={name}, workspace={workspace}) already exists.") from e

    def get_role(self, role_id: int) -> Role:
        with eng.read(self.engine) as conn:
            return self._roles(conn, [self._role_row(conn, role_id)])[0]

    def list_roles(self, workspace: str | None = None) -> list[Role]:
        query = select(a.auth_roles).order_by(a.auth_roles.c.workspace, a.auth_roles.c.name)
        if workspace is not None:
            query = query.where(a.auth_roles.c.workspace == workspace)
        with eng.read(self.engine) as conn:
            return self._roles(conn, list(conn.execute(query).all()))

    def update_role(self, role_id: int, name: str | None = None, description: str | None = None) -> Role:
        def change(conn: Connection) -> None:
            row = self._role_row(conn, role_id)
            values: dict[str, Any] = {}
            if name is not None and name != row.name:
                if not name.strip():
                    raise InvalidParameterValue("Role name cannot be empty.")
                if conn.execute(select(a.auth_roles.c.id).where(and_(a.auth_roles.c.workspace == row.workspace,
                                                                     a.auth_roles.c.name == name))).first():
                    raise ResourceAlreadyExists(f"Role with name={name} already exists in workspace={row.workspace}")
                values["name"] = name
            if description is not None:
                values["description"] = description
            if values:
                conn.execute(update(a.auth_roles).where(a.auth_roles.c.id == role_id).values(**values))
                self._audit_row(conn, "role_update", f"role:{role_id}", values)

        self._write(change)
        return self.get_role(role_id)

    def delete_role(self, role_id: int) -> None:
        def remove(conn: Connection) -> None:
            row = self._role_row(conn, role_id)
            for table in (a.auth_role_permissions, a.auth_user_roles):
                conn.execute(delete(table).where(table.c.role_id == role_id))
            conn.execute(delete(a.auth_roles).where(a.auth_roles.c.id == role_id))
            self._audit_row(conn, "role_delete", f"role:{role_id}", {"name": row.name})

        self._write(remove)
        self._forget_grants()

    def add_role_permission(self, role_id: int, resource_type: str, resource_pattern: str,
                            permission: str) -> RolePermission:
        """Add to a role `permission` on the resources whose id matches `resource_pattern` (fnmatch, `*` = all)."""
        check_resource_type(resource_type)
        level(permission)
        if not isinstance(resource_pattern, str) or not resource_pattern:
            raise InvalidParameterValue("resource_pattern cannot be empty: give an id, a pattern such as "
                                        "'team-*', or '*' for every resource of the type.")
        rp = a.auth_role_permissions

        def add(conn: Connection) -> RolePermission:
            self._role_row(conn, role_id)
            if conn.execute(select(rp.c.id).where(and_(rp.c.role_id == role_id, rp.c.resource_type == resource_type,
                                                       rp.c.resource_pattern == resource_pattern))).first():
                raise ResourceAlreadyExists(
                    f"Role permission (role_id={role_id}, resource_type={resource_type}, "
                    f"resource_pattern={resource_pattern}) already exists.")
            pid = new_id(conn.execute(insert(rp).values(role_id=role_id, resource_type=resource_type,
                                                 resource_pattern=resource_pattern, permission=permission)))
            self._audit_row(conn, "role_grant", f"role:{role_id}", {
                "resource_type": resource_type, "resource_pattern": resource_pattern, "permission": permission})
            return RolePermission(id=int(pid), role_id=role_id, resource_type=resource_type,
                                  resource_pattern=resource_pattern, permission=permission)

        created = self._write(add)
        self._forget_grants()
        return created

    def _role_permission_row(self, conn: Connection, role_permission_id: int) -> Any:
        row = conn.execute(select(a.auth_role_permissions)
                           .where(a.auth_role_permissions.c.id == role_permission_id)).first()
        if row is None:
            raise ResourceDoesNotExist(f"Role permission with id={role_permission_id} not found")
        return row

    def remove_role_permission(self, role_permission_id: int) -> None:
        def remove(conn: Connection) -> None:
            row = self._role_permission_row(conn, role_permission_id)
            conn.execute(delete(a.auth_role_permissions).where(a.auth_role_permissions.c.id == role_permission_id))
            self._audit_row(conn, "role_revoke", f"role:{row.role_id}", {
                "resource_type": row.resource_type, "resource_pattern": row.resource_pattern})

        self._write(remove)
        self._forget_grants()

    def update_role_permission(self, role_permission_id: int, permission: str) -> RolePermission:
        level(permission)

        def change(conn: Connection) -> RolePermission:
            row = self._role_permission_row(conn, role_permission_id)
            conn.execute(update(a.auth_role_permissions).where(a.auth_role_permissions.c.id == role_permission_id)
                         .values(permission=permission))
            self._audit_row(conn, "role_grant", f"role:{row.role_id}", {
                "resource_type": row.resource_type, "resource_pattern": row.resource_pattern,
                "permission": permission})
            return RolePermission(id=row.id, role_id=row.role_id, resource_type=row.resource_type,
                                  resource_pattern=row.resource_pattern, permission=permission)

        changed = self._write(change)
        self._forget_grants()
        return changed

    def list_role_permissions(self, role_id: int) -> list[RolePermission]:
        return self.get_role(role_id).permissions

    def assign_role(self, username: str, role_id: int) -> UserRoleAssignment:
        ur = a.auth_user_roles

        def assign(conn: Connection) -> UserRoleAssignment:
            user = self._user_row(conn, username)
            self._role_row(conn, role_id)
            if conn.execute(select(ur.c.id).where(and_(ur.c.user_id == user.id, ur.c.role_id == role_id))).first():
                raise ResourceAlreadyExists(
                    f"User role assignment (user_id={user.id}, role_id={role_id}) already exists")
            aid = new_id(conn.execute(insert(ur).values(user_id=user.id, role_id=role_id)))
            self._audit_row(conn, "role_assign", username, {"role_id": role_id})
            return UserRoleAssignment(id=int(aid), user_id=int(user.id), role_id=role_id)

        try:
            assignment = self._write(assign)
        except IntegrityError as e:
            raise ResourceAlreadyExists(f"User role assignment (username={username}, role_id={role_id}) "
                                        "already exists") from e
        self._forget_grants()
        return assignment

    def unassign_role(self, username: str, role_id: int) -> None:
        ur = a.auth_user_roles

        def unassign(conn: Connection) -> None:
            user = self._user_row(conn, username)
            if not conn.execute(delete(ur).where(and_(ur.c.user_id == user.id, ur.c.role_id == role_id))).rowcount:
                raise ResourceDoesNotExist(f"User role assignment (user_id={user.id}, role_id={role_id}) not found")
            self._audit_row(conn, "role_unassign", username, {"role_id": role_id})

        self._write(unassign)
        self._forget_grants()

    def list_user_roles(self, username: str) -> list[Role]:
        with eng.read(self.engine) as conn:
            user = self._user_row(conn, username)
            rows = conn.execute(select(a.auth_roles).join(a.auth_user_roles, a.auth_user_roles.c.role_id ==
                                                          a.auth_roles.c.id)
                                .where(a.auth_user_roles.c.user_id == user.id).order_by(a.auth_roles.c.id)).all()
            return self._roles(conn, list(rows))

    def list_role_users(self, role_id: int) -> list[UserRoleAssignment]:
        with eng.read(self.engine) as conn:
            self._role_row(conn, role_id)
            rows = conn.execute(select(a.auth_user_roles).where(a.auth_user_roles.c.role_id == role_id)
                                .order_by(a.auth_user_roles.c.id)).all()
        return [UserRoleAssignment(id=r.id, user_id=r.user_id, role_id=r.role_id) for r in rows]

    # ------------------------------------------------------------------ effective grants
    def grants_for(self, user_id: int) -> GrantSet:
        """One user's direct grants and role patterns (remembered briefly; changes here drop the memo)."""
        clock = time.monotonic()
        memo = self._grants.get(user_id)
        if memo is not None and memo[1] > clock:
            return memo[0]
        p, rp, ur = a.auth_permissions, a.auth_role_permissions, a.auth_user_roles
        with eng.read(self.engine) as conn:
            direct = {(r.resource_type, r.resource_id): r.permission
                      for r in conn.execute(select(p).where(p.c.user_id == user_id))}
            patterns = [(r.resource_type, r.resource_pattern, r.permission) for r in conn.execute(
                select(rp).join(ur, ur.c.role_id == rp.c.role_id).where(ur.c.user_id == user_id).order_by(rp.c.id))]
        grants = GrantSet(direct=direct, patterns=patterns)
        with self._lock:
            self._grants[user_id] = (grants, clock + GRANTS_MEMO_S)
        return grants
