"""The model registry in the SQL store: registered models, versions, tags, aliases and (old) stages.

Version numbers come from a per-model counter (`registered_models.last_version`) bumped with
`UPDATE ... RETURNING` in the transaction that inserts the version: on SQLite the write
transaction is `BEGIN IMMEDIATE`, on PostgreSQL the UPDATE locks the row, so concurrent
registrations get distinct, gap-free, increasing numbers (MLflow's `MAX(version) + 1` collides).

A version's source is checked and normalised here, whatever the entry point (Python or REST):
it must be `models:/<model_id>` of an existing logged model, `models:/<name>/<version>` (or
`@alias`, `/latest`, `/<stage>`) of an existing version (a copy: MLflow's `copy_model_version`),
`runs:/<run_id>/<path>` of an existing run, or a location inside the artifacts of the run
(`run_id`) or logged model (`model_id`) it names, after a local path's `..` is resolved.

A version with a logged model is recorded in that model's `mlflow.modelVersions` tag in the same
transaction, as MLflow's server does after creating it (`set_model_versions_tags`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mltrail import _validation as v
from mltrail.entities import LifecycleStage, ModelVersion, ModelVersionStage, RegisteredModel
from mltrail.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from mltrail.store import _registry_checks as chk
from mltrail.store.registry_base import RegistryStore
from mltrail.store.sql import registry_schema as r
from mltrail.store.sql import schema as t
from mltrail.store.sql.fields import now_ms
from mltrail.store.sql.registry_search import RegistrySearchMixin
from mltrail.uri_forms import is_models_uri, is_runs_uri


def _not_found(name: str) -> ResourceDoesNotExist:
    return ResourceDoesNotExist(f"Registered Model with name={name} not found")


def _version_not_found(name: str, version: int) -> ResourceDoesNotExist:
    return ResourceDoesNotExist(f"Model Version (name={name}, version={version}) not found")


def _tags(tags: dict[str, Any] | None) -> dict[str, str]:
    return dict(v.validate_tag(k, val) for k, val in (tags or {}).items())


class RegistryMixin(RegistrySearchMixin, RegistryStore):
    """Registry methods for SqlTrackingStore (which provides `_write`, `_read` and the run checks)."""

    engine: Any

    def _write(self, fn: Any) -> Any:
        raise NotImplementedError

    def _read(self) -> Any:
        raise NotImplementedError

    def _record_model_version(self, conn: Connection, model_id: str, name: str, version: str) -> None:
        raise NotImplementedError  # LoggedModelsMixin's, earlier in SqlTrackingStore's bases

    # ---------------------------------------------------------------- rows
    @staticmethod
    def _rm_row(conn: Connection, name: str) -> Any:
        row = conn.execute(select(r.registered_models).where(r.registered_models.c.name == name)).first()
        if row is None:
            raise _not_found(name)
        return row

    @staticmethod
    def _mv_row(conn: Connection, rm_id: int, name: str, version: int) -> Any:
        mv = r.model_versions
        row = conn.execute(select(mv).where(and_(mv.c.rm_id == rm_id, mv.c.version == version))).first()
        if row is None:
            raise _version_not_found(name, version)
        return row

    def _touch_rm(self, conn: Connection, rm_id: int, ts: int | None = None) -> None:
        conn.execute(update(r.registered_models).where(r.registered_models.c.id == rm_id)
                     .values(last_updated_time=ts or now_ms()))

    # ---------------------------------------------------------------- registered models
    def create_registered_model(self, name: str, tags: dict[str, str] | None = None,
                                description: str | None = None) -> RegisteredModel:
        name = chk.normalize_model_name(name)
        tag_items = _tags(tags)

        def create(conn: Connection) -> RegisteredModel:
            if conn.execute(select(r.registered_models.c.id).where(r.registered_models.c.name == name)).first():
                raise ResourceAlreadyExists(f"Registered Model (name={name}) already exists.")
            ts = now_ms()
            try:
                rm_id = conn.execute(insert(r.registered_models).values(
                    name=name, creation_time=ts, last_updated_time=ts, description=description, last_version=0,
                ).returning(r.registered_models.c.id)).scalar_one()
            except IntegrityError:  # created by another process since the check above (PostgreSQL)
                raise ResourceAlreadyExists(f"Registered Model (name={name}) already exists.") from None
            if tag_items:
                conn.execute(insert(r.registered_model_tags), [
                    {"rm_id": rm_id, "key": k, "value": val} for k, val in tag_items.items()])
            return RegisteredModel(name=name, creation_timestamp=ts, last_updated_timestamp=ts,
                                   description=description, tags=tag_items)

        return self._write(create)

    def get_registered_model(self, name: str) -> RegisteredModel:
        name = chk.normalize_model_name(name)
        with self._read() as conn:
            return self._load_registered_models(conn, [self._rm_row(conn, name)])[0]

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        name = chk.normalize_model_name(name)
        new_name = chk.normalize_model_name(new_name, "new_name")

        def rename(conn: Connection) -> None:
            row = self._rm_row(conn, name)
            if new_name == name:
                return
            if conn.execute(select(r.registered_models.c.id).where(r.registered_models.c.name == new_name)).first():
                raise ResourceAlreadyExists(f"Registered Model (name={new_name}) already exists.")
            ts = now_ms()
            try:
                conn.execute(update(r.registered_models).where(r.registered_models.c.id == row.id)
                             .values(name=new_name, last_updated_time=ts))
            except IntegrityError:
                raise ResourceAlreadyExists(f"Registered Model (name={new_name}) already exists.") from None
            conn.execute(update(r.model_versions).where(r.model_versions.c.rm_id == row.id)
                         .values(last_updated_time=ts))

        self._write(rename)
        return self.get_registered_model(new_name)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        name = chk.normalize_model_name(name)

        def change(conn: Connection) -> None:
            row = self._rm_row(conn, name)
            conn.execute(update(r.registered_models).where(r.registered_models.c.id == row.id)
                         .values(description=description, last_updated_time=now_ms()))

        self._write(change)
        return self.get_registered_model(name)

    def delete_registered_model(self, name: str) -> None:
        name = chk.normalize_model_name(name)

        def remove(conn: Connection) -> None:
            rm_id = self._rm_row(conn, name).id
            for table in (r.registered_model_aliases, r.model_version_tags, r.model_versions,
                          r.registered_model_tags):
                conn.execute(delete(table).where(table.c.rm_id == rm_id))
            conn.execute(delete(r.registered_models).where(r.registered_models.c.id == rm_id))

        self._write(remove)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        name = chk.normalize_model_name(name)
        if isinstance(stages, str):
            stages = [stages]
        wanted = {ModelVersionStage.canonical(s) for s in stages} if stages else set(ModelVersionStage.ALL)
        mv = r.model_versions
        with self._read() as conn:
            rm_id = self._rm_row(conn, name).id
            latest = conn.execute(select(mv.c.current_stage, func.max(mv.c.version)).where(and_(
                mv.c.rm_id == rm_id, mv.c.current_stage.in_(sorted(wanted)))).group_by(mv.c.current_stage)).all()
            numbers = sorted(n for _, n in latest)
            if not numbers:
                return []
            rows = conn.execute(select(mv).where(and_(mv.c.rm_id == rm_id, mv.c.version.in_(numbers)))
                                .order_by(mv.c.version)).all()
            return self._load_versions(conn, rows, {rm_id: name})

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        name = chk.normalize_model_name(name)
        key, value = v.validate_tag(key, value)

        def write(conn: Connection) -> None:
            rm_id = self._rm_row(conn, name).id
            tags = r.registered_model_tags
            conn.execute(delete(tags).where(and_(tags.c.rm_id == rm_id, tags.c.key == key)))
            conn.execute(insert(tags).values(rm_id=rm_id, key=key, value=value))

        self._write(write)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        name = chk.normalize_model_name(name)
        v.validate_key("tag", key)

        def write(conn: Connection) -> None:
            rm_id = self._rm_row(conn, name).id
            tags = r.registered_model_tags
            conn.execute(delete(tags).where(and_(tags.c.rm_id == rm_id, tags.c.key == key)))

        self._write(write)

    # ---------------------------------------------------------------- model versions
    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, str] | None = None, run_link: str | None = None,
                             description: str | None = None, model_id: str | None = None) -> ModelVersion:
        name = chk.normalize_model_name(name)
        source = chk.check_source_chars(source)
        run_id = v.validate_run_id(run_id) if run_id else None
        model_id = chk.check_model_id(model_id) if model_id else None
        tag_items = _tags(tags)

        def create(conn: Connection) -> ModelVersion:
            if conn.execute(select(r.registered_models.c.id).where(r.registered_models.c.name == name)).first() is None:
                raise _not_found(name)
            src, location, rid, mid = self._resolve_source(conn, source, run_id, model_id)
            ts = now_ms()
            rms = r.registered_models
            # the counter row: one UPDATE both allocates the number and serialises concurrent writers
            bumped = conn.execute(update(rms).where(rms.c.name == name)
                                  .values(last_version=rms.c.last_version + 1, last_updated_time=ts)
                                  .returning(rms.c.id, rms.c.last_version)).first()
            if bumped is None:  # deleted since the check above
                raise _not_found(name)
            rm_id, number = bumped
            conn.execute(insert(r.model_versions).values(
                rm_id=rm_id, version=number, creation_time=ts, last_updated_time=ts, description=description,
                current_stage=ModelVersionStage.NONE, source=src, storage_location=location, run_id=rid,
                run_link=run_link, model_id=mid, status="READY"))
            if tag_items:
                conn.execute(insert(r.model_version_tags), [
                    {"rm_id": rm_id, "version": number, "key": k, "value": val} for k, val in tag_items.items()])
            if mid:  # MLflow's server (handlers.py _create_model_version -> set_model_versions_tags)
                self._record_model_version(conn, mid, name, str(number))
            return ModelVersion(name=name, version=int(number), creation_timestamp=ts, last_updated_timestamp=ts,
                                description=description, current_stage=ModelVersionStage.NONE, source=src,
                                run_id=rid, tags=tag_items, run_link=run_link, model_id=mid)

        return self._write(create)

    def _version_key(self, conn: Connection, name: str, version: str | int) -> tuple[int, int]:
        number = chk.parse_version(version)
        rm_id = self._rm_row(conn, name).id
        self._mv_row(conn, rm_id, name, number)
        return rm_id, number

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        name = chk.normalize_model_name(name)
        number = chk.parse_version(version)
        with self._read() as conn:
            rm_id = self._rm_row(conn, name).id
            return self._load_versions(conn, [self._mv_row(conn, rm_id, name, number)], {rm_id: name})[0]

    def update_model_version(self, name: str, version: str | int, description: str | None) -> ModelVersion:
        name = chk.normalize_model_name(name)

        def change(conn: Connection) -> None:
            rm_id, number = self._version_key(conn, name, version)
            mv = r.model_versions
            conn.execute(update(mv).where(and_(mv.c.rm_id == rm_id, mv.c.version == number))
                         .values(description=description, last_updated_time=now_ms()))

        self._write(change)
        return self.get_model_version(name, version)

    def delete_model_version(self, name: str, version: str | int) -> None:
        name = chk.normalize_model_name(name)

        def remove(conn: Connection) -> None:
            rm_id, number = self._version_key(conn, name, version)
            for table in (r.registered_model_aliases, r.model_version_tags, r.model_versions):
                conn.execute(delete(table).where(and_(table.c.rm_id == rm_id, table.c.version == number)))
            self._touch_rm(conn, rm_id)

        self._write(remove)

    def transition_model_version_stage(self, name: str, version: str | int, stage: str,
                                       archive_existing_versions: bool = False) -> ModelVersion:
        name = chk.normalize_model_name(name)
        stage = ModelVersionStage.canonical(stage)
        if archive_existing_versions and stage not in ModelVersionStage.ACTIVE:
            raise InvalidParameterValue(
                f"Model version transition cannot archive existing model versions because {stage!r} is not an "
                f"active stage. Valid stages are {', '.join(ModelVersionStage.ACTIVE)}.")

        def change(conn: Connection) -> None:
            rm_id, number = self._version_key(conn, name, version)
            mv = r.model_versions
            ts = now_ms()
            if archive_existing_versions:
                conn.execute(update(mv).where(and_(mv.c.rm_id == rm_id, mv.c.version != number,
                                                   mv.c.current_stage == stage))
                             .values(current_stage=ModelVersionStage.ARCHIVED, last_updated_time=ts))
            conn.execute(update(mv).where(and_(mv.c.rm_id == rm_id, mv.c.version == number))
                         .values(current_stage=stage, last_updated_time=ts))
            self._touch_rm(conn, rm_id, ts)

        self._write(change)
        return self.get_model_version(name, version)

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        name = chk.normalize_model_name(name)
        number = chk.parse_version(version)
        with self._read() as conn:
            rm_id = self._rm_row(conn, name).id
            return str(self._mv_row(conn, rm_id, name, number).storage_location)

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None:
        name = chk.normalize_model_name(name)
        key, value = v.validate_tag(key, value)

        def write(conn: Connection) -> None:
            rm_id, number = self._version_key(conn, name, version)
            tags = r.model_version_tags
            cond = and_(tags.c.rm_id == rm_id, tags.c.version == number, tags.c.key == key)
            conn.execute(delete(tags).where(cond))
            conn.execute(insert(tags).values(rm_id=rm_id, version=number, key=key, value=value))

        self._write(write)

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        name = chk.normalize_model_name(name)
        v.validate_key("tag", key)

        def write(conn: Connection) -> None:
            rm_id, number = self._version_key(conn, name, version)
            tags = r.model_version_tags
            conn.execute(delete(tags).where(and_(tags.c.rm_id == rm_id, tags.c.version == number,
                                                 tags.c.key == key)))

        self._write(write)

    # ---------------------------------------------------------------- aliases
    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        name = chk.normalize_model_name(name)
        alias = chk.check_alias(alias, reserved=True)

        def write(conn: Connection) -> None:
            rm_id, number = self._version_key(conn, name, version)
            al = r.registered_model_aliases
            conn.execute(delete(al).where(and_(al.c.rm_id == rm_id, al.c.alias == alias)))
            conn.execute(insert(al).values(rm_id=rm_id, alias=alias, version=number))

        self._write(write)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        name = chk.normalize_model_name(name)
        alias = chk.check_alias(alias)

        def write(conn: Connection) -> None:
            rm_id = self._rm_row(conn, name).id
            al = r.registered_model_aliases
            conn.execute(delete(al).where(and_(al.c.rm_id == rm_id, al.c.alias == alias)))

        self._write(write)

    @staticmethod
    def _version_of_alias(conn: Connection, rm_id: int, alias: str) -> int | None:
        """The version an alias names ("latest": the newest version), or None."""
        if alias.lower() == "latest":
            mv = r.model_versions
            return conn.execute(select(func.max(mv.c.version)).where(mv.c.rm_id == rm_id)).scalar()
        al = r.registered_model_aliases
        return conn.execute(select(al.c.version).where(and_(al.c.rm_id == rm_id, al.c.alias == alias))).scalar()

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        name = chk.normalize_model_name(name)
        alias = chk.check_alias(alias)
        with self._read() as conn:
            rm_id = self._rm_row(conn, name).id
            number = self._version_of_alias(conn, rm_id, alias)
            if number is None and alias.lower() == "latest":
                raise ResourceDoesNotExist(f"Latest version not found for model {name}.")
            if number is None:  # MLflow's error code and words: callers test for them
                raise InvalidParameterValue(f"Registered model alias {alias} not found.")
            return self._load_versions(conn, [self._mv_row(conn, rm_id, name, number)], {rm_id: name})[0]

    # ---------------------------------------------------------------- sources
    def _resolve_source(self, conn: Connection, source: str, run_id: str | None,
                        model_id: str | None) -> tuple[str, str, str | None, str | None]:
        """(normalised source, artifact location, run_id, model_id) of a version source, or a refusal."""
        if is_models_uri(source):
            parsed = chk.parse_models_source(source)
            if parsed.model_id is None:
                return self._resolve_registered_source(conn, source, parsed, run_id, model_id)
            mid = parsed.model_id
            if model_id and model_id != mid:
                raise chk.id_refusal(source, "model_id", f"The source names logged model {mid}, but model_id is "
                                                         f"{model_id}.")
            lm = self._logged_model_row(conn, mid, source)
            if run_id and run_id != lm.source_run_id:
                raise chk.id_refusal(source, "run_id", f"Run {run_id} is not the run that logged model {mid} "
                                                       f"(its source run is {lm.source_run_id!r}).")
            return f"models:/{mid}", lm.artifact_location, run_id or lm.source_run_id, mid
        if is_runs_uri(source):
            rid, rel = chk.parse_runs_source(source)
            if run_id and run_id != rid:
                raise chk.id_refusal(source, "run_id", f"The source names run {rid}, but run_id is {run_id}.")
            run = self._source_run_row(conn, rid, source)
            normalised = f"runs:/{rid}/{rel}" if rel else f"runs:/{rid}"
            first, _, rest = rel.partition("/")
            lm = self._run_logged_model(conn, rid, first) if first else None
            if lm is not None:  # MLflow 3: runs:/<run>/<name> is the run's logged model of that name
                if model_id and (rest or model_id != lm.model_id):
                    raise chk.id_refusal(source, "model_id", f"The source is not logged model {model_id}.")
                return normalised, chk.join_location(lm.artifact_location, rest), rid, \
                    (lm.model_id if not rest else None)
            if model_id:  # MLflow: _validate_source_model refuses every runs: source
                raise chk.id_refusal(source, "model_id", f"A runs: source cannot identify logged model {model_id}; "
                                                         f"use models:/{model_id}.")
            return normalised, chk.join_location(run.artifact_uri, rel), rid, None
        return self._resolve_location(conn, source, run_id, model_id)

    def _resolve_registered_source(self, conn: Connection, source: str, parsed: chk.ModelsUri, run_id: str | None,
                                   model_id: str | None) -> tuple[str, str, str | None, str | None]:
        """`models:/<name>/<version|stage|latest>` or `models:/<name>@<alias>`: a copy of an existing version
        (MLflow's `_resolve_registered_model_source_lineage`), stored as `models:/<name>/<version>` with the
        version's files, run and logged model; a run_id or model_id given must be the version's."""
        name = str(parsed.name)
        rm = conn.execute(select(r.registered_models.c.id).where(r.registered_models.c.name == name)).first()
        if rm is None:
            raise chk.source_error(source, f"Registered Model with name={name} not found.")
        mv = r.model_versions
        number: int | None
        if parsed.version is not None:
            number = parsed.version
        elif parsed.alias is not None:
            number = self._version_of_alias(conn, rm.id, parsed.alias)
            if number is None:
                raise chk.source_error(source, f"Registered model alias {parsed.alias} not found.")
        else:
            cond = [mv.c.rm_id == rm.id]
            if parsed.stage is not None:
                try:
                    stage = ModelVersionStage.canonical(parsed.stage)
                except InvalidParameterValue as e:
                    raise chk.source_error(source, e.message) from None
                cond.append(mv.c.current_stage == stage)
            number = conn.execute(select(func.max(mv.c.version)).where(and_(*cond))).scalar()
            if number is None:  # MLflow's words: store/artifact/utils/models.py _get_latest_model_version
                which = "" if parsed.stage is None else f" and stage '{parsed.stage}'"
                raise chk.source_error(source, f"No versions of model with name '{name}'{which} found.")
        row = conn.execute(select(mv).where(and_(mv.c.rm_id == rm.id, mv.c.version == number))).first()
        if row is None:
            raise chk.source_error(source, f"Model Version (name={name}, version={number}) not found.")
        if (run_id and run_id != (row.run_id or "")) or (model_id and model_id != (row.model_id or "")):
            raise chk.source_error(source, "The run_id and model_id request parameters must match the referenced "
                                           "model version.")
        return f"models:/{name}/{number}", str(row.storage_location), run_id or row.run_id, model_id or row.model_id

    def _resolve_location(self, conn: Connection, source: str, run_id: str | None,
                          model_id: str | None) -> tuple[str, str, str | None, str | None]:
        # a local path is resolved ('..' included) before the containment check, as MLflow's
        # _validate_source_run/_validate_source_model resolve it; only with the run or model named
        parts = chk.split_location(source, trusted=False, normalise_local=bool(model_id or run_id))
        if model_id:
            lm = self._logged_model_row(conn, model_id, source)
            if run_id and run_id != lm.source_run_id:
                raise chk.id_refusal(source, "run_id", f"Run {run_id} is not the run that logged model {model_id}.")
            root = chk.split_location(lm.artifact_location, trusted=True)
            rel = chk.relative_under(parts, root)
            if rel is None or not chk.resolves_inside(parts, root):
                refusal = chk.local_path_refusal if parts[0] == "file" else chk.id_refusal
                raise refusal(source, "model_id", f"The source is not inside the artifacts of logged model "
                                                  f"{model_id} ({lm.artifact_location}).")
            location = chk.join_location(lm.artifact_location, rel)
            return location, location, run_id or lm.source_run_id, model_id if not rel else None
        if run_id:
            run = self._source_run_row(conn, run_id, source)
            root = chk.split_location(run.artifact_uri, trusted=True)
            rel = chk.relative_under(parts, root)
            if rel is None or not chk.resolves_inside(parts, root):
                refusal = chk.local_path_refusal if parts[0] == "file" else chk.id_refusal
                raise refusal(source, "run_id", f"The source is not inside the artifacts of run {run_id} "
                                                f"({run.artifact_uri}).")
            location = chk.join_location(run.artifact_uri, rel)
            return location, location, run_id, None
        # neither named: only the exact artifact location of a logged model (its id is in the path)
        candidates = [p for p in parts[2] if chk.is_model_id(p)]
        if candidates:
            lms = conn.execute(select(t.logged_models).where(and_(
                t.logged_models.c.model_id.in_(candidates),
                t.logged_models.c.lifecycle_stage == LifecycleStage.ACTIVE))).all()
            for lm in lms:
                if chk.split_location(lm.artifact_location, trusted=True) == parts:
                    return lm.artifact_location, lm.artifact_location, lm.source_run_id, lm.model_id
        # MLflow's words (handlers.py _validate_source_run), then ours
        raise chk.local_path_refusal(
            source, "run_id", "A location source needs the run_id (or model_id) whose artifacts contain it; other "
            "paths and other runs' locations are refused. Expected models:/<model_id>, runs:/<run_id>/<path>, or "
            "a location inside the given run's artifacts.")

    @staticmethod
    def _logged_model_row(conn: Connection, model_id: str, source: str) -> Any:
        lm = conn.execute(select(t.logged_models).where(and_(
            t.logged_models.c.model_id == model_id,
            t.logged_models.c.lifecycle_stage == LifecycleStage.ACTIVE))).first()
        if lm is None:
            raise chk.id_refusal(source, "model_id", f"Logged model {model_id} does not exist.")
        return lm

    @staticmethod
    def _source_run_row(conn: Connection, run_id: str, source: str) -> Any:
        run = conn.execute(select(t.runs.c.run_uuid, t.runs.c.artifact_uri).where(t.runs.c.run_uuid == run_id)).first()
        if run is None:
            raise chk.id_refusal(source, "run_id", f"Run {run_id} does not exist.")
        return run

    @staticmethod
    def _run_logged_model(conn: Connection, run_id: str, name: str) -> Any:
        lm, ro = t.logged_models, t.run_outputs
        rows = conn.execute(select(lm, ro.c.step).join(ro, ro.c.model_id == lm.c.model_id).where(and_(
            ro.c.run_uuid == run_id, lm.c.name == name, lm.c.lifecycle_stage == LifecycleStage.ACTIVE))).all()
        if not rows:
            return None
        # the rule of mltrail._run_models.run_logged_model: READY first, then the largest step, then the newest
        return max(rows, key=lambda x: (x.status == "READY", x.step or 0, x.creation_timestamp_ms or 0))
