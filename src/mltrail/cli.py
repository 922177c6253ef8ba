"""The `mltrail` command line. Subcommands live beside what they drive and load on first use,
so `mltrail --version` and `mltrail runs list` never import a web framework or TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from mltrail.version import __version__

# name -> "module:attribute" of a click command or group
_COMMANDS = {
    "artifacts": "mltrail._cli_artifacts:artifacts",
    "doctor": "mltrail._cli_doctor:doctor",
    "experiments": "mltrail._cli_experiments:experiments",
    "runs": "mltrail._cli_runs:runs",
    "gc": "mltrail._cli_tracking:gc",
    "db": "mltrail._cli_tracking:db",
    "import-mlflow": "mltrail._cli_import_mlflow:import_mlflow",
    "export-mlflow": "mltrail._cli_export_mlflow:export_mlflow",
    "server": "mltrail.server.cli:server",
    "ui": "mltrail.server.cli:ui",
    "sync": "mltrail.store.sync_cli:sync",
    "users": "mltrail._cli_users:users",
    "tokens": "mltrail._cli_users:tokens",
    "models": "mltrail.serving.cli:models",
    "demo": "mltrail.tensorflow.demo:demo",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> Any:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as e:
            raise click.ClickException(f"`mltrail {name}` is unavailable: {e}") from e


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mltrail")
def main() -> None:
    """mltrail: track experiments, store and serve TensorFlow/Keras models (MLflow-compatible)."""


if __name__ == "__main__":
    main()
