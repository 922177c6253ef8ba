"""The client side of MLflow's multipart upload through a tracking server (`/mlflow-artifacts/mpu/...`).

The file goes up in parts, each read from disk as it is sent (memory stays at a few buffers per
part, whatever the file's size), several at once; a part that fails on the way (connection lost,
429, 5xx) is sent again alone after the journal's backoff, never the whole file. The part URLs
are whatever the server handed out: presigned S3 URLs, or its own part route.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mltrail._progress import ProgressBar
from mltrail.errors import TEMPORARILY_UNAVAILABLE, MltrailException
from mltrail.store.backoff import Backoff, parse_retry_after

# MLflow's names and defaults for the part size; the smallest file sent in parts is ours (MLflow's
# 500 MiB leaves a 400 MiB file to a single PUT, which a failure near its end sends again whole)
CHUNK_SIZE_ENV = "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE"
MIN_FILE_SIZE_ENV = "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE"
DEFAULT_CHUNK_SIZE = 10 * 1024 * 1024
DEFAULT_MIN_FILE_SIZE = 64 * 1024 * 1024
PART_THREADS = 4
_READ_BLOCK = 256 * 1024


def env_bytes(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MltrailException(f"Invalid {name} {raw!r}: expected a number of bytes.") from None
    if value < 1:
        raise MltrailException(f"Invalid {name} {raw!r}: expected a positive number of bytes.")
    return value


def part_retries() -> int:
    """How often one part is sent again (MLflow's MLFLOW_HTTP_REQUEST_MAX_RETRIES, 7 by default)."""
    raw = os.environ.get("MLTRAIL_HTTP_REQUEST_MAX_RETRIES") or os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    try:
        return max(int(raw), 0) if raw else 7
    except ValueError:
        return 7


def _flag(name: str) -> bool:
    return (os.environ.get(f"MLTRAIL_{name}") or os.environ.get(f"MLFLOW_{name}") or "").strip().lower() in (
        "1", "true", "yes", "on")


def tls_verify() -> bool | str:
    """`verify=` for part and presigned URLs: off with MLflow's S3_IGNORE_TLS or TRACKING_INSECURE_TLS,
    the tracking server's CA bundle when one is named, else on."""
    if _flag("S3_IGNORE_TLS") or _flag("TRACKING_INSECURE_TLS"):
        return False
    return os.environ.get("MLTRAIL_TRACKING_SERVER_CERT_PATH") or os.environ.get(
        "MLFLOW_TRACKING_SERVER_CERT_PATH") or True


class FileSlice:
    """`length` bytes of a file from `offset`, read in blocks as `requests` sends them; counts them
    on `bar` (and takes them back with `rewind_progress` when the part must be sent again)."""

    def __init__(self, path: str, offset: int, length: int, bar: ProgressBar) -> None:
        self.fh = open(path, "rb")  # noqa: SIM115 - closed by close(), after the request
        self.fh.seek(offset)
        self.left = length
        self.length = length
        self.bar = bar
        self.sent = 0

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = min(_READ_BLOCK if size is None or size < 0 else size, self.left)
        data = self.fh.read(want)
        self.left -= len(data)
        self.sent += len(data)
        self.bar.update(len(data))
        return data

    def rewind_progress(self) -> None:
        self.bar.update(-self.sent)
        self.sent = 0

    def close(self) -> None:
        self.fh.close()


@dataclass(frozen=True)
class PartCredential:
    """Where one part goes: MLflow's MultipartUploadCredential."""

    url: str
    part_number: int
    headers: dict[str, str]


def _transient(status: int) -> bool:
    return status == 429 or status >= 500


def put_part(session: Any, cred: PartCredential, local_file: str, offset: int, length: int, bar: ProgressBar,
             verify: Any = True) -> str:
    """PUT one part, again after a backoff when it fails transiently; returns its ETag."""
    import requests

    backoff = Backoff(first=0.2, cap=10.0)
    attempts = part_retries() + 1
    for attempt in range(attempts):
        body = FileSlice(local_file, offset, length, bar)
        retry_after = None
        try:
            resp = session.put(cred.url, data=body, headers=cred.headers, verify=verify, timeout=300)
        except (requests.ConnectionError, requests.Timeout) as e:
            problem = f"{type(e).__name__}: {e}"
        else:
            if resp.status_code in (200, 201, 204):
                return str(resp.headers.get("ETag", ""))
            if not _transient(resp.status_code):
                raise MltrailException(
                    f"Part {cred.part_number} of {os.path.basename(local_file)} was refused: HTTP "
                    f"{resp.status_code}: {resp.text[:500]}")
            problem = f"HTTP {resp.status_code}"
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        finally:
            body.close()
        body.rewind_progress()
        if attempt == attempts - 1:
            raise MltrailException(f"Part {cred.part_number} of {os.path.basename(local_file)} failed "
                                   f"{attempts} times; last: {problem}.", TEMPORARILY_UNAVAILABLE)
        backoff.sleep(retry_after)
    raise AssertionError("unreachable")  # pragma: no cover


def put_parts(creds: list[PartCredential], local_file: str, chunk_size: int, bar: ProgressBar,
              verify: Any = True) -> list[tuple[int, str]]:
    """Send every part (a few at a time); (part number, ETag) in part order. The first error wins."""
    import requests

    size = os.path.getsize(local_file)
    with requests.Session() as session:
        def one(cred: PartCredential) -> tuple[int, str]:
            offset = (cred.part_number - 1) * chunk_size
            length = max(min(chunk_size, size - offset), 0)
            return cred.part_number, put_part(session, cred, local_file, offset, length, bar, verify)

        with ThreadPoolExecutor(max_workers=min(PART_THREADS, max(len(creds), 1)),
                                thread_name_prefix="mltrail-part") as pool:
            results = [f.result() for f in [pool.submit(one, c) for c in creds]]
    return sorted(results)
