"""The `store` fixture: the same tests run against every tracking store backend."""

from __future__ import annotations

import pytest

from mltrail.store import clear_cache, get_store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _rest_uri(request, tmp_path):
    from server_fixture import start_server  # tests/server/server_fixture.py

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
