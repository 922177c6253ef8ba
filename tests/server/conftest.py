"""Fixtures for server tests: a real server (uvicorn on a thread, SQLite in tmp_path) and its URI."""

from __future__ import annotations

import pytest
from browser_support import launched_browser
from server_fixture import start_server


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (skipped, or failed on CI, without it)."""
    with launched_browser() as b:
        yield b


@pytest.fixture
def server_uri(request, tmp_path) -> str:
    return start_server(request, tmp_path)


@pytest.fixture
def api(server_uri):
    """`api(method, path, **requests_kwargs)` against the test server; returns the Response."""
    import requests

    session = requests.Session()

    def call(method: str, path: str, **kw):
        return session.request(method, server_uri + path, timeout=30, **kw)

    yield call
    session.close()
