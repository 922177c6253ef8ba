"""`ArtifactRepository`: the interface every artifact backend implements (local, S3, the server's proxy).

One root URI, relative '/'-separated paths under it. An abstract base class rather than a
Protocol, because it holds the root and the directory walk every backend shares; a backend
that misses an abstract method cannot be built.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from mltrail._paths import safe_relpath
from mltrail.entities import FileInfo
from mltrail.errors import MlflowNotImplementedException

# MLflow's words (mlflow.exceptions._UnsupportedMultipartUploadException and its twins): its client
# falls back to a plain PUT when an answer's message starts with the first one
MULTIPART_UPLOAD_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
MULTIPART_DOWNLOAD_UNSUPPORTED = "Multipart download is not supported for the current artifact repository"


@dataclass(frozen=True)
class UploadedPart:
    """One part of a multipart upload, as the client reports it at completion."""

    part_number: int
    etag: str


@dataclass(frozen=True)
class PresignedDownload:
    """A URL the client reads the file from directly (with `headers`), and the file's size."""

    url: str
    headers: dict[str, str]
    file_size: int


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

    # ------------------------------------------------------------------ large files
    def file_size(self, path: str) -> int:
        """The size in bytes of the file at `path` (ResourceDoesNotExist when there is none)."""
        from mltrail.errors import ResourceDoesNotExist

        rel = safe_relpath(path)
        parent = rel.rpartition("/")[0]
        for info in self.list_artifacts(parent or None):
            if info.path == rel and not info.is_dir:
                return int(info.file_size or 0)
        raise ResourceDoesNotExist(f"No artifact at {path!r} under {self.root_uri}.")

    def iter_bytes(self, path: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes `start..end` (inclusive; `end` None: to the end) of a file, in chunks.

        Backends that can read a range without loading the file (local, S3) override this."""
        data = self.read_bytes(path)
        yield data[start:None if end is None else end + 1]

    def create_multipart_upload(self, path: str) -> str:
        """Start a multipart upload of the file at `path`; returns its upload id."""
        raise MlflowNotImplementedException(MULTIPART_UPLOAD_UNSUPPORTED)

    def upload_part(self, path: str, upload_id: str, part_number: int, local_file: str) -> str:
        """Store `local_file` as part `part_number` (1-based) of an upload; returns the part's ETag."""
        raise MlflowNotImplementedException(MULTIPART_UPLOAD_UNSUPPORTED)

    def complete_multipart_upload(self, path: str, upload_id: str, parts: list[UploadedPart]) -> None:
        """Join the parts, in part-number order, into the file at `path`."""
        raise MlflowNotImplementedException(MULTIPART_UPLOAD_UNSUPPORTED)

    def abort_multipart_upload(self, path: str, upload_id: str) -> None:
        """Drop an upload and the parts stored so far."""
        raise MlflowNotImplementedException(MULTIPART_UPLOAD_UNSUPPORTED)

    def presigned_part_urls(self, path: str, upload_id: str, num_parts: int, expires_s: int) -> list[str]:
        """URLs the client PUTs parts 1..num_parts to directly, bypassing the server (S3 only)."""
        raise MlflowNotImplementedException(MULTIPART_UPLOAD_UNSUPPORTED)

    def presigned_download(self, path: str, expires_s: int) -> PresignedDownload:
        """A URL the client GETs the file from directly, bypassing the server (S3 only)."""
        raise MlflowNotImplementedException(MULTIPART_DOWNLOAD_UNSUPPORTED)

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
