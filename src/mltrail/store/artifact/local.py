"""Artifacts in a local directory (the embedded default, and a server's artifact destination)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.parse

from mltrail._paths import resolve_under, safe_relpath
from mltrail.entities import FileInfo
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.store.artifact.base import ArtifactRepository


def local_path_of(uri: str) -> str:
    if uri.startswith("file:"):
        return urllib.parse.unquote(urllib.parse.urlparse(uri).path)
    return uri


class LocalArtifactRepository(ArtifactRepository):
    def __init__(self, root_uri: str) -> None:
        super().__init__(root_uri)
        self.root = os.path.abspath(local_path_of(root_uri))

    def _path(self, rel: str | None) -> str:
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
