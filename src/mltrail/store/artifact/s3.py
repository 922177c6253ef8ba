"""Artifacts in S3-compatible object storage (AWS S3, MinIO, Ceph, ...) through boto3.

The root is `s3://bucket/prefix`; an artifact at relative path `a/b.txt` is the object
`prefix/a/b.txt`. Settings come from the environment, as MLflow reads them:
`MLFLOW_S3_ENDPOINT_URL` (or `MLTRAIL_S3_ENDPOINT_URL`) for a non-AWS endpoint,
`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, `MLFLOW_S3_IGNORE_TLS=true` to skip
certificate checks, `MLFLOW_S3_UPLOAD_EXTRA_ARGS` (JSON, e.g. server-side encryption) and
`MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE` ("auto", "path" or "virtual").
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mltrail._paths import safe_relpath
from mltrail.entities import FileInfo
from mltrail.errors import InvalidParameterValue, MltrailException, ResourceDoesNotExist
from mltrail.store.artifact.base import ArtifactRepository, PresignedDownload, UploadedPart

_logger = logging.getLogger(__name__)

# Parallel transfers for trees of files; boto3 clients are thread-safe.
_MAX_WORKERS = 8
_CHUNK = 1024 * 1024


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix) of `s3://bucket/prefix`; the prefix has no leading or trailing '/'."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise InvalidParameterValue(f"Invalid S3 URI {uri!r}: expected s3://<bucket>/<optional prefix>.")
    if parsed.query or parsed.fragment:
        raise InvalidParameterValue(f"Invalid S3 URI {uri!r}: expected no '?query' or '#fragment'.")
    return parsed.netloc, safe_relpath(parsed.path.lstrip("/"), "S3 artifact root prefix")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _is_missing(err: Exception) -> bool:
    """Whether a botocore ClientError says the object or bucket does not exist."""
    response = getattr(err, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


class S3ArtifactRepository(ArtifactRepository):
    """Files under `s3://bucket/prefix`; every relative path is checked by `safe_relpath`."""

    #: Keys per ListObjectsV2 page, and per DeleteObjects call (S3 allows at most 1000 for both).
    list_page_size = 1000
    delete_batch_size = 1000

    def __init__(self, root_uri: str) -> None:
        super().__init__(root_uri)
        self.bucket, self.prefix = parse_s3_uri(root_uri)
        self._client: Any = None
        self._client_lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use and kept for this repository's lifetime."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    @staticmethod
    def _make_client() -> Any:
        import boto3
        from botocore.config import Config

        endpoint = os.environ.get("MLTRAIL_S3_ENDPOINT_URL") or os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None
        addressing = os.environ.get("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "auto")
        config = Config(signature_version="s3v4", s3={"addressing_style": addressing},
                        retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=_MAX_WORKERS * 2)
        kwargs: dict[str, Any] = {"endpoint_url": endpoint, "config": config,
                                  "verify": not _env_flag("MLFLOW_S3_IGNORE_TLS")}
        # boto3 reads these itself too; passing them keeps an explicit env setting first in line.
        for arg, var in (("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
                         ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                         ("aws_session_token", "AWS_SESSION_TOKEN")):
            if os.environ.get(var):
                kwargs[arg] = os.environ[var]
        return boto3.client("s3", **kwargs)

    @staticmethod
    def _upload_extra_args() -> dict[str, Any] | None:
        raw = os.environ.get("MLFLOW_S3_UPLOAD_EXTRA_ARGS")
        if not raw:
            return None
        try:
            extra = json.loads(raw)
        except ValueError as e:
            raise InvalidParameterValue(
                f"Invalid MLFLOW_S3_UPLOAD_EXTRA_ARGS {raw!r}: expected a JSON object ({e}).") from None
        if not isinstance(extra, dict):
            raise InvalidParameterValue(f"Invalid MLFLOW_S3_UPLOAD_EXTRA_ARGS {raw!r}: expected a JSON object.")
        return extra

    def _key(self, rel: str | None) -> str:
        """The object key of a (checked) relative path; the prefix itself for the root."""
        rel = safe_relpath(rel)
        return "/".join(p for p in (self.prefix, rel) if p)

    def _dir_prefix(self, rel: str) -> str:
        """The key prefix under which the children of directory `rel` live ('' for a bucket root)."""
        key = self._key(rel)
        return f"{key}/" if key else ""

    def _rel_of(self, key: str) -> str | None:
        """The relative artifact path of an object key, or None (with a log line) if it is not a safe path."""
        root = f"{self.prefix}/" if self.prefix else ""
        if not key.startswith(root):
            return None
        rel = key[len(root):]
        try:
            clean = safe_relpath(rel, "S3 object key")
        except InvalidParameterValue as e:
            # Someone else wrote a key like 'a/../../x' to the bucket: never turn it into a local path.
            _logger.warning("Skipping S3 object s3://%s/%s: %s", self.bucket, key, e.message)
            return None
        return clean if clean == rel else None

    def _pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        yield from paginator.paginate(Bucket=self.bucket, PaginationConfig={"PageSize": self.list_page_size},
                                      **kwargs)

    def _walk_keys(self, rel: str) -> Iterator[tuple[str, str, int]]:
        """(key, relative path, size) of every object under directory `rel`, at any depth."""
        for page in self._pages(Prefix=self._dir_prefix(rel)):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue  # a zero-byte "folder" marker some tools create
                child = self._rel_of(key)
                if child is not None:
                    yield key, child, int(obj.get("Size", 0))

    def _map(self, fn: Callable[[Any], None], items: list[Any]) -> None:
        """Run `fn` over `items`, in parallel when there are several; re-raise the first error."""
        if len(items) <= 1:
            for item in items:
                fn(item)
            return
        with ThreadPoolExecutor(max_workers=min(_MAX_WORKERS, len(items))) as pool:
            for future in [pool.submit(fn, item) for item in items]:
                future.result()

    # ------------------------------------------------------------------ writing

    def _upload(self, local_file: str, rel: str) -> None:
        self.client.upload_file(local_file, self.bucket, self._key(rel), ExtraArgs=self._upload_extra_args())

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Upload a file (or a whole directory, keeping its name) under `artifact_path`."""
        base = safe_relpath(artifact_path)
        name = os.path.basename(os.path.normpath(local_file))
        dest = "/".join(p for p in (base, safe_relpath(name, "file name")) if p)
        if os.path.isdir(local_file):
            self.log_artifacts(local_file, dest)
        elif os.path.isfile(local_file):
            self._upload(local_file, dest)
        else:
            raise ResourceDoesNotExist(f"Cannot log {local_file!r}: no such file or directory.")

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload the contents of `local_dir` under `artifact_path`."""
        if not os.path.isdir(local_dir):
            raise ResourceDoesNotExist(f"Cannot log artifacts from {local_dir!r}: expected a directory.")
        base = safe_relpath(artifact_path)
        uploads: list[tuple[str, str]] = []
        for root, _dirs, files in os.walk(local_dir):
            rel_dir = os.path.relpath(root, local_dir)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
            for name in files:
                rel = "/".join(p for p in (base, rel_dir, name) if p)
                uploads.append((os.path.join(root, name), safe_relpath(rel)))
        self._map(lambda item: self._upload(*item), uploads)

    def write_bytes(self, path: str, data: bytes) -> None:
        rel = safe_relpath(path)
        if not rel:
            raise InvalidParameterValue("Cannot write to the artifact root itself: expected a file path under it.")
        self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data, **(self._upload_extra_args() or {}))

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Delete a file, or a directory and everything under it (the whole root when no path is given)."""
        rel = safe_relpath(artifact_path)
        # Every object under the prefix, odd names and "folder" markers included, and the object itself.
        keys = [o["Key"] for page in self._pages(Prefix=self._dir_prefix(rel)) for o in page.get("Contents", [])]
        if rel:
            keys.append(self._key(rel))
        step = self.delete_batch_size
        for i in range(0, len(keys), step):
            batch = [{"Key": k} for k in keys[i:i + step]]
            resp = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            errors = [e for e in resp.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if errors:
                raise MltrailException(f"Could not delete {len(errors)} object(s) under s3://{self.bucket}/"
                                       f"{self._key(rel)}: first error {errors[0]}.")

    # ------------------------------------------------------------------ reading

    def _child_name(self, key: str, prefix: str) -> str | None:
        """The single path component `key` adds to directory `prefix`, or None when it is not a safe name."""
        name = key[len(prefix):]
        name = name[:-1] if name.endswith("/") else name
        if not name or "/" in name:
            return None  # the directory's own marker, or an empty component ('a//b')
        return name if self._rel_of(key.rstrip("/")) is not None else None

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """The immediate children of directory `path` ([] for a file or a missing path)."""
        rel = safe_relpath(path)
        prefix = self._dir_prefix(rel)
        out: dict[str, FileInfo] = {}
        for page in self._pages(Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = self._child_name(common["Prefix"], prefix)
                if name is not None:
                    child = f"{rel}/{name}" if rel else name
                    out[child] = FileInfo(child, True, None)
            for obj in page.get("Contents", []):
                name = self._child_name(obj["Key"], prefix)
                if name is None or obj["Key"].endswith("/"):
                    continue
                child = f"{rel}/{name}" if rel else name
                out.setdefault(child, FileInfo(child, False, int(obj.get("Size", 0))))
        return sorted(out.values(), key=lambda f: f.path)

    def is_dir(self, path: str) -> bool:
        rel = safe_relpath(path)
        if not rel:
            return True
        resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._dir_prefix(rel), MaxKeys=1)
        return int(resp.get("KeyCount", 0)) > 0

    def read_bytes(self, path: str) -> bytes:
        from botocore.exceptions import ClientError

        rel = safe_relpath(path)
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(rel))
        except ClientError as e:
            if _is_missing(e):
                raise ResourceDoesNotExist(f"No artifact at {path!r} under {self.root_uri}.") from None
            raise
        body = resp["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def download_file(self, remote_path: str, local_path: str) -> None:
        from botocore.exceptions import ClientError

        os.makedirs(os.path.dirname(local_path) or ".", exist_ok=True)
        # Download beside the target, then rename: a failed transfer never leaves a partial file.
        fd, tmp = tempfile.mkstemp(prefix=".mltrail-", dir=os.path.dirname(local_path) or ".")
        os.close(fd)
        try:
            self.client.download_file(self.bucket, self._key(remote_path), tmp)
            os.replace(tmp, local_path)
        except ClientError as e:
            if _is_missing(e):
                raise ResourceDoesNotExist(f"No artifact at {remote_path!r} under {self.root_uri}.") from None
            raise
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def download_artifacts(self, artifact_path: str | None = None, dst_path: str | None = None) -> str:
        """Download a file or a directory tree (one flat listing, parallel transfers); return its local path."""
        rel = safe_relpath(artifact_path)
        dst_path = os.path.abspath(dst_path or tempfile.mkdtemp(prefix="mltrail-download-"))
        os.makedirs(dst_path, exist_ok=True)
        files = list(self._walk_keys(rel))
        if not files and rel:
            local = os.path.join(dst_path, *rel.split("/"))
            self.download_file(rel, local)  # a single file (or ResourceDoesNotExist)
            return local
        local_root = os.path.join(dst_path, *rel.split("/")) if rel else dst_path
        os.makedirs(local_root, exist_ok=True)
        self._map(lambda item: self.download_file(item[1], os.path.join(dst_path, *item[1].split("/"))), files)
        return local_root

    # ------------------------------------------------------------------ large files

    def _missing_as_404(self, err: Exception, path: str) -> Exception:
        if _is_missing(err):
            return ResourceDoesNotExist(f"No artifact at {path!r} under {self.root_uri}.")
        return err

    def file_size(self, path: str) -> int:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(path))
        except ClientError as e:
            raise self._missing_as_404(e, path) from None
        return int(head["ContentLength"])

    def iter_bytes(self, path: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """A ranged GET of the object, read in 1 MiB chunks as the caller consumes them."""
        from botocore.exceptions import ClientError

        extra = {} if start == 0 and end is None else {"Range": f"bytes={start}-{'' if end is None else end}"}
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(path), **extra)
        except ClientError as e:
            raise self._missing_as_404(e, path) from None
        body = resp["Body"]
        try:
            yield from body.iter_chunks(_CHUNK)
        finally:
            body.close()

    def _file_key(self, path: str) -> str:
        rel = safe_relpath(path)
        if not rel:
            raise InvalidParameterValue("A multipart upload needs a file path, not the artifact root.")
        return self._key(rel)

    def create_multipart_upload(self, path: str) -> str:
        resp = self.client.create_multipart_upload(Bucket=self.bucket, Key=self._file_key(path),
                                                   **(self._upload_extra_args() or {}))
        return str(resp["UploadId"])

    def upload_part(self, path: str, upload_id: str, part_number: int, local_file: str) -> str:
        from botocore.exceptions import ClientError

        try:
            with open(local_file, "rb") as fh:
                resp = self.client.upload_part(Bucket=self.bucket, Key=self._file_key(path), UploadId=upload_id,
                                               PartNumber=part_number, Body=fh)
        except ClientError as e:
            if str(getattr(e, "response", {}).get("Error", {}).get("Code", "")) == "NoSuchUpload":
                raise ResourceDoesNotExist(f"No multipart upload {upload_id!r} for {path!r} under "
                                           f"{self.root_uri} (it was completed, aborted, or never created).") from None
            raise
        return str(resp["ETag"])

    def complete_multipart_upload(self, path: str, upload_id: str, parts: list[UploadedPart]) -> None:
        listed = [{"PartNumber": p.part_number, "ETag": p.etag} for p in parts]
        self.client.complete_multipart_upload(Bucket=self.bucket, Key=self._file_key(path), UploadId=upload_id,
                                              MultipartUpload={"Parts": listed})

    def abort_multipart_upload(self, path: str, upload_id: str) -> None:
        self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._file_key(path), UploadId=upload_id)

    def presigned_part_urls(self, path: str, upload_id: str, num_parts: int, expires_s: int) -> list[str]:
        key = self._file_key(path)
        return [self.client.generate_presigned_url(
            "upload_part", Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": n},
            ExpiresIn=expires_s) for n in range(1, num_parts + 1)]

    def presigned_download(self, path: str, expires_s: int) -> PresignedDownload:
        size = self.file_size(path)
        name = safe_relpath(path).rsplit("/", 1)[-1]
        quoted = urllib.parse.quote(name, safe="")
        url = self.client.generate_presigned_url(
            "get_object", ExpiresIn=expires_s,
            Params={"Bucket": self.bucket, "Key": self._key(path),
                    # a browser following the URL saves the file under its own name, as MLflow asks S3 to
                    "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quoted}"})
        return PresignedDownload(url=url, headers={}, file_size=size)
