"""The initial tracking schema: experiments, runs, params, tags, metrics, datasets, logged models.

Revision ID: 0001
Revises:
"""

from alembic import op

from mltrail.store.sql.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The tables this revision owns, built from schema.py as it is now. So a fresh database always
# gets the newest columns: a later revision that adds a table lists it for itself, and one that
# adds a column to these tables must skip it where it already exists (inspect first).
TABLES = [
    "experiments", "experiment_tags", "runs", "params", "tags", "metrics", "latest_metrics", "datasets",
    "inputs", "input_tags", "logged_models", "logged_model_params", "logged_model_tags",
    "logged_model_metrics", "run_outputs", "applied_batches",
]


def upgrade() -> None:
    metadata.create_all(op.get_bind(), tables=[metadata.tables[name] for name in TABLES])


def downgrade() -> None:
    metadata.drop_all(op.get_bind(), tables=[metadata.tables[name] for name in reversed(TABLES)])
