"""Writes an mltrail SQL store's rows as an MLflow FileStore folder (`./mlruns`), the layout MLflow 3.17 reads.

The layout, as MLflow's `FileStore` writes it: `<id>/meta.yaml` per experiment (deleted ones under
`.trash/<id>`), `<exp>/<run>/meta.yaml` with `metrics/<key>` ("timestamp value step" lines),
`params/<key>` and `tags/<key>` (the raw value), `inputs/<id>/meta.yaml` and `outputs/<model id>/meta.yaml`;
`<exp>/datasets/<id>/meta.yaml`; `<exp>/models/<model id>/` for logged models; and the registry under
`models/<name>/` with `version-<n>/`. Ids MLflow derives (dataset and input folders) are derived as it does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import yaml
from sqlalchemy import Connection, Select, Table, select

from mltrail.store.sql import registry_schema as rt
from mltrail.store.sql import schema as t

TRASH = ".trash"
# MLflow's enums as its FileStore persists them (RunStatus, SourceType.LOCAL, LoggedModelStatus)
RUN_STATUS = {"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5}
SOURCE_TYPE_LOCAL = 4
LOGGED_MODEL_STATUS = {"UNSPECIFIED": 0, "PENDING": 1, "READY": 2, "FAILED": 3}
_BATCH = 50_000

Relocate = Callable[[str | None], str | None]


def experiment_dir(root: str, experiment_id: Any, lifecycle_stage: str) -> str:
    """Where MLflow's FileStore keeps an experiment: deleted ones sit in `.trash`."""
    return os.path.join(root, TRASH, str(experiment_id)) if lifecycle_stage == "deleted" \
        else os.path.join(root, str(experiment_id))


def _md5(*parts: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def _write_yaml(directory: str, data: dict[str, Any]) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "meta.yaml"), "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, default_flow_style=False, sort_keys=True)


def _write_value(path: str, value: Any) -> None:
    """One param/tag file: the value as MLflow writes it (no newline; None as an empty file)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("" if value is None else str(value))


def _number(value: float | None, is_nan: bool = False) -> str:
    return "nan" if is_nan or value is None else repr(float(value))


class FileStoreWriter:
    """Streams our tables into the folders of one new FileStore at `root`; `rows` counts what it wrote."""

    def __init__(self, conn: Connection, root: str, relocate: Relocate) -> None:
        self.conn, self.root, self.relocate = conn, root, relocate
        self.rows: dict[str, int] = {}
        self.exp_dirs: dict[int, str] = {}
        self.run_dirs: dict[str, str] = {}
        self.model_dirs: dict[str, str] = {}
        self.dataset_ids: dict[str, tuple[str, int]] = {}

    def _parts(self, query: Table | Select[Any]) -> Iterator[list[Any]]:
        result = self.conn.execution_options(yield_per=_BATCH).execute(
            select(query) if isinstance(query, Table) else query)
        for part in result.partitions():
            yield list(part)

    def _count(self, what: str, n: int = 1) -> None:
        self.rows[what] = self.rows.get(what, 0) + n

    def write_all(self) -> None:
        self._experiments()
        self._runs()
        self._metrics()
        self._inputs()
        self._logged_models()
        self._registry()

    def _experiments(self) -> None:
        for part in self._parts(t.experiments):
            for e in part:
                path = self.exp_dirs[e.experiment_id] = experiment_dir(self.root, e.experiment_id, e.lifecycle_stage)
                _write_yaml(path, {
                    "artifact_location": self.relocate(e.artifact_location) or e.artifact_location,
                    "creation_time": e.creation_time, "effective_trace_archival_retention": None,
                    "experiment_id": str(e.experiment_id), "last_update_time": e.last_update_time,
                    "lifecycle_stage": e.lifecycle_stage, "name": e.name, "trace_location": None,
                    "workspace": "default"})
                self._count("experiments")
        for part in self._parts(t.experiment_tags):
            for tag in part:
                _write_value(os.path.join(self.exp_dirs[tag.experiment_id], "tags", tag.key), tag.value)
            self._count("experiment_tags", len(part))

    def _runs(self) -> None:
        for part in self._parts(t.runs):
            for r in part:
                path = self.run_dirs[r.run_uuid] = os.path.join(self.exp_dirs[r.experiment_id], r.run_uuid)
                meta = {"artifact_uri": self.relocate(r.artifact_uri) or r.artifact_uri, "end_time": r.end_time,
                        "entry_point_name": "", "experiment_id": str(r.experiment_id),
                        "lifecycle_stage": r.lifecycle_stage, "run_id": r.run_uuid, "run_name": r.name,
                        "source_name": "", "source_type": SOURCE_TYPE_LOCAL, "source_version": "",
                        "start_time": r.start_time, "status": RUN_STATUS.get(r.status, 1), "tags": [],
                        "user_id": r.user_id}
                if r.deleted_time is not None:
                    meta["deleted_time"] = r.deleted_time
                _write_yaml(path, meta)
                for sub in ("metrics", "params", "tags", "artifacts"):  # MLflow finds a run by these folders
                    os.makedirs(os.path.join(path, sub), exist_ok=True)
                self._count("runs")
        for table, folder in ((t.params, "params"), (t.tags, "tags")):
            for part in self._parts(table):
                for row in part:
                    _write_value(os.path.join(self.run_dirs[row.run_uuid], folder, row.key), row.value)
                self._count(folder, len(part))

    def _metrics(self) -> None:
        m = t.metrics
        query = select(m.c.run_uuid, m.c.key, m.c.timestamp, m.c.value, m.c.is_nan, m.c.step).order_by(
            m.c.run_uuid, m.c.key, m.c.step, m.c.timestamp, m.c.id)
        for part in self._parts(query):
            lines: dict[tuple[str, str], list[str]] = {}
            for run_id, key, ts, value, is_nan, step in part:
                lines.setdefault((run_id, key), []).append(f"{ts} {_number(value, is_nan)} {step}\n")
            for (run_id, key), chunk in lines.items():
                path = os.path.join(self.run_dirs[run_id], "metrics", key)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "a", encoding="utf-8") as fh:
                    fh.writelines(chunk)
            self._count("metrics", len(part))

    def _inputs(self) -> None:
        run_exp = {run_id: os.path.dirname(path) for run_id, path in self.run_dirs.items()}
        for part in self._parts(t.datasets):
            for d in part:
                dataset_id = _md5(d.name, d.digest)  # MLflow's FileStore._get_dataset_id
                self.dataset_ids[d.dataset_uuid] = (dataset_id, d.experiment_id)
                _write_yaml(os.path.join(self.exp_dirs[d.experiment_id], "datasets", dataset_id), {
                    "digest": d.digest, "name": d.name, "profile": d.dataset_profile, "schema": d.dataset_schema,
                    "source": d.dataset_source, "source_type": d.dataset_source_type})
            self._count("datasets", len(part))
        tags: dict[str, dict[str, str]] = {}
        for part in self._parts(t.input_tags):
            for tag in part:
                tags.setdefault(tag.input_uuid, {})[tag.name] = tag.value
        for part in self._parts(t.inputs):
            for i in part:
                if i.destination_type != "RUN" or i.destination_id not in run_exp:
                    continue
                if i.source_type == "DATASET":
                    dataset_id = self.dataset_ids[i.source_id][0]
                    input_id, meta = _md5(dataset_id, i.destination_id), {
                        "source_type": "DATASET", "source_id": dataset_id, "destination_type": "RUN",
                        "destination_id": dataset_id, "tags": tags.get(i.input_uuid, {})}
                else:  # a logged model the run used
                    input_id, meta = _md5(i.source_id, i.destination_id), {
                        "source_type": "MODEL", "source_id": i.source_id, "destination_type": "RUN",
                        "destination_id": i.source_id, "tags": {}}
                # MLflow writes destination_id = source_id here, and reads only the source: we write as it does
                _write_yaml(os.path.join(self.run_dirs[i.destination_id], "inputs", input_id), meta)
                self._count("inputs")
        for part in self._parts(t.run_outputs):
            for o in part:
                _write_yaml(os.path.join(self.run_dirs[o.run_uuid], "outputs", o.model_id), {
                    "source_type": "RUN_OUTPUT", "source_id": o.model_id, "destination_type": "MODEL_OUTPUT",
                    "destination_id": o.model_id, "tags": {}, "step": o.step})
                self._count("outputs")

    def _logged_models(self) -> None:
        for part in self._parts(t.logged_models):
            for lm in part:
                path = self.model_dirs[lm.model_id] = os.path.join(self.exp_dirs[lm.experiment_id], "models",
                                                                   lm.model_id)
                meta = {"artifact_location": self.relocate(lm.artifact_location) or lm.artifact_location,
                        "creation_timestamp": lm.creation_timestamp_ms, "experiment_id": str(lm.experiment_id),
                        "last_updated_timestamp": lm.last_updated_timestamp_ms, "model_id": lm.model_id,
                        "model_type": lm.model_type, "name": lm.name, "source_run_id": lm.source_run_id,
                        "status": LOGGED_MODEL_STATUS.get(lm.status, 0), "status_message": lm.status_message}
                if lm.lifecycle_stage == "deleted":
                    meta["lifecycle_stage"] = "deleted"
                _write_yaml(path, meta)
                for sub in ("metrics", "params", "tags"):
                    os.makedirs(os.path.join(path, sub), exist_ok=True)
                self._count("logged_models")
        for table, folder, key, value in ((t.logged_model_params, "params", "param_key", "param_value"),
                                          (t.logged_model_tags, "tags", "tag_key", "tag_value")):
            for part in self._parts(table):
                for row in part:
                    _write_value(os.path.join(self.model_dirs[row.model_id], folder, getattr(row, key)),
                                 getattr(row, value))
                self._count(f"logged_model_{folder}", len(part))
        for part in self._parts(t.logged_model_metrics):
            for x in part:
                dataset = f" {x.dataset_name} {x.dataset_digest}" if x.dataset_name and x.dataset_digest else ""
                path = os.path.join(self.model_dirs[x.model_id], "metrics", x.metric_name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(f"{x.metric_timestamp_ms} {_number(x.metric_value)} {x.metric_step} {x.run_id}{dataset}\n")
            self._count("logged_model_metrics", len(part))

    def _registry(self) -> None:
        base = os.path.join(self.root, "models")
        names: dict[int, str] = {}
        aliases: dict[int, dict[str, str]] = {}
        for a in self.conn.execute(select(rt.registered_model_aliases)):
            aliases.setdefault(a.rm_id, {})[a.alias] = str(a.version)
        for rm in self.conn.execute(select(rt.registered_models)):
            names[rm.id] = rm.name
            _write_yaml(os.path.join(base, rm.name), {
                "aliases": aliases.get(rm.id, {}), "creation_timestamp": rm.creation_time,
                "deployment_job_id": None, "deployment_job_state": None, "description": rm.description,
                "last_updated_timestamp": rm.last_updated_time, "name": rm.name, "workspace": "default"})
            for alias, version in aliases.get(rm.id, {}).items():
                _write_value(os.path.join(base, rm.name, "aliases", alias), version)
            self._count("registered_models")
        for tag in self.conn.execute(select(rt.registered_model_tags)):
            _write_value(os.path.join(base, names[tag.rm_id], "tags", tag.key), tag.value)
        for v in self.conn.execute(select(rt.model_versions)):
            _write_yaml(os.path.join(base, names[v.rm_id], f"version-{v.version}"), {
                "creation_timestamp": v.creation_time, "current_stage": v.current_stage,
                "deployment_job_state": None, "description": v.description,
                "last_updated_timestamp": v.last_updated_time, "model_id": v.model_id, "name": names[v.rm_id],
                "run_id": v.run_id, "run_link": v.run_link, "source": self.relocate(v.source) or v.source,
                "status": v.status, "status_message": v.status_message,
                "storage_location": self.relocate(v.storage_location) or v.storage_location,
                "user_id": v.user_id, "version": v.version, "workspace": "default"})
            self._count("model_versions")
        for tag in self.conn.execute(select(rt.model_version_tags)):
            if tag.rm_id in names:
                _write_value(os.path.join(base, names[tag.rm_id], f"version-{tag.version}", "tags", tag.key),
                             tag.value)
