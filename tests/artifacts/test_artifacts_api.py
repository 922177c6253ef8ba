"""`mltrail.artifacts`: download_artifacts returns the paths MLflow returns; list_artifacts and load_* as MLflow's.

Run against the embedded SQLite store and through a real `mltrail server` (artifacts proxied).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import mltrail
from mltrail.entities import FileInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from server_fixture import start_server  # noqa: E402

A = mltrail.artifacts


@pytest.fixture(params=["sqlite", "server"])
def run_id(request, tmp_path) -> str:
    uri = f"sqlite:///{tmp_path}/mltrail.db" if request.param == "sqlite" else start_server(request, tmp_path)
    mltrail.set_tracking_uri(uri)
    with mltrail.start_run() as run:
        mltrail.log_text("hi", "dir/sub/a.txt")
        mltrail.log_text("top", "t.txt")
        mltrail.log_dict({"k": [1, 2]}, "conf.json")
        mltrail.log_image(np.zeros((3, 4, 3), dtype=np.uint8), "i.png")
        mltrail.log_text("\xff\xfe", "latin.txt")
    return run.info.run_id


def _tree(path: str) -> set[str]:
    return {str(p.relative_to(path)) for p in Path(path).rglob("*")}


@pytest.mark.parametrize("form", ["run_id", "uri"])
def test_download_paths_match_mlflow(run_id, tmp_path, form):
    def download(path: str, dst: str | None) -> str:
        if form == "run_id":
            return A.download_artifacts(run_id=run_id, artifact_path=path or None, dst_path=dst)
        return A.download_artifacts(f"runs:/{run_id}/{path}", dst_path=dst)

    dst = str(tmp_path / "new" / "dst")  # made, parents too
    # a file lands under its own name, not under its run-relative path
    assert download("dir/sub/a.txt", dst) == os.path.join(dst, "a.txt")
    assert Path(dst, "a.txt").read_text() == "hi"
    # a directory too
    assert download("dir", dst) == os.path.join(dst, "dir")
    assert _tree(os.path.join(dst, "dir")) == {"sub", "sub/a.txt"}
    # the run's root becomes dst itself
    whole = str(tmp_path / "whole")
    assert download("", whole) == whole
    assert {"dir", "t.txt", "conf.json", "i.png"} <= set(os.listdir(whole))
    # without dst_path: a fresh temporary directory, never the store's own files
    tmp_file = download("dir/sub/a.txt", None)
    assert os.path.basename(tmp_file) == "a.txt" and Path(tmp_file).read_text() == "hi"
    root_copy = download("", None)
    assert "mlruns" not in root_copy and str(tmp_path) not in root_copy
    Path(root_copy, "t.txt").write_text("edited")
    assert A.load_text(f"runs:/{run_id}/t.txt") == "top"


def test_download_of_a_plain_artifact_uri(run_id, tmp_path):
    root = mltrail.get_run(run_id).info.artifact_uri
    got = A.download_artifacts(f"{root}/dir/sub", dst_path=str(tmp_path / "d"))
    assert got == str(tmp_path / "d" / "sub") and Path(got, "a.txt").read_text() == "hi"


def test_download_argument_errors_in_mlflow_words(run_id):
    with pytest.raises(mltrail.MlflowException, match="Exactly one of `run_id` or `artifact_uri` must be specified"):
        A.download_artifacts()
    with pytest.raises(mltrail.MlflowException, match="Exactly one of `run_id` or `artifact_uri`"):
        A.list_artifacts(f"runs:/{run_id}/x", run_id=run_id)
    with pytest.raises(mltrail.MlflowException, match="`artifact_path` cannot be specified if `artifact_uri`"):
        A.download_artifacts(f"runs:/{run_id}/dir", artifact_path="sub")
    with pytest.raises(mltrail.MlflowException, match="Not a proper runs:/ URI"):
        A.download_artifacts("runs:/")


def test_list_artifacts_returns_file_infos(run_id):
    top = A.list_artifacts(run_id=run_id)
    assert all(isinstance(f, FileInfo) for f in top)
    by_path = {f.path: f for f in top}
    assert by_path["dir"].is_dir and by_path["dir"].file_size is None
    assert not by_path["t.txt"].is_dir and by_path["t.txt"].file_size == 3
    assert [(f.path, f.is_dir) for f in A.list_artifacts(run_id=run_id, artifact_path="dir")] == [("dir/sub", True)]
    assert [f.path for f in A.list_artifacts(f"runs:/{run_id}/dir/sub")] == ["dir/sub/a.txt"]


def test_load_text_dict_image(run_id):
    assert A.load_text(f"runs:/{run_id}/dir/sub/a.txt") == "hi"
    assert A.load_dict(f"runs:/{run_id}/conf.json") == {"k": [1, 2]}
    image = A.load_image(f"runs:/{run_id}/i.png")
    assert isinstance(image, PILImage.Image) and image.size == (4, 3)
    with pytest.raises(mltrail.MlflowException, match="Unable to form a JSON object"):
        A.load_dict(f"runs:/{run_id}/t.txt")
    with pytest.raises(mltrail.MlflowException, match="Unable to form a PIL Image object"):
        A.load_image(f"runs:/{run_id}/t.txt")
    assert A.load_text(f"runs:/{run_id}/latin.txt") == "\xff\xfe"  # log_text wrote UTF-8
    mltrail.MlflowClient().log_bytes(run_id, b"\xff\xfe", "raw.bin")
    with pytest.raises(mltrail.MlflowException, match="is not valid UTF-8"):
        A.load_text(f"runs:/{run_id}/raw.bin")
