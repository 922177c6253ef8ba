"""What the run page shows of a run's media: an image gallery, step-wise image series and logged tables.

One bounded walk of the artifact tree (the root and the folders one and two levels down, at most
`MAX_LISTINGS` listings) finds the image files and CSV files. Step-wise images are the files under
`images/` in MLflow's layout (`<key>+step+<n>+timestamp+<ms>+<uuid>.png` with a
`+compressed.webp` thumbnail; `%` instead of `+` in MLflow before 3.x), marked on the run by the tag
`mlflow.loggedImages`. Logged tables are the run tag `mlflow.loggedArtifacts`'s entries of type
"table" (pandas' split JSON). Every file is read through `ArtifactView` (so through `safe_relpath`),
and table cells come back as plain strings for the autoescaping template.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mltrail.errors import MltrailException
from mltrail.server.ui._artifacts import ArtifactView
from mltrail.server.ui._format import fmt_size
from mltrail.server.ui._table_data import MAX_ROWS, TableData, cell_text, csv_table, split_json

LOGGED_IMAGES_TAG = "mlflow.loggedImages"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
GALLERY_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif")
WALK_DEPTH = 2  # folders below the root whose files are looked at
MAX_LISTINGS = 40  # folder listings per page view (each may be a request to an object store)
MAX_GALLERY = 60
MAX_SERIES = 24
MAX_STEPS = 100  # per series; more are thinned evenly, keeping the first and the last
MAX_TABLES = 20
TABLE_BYTES = 4 * 1024 * 1024  # a logged table (JSON) larger than this is not parsed for the page
CSV_BYTES = 256 * 1024  # of a CSV file, only the beginning is read: enough for MAX_ROWS rows
CELL_CHARS = 300
# Folders whose images belong to something else: table cells (shown in their table).
SKIP_DIRS = ("table_images",)
STEP_IMAGE = re.compile(
    r"^images/(?P<key>[^/]+?)(?P<d>[+%])step(?P=d)(?P<step>-?\d+)(?P=d)timestamp(?P=d)(?P<ts>\d+)"
    r"(?P=d)(?P<uuid>[^/+%]+?)(?P<thumb>(?P=d)compressed)?\.(?P<ext>png|webp)$")


@dataclass
class GalleryImage:
    """An image file of the run, shown as a thumbnail that links to the file."""

    path: str
    url: str


@dataclass
class StepImage:
    """One step of a step-wise image: the full PNG and its WebP thumbnail (the PNG when there is none)."""

    step: int
    timestamp: int
    url: str
    thumb_url: str


@dataclass
class ImageSeries:
    """The images logged under one key, by step."""

    key: str
    steps: list[StepImage]
    total: int  # steps logged (more than `steps` when thinned)


@dataclass
class TableCell:
    """A cell as text, or as an image (a table's image column) with its thumbnail."""

    text: str = ""
    url: str = ""
    thumb_url: str = ""


@dataclass
class TableView:
    """The first rows of a table file of the run."""

    path: str
    url: str
    kind: str  # "table" (log_table) | "csv"
    columns: list[str] = field(default_factory=list)
    rows: list[list[TableCell]] = field(default_factory=list)
    total: int | None = None  # rows in the file; None when only its beginning was read
    error: str = ""


@dataclass
class Media:
    """Everything the run page's Images and Tables sections show."""

    gallery: list[GalleryImage] = field(default_factory=list)
    more_images: int = 0
    series: list[ImageSeries] = field(default_factory=list)
    more_series: int = 0
    tables: list[TableView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def has_images(self) -> bool:
        return bool(self.gallery or self.series)


def _walk(view: ArtifactView, root_files: list[dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """The files at the root and up to WALK_DEPTH folders down (breadth first, bounded)."""
    files = [f for f in root_files if not f["is_dir"]]
    queue = [(f["path"], 1) for f in root_files if f["is_dir"] and f["name"] not in SKIP_DIRS]
    listings = 0
    while queue:
        if listings >= MAX_LISTINGS:
            notes.append(f"Only {MAX_LISTINGS} folders were searched for images and tables; "
                         "the artifact browser shows the rest.")
            break
        path, level = queue.pop(0)
        listings += 1
        try:
            entries = view.list(path)
        except (MltrailException, OSError) as e:
            notes.append(f"Could not list '{path}': {getattr(e, 'message', e)}")
            continue
        for entry in entries:
            if not entry["is_dir"]:
                files.append(entry)
            elif level < WALK_DEPTH:
                queue.append((entry["path"], level + 1))
    return files


def _url(view: ArtifactView, base: str, path: str) -> str:
    """The file's URL under /ui/files ('' when the path is refused: such a file is not shown)."""
    try:
        return view.file_url(base, path)
    except MltrailException:
        return ""


def _thin(steps: list[StepImage], n: int) -> list[StepImage]:
    if len(steps) <= n:
        return steps
    picks = sorted({round(i * (len(steps) - 1) / (n - 1)) for i in range(n)})
    return [steps[i] for i in picks]


def _series(view: ArtifactView, base: str, files: list[dict[str, Any]]) -> tuple[list[ImageSeries], set[str]]:
    """Step-wise images grouped by key, and the paths they account for (kept out of the gallery)."""
    thumbs: dict[str, str] = {}
    full: list[tuple[str, int, int, str, str]] = []  # key, step, timestamp, stem, path
    used: set[str] = set()
    for f in files:
        m = STEP_IMAGE.match(f["path"])
        if not m:
            continue
        used.add(f["path"])
        delim = m["d"]
        stem = f"{m['key']}{delim}step{delim}{m['step']}{delim}timestamp{delim}{m['ts']}{delim}{m['uuid']}"
        if m["thumb"]:
            thumbs[stem] = f["path"]
        elif m["ext"] == "png":
            key = m["key"].replace("~", "/").replace("#", "/")
            full.append((key, int(m["step"]), int(m["ts"]), stem, f["path"]))
    by_key: dict[str, list[StepImage]] = {}
    for key, step, ts, stem, path in full:
        url = _url(view, base, path)
        if not url:
            continue
        thumb = _url(view, base, thumbs[stem]) if stem in thumbs else ""
        by_key.setdefault(key, []).append(StepImage(step, ts, url, thumb or url))
    out = []
    for key in sorted(by_key):
        steps = sorted(by_key[key], key=lambda s: (s.step, s.timestamp))
        out.append(ImageSeries(key, _thin(steps, MAX_STEPS), len(steps)))
    return out, used


def _cell(view: ArtifactView, base: str, value: Any) -> TableCell:
    if isinstance(value, dict) and value.get("type") == "image" and isinstance(value.get("filepath"), str):
        url = _url(view, base, value["filepath"])
        thumb = value.get("compressed_filepath")
        thumb_url = _url(view, base, thumb) if isinstance(thumb, str) else ""
        if url:
            return TableCell(value["filepath"], url, thumb_url or url)
    return TableCell(cell_text(value, CELL_CHARS))


def _logged_table(view: ArtifactView, base: str, path: str) -> TableView:
    """A table logged by log_table: pandas' split JSON ({"columns": [...], "data": [[...], ...]})."""
    out = TableView(path, _url(view, base, path), "table")
    if path.endswith(".parquet"):
        out.error = "A Parquet table: download it from the artifact browser."
        return out
    data, size = view.read(path, TABLE_BYTES)
    if size > len(data):
        out.error = (f"This table is {fmt_size(size)}, too large to show here "
                     f"(at most {fmt_size(TABLE_BYTES)}): download it.")
        return out
    try:
        table = split_json(json.loads(data.decode("utf-8", errors="replace")), MAX_ROWS)
    except ValueError as e:
        out.error = str(e)
        return out
    return _filled(view, base, out, table)


def _csv_table(view: ArtifactView, base: str, path: str) -> TableView:
    out = TableView(path, _url(view, base, path), "csv")
    data, size = view.read(path, CSV_BYTES)
    try:
        table = csv_table(data, size <= len(data), MAX_ROWS)
    except ValueError as e:
        out.error = str(e)
        return out
    return _filled(view, base, out, table)


def _filled(view: ArtifactView, base: str, out: TableView, table: TableData) -> TableView:
    out.columns, out.total = table.columns, table.total
    out.rows = [[_cell(view, base, v) for v in row] for row in table.rows]
    return out


def _table_paths(tags: dict[str, str], files: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(path, kind) of the run's logged tables, then of its CSV files at the root and one folder down."""
    out: dict[str, str] = {}
    try:
        listed = json.loads(tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
    except ValueError:
        listed = []
    for entry in listed if isinstance(listed, list) else []:
        if isinstance(entry, dict) and entry.get("type") == "table" and isinstance(entry.get("path"), str):
            out.setdefault(entry["path"], "table")
    for f in files:
        if f["path"].lower().endswith(".csv") and f["path"].count("/") <= 1:
            out.setdefault(f["path"], "csv")
    return list(out.items())


def _table(view: ArtifactView, base: str, path: str, kind: str) -> TableView:
    try:
        return _logged_table(view, base, path) if kind == "table" else _csv_table(view, base, path)
    except (MltrailException, OSError) as e:
        return TableView(path, "", kind, error=str(getattr(e, "message", e)))


def collect_media(view: ArtifactView, root_files: list[dict[str, Any]], tags: dict[str, str],
                  base: str) -> Media:
    """The run's gallery images, step-wise image series and tables, from one bounded walk of its artifacts."""
    media = Media()
    files = _walk(view, root_files, media.notes)
    series, used = _series(view, base, files)
    media.series, media.more_series = series[:MAX_SERIES], max(0, len(series) - MAX_SERIES)
    images = [f["path"] for f in files if f["path"].lower().endswith(GALLERY_EXTS) and f["path"] not in used]
    for path in images[:MAX_GALLERY]:
        url = _url(view, base, path)
        if url:
            media.gallery.append(GalleryImage(path, url))
    media.more_images = max(0, len(images) - MAX_GALLERY)
    if tags.get(LOGGED_IMAGES_TAG, "").lower() == "true" and not series:
        media.notes.append(f"The run has the tag {LOGGED_IMAGES_TAG}, but no step-wise images were found "
                           "under images/.")
    media.tables = [_table(view, base, p, k) for p, k in _table_paths(tags, files)[:MAX_TABLES]]
    return media
