"""`mltrail sync`: send what killed processes left in their logging journals, exactly once.

A process logging to a tracking server journals every call before it returns (see
`mltrail.store.journal`). If it dies before the calls reach the server, the next process using
that tracking URI sends them in the background; `mltrail sync` does it now and says what happened.
Journals of live processes are skipped (each holds a lock on its file).
"""

from __future__ import annotations

import time
from typing import Any

import click

from mltrail.store.journal import Poster, RecoveryResult, journal_files, journal_root, recover


def sync_journals(directory: str | None = None, tracking_uri: str | None = None, timeout: float = 60.0,
                  ) -> list[tuple[str, RecoveryResult | None]]:
    """Recover every journal under `directory` (of `tracking_uri`, or all); None marks a live one."""
    from mltrail.store.rest import HttpClient

    posters: dict[str, Poster] = {}

    def post_for(uri: str) -> Poster:
        if uri not in posters:
            posters[uri] = HttpClient(uri).post_batch
        return posters[uri]

    deadline = time.monotonic() + timeout
    out = []
    for path in journal_files(directory or journal_root(), tracking_uri.rstrip("/") if tracking_uri else None):
        result = recover(path, post_for, stop=lambda: time.monotonic() > deadline, retry_transient=True)
        out.append((path, result))
    return out


@click.command()
@click.option("--tracking-uri", default=None,
              help="Only journals of this server (default: every journal, each to the server it names).")
@click.option("--journal-dir", default=None, envvar="MLTRAIL_JOURNAL_DIR", show_envvar=True,
              help="Where journals live (default ~/.cache/mltrail/journal).")
@click.option("--timeout", default=60.0, show_default=True, type=float,
              help="Seconds to keep retrying an unreachable server before leaving its journal for later.")
def sync(tracking_uri: str | None, journal_dir: str | None, timeout: float) -> None:
    """Send logged calls that earlier processes journaled but did not deliver."""
    results = sync_journals(journal_dir, tracking_uri, timeout)
    if not results:
        click.echo("Nothing to send: no journals.")
        return
    ok = True
    for path, r in results:
        if r is None:
            click.echo(f"in use by a running process, skipped: {path}")
            continue
        _report(path, r)
        ok = ok and r.finished and not r.failed
    if not ok:
        raise SystemExit(1)


def _report(path: str, r: RecoveryResult) -> None:
    echo: Any = click.echo
    if r.sent_calls or r.finished:
        echo(f"sent {r.sent_calls} logged call(s) in {r.sent_batches} request(s) to {r.uri}")
    for err in r.failed:
        echo(f"refused by {r.uri} ({err.error_code}): {err.message}", err=True)
    if r.deferred:
        echo(f"not sent yet ({r.deferred}); kept in {path}", err=True)
