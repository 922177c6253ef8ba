"""Tracking stores, chosen by URI scheme from one registry (`sqlite`, `postgresql`, `http(s)`, a path).

Stores are cached per (URI, artifact root) in each process: opening a SQL store runs migrations
and builds a connection pool, which is work to do once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from mltrail.errors import InvalidParameterValue
from mltrail.store.base import TrackingStore
from mltrail.store.mlflow_detect import check_not_file_store
from mltrail.store.registry_base import RegistryStore
from mltrail.tracking_uri import default_artifact_root_for, get_tracking_uri, local_dir_of, scheme_of

_factories: dict[str, Callable[[str, str | None], TrackingStore]] = {}
_cache: dict[tuple[str, str | None], TrackingStore] = {}
_lock = threading.Lock()


def register_store(scheme: str, factory: Callable[[str, str | None], TrackingStore]) -> None:
    """Make `factory(uri, artifact_root)` the store for URIs starting with `scheme:`."""
    _factories[scheme] = factory


def _sql_store(uri: str, artifact_root: str | None) -> TrackingStore:
    from mltrail.store.sql.store import SqlTrackingStore  # SQLAlchemy loads only when a database is used

    return SqlTrackingStore(uri, artifact_root or default_artifact_root_for(uri))


def _dir_store(uri: str, artifact_root: str | None) -> TrackingStore:
    directory = local_dir_of(uri) or uri
    check_not_file_store(directory, uri)  # an MLflow `mlruns` folder is imported, never silently reused
    return _sql_store("sqlite:///" + os.path.join(directory, "mltrail.db"),
                      artifact_root or os.path.join(directory, "artifacts"))


def _rest_store(uri: str, artifact_root: str | None) -> TrackingStore:
    from mltrail.store.rest import RestTrackingStore  # requests loads only when a server is used

    return RestTrackingStore(uri)


for _scheme in ("sqlite", "postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "mysql",
                "mysql+pymysql"):
    register_store(_scheme, _sql_store)
register_store("file", _dir_store)
register_store("http", _rest_store)
register_store("https", _rest_store)


def get_store(uri: str | None = None, artifact_root: str | None = None) -> TrackingStore:
    """The tracking store for `uri` (default: the tracking URI in force)."""
    uri = uri or get_tracking_uri()
    key = (uri, artifact_root)
    store = _cache.get(key)
    if store is not None:
        return store
    with _lock:
        store = _cache.get(key)
        if store is None:
            scheme = scheme_of(uri)
            factory = _dir_store if scheme == "" else _factories.get(scheme)
            if factory is None:
                raise InvalidParameterValue(
                    f"Unsupported tracking URI {uri!r}: expected sqlite:///FILE, postgresql://..., http(s)://HOST "
                    f"or a directory path (known schemes: {', '.join(sorted(_factories))}).")
            store = factory(uri, artifact_root)
            _cache[key] = store
    return store


def get_registry_store(uri: str | None = None) -> RegistryStore:
    """The model registry store for `uri` (default: the tracking URI in force): the same object as its tracking store."""
    store = get_store(uri)
    if not isinstance(store, RegistryStore):
        raise InvalidParameterValue(
            f"The store for {uri or get_tracking_uri()!r} ({type(store).__name__}) has no model registry: "
            "expected a database URI or an mltrail/MLflow tracking server.")
    return store


def clear_cache() -> None:
    """Forget cached stores (tests and forks use this)."""
    with _lock:
        _cache.clear()
