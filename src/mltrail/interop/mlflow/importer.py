"""`import_store`: an MLflow tracking store, read by a source (`sql_source`, `file_source`), written into mltrail's.

The source hands rows in mltrail's own schema, table by table (`records.TABLE_ORDER`); this module
decides, row by row, what the destination lacks, maps what collides, and bulk-writes the rest:

- Experiments keep their ids unless the destination uses the id already (or, on PostgreSQL, it
  does not fit an integer column); a renumbered experiment is reported. An experiment brought
  over carries the tag `mltrail.importedFrom`, so a second import finds it by name again.
- Runs, logged models, datasets and model versions keep their ids; those already present are
  skipped, so an import can be rerun to pick up what is new.
- A run or logged model is tagged `mltrail.importPending` in the transaction that writes it; the
  tag goes when everything, artifacts included, is in. An interrupted import leaves tagged
  rows, which the next import deletes and writes again.
- `latest_metrics` is derived from the written history in one INSERT ... SELECT.
- Artifacts are copied into the destination's artifact root and every URI naming them rewritten,
  or (keep_artifacts_in_place) referenced where they are.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from mltrail.errors import InvalidParameterValue
from mltrail.interop.mlflow.artifacts_copy import UriRewriter, copy_tree, resolve_source_uri
from mltrail.interop.mlflow.dest_writer import PENDING_TAG, TABLES, DestWriter
from mltrail.interop.mlflow.progress import LineProgress, Progress
from mltrail.interop.mlflow.records import TABLE_ORDER, MlflowSource
from mltrail.store import get_store
from mltrail.store.sql import registry_schema as r
from mltrail.store.sql import schema as t
from mltrail.store.sql.fields import join_uri
from mltrail.tracking_uri import absolutize, local_dir_of, scheme_of

IMPORTED_FROM_TAG = "mltrail.importedFrom"
_INT32_MAX = 2**31 - 1


@dataclass
class ImportReport:
    """What an import did, and how the destination's counts compare with the source's, table by table."""

    source: str
    destination: str
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (source, destination)
    experiment_ids: dict[str, str] = field(default_factory=dict)  # renumbered: source id -> destination id
    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    redone_runs: int = 0
    artifact_files: int = 0
    artifact_bytes: int = 0
    seconds: float = 0.0
    metric_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every table holds as many of the source's rows in the destination as in the source."""
        return all(src == dest for src, dest in self.counts.values())

    @property
    def metric_points_per_second(self) -> float:
        return self.written.get("metrics", 0) / self.metric_seconds if self.metric_seconds else 0.0

    def summary(self) -> str:
        """A table of counts (source, destination, written, skipped) with the differences marked."""
        lines = [f"Imported {self.source} into {self.destination} in {self.seconds:.1f}s.",
                 f"{'TABLE':<26} {'SOURCE':>10} {'DEST':>10} {'WRITTEN':>10} {'SKIPPED':>10}"]
        for table, (src, dest) in self.counts.items():
            mark = "" if src == dest else "   <- differs"
            lines.append(f"{table:<26} {src:>10,} {dest:>10,} {self.written.get(table, 0):>10,} "
                         f"{self.skipped.get(table, 0):>10,}{mark}")
        for old, new in sorted(self.experiment_ids.items()):
            lines.append(f"experiment {old} is experiment {new} here (its id was taken)")
        if self.redone_runs:
            lines.append(f"{self.redone_runs} run(s) half-written by an interrupted import were written again")
        if self.written.get("metrics"):
            lines.append(f"metric points: {self.written['metrics']:,} in {self.metric_seconds:.1f}s "
                         f"({self.metric_points_per_second:,.0f}/s)")
        lines.append(f"artifacts: {self.artifact_files:,} files, {self.artifact_bytes:,} bytes")
        lines.append("OK: the destination holds everything the source holds." if self.ok
                     else "DIFFERENCES: see the tables marked above.")
        return "\n".join(lines)


def _shown_uri(uri: str) -> str:
    """A database URI with its password hidden (the summary is printed and logged)."""
    if "://" not in uri or "@" not in uri:
        return uri
    from sqlalchemy.engine import make_url

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except Exception:  # not a database URL after all: show it as given
        return uri


def open_source(uri: str) -> MlflowSource:
    """The MLflow store named by `uri`, opened read-only: a database URL or a FileStore folder / `file://` URI."""
    scheme = scheme_of(uri)
    if scheme in ("", "file"):
        from mltrail.interop.mlflow.file_source import FileSource

        return FileSource(uri)
    if scheme.split("+", 1)[0] in ("sqlite", "postgresql", "postgres", "mysql", "mssql"):
        from mltrail.interop.mlflow.sql_source import SqlSource

        return SqlSource(uri)
    raise InvalidParameterValue(
        f"Cannot import from {uri!r}: expected an MLflow tracking store as MLflow names it: sqlite:///mlflow.db, "
        "postgresql://..., or a FileStore folder (./mlruns, file:///...). To import from a tracking server, "
        "point at its --backend-store-uri.")


def destination_store(dest_uri: str, artifacts_dest: str | None = None) -> Any:
    """Open (and migrate) the mltrail SQL store at `dest_uri`: a database URI or a folder."""
    uri = absolutize(dest_uri)
    if scheme_of(uri) in ("http", "https"):
        raise InvalidParameterValue(
            f"Cannot import into {dest_uri!r}: expected an mltrail database (sqlite:///FILE, postgresql://...) or "
            "a folder, not a tracking server (import into its database instead).")
    if artifacts_dest is not None and scheme_of(artifacts_dest) in ("", "file"):
        artifacts_dest = local_dir_of(artifacts_dest) or artifacts_dest
    store = get_store(uri, artifacts_dest)
    if not hasattr(store, "engine"):
        raise InvalidParameterValue(f"Cannot import into {dest_uri!r}: expected an mltrail SQL store.")
    return store


def import_store(source: MlflowSource, dest_uri: str, artifacts_dest: str | None = None,
                 keep_artifacts_in_place: bool = False, progress: Progress | None = None,
                 source_artifacts: str | None = None, log: Callable[[str], None] | None = None) -> ImportReport:
    """Bring everything `source` holds into the mltrail store at `dest_uri`; safe to rerun.

    Args:
        source: the MLflow store, opened for reading (it is not changed).
        dest_uri: an mltrail database URI or folder (created and migrated when new).
        artifacts_dest: the destination's artifact root (default: the store's own, e.g. `<folder>/artifacts`).
        keep_artifacts_in_place: reference the source's artifacts instead of copying them.
        progress: where phase progress goes (default: one line on stderr).
        source_artifacts: where the source's `mlflow-artifacts:/` URIs point (its server's artifact destination).
        log: receives one line per notable decision (a renumbered experiment, a merge); default: none.
    """
    store = destination_store(dest_uri, artifacts_dest)
    job = _Import(source, store, keep_artifacts_in_place, progress or LineProgress(), source_artifacts,
                  log or (lambda _line: None))
    return job.run(dest_uri)


class _Import:
    """One import run: the id maps and sets it builds as the tables stream by."""

    def __init__(self, source: MlflowSource, store: Any, keep_in_place: bool, progress: Progress,
                 source_artifacts: str | None, log: Callable[[str], None]) -> None:
        self.source, self.store, self.keep_in_place = source, store, keep_in_place
        self.progress, self.source_artifacts, self.log = progress, source_artifacts, log
        self.dest = DestWriter(store.engine)
        self.artifact_root: str = store.default_artifact_root
        self.exp_map: dict[str, int] = {}
        self.exp_location: dict[int, str] = {}  # destination experiment id -> its artifact location
        self.src_exp_location: dict[str, str] = {}
        self.run_ids: set[str] = set()
        self.new_runs: set[str] = set()
        self.model_ids: set[str] = set()
        self.new_models: set[str] = set()
        self.dataset_map: dict[str, str] = {}
        self.input_ids: set[str] = set()
        self.new_inputs: set[str] = set()
        self.rm_map: dict[Any, int] = {}
        self.output_keys: set[tuple[str, str]] = set()
        self.version_keys: set[tuple[int, int]] = set()
        self.rewriter = UriRewriter()
        self.copies: list[tuple[str, str]] = []  # (source uri, destination uri) of new runs and models
        self.source_roots: dict[tuple[str, str], str] = {}
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mltrail-import-metrics")
        self.metric_writes: deque[Future[None]] = deque()

    # ------------------------------------------------------------ the phases
    def run(self, dest_uri: str) -> ImportReport:
        try:
            return self._run(dest_uri)
        finally:
            self.writer.shutdown(wait=True, cancel_futures=True)

    def _run(self, dest_uri: str) -> ImportReport:
        began = time.perf_counter()
        report = ImportReport(source=self.source.describe(), destination=_shown_uri(dest_uri))
        self.report = report
        source_counts = self.source.counts()
        with self.dest.write() as conn, conn.begin():
            report.redone_runs, _models = self.dest.drop_pending(conn)
        for root in self.source.artifact_roots():
            self.source_roots[(root.kind, root.entity_id)] = root.uri
        handlers: dict[str, Callable[[list[dict[str, Any]]], None]] = {
            name: getattr(self, "_" + name) for name in TABLE_ORDER}
        for table in TABLE_ORDER:
            phase = {"runs": "runs", "metrics": "metric points"}.get(table)
            if phase:
                self.progress.start(phase, source_counts.get(table))
            started = time.perf_counter()
            for batch in self.source.batches(table):
                handlers[table](batch.rows)
                if phase:
                    self.progress.advance(len(batch.rows))
            if table == "metrics":
                self._metrics_written()
                report.metric_seconds = time.perf_counter() - started
            if phase:
                self.progress.finish()
        with self.dest.write() as conn, conn.begin():
            self.dest.derive_latest_metrics(conn)
            self.dest.sync_sequences(conn)
            self.dest.bump_last_versions(conn, set(self.rm_map.values()))
        self._copy_artifacts()
        with self.dest.write() as conn, conn.begin():
            self.dest.clear_pending(conn)
        with self.store.engine.connect() as conn:
            report.counts = {table: (source_counts.get(table, 0), self._dest_count(conn, table))
                             for table in TABLE_ORDER}
        report.seconds = time.perf_counter() - began
        return report

    def _tally(self, table: str, written: int, total: int) -> None:
        self.report.written[table] = self.report.written.get(table, 0) + written
        self.report.skipped[table] = self.report.skipped.get(table, 0) + total - written

    def _insert_missing(self, table: str, rows: list[dict[str, Any]], key: tuple[str, ...]) -> None:
        """Insert the rows whose `key` the destination lacks (tags, aliases: idempotent on rerun)."""
        tbl = TABLES[table]
        with self.dest.write() as conn, conn.begin():
            have = self.dest.existing(conn, tbl, key, (tuple(row[k] for k in key) for row in rows))
            fresh: dict[tuple[Any, ...], dict[str, Any]] = {}
            for row in rows:
                k = tuple(row[c] for c in key)
                if k not in have:
                    fresh[k] = row
            self.dest.insert(conn, tbl, list(fresh.values()))
        self._tally(table, len(fresh), len(rows))

    # ------------------------------------------------------------ experiments
    def _map_uri(self, source_uri: str, new_uri: str) -> None:
        """Remember where a source location went, under its written form and its resolved one."""
        self.rewriter.add(source_uri, new_uri)
        if not source_uri.startswith("mlflow-artifacts:") or self.source_artifacts:
            self.rewriter.add(resolve_source_uri(source_uri, self.source_artifacts), new_uri)

    def _new_location(self, source_uri: str | None, fallback: str) -> str:
        if self.keep_in_place and source_uri:
            return resolve_source_uri(source_uri, self.source_artifacts)
        return fallback

    def _experiments(self, rows: list[dict[str, Any]]) -> None:
        e, et = t.experiments, t.experiment_tags
        written = 0
        with self.dest.write() as conn, conn.begin():
            for row in rows:
                src_id = str(row["experiment_id"])
                src_location = row.get("artifact_location") or ""
                self.src_exp_location[src_id] = src_location
                found = conn.execute(select(e).where(e.c.name == row["name"])).first()
                if found is not None:
                    dest_id = self._reuse_experiment(conn, found, row)
                else:
                    dest_id = self._experiment_id_for(conn, src_id)
                    location = self._new_location(src_location, join_uri(self.artifact_root, str(dest_id)))
                    values = {**row, "experiment_id": dest_id, "artifact_location": location}
                    self.dest.insert(conn, e, [values])
                    self.dest.insert(conn, et, [self._imported_tag(dest_id, src_id)])
                    written += 1
                self.exp_map[src_id] = dest_id
                stored = conn.execute(select(e.c.artifact_location).where(e.c.experiment_id == dest_id)).scalar()
                self.exp_location[dest_id] = stored or join_uri(self.artifact_root, str(dest_id))
                if src_location:
                    self._map_uri(src_location, self.exp_location[dest_id])
                if str(dest_id) != src_id:
                    self.report.experiment_ids[src_id] = str(dest_id)
                    self.log(f"experiment {src_id} ({row['name']!r}) is experiment {dest_id} in the destination")
        self._tally("experiments", written, len(rows))

    def _imported_tag(self, dest_id: int, src_id: str) -> dict[str, Any]:
        return {"experiment_id": dest_id, "key": IMPORTED_FROM_TAG,
                "value": f"{self.source.describe()} experiment {src_id}"[:5000]}

    def _experiment_id_for(self, conn: Connection, src_id: str) -> int:
        """The source's id when the destination has it free (and can hold it), else the next free one."""
        try:
            wanted = int(src_id)
        except ValueError:
            wanted = -1
        fits = wanted >= 0 and (wanted <= _INT32_MAX or not self.dest.postgres)
        if fits and conn.execute(select(t.experiments.c.experiment_id)
                                 .where(t.experiments.c.experiment_id == wanted)).first() is None:
            return wanted
        return self.dest.next_experiment_id(conn)

    def _reuse_experiment(self, conn: Connection, found: Any, row: dict[str, Any]) -> int:
        """A destination experiment of the same name: a previous import's, an untouched one we adopt, or a merge."""
        e, et = t.experiments, t.experiment_tags
        dest_id = int(found.experiment_id)
        tag_keys = set(conn.execute(select(et.c.key).where(et.c.experiment_id == dest_id)).scalars())
        if IMPORTED_FROM_TAG in tag_keys:
            return dest_id
        untouched = not tag_keys and conn.execute(select(t.runs.c.run_uuid).where(
            t.runs.c.experiment_id == dest_id).limit(1)).first() is None and conn.execute(
            select(t.logged_models.c.model_id).where(t.logged_models.c.experiment_id == dest_id).limit(1)).first() is None
        if untouched:  # e.g. the Default experiment a new store starts with: it becomes the source's
            values: dict[str, Any] = {k: row[k] for k in ("lifecycle_stage", "creation_time", "last_update_time")
                                      if k in row}
            if self.keep_in_place and row.get("artifact_location"):
                values["artifact_location"] = resolve_source_uri(row["artifact_location"], self.source_artifacts)
            if values:
                conn.execute(update(e).where(e.c.experiment_id == dest_id).values(**values))
        else:
            self.log(f"experiment {row['name']!r} exists in the destination with its own runs: "
                     f"the source's runs join it (experiment {dest_id})")
        self.dest.insert(conn, et, [self._imported_tag(dest_id, str(row["experiment_id"]))])
        return dest_id

    def _experiment_tags(self, rows: list[dict[str, Any]]) -> None:
        mapped = [{**row, "experiment_id": self.exp_map[str(row["experiment_id"])]} for row in rows]
        self._insert_missing("experiment_tags", mapped, ("experiment_id", "key"))

    # ------------------------------------------------------------ runs and their rows
    def _entity_location(self, kind: str, entity_id: str, src_uri: str | None, src_exp: str, dest_exp: int,
                         default_parts: tuple[str, ...]) -> str:
        """Where a run's or logged model's artifacts go: the same place under the new experiment location."""
        if self.keep_in_place and src_uri:
            return resolve_source_uri(src_uri, self.source_artifacts)
        dest_exp_location = self.exp_location[dest_exp]
        src_exp_location = self.src_exp_location.get(src_exp, "")
        if src_uri and src_exp_location:
            rewritten = UriRewriter()
            rewritten.add(resolve_source_uri(src_exp_location, self.source_artifacts), dest_exp_location)
            new = rewritten.rewrite(resolve_source_uri(src_uri, self.source_artifacts))
            if new and new != resolve_source_uri(src_uri, self.source_artifacts):
                return new
        return join_uri(dest_exp_location, *default_parts)

    def _runs(self, rows: list[dict[str, Any]]) -> None:
        with self.dest.write() as conn, conn.begin():
            ids = [row["run_uuid"] for row in rows]
            have = dict(conn.execute(select(t.runs.c.run_uuid, t.runs.c.artifact_uri)
                                     .where(t.runs.c.run_uuid.in_(ids))).all()) if ids else {}
            fresh = []
            for row in rows:
                run_id = row["run_uuid"]
                self.run_ids.add(run_id)
                src_uri = row.get("artifact_uri") or self.source_roots.get(("run", run_id))
                if run_id in have:
                    if src_uri and have[run_id]:
                        self._map_uri(src_uri, have[run_id])
                    continue
                src_exp = str(row["experiment_id"])
                dest_exp = self.exp_map[src_exp]
                new_uri = self._entity_location("run", run_id, src_uri, src_exp, dest_exp, (run_id, "artifacts"))
                if src_uri:
                    self._map_uri(src_uri, new_uri)
                    if not self.keep_in_place:
                        self.copies.append((resolve_source_uri(src_uri, self.source_artifacts), new_uri))
                fresh.append({**row, "experiment_id": dest_exp, "artifact_uri": new_uri})
                self.new_runs.add(run_id)
            self.dest.insert(conn, t.runs, fresh)
            self.dest.insert(conn, t.tags, [{"run_uuid": row["run_uuid"], "key": PENDING_TAG, "value": "1"}
                                            for row in fresh])
        self._tally("runs", len(fresh), len(rows))

    def _rows_of_new(self, table: str, rows: list[dict[str, Any]], column: str, new: set[str]) -> None:
        """Write the rows that belong to runs (or models) this import writes; the others are there already."""
        mine = [row for row in rows if row[column] in new]
        if mine:
            with self.dest.write() as conn, conn.begin():
                self.dest.insert(conn, TABLES[table], mine)
        self._tally(table, len(mine), len(rows))

    def _params(self, rows: list[dict[str, Any]]) -> None:
        self._rows_of_new("params", rows, "run_uuid", self.new_runs)

    def _tags(self, rows: list[dict[str, Any]]) -> None:
        self._rows_of_new("tags", [row for row in rows if row["key"] != PENDING_TAG], "run_uuid", self.new_runs)

    def _metrics(self, rows: list[dict[str, Any]]) -> None:
        """Hand a batch of points to the writer thread: the database writes one batch while the source
        reads the next (both drivers release the GIL while the database works)."""
        mine = [row for row in rows if row["run_uuid"] in self.new_runs]
        while len(self.metric_writes) >= 2:  # at most one batch waiting behind the one being written
            self.metric_writes.popleft().result()
        self.metric_writes.append(self.writer.submit(self.dest.insert_metrics, mine))
        self._tally("metrics", len(mine), len(rows))

    def _metrics_written(self) -> None:
        while self.metric_writes:
            self.metric_writes.popleft().result()

    # ------------------------------------------------------------ datasets and inputs
    def _datasets(self, rows: list[dict[str, Any]]) -> None:
        ds = t.datasets
        written = 0
        with self.dest.write() as conn, conn.begin():
            for row in rows:
                uuid = row["dataset_uuid"]
                dest_exp = self.exp_map[str(row["experiment_id"])]
                same = conn.execute(select(ds.c.dataset_uuid).where(
                    (ds.c.dataset_uuid == uuid) | and_(ds.c.experiment_id == dest_exp, ds.c.name == row["name"],
                                                       ds.c.digest == row["digest"]))).scalars().first()
                if same is None:
                    self.dest.insert(conn, ds, [{**row, "experiment_id": dest_exp}])
                    written += 1
                self.dataset_map[uuid] = same or uuid
        self._tally("datasets", written, len(rows))

    def _inputs(self, rows: list[dict[str, Any]]) -> None:
        mapped = []
        for row in rows:
            source_id = self.dataset_map.get(row["source_id"], row["source_id"])
            mapped.append({**row, "source_id": source_id})
            self.input_ids.add(row["input_uuid"])
        i = t.inputs
        with self.dest.write() as conn, conn.begin():
            have_ids = {k[0] for k in self.dest.existing(conn, i, ("input_uuid",), ((r_["input_uuid"],) for r_ in mapped))}
            cols = ("destination_type", "destination_id", "source_type", "source_id")
            have_links = self.dest.existing(conn, i, cols, (tuple(r_[c] for c in cols) for r_ in mapped))
            fresh = [r_ for r_ in mapped if r_["input_uuid"] not in have_ids
                     and tuple(r_[c] for c in cols) not in have_links]
            self.dest.insert(conn, i, fresh)
        self.new_inputs.update(r_["input_uuid"] for r_ in fresh)
        self._tally("inputs", len(fresh), len(rows))

    def _input_tags(self, rows: list[dict[str, Any]]) -> None:
        self._rows_of_new("input_tags", rows, "input_uuid", self.new_inputs)

    # ------------------------------------------------------------ logged models
    def _logged_models(self, rows: list[dict[str, Any]]) -> None:
        lm = t.logged_models
        with self.dest.write() as conn, conn.begin():
            ids = [row["model_id"] for row in rows]
            have = dict(conn.execute(select(lm.c.model_id, lm.c.artifact_location)
                                     .where(lm.c.model_id.in_(ids))).all()) if ids else {}
            fresh = []
            for row in rows:
                model_id = row["model_id"]
                self.model_ids.add(model_id)
                src_uri = row.get("artifact_location") or self.source_roots.get(("logged_model", model_id))
                if model_id in have:
                    if src_uri:
                        self._map_uri(src_uri, have[model_id])
                    continue
                src_exp = str(row["experiment_id"])
                dest_exp = self.exp_map[src_exp]
                new_uri = self._entity_location("logged_model", model_id, src_uri, src_exp, dest_exp,
                                                ("models", model_id, "artifacts"))
                if src_uri:
                    self._map_uri(src_uri, new_uri)
                    if not self.keep_in_place:
                        self.copies.append((resolve_source_uri(src_uri, self.source_artifacts), new_uri))
                fresh.append({**row, "experiment_id": dest_exp, "artifact_location": new_uri})
                self.new_models.add(model_id)
            self.dest.insert(conn, lm, fresh)
            self.dest.insert(conn, t.logged_model_tags, [
                {"model_id": row["model_id"], "tag_key": PENDING_TAG, "tag_value": "1"} for row in fresh])
        self._tally("logged_models", len(fresh), len(rows))

    def _logged_model_params(self, rows: list[dict[str, Any]]) -> None:
        self._rows_of_new("logged_model_params", rows, "model_id", self.new_models)

    def _logged_model_tags(self, rows: list[dict[str, Any]]) -> None:
        self._rows_of_new("logged_model_tags", [row for row in rows if row["tag_key"] != PENDING_TAG], "model_id",
                          self.new_models)

    def _logged_model_metrics(self, rows: list[dict[str, Any]]) -> None:
        self._rows_of_new("logged_model_metrics", rows, "model_id", self.new_models)

    def _run_outputs(self, rows: list[dict[str, Any]]) -> None:
        self.output_keys.update((row["run_uuid"], row["model_id"]) for row in rows)
        self._insert_missing("run_outputs", rows, ("run_uuid", "model_id"))

    # ------------------------------------------------------------ the registry
    def _registered_models(self, rows: list[dict[str, Any]]) -> None:
        rms = r.registered_models
        written = 0
        with self.dest.write() as conn, conn.begin():
            for row in rows:
                dest_id = conn.execute(select(rms.c.id).where(rms.c.name == row["name"])).scalar()
                if dest_id is None:
                    values = {k: v for k, v in row.items() if k != "id"}
                    values.setdefault("last_version", 0)
                    dest_id = conn.execute(self._insert_returning_id(values)).scalar_one()
                    written += 1
                self.rm_map[row["id"]] = int(dest_id)
        self._tally("registered_models", written, len(rows))

    @staticmethod
    def _insert_returning_id(values: dict[str, Any]) -> Any:
        rms = r.registered_models
        names = {c.name for c in rms.columns}
        return insert(rms).values(**{k: v for k, v in values.items() if k in names}).returning(rms.c.id)

    def _with_rm(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**row, "rm_id": self.rm_map[row["rm_id"]]} for row in rows]

    def _registered_model_tags(self, rows: list[dict[str, Any]]) -> None:
        self._insert_missing("registered_model_tags", self._with_rm(rows), ("rm_id", "key"))

    def _model_versions(self, rows: list[dict[str, Any]]) -> None:
        mapped = []
        for row in self._with_rm(rows):
            source = row.get("source")
            row["source"] = self._rewrite(source)
            row["storage_location"] = self._rewrite(row.get("storage_location") or source)
            mapped.append(row)
            self.version_keys.add((row["rm_id"], int(row["version"])))
        self._insert_missing("model_versions", mapped, ("rm_id", "version"))

    def _rewrite(self, uri: str | None) -> str | None:
        """A model version's source or storage location, pointed at where its files are now."""
        if not uri:
            return uri
        if self.keep_in_place:
            return resolve_source_uri(uri, self.source_artifacts) if uri.startswith("mlflow-artifacts:") else uri
        return self.rewriter.rewrite(uri)

    def _model_version_tags(self, rows: list[dict[str, Any]]) -> None:
        self._insert_missing("model_version_tags", self._with_rm(rows), ("rm_id", "version", "key"))

    def _registered_model_aliases(self, rows: list[dict[str, Any]]) -> None:
        self._insert_missing("registered_model_aliases", self._with_rm(rows), ("rm_id", "alias"))

    # ------------------------------------------------------------ artifacts
    def _copy_artifacts(self) -> None:
        if self.keep_in_place or not self.copies:
            return
        self.progress.start("artifacts (runs and models)", len(self.copies))
        for src, dest in self.copies:
            files, size = copy_tree(src, dest)
            self.report.artifact_files += files
            self.report.artifact_bytes += size
            self.progress.advance(1)
        self.progress.finish()

    # ------------------------------------------------------------ the summary's destination counts
    def _dest_count(self, conn: Connection, table: str) -> int:
        d, tbl = self.dest, TABLES[table]
        exp_ids = sorted(set(self.exp_map.values()))
        rm_ids = sorted(set(self.rm_map.values()))
        runs, models = sorted(self.run_ids), sorted(self.model_ids)
        if table == "experiments":
            return d.count_in(conn, tbl, "experiment_id", exp_ids)
        if table == "experiment_tags":
            return d.count_in(conn, tbl, "experiment_id", exp_ids, tbl.c.key != IMPORTED_FROM_TAG)
        if table in ("runs", "params", "metrics"):
            return d.count_in(conn, tbl, "run_uuid", runs)
        if table == "tags":
            return d.count_in(conn, tbl, "run_uuid", runs, tbl.c.key != PENDING_TAG)
        if table == "datasets":
            return d.count_in(conn, tbl, "dataset_uuid", sorted(set(self.dataset_map.values())))
        if table in ("inputs", "input_tags"):
            return d.count_in(conn, tbl, "input_uuid", sorted(self.input_ids))
        if table in ("logged_models", "logged_model_params", "logged_model_tags", "logged_model_metrics"):
            return d.count_in(conn, tbl, "model_id", models)
        if table == "run_outputs":
            return d.count_keys(conn, tbl, ("run_uuid", "model_id"), self.output_keys)
        if table == "registered_models":
            return d.count_in(conn, tbl, "id", rm_ids)
        if table == "model_versions":
            return d.count_keys(conn, tbl, ("rm_id", "version"), self.version_keys)
        return d.count_in(conn, tbl, "rm_id", rm_ids)
