"""Artifacts in a local directory (the embedded default, and a server's artifact destination).

Multipart uploads keep their parts in `<root>/.mltrail-uploads/<upload id>/` (inside the root, so
several server replicas sharing the directory see every part) and are joined into place at
completion; the staging directory is left out of the root's listing, and uploads left unfinished
for a week are dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Iterator

from mltrail._paths import resolve_under, safe_relpath
from mltrail.entities import FileInfo
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.store.artifact.base import ArtifactRepository, UploadedPart

UPLOADS_DIR = ".mltrail-uploads"
# an upload neither completed nor aborted for this long (its client died) is dropped at the next create
STALE_UPLOAD_S = 7 * 24 * 3600
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_CHUNK = 1024 * 1024


def local_path_of(uri: str) -> str:
    if uri.startswith("file:"):
        return urllib.parse.unquote(urllib.parse.urlparse(uri).path)
    return uri


def _append(src: str, out_fd: int) -> None:
    """Append the file `src` to `out_fd`, copied by the kernel where it can (no trip through Python)."""
    with open(src, "rb") as fh:
        left = os.fstat(fh.fileno()).st_size
        try:
            while left > 0:
                n = os.copy_file_range(fh.fileno(), out_fd, left)
                if n == 0:
                    break
                left -= n
        except OSError:  # a filesystem pair the call does not serve: copy through user space
            fh.seek(os.fstat(fh.fileno()).st_size - left)
            while chunk := fh.read(_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out_fd, view):]
            left = 0
        if left:
            raise OSError(f"Could not append {src!r}: {left} bytes were left to copy.")


class LocalArtifactRepository(ArtifactRepository):
    def __init__(self, root_uri: str) -> None:
        super().__init__(root_uri)
        self.root = os.path.abspath(local_path_of(root_uri))

    def path_of(self, rel: str | None) -> str:
        """The local path of artifact `rel`, checked to stay under the root (symlinks included)."""
        return self._path(rel)

    def _path(self, rel: str | None) -> str:
        if safe_relpath(rel).split("/", 1)[0] == UPLOADS_DIR:
            # staged parts are reached only through their upload id, never as artifacts (a listing
            # would hand out other writers' upload ids)
            raise InvalidParameterValue(f"Invalid artifact path {rel!r}: {UPLOADS_DIR}/ holds unfinished "
                                        "multipart uploads, not artifacts.")
        return resolve_under(self.root, rel)

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Copy a file (or a whole directory, keeping its name) under `artifact_path`."""
        if not os.path.exists(local_file):
            raise ResourceDoesNotExist(f"Cannot log artifact {local_file!r}: no such file or directory.")
        dest_dir = self._path(artifact_path)
        os.makedirs(dest_dir, exist_ok=True)
        name = os.path.basename(os.path.normpath(local_file))
        dest = resolve_under(self.root, "/".join(x for x in (safe_relpath(artifact_path), name) if x))
        if os.path.isdir(local_file):
            shutil.copytree(local_file, dest, dirs_exist_ok=True)
        else:
            shutil.copyfile(local_file, dest)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        dest = self._path(artifact_path)
        os.makedirs(dest, exist_ok=True)
        shutil.copytree(local_dir, dest, dirs_exist_ok=True)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a file atomically (a temp file beside it, then a rename)."""
        if not safe_relpath(path):
            raise InvalidParameterValue("Cannot write artifact bytes to the artifact root: expected a file path.")
        dest = self._path(path)
        if os.path.isdir(dest):
            raise InvalidParameterValue(f"Cannot write artifact {path!r}: a directory of that name exists.")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise

    def read_bytes(self, path: str) -> bytes:
        src = self._path(path)
        if not os.path.isfile(src):
            raise ResourceDoesNotExist(f"No artifact at {path!r} under {self.root_uri}.")
        with open(src, "rb") as fh:
            return fh.read()

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        rel = safe_relpath(path)
        base = self._path(rel)
        if not os.path.isdir(base):
            return []
        out = []
        root_real = os.path.realpath(self.root)
        with os.scandir(base) as it:
            for entry in it:
                if not rel and entry.name == UPLOADS_DIR:
                    continue  # unfinished multipart uploads are not artifacts
                child = f"{rel}/{entry.name}" if rel else entry.name
                real = os.path.realpath(entry.path)
                if real != root_real and not real.startswith(root_real + os.sep):
                    continue  # a symlink leading out of the root is not an artifact
                if entry.is_dir():
                    out.append(FileInfo(child, True, None))
                else:
                    out.append(FileInfo(child, False, entry.stat().st_size))
        return sorted(out, key=lambda f: f.path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(self._path(path))

    def download_file(self, remote_path: str, local_path: str) -> None:
        os.makedirs(os.path.dirname(local_path) or ".", exist_ok=True)
        src = self._path(remote_path)
        if not os.path.isfile(src):
            raise ResourceDoesNotExist(f"No artifact at {remote_path!r} under {self.root_uri}.")
        shutil.copyfile(src, local_path)

    def download_artifacts(self, artifact_path: str | None = None, dst_path: str | None = None) -> str:
        src = self._path(artifact_path)
        if not os.path.exists(src):
            raise ResourceDoesNotExist(f"No artifact at {artifact_path!r} under {self.root_uri}.")
        return super().download_artifacts(artifact_path, dst_path)

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        target = self._path(artifact_path)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)

    # ------------------------------------------------------------------ large files
    def file_size(self, path: str) -> int:
        src = self._path(path)
        if not os.path.isfile(src):
            raise ResourceDoesNotExist(f"No artifact at {path!r} under {self.root_uri}.")
        return os.path.getsize(src)

    def iter_bytes(self, path: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        src = self._path(path)
        if not os.path.isfile(src):
            raise ResourceDoesNotExist(f"No artifact at {path!r} under {self.root_uri}.")
        with open(src, "rb") as fh:
            fh.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                chunk = fh.read(_CHUNK if left is None else min(_CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def _staging(self, path: str, upload_id: str) -> str:
        """The staging directory of an upload, checked to belong to the file at `path`."""
        if not _UPLOAD_ID.fullmatch(upload_id or ""):
            raise InvalidParameterValue(f"Invalid upload_id {upload_id!r}: expected the id create returned.")
        staging = os.path.join(self.root, UPLOADS_DIR, upload_id)
        try:
            with open(os.path.join(staging, "target"), encoding="utf-8") as fh:
                target = fh.read()
        except FileNotFoundError:
            raise ResourceDoesNotExist(f"No multipart upload {upload_id!r} under {self.root_uri} (it was "
                                       "completed, aborted, or never created).") from None
        if target != safe_relpath(path):
            raise InvalidParameterValue(f"Multipart upload {upload_id!r} is for {target!r}, not {path!r}.")
        return staging

    def create_multipart_upload(self, path: str) -> str:
        rel = safe_relpath(path)
        if not rel:
            raise InvalidParameterValue("A multipart upload needs a file path, not the artifact root.")
        if os.path.isdir(self._path(rel)):
            raise InvalidParameterValue(f"Cannot upload to {rel!r}: a directory of that name exists.")
        self._drop_stale_uploads()
        upload_id = secrets.token_hex(16)
        staging = os.path.join(self.root, UPLOADS_DIR, upload_id)
        os.makedirs(staging)
        with open(os.path.join(staging, "target"), "w", encoding="utf-8") as fh:
            fh.write(rel)
        return upload_id

    def _drop_stale_uploads(self) -> None:
        uploads = os.path.join(self.root, UPLOADS_DIR)
        cutoff = time.time() - STALE_UPLOAD_S
        with contextlib.suppress(FileNotFoundError), os.scandir(uploads) as it:
            for entry in it:
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            os.remove(entry.path)

    def upload_part(self, path: str, upload_id: str, part_number: int, local_file: str) -> str:
        staging = self._staging(path, upload_id)
        if not 1 <= part_number <= 10000:
            raise InvalidParameterValue(f"Invalid part_number {part_number}: expected 1 to 10000.")
        dest = os.path.join(staging, f"{part_number:05d}")
        shutil.move(local_file, dest + ".tmp")
        os.replace(dest + ".tmp", dest)  # a retried part replaces the failed one whole
        st = os.stat(dest)
        return f"{st.st_size:x}-{st.st_mtime_ns:x}"

    def complete_multipart_upload(self, path: str, upload_id: str, parts: list[UploadedPart]) -> None:
        staging = self._staging(path, upload_id)
        if not parts:
            raise InvalidParameterValue("Cannot complete a multipart upload without parts.")
        numbers = [p.part_number for p in parts]
        if numbers != sorted(set(numbers)):
            raise InvalidParameterValue(f"Parts must be listed once each in ascending order; received {numbers}.")
        files = []
        for part in parts:
            src = os.path.join(staging, f"{part.part_number:05d}")
            if not os.path.isfile(src):
                raise InvalidParameterValue(f"Part {part.part_number} of upload {upload_id!r} was never uploaded.")
            st = os.stat(src)
            if part.etag.strip('"') != f"{st.st_size:x}-{st.st_mtime_ns:x}":
                raise InvalidParameterValue(f"Part {part.part_number} of upload {upload_id!r} has ETag "
                                            f"{part.etag!r}; the stored part's is a different one.")
            files.append(src)
        dest = self._path(path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                for src in files:
                    _append(src, out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        shutil.rmtree(staging, ignore_errors=True)

    def abort_multipart_upload(self, path: str, upload_id: str) -> None:
        shutil.rmtree(self._staging(path, upload_id), ignore_errors=True)
