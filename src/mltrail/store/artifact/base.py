"""`ArtifactRepository`: the interface every artifact backend implements (local, S3, the server's proxy).

One root URI, relative '/'-separated paths under it. An abstract base class rather than a
Protocol, because it holds the root and the directory walk every backend shares; a backend
that misses an abstract method cannot be built.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod

from mltrail._paths import safe_relpath
from mltrail.entities import FileInfo


class ArtifactRepository(ABC):
    """Files under one root. Every relative path is checked by `mltrail._paths.safe_relpath`."""

    def __init__(self, root_uri: str) -> None:
        self.root_uri = root_uri

    @abstractmethod
    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None: ...

    @abstractmethod
    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None: ...

    @abstractmethod
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]: ...

    @abstractmethod
    def read_bytes(self, path: str) -> bytes: ...

    @abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None: ...

    @abstractmethod
    def delete_artifacts(self, artifact_path: str | None = None) -> None: ...

    def download_file(self, remote_path: str, local_path: str) -> None:
        """Copy one file (not a directory) to `local_path`, making its parent directories."""
        os.makedirs(os.path.dirname(local_path) or ".", exist_ok=True)
        with open(local_path, "wb") as fh:
            fh.write(self.read_bytes(remote_path))

    def is_dir(self, path: str) -> bool:
        """Whether `path` names a directory (an empty listing of an existing dir counts)."""
        path = safe_relpath(path)
        if not path:
            return True
        parent, _, name = path.rpartition("/")
        return any(f.is_dir and f.path == path for f in self.list_artifacts(parent or None))

    def download_artifacts(self, artifact_path: str | None = None, dst_path: str | None = None) -> str:
        """Copy a file or a directory tree to `dst_path` (a new temp dir by default); return its local path."""
        artifact_path = safe_relpath(artifact_path)
        dst_path = os.path.abspath(dst_path or tempfile.mkdtemp(prefix="mltrail-download-"))
        os.makedirs(dst_path, exist_ok=True)
        if self.is_dir(artifact_path):
            local_root = os.path.join(dst_path, artifact_path) if artifact_path else dst_path
            os.makedirs(local_root, exist_ok=True)
            stack = [artifact_path]
            while stack:
                current = stack.pop()
                for info in self.list_artifacts(current or None):
                    local = os.path.join(dst_path, info.path)
                    if info.is_dir:
                        os.makedirs(local, exist_ok=True)
                        stack.append(info.path)
                    else:
                        self.download_file(info.path, local)
            return local_root
        local = os.path.join(dst_path, artifact_path)
        self.download_file(artifact_path, local)
        return local
