"""What the auth tests share: the admin every test server starts with, and that server's app."""

from __future__ import annotations

from typing import Any

import pytest

from mltrail.server.app import create_app
from mltrail.server.settings import ServerSettings

ADMIN = ("admin", "admin-password-0123")


def auth_app(settings: ServerSettings) -> Any:
    """The tracking server app for `settings` (auth on), its admin made at start-up from the environment
    (`MLTRAIL_ADMIN_USERNAME`/`PASSWORD`), as an operator's first start would."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLTRAIL_ADMIN_USERNAME", ADMIN[0])
        mp.setenv("MLTRAIL_ADMIN_PASSWORD", ADMIN[1])
        return create_app(settings)
