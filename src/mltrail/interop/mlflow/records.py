"""What an MLflow store reader hands the importer: rows in mltrail's own schema, table by table.

A reader (`sql_source.py` for MLflow's databases, `file_source.py` for its FileStore folders)
translates MLflow's layout into rows of mltrail's tables (`mltrail.store.sql.schema` and
`registry_schema`), keyed by those tables' column names, so the importer only has to write them:
one bulk insert per batch, the whole metric history streamed in batches rather than held in memory.

Ids are the source's: run ids, logged-model ids and dataset ids are kept; experiment ids are the
source's and the importer maps them when they collide. URIs (artifact locations, model version
sources) are the source's; the importer rewrites them when it copies the artifacts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

# The order in which tables are read and written: every row's parents come before it.
TABLE_ORDER: tuple[str, ...] = (
    "experiments", "experiment_tags",
    "runs", "params", "tags", "metrics",
    "datasets", "inputs", "input_tags",
    "logged_models", "logged_model_params", "logged_model_tags", "logged_model_metrics", "run_outputs",
    "registered_models", "registered_model_tags", "model_versions", "model_version_tags",
    "registered_model_aliases",
)
# `latest_metrics` is not read: the importer derives it from the metric history it wrote.

# Rows per batch a reader should aim for (metrics dominate: one row per point).
BATCH_ROWS = 50_000


@dataclass
class RowBatch:
    """Rows of one mltrail table, in that table's column names (values as the table stores them)."""

    table: str
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ArtifactRoot:
    """Where the source keeps one entity's artifacts, for the importer to copy (or reference in place).

    Args:
        kind: "experiment", "run" or "logged_model".
        entity_id: the experiment id, run id or model id (the source's).
        uri: the source's artifact location for it (a local path, `file://`, `s3://`, `mlflow-artifacts:/`).
    """

    kind: str
    entity_id: str
    uri: str


class MlflowSource(Protocol):
    """An MLflow tracking store opened for reading. Reading changes nothing in the source."""

    def describe(self) -> str:
        """One line naming the store (kind, location, schema revision where there is one)."""
        ...

    def counts(self) -> dict[str, int]:
        """How many rows of each `TABLE_ORDER` table the source holds (for the summary's comparison)."""
        ...

    def batches(self, table: str) -> Iterator[RowBatch]:
        """The rows of `table` (one of `TABLE_ORDER`), in batches of about `BATCH_ROWS`.

        `metrics` come ordered by run, so a run's history is never split across a skipped and a
        written batch when the importer skips runs it already has.
        """
        ...

    def artifact_roots(self) -> Iterator[ArtifactRoot]:
        """Every experiment's, run's and logged model's artifact location."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
