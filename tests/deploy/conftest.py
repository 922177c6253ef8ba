"""Fixtures for the deployment tests: tests/server's helpers (the browser) on the import path."""

from __future__ import annotations

import sys
from pathlib import Path

# browser_support lives beside tests/server's conftest; the stack's UI test drives the same Chromium.
_SERVER_TESTS = str(Path(__file__).resolve().parents[1] / "server")
if _SERVER_TESTS not in sys.path:
    sys.path.append(_SERVER_TESTS)
