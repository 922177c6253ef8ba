"""The logged model a run produced under a name: what `runs:/<run_id>/<name>/...` names first in MLflow 3."""

from __future__ import annotations

from mltrail.client import Client
from mltrail.entities import LoggedModel
from mltrail.errors import ResourceDoesNotExist


def run_logged_model(client: Client, run_id: str, name: str) -> LoggedModel | None:
    """The run's output model called `name`, or None when it has none.

    Of several, READY ones first, then the one logged at the largest step (MLflow's `register_model`
    rule), then the newest.
    """
    run = client.get_run(run_id)
    steps = {o.model_id: o.step for o in (run.outputs.model_outputs if run.outputs else [])}
    named = []
    for model_id in steps:
        try:
            model = client.get_logged_model(model_id)
        except ResourceDoesNotExist:  # deleted since
            continue
        if model.name == name:
            named.append(model)
    if not named:
        return None
    return max(named, key=lambda m: (m.status == "READY", steps[m.model_id] or 0, m.creation_timestamp or 0))
