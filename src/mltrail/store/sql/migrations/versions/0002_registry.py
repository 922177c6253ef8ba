"""The model registry: registered models, their versions, tags and aliases.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from mltrail.store.sql import registry_schema
from mltrail.store.sql.schema import metadata

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Built from registry_schema.py as it is now (see 0001 for why).
TABLES = list(registry_schema.TABLES)


def upgrade() -> None:
    metadata.create_all(op.get_bind(), tables=[metadata.tables[name] for name in TABLES])


def downgrade() -> None:
    metadata.drop_all(op.get_bind(), tables=[metadata.tables[name] for name in reversed(TABLES)])
