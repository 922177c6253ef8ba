"""The accounts tables (users, tokens, grants, roles, audit, server secrets), on the tracking schema's
`MetaData` so one database holds everything (revision 0004 creates them).

Passwords are stored as argon2id hashes; a token as the sha256 of its secret (32 random bytes
need no slow hash). `auth_secrets` holds values every replica of the server must share, such as
the key that signs session cookies.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from mltrail.store.sql.schema import belongs_to, metadata

MAX_USERNAME_LENGTH = 255

auth_users = Table(
    "auth_users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(MAX_USERNAME_LENGTH), nullable=False, unique=True),
    Column("password_hash", String(255)),  # none for users a trusted proxy header created
    Column("is_admin", Boolean, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    # bumped by a password change: sessions issued before it end
    Column("credentials_changed_at", BigInteger, nullable=False, server_default="0"),
)

auth_tokens = Table(
    "auth_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    belongs_to(auth_users.c.id, "user_id"),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("last_used_at", BigInteger),
    Index("ix_auth_tokens_user_id", "user_id"),
)

auth_permissions = Table(
    "auth_permissions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    belongs_to(auth_users.c.id, "user_id"),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(256), nullable=False),
    Column("permission", String(32), nullable=False),
    UniqueConstraint("user_id", "resource_type", "resource_id", name="uq_auth_permissions_user_resource"),
    Index("ix_auth_permissions_resource", "resource_type", "resource_id"),
)

auth_roles = Table(
    "auth_roles", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("workspace", String(255), nullable=False, server_default="default"),
    Column("description", Text),
    UniqueConstraint("workspace", "name", name="uq_auth_roles_workspace_name"),
)

auth_role_permissions = Table(
    "auth_role_permissions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    belongs_to(auth_roles.c.id, "role_id"),
    Column("resource_type", String(64), nullable=False),
    Column("resource_pattern", String(256), nullable=False),
    Column("permission", String(32), nullable=False),
    Index("ix_auth_role_permissions_role_id", "role_id"),
)

auth_user_roles = Table(
    "auth_user_roles", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    belongs_to(auth_users.c.id, "user_id"),
    belongs_to(auth_roles.c.id, "role_id"),
    UniqueConstraint("user_id", "role_id", name="uq_auth_user_roles_pair"),
)

auth_audit = Table(
    "auth_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(MAX_USERNAME_LENGTH), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("details", Text, nullable=False, server_default="{}"),  # JSON
    Column("address", String(64)),
)

auth_secrets = Table(
    "auth_secrets", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

TABLES = ["auth_users", "auth_tokens", "auth_permissions", "auth_roles", "auth_role_permissions",
          "auth_user_roles", "auth_audit", "auth_secrets"]
