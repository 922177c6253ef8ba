"""Which store a process talks to: `set_tracking_uri`, then MLTRAIL_TRACKING_URI, then
MLFLOW_TRACKING_URI (compatibility), then the embedded default `./mltrail/` (SQLite + a folder).

A tracking URI is a database URL (`sqlite:///x.db`, `postgresql://...`), a server
(`http(s)://...`), or a directory (`./mltrail`, `file:///abs/dir`) holding `mltrail.db` and
`artifacts/`.
"""

from __future__ import annotations

import os
import threading
import urllib.parse

_lock = threading.Lock()
_explicit_uri: str | None = None
_explicit_registry_uri: str | None = None
DEFAULT_DIR = "mltrail"


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Use `uri` from now on in this process (None returns to the environment/default)."""
    global _explicit_uri
    with _lock:
        _explicit_uri = None if uri is None else absolutize(os.fspath(uri))


def absolutize(uri: str) -> str:
    """Pin relative paths to the directory current when the URI was set (as MLflow does)."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////") and uri != "sqlite:///:memory:":
        return "sqlite:///" + os.path.abspath(uri[len("sqlite:///"):])
    if "://" not in uri and not uri.startswith("file:"):
        return os.path.abspath(uri)
    return uri


def get_tracking_uri() -> str:
    """The tracking URI in force, as a string."""
    if _explicit_uri is not None:
        return _explicit_uri
    env = os.environ.get("MLTRAIL_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return absolutize(env)
    return "sqlite:///" + os.path.abspath(os.path.join(DEFAULT_DIR, "mltrail.db"))


def is_tracking_uri_set() -> bool:
    return _explicit_uri is not None or bool(
        os.environ.get("MLTRAIL_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI"))


def scheme_of(uri: str) -> str:
    """The lower-cased scheme of `uri` ("" for a plain path, including a Windows drive letter)."""
    head, sep, _ = uri.partition(":")
    if not sep or len(head) == 1 or "/" in head:  # a plain path (or a Windows drive letter)
        return ""
    return head.lower()


def set_registry_uri(uri: str | os.PathLike[str] | None) -> None:
    """Use `uri` for the model registry from now on (None returns to the environment/tracking URI)."""
    global _explicit_registry_uri
    _explicit_registry_uri = os.fspath(uri) if uri is not None else None


def registry_uri_if_set() -> str | None:
    """set_registry_uri's URI, else MLTRAIL_REGISTRY_URI / MLFLOW_REGISTRY_URI, else None."""
    return _explicit_registry_uri or os.environ.get("MLTRAIL_REGISTRY_URI") or os.environ.get("MLFLOW_REGISTRY_URI")


def get_registry_uri() -> str:
    """The registry URI in force: the one set or configured, else the tracking URI."""
    return registry_uri_if_set() or get_tracking_uri()


def local_dir_of(uri: str) -> str | None:
    """The directory a `file:`/plain-path URI names, else None."""
    if uri.startswith("file:"):
        return urllib.parse.unquote(urllib.parse.urlparse(uri).path)
    if "://" not in uri and ":" not in uri.split("/", 1)[0]:
        return os.path.abspath(uri)
    return None


def default_artifact_root_for(db_uri: str) -> str:
    """Artifacts live beside the database file: `<db dir>/artifacts` (for a server DB: ./mltrail/artifacts)."""
    if db_uri.startswith("sqlite:///") and db_uri != "sqlite:///:memory:":
        return os.path.join(os.path.dirname(os.path.abspath(db_uri[len("sqlite:///"):])), "artifacts")
    return os.path.abspath(os.path.join(DEFAULT_DIR, "artifacts"))
