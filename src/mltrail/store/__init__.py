"""Tracking stores, chosen by URI scheme from one registry (`sqlite`, `postgresql`, `http(s)`, a path).

Stores are cached per (URI, artifact root) in each process: opening a SQL store runs migrations
and builds a connection pool, which is work to do once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.tracking_uri import scheme_of

_factories: dict[str, Callable[[str, str | None], Any]] = {}
_cache: dict[tuple[str, str | None], Any] = {}
_lock = threading.Lock()


def register_store(scheme: str, factory: Callable[[str, str | None], Any]) -> None:
    """Make `factory(uri, artifact_root)` the store for URIs starting with `scheme:`."""
    _factories[scheme] = factory


def _sql_store(uri: str, artifact_root: str | None) -> Any:
    from mltrail.store.sql.store import SqlTrackingStore
    from mltrail.tracking_uri import default_artifact_root_for

    return SqlTrackingStore(uri, artifact_root or default_artifact_root_for(uri))


def _dir_store(uri: str, artifact_root: str | None) -> Any:
    from mltrail.tracking_uri import local_dir_of

    directory = local_dir_of(uri) or uri
    return _sql_store("sqlite:///" + os.path.join(directory, "mltrail.db"),
                      artifact_root or os.path.join(directory, "artifacts"))


def _rest_store(uri: str, artifact_root: str | None) -> Any:
    from mltrail.store.rest import RestTrackingStore

    return RestTrackingStore(uri)


for _scheme in ("sqlite", "postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "mysql",
                "mysql+pymysql"):
    register_store(_scheme, _sql_store)
register_store("file", _dir_store)
register_store("http", _rest_store)
register_store("https", _rest_store)


def get_store(uri: str | None = None, artifact_root: str | None = None) -> Any:
    """The tracking store for `uri` (default: the tracking URI in force)."""
    from mltrail.tracking_uri import get_tracking_uri

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


def clear_cache() -> None:
    """Forget cached stores (tests and forks use this)."""
    with _lock:
        _cache.clear()
