"""`log_image` in MLflow's two forms: one file at `artifact_file`, or step-wise images under a `key`.

A step-wise image is stored as MLflow 3.17 lays it out, so that its UI (and ours) can chart it:
`images/<key>+step+<step>+timestamp+<ms>+<uuid>.png` with a WebP thumbnail at the same name plus
`+compressed.webp` (a `/` in the key becomes `~`), and the run gets the tag `mlflow.loggedImages`.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Protocol

from mltrail._images import compress_image_size, encode, to_pil

LOGGED_IMAGES_TAG = "mlflow.loggedImages"
_KEY = re.compile(r"^[a-zA-Z0-9_\-./ ]+$")


class ImageClient(Protocol):
    """What image logging needs of `mltrail.client.Client`."""

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None: ...

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None: ...


def step_image_paths(key: str, step: int, timestamp: int) -> tuple[str, str]:
    """The artifact paths of a step-wise image and of its thumbnail."""
    if not _KEY.match(key):
        raise ValueError(
            "The `key` parameter may only contain alphanumerics, underscores (_), dashes (-), periods (.), "
            f"spaces ( ), and slashes (/). The provided key `{key}` contains invalid characters.")
    base = f"images/{key.replace('/', '~')}+step+{step}+timestamp+{timestamp}+{uuid.uuid4()}"
    return f"{base}.png", f"{base}+compressed.webp"


def log_image(client: ImageClient, run_id: str, image: Any, artifact_file: str | None = None, key: str | None = None,
              step: int | None = None, timestamp: int | None = None) -> None:
    """Log a numpy array, PIL image or `mltrail.Image` (arguments checked in MLflow's words)."""
    if artifact_file is not None and any(arg is not None for arg in (key, step, timestamp)):
        raise TypeError(
            "The `artifact_file` parameter cannot be used in conjunction with `key`, `step`, or `timestamp` "
            "parameters. Please ensure that `artifact_file` is specified alone, without any of these "
            "conflicting parameters.")
    if artifact_file is None and key is None:
        raise TypeError(
            "Invalid arguments: Please specify exactly one of `artifact_file` or `key`. Use `key` to log "
            "dynamic image charts or `artifact_file` for saving static images.")
    pil = to_pil(image)
    if artifact_file is not None:
        fmt = artifact_file.rsplit(".", 1)[-1].upper() if "." in artifact_file else "PNG"
        client.log_bytes(run_id, encode(pil, {"JPG": "JPEG", "TIF": "TIFF"}.get(fmt, fmt)), artifact_file)
        return
    image_path, thumbnail_path = step_image_paths(str(key), step or 0, timestamp or int(time.time() * 1000))
    client.log_bytes(run_id, encode(pil, "PNG"), image_path)
    client.log_bytes(run_id, encode(compress_image_size(pil), "WEBP"), thumbnail_path)
    client.set_tag(run_id, LOGGED_IMAGES_TAG, True)
