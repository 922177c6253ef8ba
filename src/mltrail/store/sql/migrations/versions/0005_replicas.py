"""Replicas: idempotency records, signed-out sessions and failed logins move into the database.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from mltrail.store.sql import replica_schema
from mltrail.store.sql.schema import metadata

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Built from replica_schema.py as it is now (see 0001 for why).
TABLES = list(replica_schema.TABLES)


def upgrade() -> None:
    metadata.create_all(op.get_bind(), tables=[metadata.tables[name] for name in TABLES])


def downgrade() -> None:
    metadata.drop_all(op.get_bind(), tables=[metadata.tables[name] for name in reversed(TABLES)])
