"""`mltrail sync`: send what killed processes left in their logging journals, exactly once.

A process logging to a tracking server journals every call before it returns (see
`mltrail.store.journal`). If it dies before the calls reach the server, the next process using
that tracking URI sends them in the background; `mltrail sync` does it now and says what happened.
Journals of live processes are skipped (each holds a lock on its file).

Each journal goes only to the server named in its header (and filed under that URI's hash), and
the credentials in the environment (`MLFLOW_TRACKING_TOKEN`, `..._USERNAME`/`..._PASSWORD`,
`..._CLIENT_CERT_PATH`, each also as `MLTRAIL_...`) go only to the host of the current tracking URI
(`--tracking-uri`, else `MLTRAIL_TRACKING_URI`/`MLFLOW_TRACKING_URI`): a journal written for another
host is skipped, with the command that sends it, rather than sent with another server's secrets.
With no credentials in the environment every journal is sent. A server that answers 401 or 403
keeps its journal for a later sync: an authentication failure never drops logged calls.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import click
from click.core import ParameterSource

from mltrail.errors import PERMISSION_DENIED, UNAUTHENTICATED, MltrailException
from mltrail.store.journal import (
    LOG_BATCH,
    Poster,
    RecoveryResult,
    TransientError,
    recover,
)
from mltrail.store.journal_file import journal_files, read_uri

# the environment variables holding a secret that HttpClient sends (each with MLTRAIL_ or MLFLOW_)
CREDENTIAL_VARS = ("TRACKING_TOKEN", "TRACKING_USERNAME", "TRACKING_PASSWORD", "TRACKING_CLIENT_CERT_PATH")


@dataclass
class SyncOutcome:
    """What `sync_journals` did with one journal file."""

    path: str
    uri: str | None
    result: RecoveryResult | None = None  # None when skipped (see `skipped`)
    skipped: str | None = None  # why the file was not sent (in use, another host's credentials)


def credentials_in_env() -> list[str]:
    """The names of the credential variables set in the environment."""
    return [f"{prefix}_{name}" for name in CREDENTIAL_VARS for prefix in ("MLTRAIL", "MLFLOW")
            if os.environ.get(f"{prefix}_{name}")]


def current_tracking_uri() -> str | None:
    return os.environ.get("MLTRAIL_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI") or None


def same_host(a: str, b: str) -> bool:
    """Whether two URIs reach the same host (scheme, host and port): who may see one's credentials."""
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)

    def port(p: urllib.parse.SplitResult) -> int | None:
        return p.port or {"http": 80, "https": 443}.get(p.scheme.lower())

    return (pa.scheme.lower(), (pa.hostname or "").lower(), port(pa)) == \
        (pb.scheme.lower(), (pb.hostname or "").lower(), port(pb))


def credentials_withheld(journal_uri: str, current: str | None) -> str | None:
    """Why the environment's credentials must not go to `journal_uri` (None: sending is fine)."""
    secrets = credentials_in_env()
    if not secrets or (current is not None and same_host(journal_uri, current)):
        return None
    holder = f"the tracking URI {current}" if current else "no tracking URI (none is set)"
    return (f"written for {journal_uri}, but the credentials in the environment ({', '.join(secrets)}) "
            f"belong to {holder} and are never sent to another host; run `mltrail sync --tracking-uri "
            f"{journal_uri}` with that server's credentials in the environment")


def sync_journals(directory: str | None = None, tracking_uri: str | None = None, timeout: float = 60.0,
                  ) -> list[SyncOutcome]:
    """Recover every journal under `directory` (default: every journal directory of this user), of
    `tracking_uri` or of every server, each sent only to its own server with that server's credentials."""
    from mltrail.store.rest import HttpClient

    current = tracking_uri or current_tracking_uri()
    posters: dict[str, Poster] = {}
    auth_refused: dict[str, str] = {}  # server -> its 401/403 answer: its journals wait for a later sync

    def post_for(uri: str) -> Poster:
        if uri not in posters:
            client = HttpClient(uri)

            def post(body: bytes, endpoint: str = LOG_BATCH) -> None:
                try:
                    client.post_batch(body, endpoint)
                except MltrailException as e:
                    if e.error_code not in (UNAUTHENTICATED, PERMISSION_DENIED):
                        raise
                    auth_refused[uri] = f"{uri} refused the credentials ({e.error_code}): {e.message}"
                    raise TransientError(auth_refused[uri]) from e

            posters[uri] = post
        return posters[uri]

    deadline = time.monotonic() + timeout
    out = []
    for path in journal_files(directory, tracking_uri.rstrip("/") if tracking_uri else None):
        uri = read_uri(path)
        withheld = credentials_withheld(uri, current) if uri else None
        if withheld:
            out.append(SyncOutcome(path, uri, skipped=withheld))
            continue
        result = recover(path, post_for, retry_transient=True,
                         stop=lambda: time.monotonic() > deadline or bool(auth_refused))
        if result is None:
            out.append(SyncOutcome(path, uri, skipped="in use by a running process"))
        else:
            out.append(SyncOutcome(path, uri, result))
        auth_refused.clear()
    return out


@click.command()
@click.option("--tracking-uri", default=None,
              help="Only journals of this server, and the server the environment's credentials are for "
                   "(default: every journal; credentials only to MLTRAIL_TRACKING_URI's host).")
@click.option("--journal-dir", default=None, envvar="MLTRAIL_JOURNAL_DIR", show_envvar=True,
              help="Where journals live (default ~/.cache/mltrail/journal and the per-user temp fallback).")
@click.option("--timeout", default=60.0, show_default=True, type=float,
              help="Seconds to keep retrying an unreachable server before leaving its journal for later.")
def sync(tracking_uri: str | None, journal_dir: str | None, timeout: float) -> None:
    """Send logged calls that earlier processes journaled but did not deliver."""
    if click.get_current_context().get_parameter_source("journal_dir") != ParameterSource.COMMANDLINE:
        journal_dir = None  # MLTRAIL_JOURNAL_DIR or the default: also look in the per-user fallback
    outcomes = sync_journals(journal_dir, tracking_uri, timeout)
    if not outcomes:
        click.echo("Nothing to send: no journals.")
        return
    ok = True
    for o in outcomes:
        if o.result is None:
            click.echo(f"skipped {o.path}: {o.skipped}", err=o.skipped != "in use by a running process")
            ok = ok and o.skipped == "in use by a running process"
            continue
        _report(o.path, o.result)
        ok = ok and o.result.finished and not o.result.failed
    if not ok:
        raise SystemExit(1)


def _report(path: str, r: RecoveryResult) -> None:
    echo: Any = click.echo
    if r.sent_calls or r.finished:
        echo(f"sent {r.sent_calls} logged call(s) in {r.sent_batches} request(s) to {r.uri}")
    if r.skipped:
        echo(f"skipped {r.skipped_what} in {path} (every other line was read)", err=True)
    for err in r.failed:
        echo(f"refused by {r.uri} ({err.error_code}): {err.message}", err=True)
    if r.deferred:
        echo(f"not sent yet ({r.deferred}); kept in {path}", err=True)
