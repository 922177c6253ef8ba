"""The `store` fixture: the same tests run against every tracking store backend."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mltrail.store import clear_cache, get_store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "rest"]


def _rest_uri(request, tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
    from server_fixture import start_server  # tests/server/server_fixture.py: the real app on a thread

    return start_server(request, tmp_path)


@pytest.fixture(params=BACKENDS)
def store_uri(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    if request.param == "postgres":
        return request.getfixturevalue("postgres_uri")
    return _rest_uri(request, tmp_path)


@pytest.fixture
def store(store_uri, tmp_path):
    clear_cache()
    return get_store(store_uri, artifact_root=str(tmp_path / "artifacts"))


@pytest.fixture
def logged(store):
    """`log_batch` then wait for it: a remote store queues log calls and reports errors at flush."""

    def log_batch(run_id, **kwargs):
        store.log_batch(run_id, **kwargs)
        flush = getattr(store, "flush", None)
        if flush is not None:
            flush()

    return log_batch


@pytest.fixture
def local_store(store, store_uri):
    """Maintenance calls (purge, deleted runs) exist on database stores only, not over REST."""
    if store_uri.startswith("http"):
        pytest.skip("run purging is a database-side operation (mltrail gc), not part of the REST API")
    return store
