"""log_table/load_table, log_image (static and step-wise) and mltrail.Image, in MLflow's layouts and tags.

Each test runs against the embedded SQLite store and through a real `mltrail server`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage

import mltrail

sys.path.insert(0, str(Path(__file__).resolve().parent / "server"))

from server_fixture import start_server  # noqa: E402


@pytest.fixture(params=["sqlite", "server"])
def backend(request, tmp_path) -> str:
    uri = f"sqlite:///{tmp_path}/mltrail.db" if request.param == "sqlite" else start_server(request, tmp_path)
    mltrail.set_tracking_uri(uri)
    return uri


def _artifact_text(run_id: str, path: str) -> str:
    return mltrail.artifacts.load_text(f"runs:/{run_id}/{path}")


def test_log_table_writes_split_json_appends_and_tags_the_run(backend):
    with mltrail.start_run() as run:
        mltrail.log_table({"a": [1, 2], "b": ["x", "y"]}, "tab/t.json")
        mltrail.log_table(pd.DataFrame({"a": [3], "b": ["z"]}), "tab/t.json")
        mltrail.log_table({"q": "only scalars"}, "single.json")
    rid = run.info.run_id
    assert json.loads(_artifact_text(rid, "tab/t.json")) == {
        "columns": ["a", "b"], "data": [[1, "x"], [2, "y"], [3, "z"]]}
    assert json.loads(_artifact_text(rid, "single.json")) == {"columns": ["q"], "data": [["only scalars"]]}
    tag = json.loads(mltrail.get_run(rid).data.tags["mlflow.loggedArtifacts"])
    assert tag == [{"path": "tab/t.json", "type": "table"}, {"path": "single.json", "type": "table"}]


def test_log_table_refuses_what_mlflow_refuses(backend):
    with mltrail.start_run():
        with pytest.raises(ValueError, match="forbidden character: ,"):
            mltrail.log_table({"a": [1]}, "a,b.json")
        with pytest.raises(ValueError, match="'.json' or '.parquet' extension"):
            mltrail.log_table({"a": [1]}, "t.csv")
        with pytest.raises(mltrail.MlflowException, match="data must be a pandas.DataFrame or a dictionary"):
            mltrail.log_table([1, 2], "t.json")


def test_load_table_concatenates_runs_with_extra_columns(backend):
    with mltrail.start_run() as r1:
        mltrail.log_table({"a": [1, 2]}, "t.json")
    with mltrail.start_run() as r2:
        mltrail.log_table({"a": [3], "run_id": ["mine"]}, "t.json")
    with mltrail.start_run():
        mltrail.log_text("not a table", "t.json")  # no tag: not found by load_table
    df = mltrail.load_table("t.json", extra_columns=["run_id"])
    rows = sorted(zip(df["a"], df["run_id"], df["run_id_"].fillna("-"), strict=True))
    # the second table has its own run_id column: the run's id goes to run_id_, as MLflow does
    assert rows == [(1, r1.info.run_id, "-"), (2, r1.info.run_id, "-"), (3, "mine", r2.info.run_id)]
    only = mltrail.load_table("t.json", run_ids=[r1.info.run_id])
    assert only["a"].tolist() == [1, 2] and list(only.columns) == ["a"]
    client_df = mltrail.MlflowClient().load_table(r1.info.experiment_id, "t.json", run_ids=[r2.info.run_id])
    assert client_df["a"].tolist() == [3]
    with pytest.raises(mltrail.MlflowException, match="No runs found with the corresponding table artifact"):
        mltrail.load_table("other.json")


def test_table_image_cells_become_files(backend):
    img = mltrail.Image(np.full((8, 4, 3), 200, dtype=np.uint8))
    with mltrail.start_run() as run:
        mltrail.log_table({"prompt": ["a", "b"], "picture": [img, img.to_pil()]}, "gen.json")
    content = json.loads(_artifact_text(run.info.run_id, "gen.json"))
    cells = [row[1] for row in content["data"]]
    assert all(c["type"] == "image" and c["filepath"].startswith("table_images/gen/") for c in cells)
    back = mltrail.artifacts.load_image(f"runs:/{run.info.run_id}/{cells[0]['filepath']}")
    assert back.size == (4, 8)
    thumb = mltrail.artifacts.load_image(f"runs:/{run.info.run_id}/{cells[0]['compressed_filepath']}")
    assert thumb.format == "WEBP" and max(thumb.size) == 256
    with mltrail.start_run(), pytest.raises(ValueError, match="mix of images and non-images"):
        mltrail.log_table({"p": [img, "text"]}, "mixed.json")


def test_step_images_use_mlflow_layout_and_tag(backend):
    arr = np.zeros((10, 20, 3), dtype=np.uint8)
    with mltrail.start_run() as run:
        mltrail.log_image(arr, key="val/pred", step=3, timestamp=1234)
        mltrail.log_image(mltrail.Image(arr), "static.png")
        with pytest.raises(TypeError, match="cannot be used in conjunction"):
            mltrail.log_image(arr, "x.png", step=1)
        with pytest.raises(TypeError, match="exactly one of `artifact_file` or `key`"):
            mltrail.log_image(arr)
        with pytest.raises(ValueError, match="may only contain alphanumerics"):
            mltrail.log_image(arr, key="bad:key")
    rid = run.info.run_id
    assert mltrail.get_run(rid).data.tags["mlflow.loggedImages"] == "True"
    names = sorted(f.path for f in mltrail.artifacts.list_artifacts(run_id=rid, artifact_path="images"))
    assert len(names) == 2
    pattern = r"images/val~pred\+step\+3\+timestamp\+1234\+[0-9a-f-]{36}"
    assert re.fullmatch(pattern + r"\+compressed\.webp", names[0]) and re.fullmatch(pattern + r"\.png", names[1])
    assert names[0].startswith(names[1][:-4])
    full = mltrail.artifacts.load_image(f"runs:/{rid}/{names[1]}")
    assert full.size == (20, 10)
    assert mltrail.artifacts.load_image(f"runs:/{rid}/{names[0]}").size == (256, 128)
    assert mltrail.artifacts.load_image(f"runs:/{rid}/static.png").format == "PNG"


def test_image_wraps_arrays_pil_and_files(tmp_path):
    gray = mltrail.Image([[0, 128], [255, 64]])
    assert gray.size == (2, 2) and gray.to_list() == [0, 128, 255, 64]
    rgb = mltrail.Image(np.ones((3, 5, 3), dtype=np.float32))
    assert rgb.to_array().shape == (3, 5, 3) and int(rgb.to_array().max()) == 255
    small = rgb.resize((2, 2))
    assert isinstance(small, mltrail.Image) and small.size == (2, 2) and rgb.size == (5, 3)
    path = tmp_path / "x.png"
    rgb.save(str(path))
    assert mltrail.Image(str(path)).to_array().tolist() == rgb.to_array().tolist()
    assert isinstance(mltrail.Image(PILImage.new("RGB", (4, 4))).to_pil(), PILImage.Image)
    with pytest.warns(UserWarning, match="Rescaling values"):
        rescaled = mltrail.Image(np.array([[-1.0, 1.0]]))
    assert rescaled.to_list() == [0, 255]
    with pytest.raises(ValueError, match="Integer pixel values out of acceptable range"):
        mltrail.Image(np.array([[300]]))
    with pytest.raises(ValueError, match="Invalid channel length: 2"):
        mltrail.Image(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="Unsupported image object type"):
        mltrail.Image(42)




@pytest.mark.slow
def test_real_mlflow_client_reads_and_extends_our_tables_and_images(request, tmp_path, mlflow_python):
    """MLflow's own load_table finds our table through its tag search; its rows and images read back here."""
    uri = start_server(request, tmp_path)
    mltrail.set_tracking_uri(uri)
    with mltrail.start_run() as run:
        mltrail.log_table({"a": [1, 2]}, "t.json")
        mltrail.log_image(np.zeros((4, 4, 3), dtype=np.uint8), key="k", step=1)
    code = f"""
import json, mlflow, numpy as np
mlflow.set_tracking_uri({uri!r})
theirs = mlflow.load_table("t.json", extra_columns=["run_id"]).to_dict("list")
images = mlflow.get_run({run.info.run_id!r}).data.tags.get("mlflow.loggedImages")
with mlflow.start_run() as r:
    mlflow.log_table({{"a": [7]}}, "t.json")
    mlflow.log_image(np.zeros((4, 4, 3), dtype=np.uint8), key="k", step=2)
print(json.dumps({{"table": theirs, "images": images, "run_id": r.info.run_id}}))
"""
    out = subprocess.run([str(mlflow_python), "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["table"] == {"a": [1, 2], "run_id": [run.info.run_id] * 2} and got["images"] == "True"
    assert sorted(mltrail.load_table("t.json")["a"]) == [1, 2, 7]
    names = [f.path for f in mltrail.artifacts.list_artifacts(run_id=got["run_id"], artifact_path="images")]
    assert sorted(re.sub(r"timestamp\+\d+\+[0-9a-f-]+", "T", n) for n in names) == [
        "images/k+step+2+T+compressed.webp", "images/k+step+2+T.png"]
