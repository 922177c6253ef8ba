"""Artifact browsing for the UI: directory listings, previews and raw files of runs and logged models.

Locations are resolved by the server context (`ctx.repo_for`), which only serves files under the
server's configured roots; every relative path goes through `safe_relpath`. Previews are data
(text, or a URL for images): the page shows text with `textContent` and images with `<img>`, and
raw files are served with `nosniff` and a sandboxing CSP, so a stored HTML or SVG file never runs
as part of the UI.
"""

from __future__ import annotations

import json
import mimetypes
import os
from typing import Any

from mltrail._paths import resolve_under, safe_relpath
from mltrail.errors import ResourceDoesNotExist
from mltrail.server.context import ServerContext
from mltrail.server.ui._table_data import TableData, cell_text, csv_table, is_split_json, split_json

PREVIEW_LIMIT = 512 * 1024  # bytes of text shown; larger files are cut with a note
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".svg")
JSON_EXTS = (".json",)
CSV_EXTS = (".csv",)
YAML_EXTS = (".yaml", ".yml")
YAML_NAMES = ("MLmodel",)
TEXT_EXTS = (".txt", ".log", ".csv", ".tsv", ".md", ".py", ".cfg", ".ini", ".toml", ".html", ".htm", ".xml",
             ".sh", ".ipynb", ".rst", ".pbtxt", ".js", ".css")
EVENT_MARK = "tfevents"  # TensorBoard's own test for an event file's name (`events.out.tfevents.*`)
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
                "Cache-Control": "no-cache"}


def is_event_file(path: str) -> bool:
    """Whether a file's name is a TensorBoard event file's (previewed as charts by `_tensorboard`)."""
    return EVENT_MARK in path.rsplit("/", 1)[-1]


def _join(prefix: str, rel: str) -> str:
    return "/".join(p for p in (prefix, rel) if p)


class ArtifactView:
    """The artifacts of one run or logged model, addressed by paths relative to its root."""

    def __init__(self, repo: Any, prefix: str, owner: str, owner_id: str) -> None:
        self.repo = repo
        self.prefix = prefix
        self.owner = owner  # "run" | "model"
        self.owner_id = owner_id

    @classmethod
    def for_run(cls, ctx: ServerContext, run: Any) -> ArtifactView:
        repo, prefix = ctx.repo_for(run.info.artifact_uri)
        return cls(repo, prefix, "run", run.info.run_id)

    @classmethod
    def for_model(cls, ctx: ServerContext, model: Any) -> ArtifactView:
        repo, prefix = ctx.repo_for(model.artifact_location)
        return cls(repo, prefix, "model", model.model_id)

    def list(self, path: str = "") -> list[dict[str, Any]]:
        """The entries of one directory: directories first, then files, each by name."""
        rel = safe_relpath(path)
        cut = len(self.prefix) + 1 if self.prefix else 0
        files = self.repo.list_artifacts(_join(self.prefix, rel) or None)
        out = [{"path": f.path[cut:], "name": f.path.rsplit("/", 1)[-1], "is_dir": f.is_dir,
                "size": f.file_size} for f in files]
        out.sort(key=lambda e: (not e["is_dir"], e["name"].lower()))
        return out

    def local_file(self, rel: str) -> str | None:
        from mltrail.store.artifact.local import LocalArtifactRepository

        if not isinstance(self.repo, LocalArtifactRepository):
            return None
        return resolve_under(self.repo.root, _join(self.prefix, rel))

    def read(self, path: str, limit: int | None = None) -> tuple[bytes, int]:
        """(the file's first `limit` bytes, or all of it; its size)."""
        rel = safe_relpath(path)
        if not rel:
            raise ResourceDoesNotExist("An artifact file path is required.")
        local = self.local_file(rel)
        if local is not None:
            if not os.path.isfile(local):
                raise ResourceDoesNotExist(f"No artifact file at '{rel}'.")
            size = os.path.getsize(local)
            with open(local, "rb") as fh:
                return fh.read(limit if limit is not None else -1), size
        data = self.repo.read_bytes(_join(self.prefix, rel))
        return (data[:limit] if limit is not None else data), len(data)

    def exists(self, path: str) -> bool:
        try:
            self.read(path, 0)
            return True
        except (ResourceDoesNotExist, FileNotFoundError):
            return False
        except Exception:  # noqa: BLE001 - a store that cannot read the file: treat as absent
            return False

    def file_url(self, base: str, path: str) -> str:
        from urllib.parse import quote

        return f"{base}/ui/files/{self.owner}/{quote(self.owner_id)}/{quote(safe_relpath(path))}"

    def preview(self, path: str, base: str = "") -> dict[str, Any]:
        """What the preview pane shows: `kind` is image, tensorboard, table (CSV, split JSON), json, yaml, text, binary.

        A TensorBoard event file's preview is only its kind: the pane asks `/ui/api/tensorboard` for its charts.
        """
        rel = safe_relpath(path)
        name = rel.rsplit("/", 1)[-1]
        lower = name.lower()
        out: dict[str, Any] = {"path": rel, "name": name, "url": self.file_url(base, rel)}
        if lower.endswith(IMAGE_EXTS):
            _, size = self.read(rel, 0)
            return out | {"kind": "image", "size": size}
        if is_event_file(rel):
            _, size = self.read(rel, 0)
            return out | {"kind": "tensorboard", "size": size}
        data, size = self.read(rel, PREVIEW_LIMIT)
        truncated = size > len(data)
        out |= {"size": size, "truncated": truncated}
        if b"\x00" in data[:8192]:
            return out | {"kind": "binary"}
        text = data.decode("utf-8", errors="replace")
        kind = "text"
        if lower.endswith(CSV_EXTS):
            try:
                return out | {"kind": "table", "table": _table_json(csv_table(data, not truncated))}
            except ValueError:
                pass  # not a table after all: shown as text
        if lower.endswith(JSON_EXTS):
            kind = "json"
            if not truncated:
                try:
                    doc = json.loads(text)
                    if is_split_json(doc):  # a logged table (log_table's split JSON)
                        return out | {"kind": "table", "table": _table_json(split_json(doc))}
                    text = json.dumps(doc, indent=2, ensure_ascii=False)
                except ValueError:
                    kind = "text"
        elif lower.endswith(YAML_EXTS) or name in YAML_NAMES:
            kind = "yaml"
        elif not lower.endswith(TEXT_EXTS) and "." in name and not _looks_textual(data):
            return out | {"kind": "binary"}
        return out | {"kind": kind, "text": text}


def _table_json(table: TableData) -> dict[str, Any]:
    """A table for the preview pane: every cell already text (artifacts.js shows it with textContent)."""
    return {"columns": table.columns, "rows": [[cell_text(v) for v in row] for row in table.rows],
            "total": table.total}


def _looks_textual(data: bytes) -> bool:
    try:
        data[:4096].decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def media_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"
