"""Tables as run artifacts (`log_table`/`load_table`): MLflow's pandas "split" JSON (or Parquet) and its run tag.

A table logged again to the same file is appended to it; each logged table is listed in the run tag
`mlflow.loggedArtifacts` (a JSON list of `{"path": ..., "type": "table"}`), which is how `load_table`
finds the runs that hold one. Image cells are stored as files under `table_images/` (a PNG and a WebP
thumbnail) and the cell becomes `{"type": "image", "filepath": ..., "compressed_filepath": ...}`.
pandas is imported only when a table is logged or loaded.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import tempfile
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from mltrail._images import compress_image_size, encode, is_image_like
from mltrail.entities import FileInfo, PagedList, Run
from mltrail.errors import InvalidParameterValue, MltrailException, ResourceDoesNotExist

LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
_FORBIDDEN = ('"', "'", ",", ":", "[", "]", "{", "}")

_logger = logging.getLogger(__name__)


class TableClient(Protocol):
    """What tables need of `mltrail.client.Client` (a protocol, so that the client can import this module)."""

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]: ...

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | None = None) -> str: ...

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None: ...

    def get_run(self, run_id: str) -> Run: ...

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None: ...

    def search_runs(self, experiment_ids: str | Sequence[str], filter_string: str = "",
                    run_view_type: int | str = ..., max_results: int = 1000,
                    order_by: Sequence[str] | None = None, page_token: str | None = None) -> PagedList[Run]: ...


def check_artifact_file(artifact_file: str) -> None:
    """Refuse names that would break the tag's JSON or the LIKE pattern MLflow searches it with."""
    for char in _FORBIDDEN:
        if char in artifact_file:
            raise ValueError(f"The artifact_file contains forbidden character: {char}")


def _read(path: str) -> Any:
    import pandas as pd

    if path.endswith(".json"):
        return pd.read_json(path, orient="split")
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    raise ValueError(f"Unsupported file type in {path}. Expected .json or .parquet")


def _as_dataframe(data: Any) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data.copy()  # image cells are replaced below: never touch the caller's frame
    if not isinstance(data, dict):
        raise InvalidParameterValue(
            f"data must be a pandas.DataFrame or a dictionary; received {type(data).__name__}.")
    try:
        return pd.DataFrame(data)
    except ValueError:  # all scalars ({"inputs": "What is MLflow?"}): one row
        return pd.DataFrame([data])


def _store_images(client: TableClient, run_id: str, df: Any, artifact_file: str) -> None:
    """Replace columns of images by references to image files logged beside the table."""
    table_name = os.path.splitext(artifact_file)[0]
    for column in df.columns:
        if df[column].dtype != object:
            continue
        flags = [is_image_like(x) for x in df[column]]
        if not any(flags):
            continue
        if not all(flags):
            raise ValueError(
                f"Column `{column}` contains a mix of images and non-images. "
                "Please ensure that all elements in the column are of the same type.")
        refs = []
        for image in df[column]:
            base = posixpath.join("table_images", table_name, str(uuid.uuid4()))
            client.log_bytes(run_id, encode(image, "PNG"), base + ".png")
            client.log_bytes(run_id, encode(compress_image_size(image), "WEBP"), base + ".webp")
            refs.append({"type": "image", "filepath": base + ".png", "compressed_filepath": base + ".webp"})
        df[column] = refs


def _existing_table(client: TableClient, run_id: str, artifact_file: str) -> Any:
    """The table already in `artifact_file` of the run, or None."""
    parent = posixpath.dirname(posixpath.normpath(artifact_file)) or None
    if artifact_file not in {f.path for f in client.list_artifacts(run_id, parent) if not f.is_dir}:
        return None
    with tempfile.TemporaryDirectory(prefix="mltrail-table-") as tmp:
        return _read(client.download_artifacts(run_id, artifact_file, tmp))


def log_table(client: TableClient, run_id: str, data: Any, artifact_file: str) -> None:
    """Write `data` (a dict or DataFrame) to the run's `artifact_file`, appending to what is there."""
    import pandas as pd

    check_artifact_file(artifact_file)
    if not artifact_file.endswith((".json", ".parquet")):
        raise ValueError(
            f"Invalid artifact file path '{artifact_file}'. Please ensure the file you are trying to log as a "
            "table has a file name with either '.json' or '.parquet' extension.")
    df = _as_dataframe(data)
    _store_images(client, run_id, df, artifact_file)
    existing = _existing_table(client, run_id, artifact_file)
    if existing is not None:
        _logger.debug("Appending the new rows to the table %s of run %s.", artifact_file, run_id)
        df = pd.concat([existing, df], ignore_index=True)
    with tempfile.TemporaryDirectory(prefix="mltrail-table-") as tmp:
        local = os.path.join(tmp, posixpath.basename(artifact_file))
        try:
            if artifact_file.endswith(".json"):
                df.to_json(local, orient="split", index=False, date_format="iso")
            else:
                df.to_parquet(local, index=False)
        except Exception as e:
            raise MltrailException(
                f"Failed to save {df} as table as the data is not JSON serializable. Error: {e}") from e
        with open(local, "rb") as fh:
            client.log_bytes(run_id, fh.read(), artifact_file)
    tags = client.get_run(run_id).data.tags
    listed = json.loads(tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
    entry = {"path": artifact_file, "type": "table"}
    if entry not in listed:
        listed.append(entry)
        client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps(listed))


def _has_table(run: Run, artifact_file: str) -> bool:
    try:
        listed = json.loads(run.data.tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
    except ValueError:
        return False
    return isinstance(listed, list) and {"path": artifact_file, "type": "table"} in listed


def _runs_with_table(client: TableClient, experiment_id: str, artifact_file: str,
                     run_ids: Sequence[str] | None) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], "", max_results=1000, page_token=token)
        runs.extend(r for r in page if _has_table(r, artifact_file))
        token = page.token
        if not token:
            break
    if run_ids:
        wanted = set(run_ids)
        runs = [r for r in runs if r.info.run_id in wanted]
        if len(runs) != len(wanted):
            _logger.warning("Not all runs have the specified table artifact. Some runs will be skipped.")
    return runs


def load_table(client: TableClient, experiment_id: str, artifact_file: str, run_ids: Sequence[str] | None = None,
               extra_columns: Sequence[str] | None = None) -> Any:
    """The table `artifact_file` of every run of the experiment (or of `run_ids`) that logged it, concatenated.

    `extra_columns` names columns of `search_runs`' DataFrame (`run_id`, `status`, `tags.x`, ...) added to
    each row; a name the table already has gets a trailing underscore.
    """
    import pandas as pd

    from mltrail._dataframe import runs_to_dataframe

    check_artifact_file(artifact_file)
    runs = _runs_with_table(client, str(experiment_id), artifact_file, run_ids)
    if not runs:
        raise ResourceDoesNotExist("No runs found with the corresponding table artifact.")
    rows = runs_to_dataframe(runs)
    frames = []
    for (_, row), run in zip(rows.iterrows(), runs, strict=True):
        table = _existing_table(client, run.info.run_id, artifact_file)
        if table is None:
            raise ResourceDoesNotExist(f"Artifact {artifact_file} not found for run {run.info.run_id}.")
        for column in extra_columns or []:
            if column not in row.index:
                raise InvalidParameterValue(
                    f"Unknown extra column {column!r}: expected a column of search_runs' result, such as "
                    f"{list(rows.columns)[:6]}.")
            name = column
            if column in table:
                _logger.warning("Column name %s already exists in the table. Resolving the conflict, by "
                                "appending an underscore to the column name.", column)
                name = f"{column}_"
            table[name] = row[column]
        frames.append(table)
    return pd.concat(frames, ignore_index=True)
