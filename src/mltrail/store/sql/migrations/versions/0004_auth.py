"""Accounts and permissions: users, API tokens, grants, roles, the audit table and server secrets.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from mltrail.store.sql import auth_schema
from mltrail.store.sql.schema import metadata

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Built from auth_schema.py as it is now (see 0001 for why).
TABLES = list(auth_schema.TABLES)


def upgrade() -> None:
    metadata.create_all(op.get_bind(), tables=[metadata.tables[name] for name in TABLES])


def downgrade() -> None:
    metadata.drop_all(op.get_bind(), tables=[metadata.tables[name] for name in reversed(TABLES)])
