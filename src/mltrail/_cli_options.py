"""What every tracking command shares: the `--tracking-uri` and `--view` options, the client, MLflow's table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mltrail.client import Client

TRACKING_URI_ENV = ["MLTRAIL_TRACKING_URI", "MLFLOW_TRACKING_URI"]

tracking_uri_option = click.option(
    "--tracking-uri", envvar=TRACKING_URI_ENV, default=None,
    help="Tracking URI (default: $MLTRAIL_TRACKING_URI, $MLFLOW_TRACKING_URI, else the embedded ./mltrail store).")

view_option = click.option(
    "--view", "-v", type=click.Choice(["active_only", "deleted_only", "all"], case_sensitive=False),
    default="active_only", show_default=True, help="Which lifecycle stages to show.")


def client_for(tracking_uri: str | None) -> Client:
    """A Client of `tracking_uri` (None: the URI in force)."""
    from mltrail.client import Client

    return Client(tracking_uri)


def use_tracking_uri(tracking_uri: str | None) -> None:
    """Make `tracking_uri` this process's tracking URI, for commands that go through the fluent API."""
    if tracking_uri:
        from mltrail.tracking_uri import set_tracking_uri

        set_tracking_uri(tracking_uri)


def format_table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """MLflow's CLI table: left-aligned columns two spaces apart, a dashed rule under the headers.

    A column is as wide as its widest cell, its header plus two, and never under four characters.
    """
    widths = [max(4, len(header) + 2, *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])
