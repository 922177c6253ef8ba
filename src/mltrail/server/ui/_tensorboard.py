"""TensorBoard event files in a run's artifacts, read as scalar series for the UI's preview charts.

`GET /ui/api/tensorboard?run_id=|model_id=&path=` answers, for one `events.out.tfevents.*` file or
a directory holding them (autolog's `tensorboard_logs/`, with `train/` and `validation/` below it),
one chart per scalar tag with one line per subdirectory, as TensorBoard shows them.

The files are read with TensorBoard's own pieces: its TFRecord reader, its `Event` protocol
buffer, and `data_compat`, which turns TF1's `simple_value` scalars into the tensors TF2 and
Keras 3 write (tagged with the `scalars` plugin). The reader is TensorBoard's pure-Python one
(`tensorflow_stub`), not `EventFileLoader`: that class imports all of TensorFlow when it is
installed, seconds of start-up and hundreds of megabytes in a server that never trains.

The work of one request is bounded: at most MAX_EVENTS events and MAX_BYTES bytes are read, over
at most MAX_FILES files found by listing at most MAX_LISTED entries; a cut answer says so
("the first N events"). Long series are downsampled as metric charts are (min and max per step
bucket, first and last kept), so spikes survive. Files in a remote artifact store are downloaded
to a temporary directory first; paths go through `safe_relpath`, so nothing outside the run's
artifacts is read.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mltrail._paths import safe_relpath
from mltrail.entities import Metric
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.server._http import json_response
from mltrail.server.ui._artifacts import ArtifactView, is_event_file
from mltrail.server.ui._ui import UI
from mltrail.store.downsample import downsample

MAX_EVENTS = 50_000
MAX_BYTES = 64 * 1024 * 1024
MAX_FILES = 100
MAX_LISTED = 5_000
MAX_DEPTH = 8
MAX_POINTS = 1_000
SCALARS_PLUGIN = "scalars"
NOT_INSTALLED = ("Install tensorboard to preview TensorBoard event files as charts (pip install tensorboard, "
                 "or mltrail[tensorflow]); the files can still be downloaded.")


def tensorboard_available() -> bool:
    """Whether TensorBoard's event reader can be imported (it comes with the `tensorflow` extra)."""
    try:
        return importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):  # a broken or blocked installation counts as none
        return False


@dataclass
class ScalarSeries:
    """The points of one tag in one directory ("run", in TensorBoard's words)."""

    run: str
    tag: str
    points: list[Metric] = field(default_factory=list)

    def to_dict(self, max_points: int) -> dict[str, Any]:
        pts = sorted(self.points, key=lambda p: p.step)  # stable: equal steps keep the order written
        shown = downsample(pts, max_points)
        return {"run": self.run, "steps": [p.step for p in shown],
                "values": [p.value if math.isfinite(p.value) else None for p in shown],
                "wall_times": [p.timestamp for p in shown], "points": len(pts)}


class ScalarReader:
    """Reads the scalars of event files, one after another, within one budget of events and bytes."""

    def __init__(self, max_events: int = MAX_EVENTS, max_bytes: int = MAX_BYTES) -> None:
        self.events_left = max_events
        self.bytes_left = max_bytes
        self.events = 0
        self.truncated = False
        self.series: dict[tuple[str, str], ScalarSeries] = {}
        self.problems: list[str] = []

    def read(self, run: str, local_path: str, label: str) -> None:
        """Add the scalars of one event file on local disk (`label` names it in messages)."""
        from tensorboard import data_compat
        from tensorboard.compat.proto import event_pb2

        plugin_of: dict[str, str] = {}  # TF2 writes a tag's plugin metadata with its first value only
        for record in self._records(local_path, label):
            event = data_compat.migrate_event(event_pb2.Event.FromString(record))
            self.events += 1
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin:
                    plugin_of[value.tag] = plugin
                if plugin_of.get(value.tag) != SCALARS_PLUGIN or not value.HasField("tensor"):
                    continue
                number = _scalar(value.tensor)
                if number is None:
                    continue
                key = (run, value.tag)
                series = self.series.get(key)
                if series is None:
                    series = self.series[key] = ScalarSeries(run, value.tag)
                series.points.append(Metric(value.tag, number, int(event.wall_time * 1000), int(event.step)))

    def _records(self, local_path: str, label: str) -> Iterator[bytes]:
        from tensorboard.compat.tensorflow_stub import errors
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

        reader = PyRecordReader_New(local_path)
        read = 0
        try:
            while True:
                if self.events_left <= 0:
                    self.truncated = True
                    return
                try:
                    reader.GetNext()
                except errors.OutOfRangeError:
                    return
                except errors.DataLossError as e:  # a torn last record (still being written) or not an event file
                    self.problems.append(f"{label}: only its first {read} events could be read ({e.message}).")
                    return
                self.events_left -= 1
                read += 1
                yield reader.record()
        finally:
            reader.file_handle.close()


def _scalar(tensor: Any) -> float | None:
    """The number a 0-d (or one-element) tensor holds, else None (histograms, text, images)."""
    from tensorboard.util import tensor_util

    try:
        array = tensor_util.make_ndarray(tensor)
    except (TypeError, ValueError):
        return None
    if array.size != 1 or array.dtype.kind not in "fiub":
        return None
    return float(array.reshape(()))


# ---------------------------------------------------------------------- finding the files
def _walk(view: ArtifactView, rel: str) -> tuple[list[str], bool]:
    """(the event files under directory `rel`, breadth-first within bounds; whether `rel` listed nothing)."""
    found: list[str] = []
    listed = 0
    level = [rel]
    top_is_empty = False
    for depth in range(MAX_DEPTH):
        below: list[str] = []
        for directory in level:
            entries = view.list(directory)
            top_is_empty = top_is_empty or (depth == 0 and not entries)
            listed += len(entries)
            for e in entries:
                if e["is_dir"]:
                    below.append(e["path"])
                elif is_event_file(e["path"]):
                    found.append(e["path"])
            if listed >= MAX_LISTED or len(found) >= MAX_FILES:
                return sorted(found)[:MAX_FILES], top_is_empty
        if not below:
            break
        level = below
    return sorted(found), top_is_empty


def _event_files(view: ArtifactView, rel: str) -> list[str]:
    """The event files at `rel` (one file) or under it (a directory)."""
    if is_event_file(rel):
        if not view.exists(rel):
            raise ResourceDoesNotExist(f"No artifact file at '{rel}'.")
        return [rel]
    found, top_is_empty = _walk(view, rel)
    if found:
        return found
    if rel and top_is_empty:  # not a directory: a file of another kind, or nothing at all
        if view.exists(rel):
            raise InvalidParameterValue(
                f"'{rel}' is not a TensorBoard event file: expected a file named events.out.tfevents.* or a "
                "directory holding such files.")
        raise ResourceDoesNotExist(f"No artifact directory or file at '{rel}'.")
    raise InvalidParameterValue(
        f"No TensorBoard event files under '{rel or '/'}': expected files named events.out.tfevents.* "
        "(TensorBoard's callback writes them under train/ and validation/).")


def event_dirs(view: ArtifactView) -> list[dict[str, Any]]:
    """The run's TensorBoard log directories: event files grouped by their top-level artifact directory."""
    found, _ = _walk(view, "")
    dirs: dict[str, list[str]] = {}
    for f in found:
        top = f.split("/", 1)[0] if "/" in f else ""
        dirs.setdefault(top, []).append(f)
    return [{"path": top, "files": len(files),
             "runs": sorted({_run_name(f, top, False) for f in files})} for top, files in dirs.items()]


def _run_name(file: str, root: str, single: bool) -> str:
    """TensorBoard's name for the directory holding `file`: relative to the directory asked for."""
    parent = file.rsplit("/", 1)[0] if "/" in file else ""
    if single:
        return parent.rsplit("/", 1)[-1] or "."
    if root and parent.startswith(root + "/"):
        return parent[len(root) + 1:]
    return "." if parent == root else parent


def tensorboard_scalars(view: ArtifactView, path: str, max_points: int = MAX_POINTS,
                        max_events: int = MAX_EVENTS, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """The preview's JSON: `charts` (one per tag, a line per directory), the files read, and notes."""
    rel = safe_relpath(path)
    if not tensorboard_available():
        return {"path": rel, "available": False, "note": NOT_INSTALLED, "charts": [], "files": []}
    single = is_event_file(rel)
    files = _event_files(view, rel)
    reader = ScalarReader(max_events, max_bytes)
    with tempfile.TemporaryDirectory(prefix="mltrail-tensorboard-") as tmp:
        for i, f in enumerate(files):
            if reader.events_left <= 0 or reader.bytes_left <= 0:
                reader.truncated = True
                break
            local = _local_copy(view, f, os.path.join(tmp, str(i)), reader)
            reader.read(_run_name(f, rel, single), local, f)
    charts: dict[str, list[ScalarSeries]] = {}
    for (_, tag), series in sorted(reader.series.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        charts.setdefault(tag, []).append(series)
    note = None
    if reader.truncated:
        note = (f"Only the first {reader.events} events are shown: a preview reads at most {max_events} events "
                f"and {max_bytes // (1024 * 1024)} MiB of event files. Open the logs in TensorBoard for all of them.")
    return {"path": rel, "available": True, "files": files, "events": reader.events, "truncated": reader.truncated,
            "note": note, "problems": reader.problems,
            "charts": [{"tag": tag, "series": [s.to_dict(max_points) for s in lines]} for tag, lines in charts.items()]}


def _local_copy(view: ArtifactView, rel: str, tmp_path: str, reader: ScalarReader) -> str:
    """A local path for the file: the file itself in a local store, else its first bytes downloaded."""
    local = view.local_file(rel)
    if local is not None:
        if not os.path.isfile(local):
            raise ResourceDoesNotExist(f"No artifact file at '{rel}'.")
        size = os.path.getsize(local)
        if size <= reader.bytes_left:
            reader.bytes_left -= size
            return local
        data, _ = view.read(rel, reader.bytes_left)  # the reader stops at the torn last record
        reader.truncated = True
    else:
        data, size = view.read(rel, reader.bytes_left)
        if size > len(data):
            reader.truncated = True
    reader.bytes_left -= len(data)
    with open(tmp_path, "wb") as fh:
        fh.write(data)
    return tmp_path


# ---------------------------------------------------------------------- the endpoint
def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameterValue(f"Invalid {name} {raw!r}: expected an integer from {low} to {high}.") from None
    if not low <= value <= high:
        raise InvalidParameterValue(f"Invalid {name} {value}: expected an integer from {low} to {high}.")
    return value


def _view(ui: UI, request: Request) -> ArtifactView:
    run_id = (request.query_params.get("run_id") or "").strip()
    model_id = (request.query_params.get("model_id") or "").strip()
    if run_id:
        return ArtifactView.for_run(ui.ctx, ui.store.get_run(run_id))
    if model_id:
        return ArtifactView.for_model(ui.ctx, ui.store.get_logged_model(model_id))
    raise InvalidParameterValue("Missing value for required parameter 'run_id' (or 'model_id').")


def dirs_endpoint(ui: UI, request: Request) -> Response:
    """`GET /ui/api/tensorboard/dirs?run_id=|model_id=`: where the event files are (for the run page's section)."""
    view = _view(ui, request)
    return json_response({"available": tensorboard_available(), "dirs": event_dirs(view)})


def scalars_endpoint(ui: UI, request: Request) -> Response:
    """`GET /ui/api/tensorboard?run_id=|model_id=&path=[&max_points=]`: the scalar charts of event files."""
    view = _view(ui, request)
    max_points = _int_param(request, "max_points", MAX_POINTS, 4, 20_000)
    body = tensorboard_scalars(view, request.query_params.get("path") or "", max_points)
    return json_response(body)
