"""Start-up with auth on: make the admin that `MLTRAIL_ADMIN_PASSWORD` (or MLflow's
`MLFLOW_AUTH_ADMIN_PASSWORD`) asks for, and refuse to serve with no admin at all (there is no
default password)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from mltrail.errors import MltrailException, ResourceAlreadyExists
from mltrail.server.auth.store import AuthStore, acting_as

ADMIN_USERNAME_ENV = "MLTRAIL_ADMIN_USERNAME"
ADMIN_PASSWORD_ENV = "MLTRAIL_ADMIN_PASSWORD"
MLFLOW_ADMIN_PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"  # MLflow's basic-auth app reads this one
DEFAULT_ADMIN = "admin"
logger = logging.getLogger("mltrail.server.auth")


class NoAdmin(MltrailException):
    """Auth is on and the database has no admin user."""

    error_code = "INVALID_STATE"


def ensure_admin(store: AuthStore, environ: Mapping[str, str] | None = None) -> None:
    """Create the admin named by the environment if asked (and missing); refuse to go on without any admin."""
    env = os.environ if environ is None else environ
    source = ADMIN_PASSWORD_ENV if env.get(ADMIN_PASSWORD_ENV) else MLFLOW_ADMIN_PASSWORD_ENV
    password = env.get(source)
    username = env.get(ADMIN_USERNAME_ENV) or DEFAULT_ADMIN
    if password:
        try:
            with acting_as("startup"):
                store.create_user(username, password, is_admin=True)
            logger.warning("Created the admin user %r from %s.", username, source)
        except ResourceAlreadyExists:
            pass  # made on an earlier start (or by another worker): the password in the database stands
    if not store.has_admin():
        raise NoAdmin(
            "The server runs with --auth but its database has no admin user, and mltrail has no default "
            "password. Make one with `mltrail users create NAME --admin --backend-store-uri URI`, or start "
            f"the server once with {ADMIN_PASSWORD_ENV} (or MLflow's {MLFLOW_ADMIN_PASSWORD_ENV}) set (and {ADMIN_USERNAME_ENV}, default "
            f"{DEFAULT_ADMIN!r}) to create that admin.")
