"""Static files for the UI: our own JS/CSS, vendored libraries and Plotly.js from the `plotly` package.

Vendored libraries sit unmodified under `static/vendor/<package>/` (uPlot draws the metric
charts) and are served by their file name (`uPlot.iife.min.js`) like our own files; Plotly.js (parallel coordinates only) is served from the
installed `plotly` package. Every file is read once and served with a content hash in its URL
(`?v=...`) and a year-long immutable cache header, so a browser fetches each version once. JS and
CSS are also sent gzipped once a compressed copy exists (built on a background thread, so the
first request for the 4.8 MB Plotly bundle is not held up by compression; files under 256 KB are
compressed when first read, so uPlot goes out gzipped from the first, cold request).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import re
import threading
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}
_IMMUTABLE = "public, max-age=31536000, immutable"
VENDOR_DIR = os.path.join(STATIC_DIR, "vendor")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a plain file name: no directory, no `..` prefix
_EAGER_GZIP_MAX = 256 * 1024  # compress at first read below this size (milliseconds); above, in the background


def plotly_js_path() -> str | None:
    """Where the installed `plotly` package keeps plotly.min.js (None when plotly is missing)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "package_data", "plotly.min.js")
    return path if os.path.isfile(path) else None


def vendored_path(name: str) -> str | None:
    """The file `name` of a vendored library (`static/vendor/<package>/<name>`), None when there is none."""
    if not os.path.isdir(VENDOR_DIR):
        return None
    for package in sorted(os.listdir(VENDOR_DIR)):
        path = os.path.join(VENDOR_DIR, package, name)
        if os.path.isfile(path):
            return path
    return None


@dataclass
class _File:
    data: bytes
    media_type: str
    version: str
    gz: bytes | None = None
    gz_started: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _compressible(f: _File) -> bool:
    return f.media_type.startswith("text/") and len(f.data) > 1024


class StaticFiles:
    """The UI's static files by name (`plotly.min.js` maps to the plotly package's copy)."""

    def __init__(self) -> None:
        self._files: dict[str, _File | None] = {}
        self._lock = threading.Lock()

    def _path(self, name: str) -> str | None:
        if name == "plotly.min.js":
            return plotly_js_path()
        if not _NAME.fullmatch(name):
            return None
        path = os.path.join(STATIC_DIR, name)
        if os.path.isfile(path):
            return path
        return vendored_path(name)

    def _get(self, name: str) -> _File | None:
        if name in self._files:
            return self._files[name]
        with self._lock:
            if name not in self._files:
                path = self._path(name)
                f = None
                if path is not None:
                    with open(path, "rb") as fh:
                        data = fh.read()
                    ext = os.path.splitext(name)[1]
                    f = _File(data, _TYPES.get(ext, "application/octet-stream"),
                              hashlib.sha256(data).hexdigest()[:12])
                    if _compressible(f) and len(data) <= _EAGER_GZIP_MAX:
                        f.gz, f.gz_started = gzip.compress(data, compresslevel=6), True
                self._files[name] = f
        return self._files[name]

    def url(self, name: str, base: str = "") -> str:
        """The versioned URL of a static file (its content hash in `v`)."""
        f = self._get(name)
        version = f.version if f else "missing"
        return f"{base}/ui/static/{name}?v={version}"

    def available(self, name: str) -> bool:
        return self._get(name) is not None

    def _compress(self, f: _File) -> None:
        f.gz = gzip.compress(f.data, compresslevel=6)

    def response(self, request: Request, name: str) -> Response:
        f = self._get(name)
        if f is None:
            return PlainTextResponse(f"No static file {name!r}.", status_code=404)
        etag = f'"{f.version}"'
        headers = {"Cache-Control": _IMMUTABLE, "ETag": etag, "X-Content-Type-Options": "nosniff",
                   "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        body = f.data
        if _compressible(f) and "gzip" in request.headers.get("accept-encoding", ""):
            if f.gz is not None:
                body = f.gz
                headers["Content-Encoding"] = "gzip"
            else:
                with f.lock:
                    start = not f.gz_started
                    f.gz_started = True
                if start:
                    threading.Thread(target=self._compress, args=(f,), daemon=True).start()
        return Response(body, media_type=f.media_type, headers=headers)
