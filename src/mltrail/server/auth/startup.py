"""Start-up with auth on: make the admin that `MLTRAIL_ADMIN_PASSWORD` asks for, and refuse to serve
with no admin at all (there is no default password)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from mltrail.errors import MltrailException, ResourceAlreadyExists
from mltrail.server.auth.store import AuthStore, acting_as

ADMIN_USERNAME_ENV = "MLTRAIL_ADMIN_USERNAME"
ADMIN_PASSWORD_ENV = "MLTRAIL_ADMIN_PASSWORD"
DEFAULT_ADMIN = "admin"
logger = logging.getLogger("mltrail.server.auth")


class NoAdmin(MltrailException):
    """Auth is on and the database has no admin user."""

    error_code = "INVALID_STATE"


def ensure_admin(store: AuthStore, environ: Mapping[str, str] | None = None) -> None:
    """Create the admin named by the environment if asked (and missing); refuse to go on without any admin."""
    env = os.environ if environ is None else environ
    password = env.get(ADMIN_PASSWORD_ENV)
    username = env.get(ADMIN_USERNAME_ENV) or DEFAULT_ADMIN
    if password:
        try:
            with acting_as("startup"):
                store.create_user(username, password, is_admin=True)
            logger.warning("Created the admin user %r from %s.", username, ADMIN_PASSWORD_ENV)
        except ResourceAlreadyExists:
            pass  # made on an earlier start (or by another worker): the password in the database stands
    if not store.has_admin():
        raise NoAdmin(
            "The server runs with --auth but its database has no admin user, and mltrail has no default "
            "password. Make one with `mltrail users create NAME --admin --backend-store-uri URI`, or start "
            f"the server once with {ADMIN_PASSWORD_ENV} set (and {ADMIN_USERNAME_ENV}, default "
            f"{DEFAULT_ADMIN!r}) to create that admin.")
