"""Metric blocks: per-block summaries of every metric series, filled from the points already stored.

A chart of a huge series samples the summaries instead of every point (store/sql/metric_blocks.py).
Existing points are summarised here, run by run (about a second per million points on SQLite), so
every series has its blocks from the start and the writers only keep them up to date.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from mltrail.store.sql import metric_blocks
from mltrail.store.sql.schema import metadata

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = [metric_blocks.metric_blocks.name]


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, tables=[metadata.tables[name] for name in TABLES])
    metric_blocks.rebuild(bind)


def downgrade() -> None:
    metadata.drop_all(op.get_bind(), tables=[metadata.tables[name] for name in reversed(TABLES)])
