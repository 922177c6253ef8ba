"""S3ArtifactRepository against a real S3-compatible server (moto's, on 127.0.0.1): the repository
contract, prefixes, odd keys written by others, and settings from the environment."""

from __future__ import annotations

import os
import uuid

import pytest
from repo_contract import RepositoryContract, listing, make_tree, read_tree

from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.store.artifact import get_artifact_repository
from mltrail.store.artifact.s3 import S3ArtifactRepository, parse_s3_uri

moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch, tmp_path):
    """Point boto3 at the local server with dummy credentials, ignoring any ~/.aws files."""
    for var in ("MLTRAIL_S3_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_PROFILE", "MLFLOW_S3_UPLOAD_EXTRA_ARGS",
                "MLFLOW_S3_IGNORE_TLS", "MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return s3_endpoint


@pytest.fixture
def bucket(s3_env):
    """A fresh bucket per test."""
    import boto3

    name = f"mltrail-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_env).create_bucket(Bucket=name)
    return name


@pytest.fixture
def repo(bucket):
    return S3ArtifactRepository(f"s3://{bucket}/experiments/1/run-abc/artifacts")


class TestS3Repository(RepositoryContract):
    pass


def _put(repo, key: str, body: bytes = b"x") -> None:
    repo.client.put_object(Bucket=repo.bucket, Key=key, Body=body)


def test_registry_picks_s3_and_client_is_made_once(bucket):
    repo = get_artifact_repository(f"s3://{bucket}/root")
    assert isinstance(repo, S3ArtifactRepository)
    assert (repo.bucket, repo.prefix) == (bucket, "root")
    assert repo._client is None  # nothing is created until first use
    assert repo.client is repo.client


def test_objects_land_under_the_prefix(repo):
    repo.write_bytes("a/b.txt", b"hi")
    keys = [o["Key"] for o in repo.client.list_objects_v2(Bucket=repo.bucket)["Contents"]]
    assert keys == ["experiments/1/run-abc/artifacts/a/b.txt"]


def test_sibling_roots_with_a_common_prefix_stay_apart(bucket):
    one = S3ArtifactRepository(f"s3://{bucket}/root")
    two = S3ArtifactRepository(f"s3://{bucket}/root2")
    one.write_bytes("f.txt", b"1")
    two.write_bytes("g.txt", b"2")
    assert listing(one) == [("f.txt", False, 1)]
    one.delete_artifacts()
    assert listing(two) == [("g.txt", False, 1)]


def test_bucket_root_without_prefix(bucket, tmp_path):
    repo = S3ArtifactRepository(f"s3://{bucket}")
    repo.log_artifacts(make_tree(tmp_path), "m")
    assert listing(repo) == [("m", True, None)]
    assert read_tree(repo.download_artifacts("m", str(tmp_path / "dl"))) == read_tree(str(tmp_path / "model"))


def test_folder_markers_are_not_listed_as_files(repo):
    _put(repo, f"{repo.prefix}/empty/", b"")
    _put(repo, f"{repo.prefix}/empty/real.txt", b"r")
    assert listing(repo) == [("empty", True, None)]
    assert listing(repo, "empty") == [("empty/real.txt", False, 1)]
    repo.delete_artifacts("empty")
    assert repo.client.list_objects_v2(Bucket=repo.bucket, Prefix=repo.prefix)["KeyCount"] == 0


def test_keys_written_by_others_cannot_escape_a_download(repo, tmp_path):
    repo.write_bytes("d/ok.txt", b"ok")
    _put(repo, f"{repo.prefix}/d/../../../../evil.txt", b"evil")
    _put(repo, f"{repo.prefix}/d//double.txt", b"odd")
    dst = tmp_path / "dl" / "inner"
    local = repo.download_artifacts("d", str(dst))
    assert read_tree(local) == {"ok.txt": b"ok"}
    assert read_tree(str(tmp_path / "dl")) == {"inner/d/ok.txt": b"ok"}
    assert not (tmp_path / "evil.txt").exists()
    assert [f.path for f in repo.list_artifacts("d")] == ["d/ok.txt"]
    repo.delete_artifacts("d")  # odd keys under the prefix go too
    assert repo.client.list_objects_v2(Bucket=repo.bucket, Prefix=f"{repo.prefix}/d/")["KeyCount"] == 0


def test_many_files_upload_and_download_in_parallel(repo, tmp_path):
    src = tmp_path / "many"
    for i in range(30):
        (src / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 3}" / f"f{i}.txt").write_text(str(i))
    repo.log_artifacts(str(src), "many")
    assert len(repo.list_artifacts("many")) == 3
    assert read_tree(repo.download_artifacts("many", str(tmp_path / "dl"))) == read_tree(str(src))


def test_list_and_delete_work_across_pages(repo):
    repo.list_page_size, repo.delete_batch_size = 7, 10
    for i in range(25):
        _put(repo, f"{repo.prefix}/big/{i:04d}.txt", b"")
    for i in range(9):
        _put(repo, f"{repo.prefix}/big/sub{i}/x.txt", b"")
    files = repo.list_artifacts("big")
    assert len(files) == 34 and sum(f.is_dir for f in files) == 9
    assert files[0].path == "big/0000.txt" and files[-1].path == "big/sub8"
    repo.delete_artifacts("big")  # several DeleteObjects calls
    assert repo.list_artifacts("big") == []
    assert repo.client.list_objects_v2(Bucket=repo.bucket, Prefix=repo.prefix)["KeyCount"] == 0


def test_log_artifact_of_a_missing_local_file(repo, tmp_path):
    with pytest.raises(ResourceDoesNotExist, match="no such file"):
        repo.log_artifact(str(tmp_path / "missing.txt"))


def test_missing_bucket_reads_as_missing_artifact(s3_env):
    repo = S3ArtifactRepository("s3://no-such-bucket-mltrail/x")
    with pytest.raises(ResourceDoesNotExist):
        repo.read_bytes("a.txt")


def test_mltrail_endpoint_variable_wins(bucket, s3_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_env)
    repo = S3ArtifactRepository(f"s3://{bucket}/p")
    repo.write_bytes("a.txt", b"a")
    assert repo.client.meta.endpoint_url == s3_env
    assert repo.read_bytes("a.txt") == b"a"


def test_credentials_come_from_the_environment(bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone-else")
    repo = S3ArtifactRepository(f"s3://{bucket}/p")
    assert repo.client._request_signer._credentials.access_key == "someone-else"


def test_ignore_tls_and_upload_extra_args(bucket, monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_IGNORE_TLS", "true")
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"Metadata": {"origin": "mltrail"}}')
    repo = S3ArtifactRepository(f"s3://{bucket}/p")
    repo.write_bytes("a.txt", b"a")
    head = repo.client.head_object(Bucket=bucket, Key="p/a.txt")
    assert head["Metadata"] == {"origin": "mltrail"}
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", "not json")
    with pytest.raises(InvalidParameterValue, match="MLFLOW_S3_UPLOAD_EXTRA_ARGS"):
        repo.write_bytes("b.txt", b"b")


@pytest.mark.parametrize("uri", ["s3://", "s3:///prefix", "gs://bucket/x", "s3://bucket/../x", "s3://b/%2e%2e/x",
                                 "s3://bucket/x?versionId=1"])
def test_bad_root_uris_are_refused(uri):
    with pytest.raises(InvalidParameterValue):
        parse_s3_uri(uri)


def test_download_is_atomic_per_file(repo, tmp_path):
    repo.write_bytes("a.txt", b"a")
    dst = tmp_path / "dl"
    repo.download_artifacts("a.txt", str(dst))
    with pytest.raises(ResourceDoesNotExist):
        repo.download_artifacts("b.txt", str(dst))
    assert sorted(os.listdir(dst)) == ["a.txt"]  # no temp file left behind


def test_runs_log_to_an_experiment_with_an_s3_artifact_location(bucket, tracking, tmp_path):
    import mltrail

    exp_id = mltrail.create_experiment("s3-exp", artifact_location=f"s3://{bucket}/mlruns")
    with mltrail.start_run(experiment_id=exp_id) as run:
        mltrail.log_artifact(make_tree(tmp_path))
        mltrail.log_text("hi", "notes/readme.txt")
        assert mltrail.get_artifact_uri().startswith(f"s3://{bucket}/mlruns/")
    client = mltrail.MlflowClient()
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["model", "notes"]
    local = client.download_artifacts(run.info.run_id, "model", str(tmp_path / "dl"))
    assert read_tree(local) == read_tree(str(tmp_path / "model"))
    note = mltrail.artifacts.download_artifacts(artifact_uri=f"runs:/{run.info.run_id}/notes/readme.txt",
                                                dst_path=str(tmp_path / "dl2"))
    assert open(note).read() == "hi"
    direct = mltrail.artifacts.download_artifacts(artifact_uri=f"{mltrail.get_run(run.info.run_id).info.artifact_uri}"
                                                  "/model/data", dst_path=str(tmp_path / "dl3"))
    assert read_tree(direct) == read_tree(str(tmp_path / "model" / "data"))


def test_s3_dataset_source_loads_through_the_repository(bucket, tmp_path):
    import numpy as np

    import mltrail.data

    S3ArtifactRepository(f"s3://{bucket}/datasets").write_bytes("train.csv", b"a,b\n1,2\n")
    ds = mltrail.data.from_numpy(np.zeros(2), source=f"s3://{bucket}/datasets/train.csv")
    assert ds.to_dict()["source_type"] == "s3"
    local = ds.source.load(dst_path=str(tmp_path / "dl"))
    assert open(local).read() == "a,b\n1,2\n"
