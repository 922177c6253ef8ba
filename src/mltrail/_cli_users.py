"""`mltrail users` and `mltrail tokens`: accounts of a server run with --auth, made in its database directly."""

from __future__ import annotations

import datetime
import getpass
import sys
from typing import TYPE_CHECKING, Any

import click

from mltrail._cli_errors import cli_errors

if TYPE_CHECKING:
    from mltrail.server.auth.store import AuthStore

_backend_option = click.option(
    "--backend-store-uri", default=None, envvar="MLFLOW_BACKEND_STORE_URI",
    help="The server's database: sqlite:///FILE, postgresql://... or a directory (default ./mltrail, as "
         "`mltrail server`).")


def open_auth_store(backend_store_uri: str | None) -> AuthStore:
    """The accounts of the database `mltrail server --backend-store-uri` would open (schema brought up to date)."""
    from mltrail.server.auth.store import AuthStore
    from mltrail.server.settings import ServerSettings
    from mltrail.store.sql import engine as eng

    uri = ServerSettings(backend_store_uri=backend_store_uri).resolved().backend_store_uri or ""
    engine = eng.make_engine(uri)
    eng.ensure_schema(engine)
    return AuthStore(engine)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli"


def _run(backend_store_uri: str | None, action: Any) -> Any:
    """Open the store and run `action(store)` with CLI errors reported in one line and audit rows naming the CLI."""
    from mltrail.server.auth.store import acting_as

    with cli_errors():
        store = open_auth_store(backend_store_uri)
        try:
            with acting_as(_actor()):
                return action(store)
        finally:
            store.engine.dispose()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    return value


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


@click.group()
def users() -> None:
    """Manage the users of a server run with --auth (in its database; the server may be running)."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an admin (every permission, user management).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line) "
                                                     "instead of prompting twice.")
@_backend_option
def users_create(name: str, admin: bool, password_stdin: bool, backend_store_uri: str | None) -> None:
    """Create user NAME with a password (at least 12 characters)."""
    password = _read_password(password_stdin)
    user = _run(backend_store_uri, lambda s: s.create_user(name, password, is_admin=admin))
    click.echo(f"Created {'admin ' if user.is_admin else ''}user {user.username!r}.")


@users.command("list")
@_backend_option
def users_list(backend_store_uri: str | None) -> None:
    """List the users: name, admin, whether they have a password, when they were created."""
    found = _run(backend_store_uri, lambda s: s.list_users())
    click.echo(f"{'USERNAME':<32}  {'ADMIN':<5}  {'PASSWORD':<8}  CREATED")
    for u in found:
        click.echo(f"{u.username:<32}  {'yes' if u.is_admin else 'no':<5}  {'yes' if u.has_password else 'no':<8}  "
                   f"{_when(u.created_at)}")


@users.command("delete")
@click.argument("name")
@_backend_option
def users_delete(name: str, backend_store_uri: str | None) -> None:
    """Delete user NAME with their tokens and grants (their sessions end)."""
    _run(backend_store_uri, lambda s: s.delete_user(name))
    click.echo(f"Deleted user {name!r}.")


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input (one line).")
@_backend_option
def users_set_password(name: str, password_stdin: bool, backend_store_uri: str | None) -> None:
    """Set the password of user NAME (their sessions end)."""
    password = _read_password(password_stdin)
    _run(backend_store_uri, lambda s: s.update_password(name, password))
    click.echo(f"Changed the password of {name!r}.")


@users.command("set-admin")
@click.argument("name")
@click.option("--on/--off", "on", required=True, help="Make NAME an admin, or no longer one.")
@_backend_option
def users_set_admin(name: str, on: bool, backend_store_uri: str | None) -> None:
    """Make user NAME an admin (--on) or take it away (--off)."""
    _run(backend_store_uri, lambda s: s.update_admin(name, on))
    click.echo(f"{name!r} is {'now' if on else 'no longer'} an admin.")


@click.group()
def tokens() -> None:
    """Manage API tokens (sent as `Authorization: Bearer`, e.g. through MLFLOW_TRACKING_TOKEN)."""


@tokens.command("create")
@click.option("--user", "username", required=True, help="Whose token it is.")
@click.option("--name", required=True, help="What the token is for (shown in lists).")
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Make the token stop working after this many days (default: it does not expire).")
@_backend_option
def tokens_create(username: str, name: str, expires_in_days: float | None, backend_store_uri: str | None) -> None:
    """Create a token and print its secret: it is shown this once and cannot be read back."""
    import time

    expires_at = int((time.time() + expires_in_days * 86400) * 1000) if expires_in_days else None
    token, secret = _run(backend_store_uri, lambda s: s.create_token(username, name, expires_at))
    click.echo(f"Token {token.id} ({name!r}) of {username!r}, expires {_when(token.expires_at)}. Its secret, "
               "shown only now:", err=True)
    click.echo(secret)


@tokens.command("list")
@click.option("--user", "username", required=True, help="Whose tokens to list.")
@_backend_option
def tokens_list(username: str, backend_store_uri: str | None) -> None:
    """List a user's tokens (never their secrets)."""
    found = _run(backend_store_uri, lambda s: s.list_tokens(username))
    click.echo(f"{'ID':>5}  {'NAME':<24}  {'CREATED':<20}  {'EXPIRES':<20}  LAST USED")
    for t in found:
        click.echo(f"{t.id:>5}  {t.name:<24}  {_when(t.created_at):<20}  {_when(t.expires_at):<20}  "
                   f"{_when(t.last_used_at)}")


@tokens.command("revoke")
@click.option("--user", "username", required=True, help="Whose token it is.")
@click.option("--id", "token_id", type=int, required=True, help="The token's id (see `mltrail tokens list`).")
@_backend_option
def tokens_revoke(username: str, token_id: int, backend_store_uri: str | None) -> None:
    """Revoke a token: it stops working at once."""
    _run(backend_store_uri, lambda s: s.revoke_token(username, token_id))
    click.echo(f"Revoked token {token_id} of {username!r}.")
