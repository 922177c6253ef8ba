"""The logged model a run produced under a name: what `runs:/<run_id>/<name>/...` names first in MLflow 3."""

from __future__ import annotations

from mltrail.client import Client
from mltrail.entities import LoggedModel
from mltrail.errors import ResourceDoesNotExist


def run_logged_model(client: Client, run_id: str, name: str) -> LoggedModel | None:
    """The run's output model called `name` (READY ones first, then the newest); None when it has none."""
    run = client.get_run(run_id)
    named = []
    for output in (run.outputs.model_outputs if run.outputs else []):
        try:
            model = client.get_logged_model(output.model_id)
        except ResourceDoesNotExist:  # deleted since
            continue
        if model.name == name:
            named.append(model)
    if not named:
        return None
    ready = [m for m in named if m.status == "READY"] or named
    return max(ready, key=lambda m: m.creation_timestamp)
