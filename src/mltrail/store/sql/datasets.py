"""Dataset summaries in the SQL tracking store: what the UI's dataset filter lists (search-datasets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select

from mltrail.store.sql import schema as t
from mltrail.store.sql.fields import parse_experiment_id

DATASET_CONTEXT_TAG = "mlflow.data.context"
# MLflow's SqlAlchemyStore._search_datasets answers at most this many summaries
MAX_DATASET_SUMMARIES = 1000


class DatasetsMixin:
    engine: Any

    def _read(self) -> Any:
        raise NotImplementedError

    def search_datasets(self, experiment_ids: Sequence[str]) -> list[tuple[str, str, str, str | None]]:
        """Distinct (experiment_id, name, digest, context) of the datasets logged as run inputs.

        As MLflow's SQL store: the context is the input's `mlflow.data.context` tag (None without
        one), experiments are not checked for existence or lifecycle, and at most 1,000 come back.
        MLflow leaves the order to the database; here it is experiment, name, digest, context
        (no context first), so pages of the UI do not shuffle.
        """
        ids = sorted({parse_experiment_id(e) for e in experiment_ids})
        if not ids:
            return []
        d, i, tags = t.datasets, t.inputs, t.input_tags
        context = tags.c.value
        q = (select(d.c.experiment_id, d.c.name, d.c.digest, context).distinct()
             .select_from(d)
             .join(i, and_(i.c.source_id == d.c.dataset_uuid, i.c.source_type == "DATASET"))
             .outerjoin(tags, and_(tags.c.input_uuid == i.c.input_uuid, tags.c.name == DATASET_CONTEXT_TAG))
             .where(d.c.experiment_id.in_(ids))
             .order_by(d.c.experiment_id, d.c.name, d.c.digest, context.asc().nulls_first())
             .limit(MAX_DATASET_SUMMARIES))
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [(str(exp_id), name, digest, ctx) for exp_id, name, digest, ctx in rows]
