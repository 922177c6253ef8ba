"""Chromium for the UI tests: where it is, how it starts, and the skip (or, on CI, the failure) when it
cannot. The `browser` fixture (tests/server/conftest.py) is one browser per test module."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 20_000


def require_chromium() -> None:
    """Skip without Debian's Chromium and Playwright; fail instead when MLTRAIL_REQUIRE_CHROMIUM=1 (CI)."""
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    elif importlib.util.find_spec("playwright") is None:
        reason = "playwright is not installed (pip install playwright)"
    if reason is None:
        return
    if os.environ.get("MLTRAIL_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"MLTRAIL_REQUIRE_CHROMIUM=1 but {reason}")
    pytest.skip(f"browser tests need Chromium: {reason}")


@contextmanager
def launched_browser() -> Iterator[Any]:
    """A headless Chromium driven by Playwright, closed on exit."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
