"""`cli_errors`: an MltrailException inside a command becomes click's one-line error, not a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from mltrail.errors import MltrailException


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Report an MltrailException raised inside as `ERROR_CODE: message` with exit code 1.

    Used by the tracking commands (`mltrail experiments|runs|gc|db`) and `mltrail models`.
    """
    try:
        yield
    except MltrailException as e:
        raise click.ClickException(f"{e.error_code}: {e.message}") from e
