"""`doctor`: what to paste into a bug report: versions, platform, URIs, environment and whether the store answers."""

from __future__ import annotations

import os
import platform
import sys

import click

from mltrail.client import Client
from mltrail.errors import MltrailException
from mltrail.fluent import active_run
from mltrail.tracking_uri import get_registry_uri, get_tracking_uri
from mltrail.version import __version__

# shown whenever installed: what mltrail depends on plus the optional packages its features load
_KEY_PACKAGES = ["tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "sqlalchemy", "alembic", "click",
                 "pyyaml", "orjson", "requests", "starlette", "uvicorn", "pillow", "boto3", "scikit-learn",
                 "matplotlib", "psutil", "nvidia-ml-py", "mlflow"]


def _installed(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _dependency_versions() -> dict[str, str]:
    """Installed versions of mltrail's requirements (extras included) and of the key packages, by name."""
    import re
    from importlib import metadata

    try:
        requires = metadata.requires("mltrail") or []
    except metadata.PackageNotFoundError:  # run from a source checkout
        requires = []
    runtime = [req for req in requires if 'extra == "dev"' not in req]  # not the test tools
    names = {re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0] for req in runtime} | set(_KEY_PACKAGES)
    versions = {name: _installed(name) for name in names if name}
    return {name: version for name, version in sorted(versions.items(), key=lambda kv: kv[0].lower()) if version}


def store_status(uri: str) -> str:
    """"OK" when the store at `uri` answers a one-experiment search, else what went wrong (one line).

    A SQLite file that does not exist yet is reported, not created.
    """
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        path = uri[len("sqlite:///"):].split("?", 1)[0]
        if not os.path.exists(path):
            return f"not created yet: {path} does not exist (it is created on first use)"
    try:
        Client(uri).search_experiments(max_results=1)
    except MltrailException as e:
        return f"ERROR {e.error_code}: {e.message}"
    except Exception as e:  # a driver's own error (psycopg, sqlite3, ...): report it, don't crash the report
        return f"ERROR {type(e).__name__}: {e}"
    return "OK"


def _indented(values: dict[str, str]) -> str:
    return "".join(f"\n  {key}: {value}" for key, value in values.items())


def doctor_items(mask_envs: bool = False) -> list[tuple[str, str]]:
    """The report as (heading, value) pairs, in the order `doctor` prints them."""
    tracking_uri = get_tracking_uri()
    registry_uri = get_registry_uri()
    items = [
        ("System information", f"{platform.system()} {platform.version()}"),
        ("Python version", platform.python_version()),
        ("Python executable", sys.executable),
        ("mltrail version", __version__),
        ("mltrail module location", os.path.join(os.path.dirname(os.path.abspath(__file__)), "__init__.py")),
        ("Tracking URI", tracking_uri),
        ("Registry URI", registry_uri),
        ("Tracking store", store_status(tracking_uri)),
    ]
    if registry_uri != tracking_uri:
        items.append(("Registry store", store_status(registry_uri)))
    run = active_run()
    if run is not None:
        items += [("Active experiment ID", run.info.experiment_id), ("Active run ID", run.info.run_id),
                  ("Active run artifact URI", run.info.artifact_uri)]
    envs = {k: ("***" if mask_envs else v) for k, v in sorted(os.environ.items())
            if k.startswith(("MLFLOW_", "MLTRAIL_"))}
    if envs:
        items.append(("Environment variables", _indented(envs)))
    items.append(("Dependencies", _indented(_dependency_versions())))
    return items


def doctor(mask_envs: bool = False) -> None:
    """Print what helps debug a problem with mltrail (MLflow's `mlflow.doctor`), and whether the stores answer.

    Args:
        mask_envs: show `MLFLOW_*`/`MLTRAIL_*` environment variables as `***` (they may hold credentials).
    """
    for heading, value in doctor_items(mask_envs):
        click.secho(heading, fg="blue", nl=False)
        click.echo(f": {value}")
