"""Large artifacts through the proxy (#15): a 300 MB file each way through a `mltrail server`
subprocess whose peak memory (VmHWM) stays bounded, to a local and an S3 destination (moto's
S3-compatible server on 127.0.0.1); ranged reads; MLflow's multipart upload endpoints with our
client and the real `mlflow` client; a part that fails once is sent again alone; presigned
transfers straight between client and S3; the progress bar.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import requests
from server_fixture import ServerProcess, ServerThread, close_stores, server_settings

from mltrail._progress import ProgressBar, progress_wanted
from mltrail.errors import ResourceDoesNotExist
from mltrail.server.app import create_app
from mltrail.store.artifact.http import HttpArtifactRepository

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
BIG = 300 * MiB
# a generous bound on the server's peak RSS for a 300 MB file each way: a server holding the body
# in memory would pass 300 MB of payload on top of its ~100 MB of code and libraries
PEAK_RSS_BOUND = 400 * MiB
ART = "/api/2.0/mlflow-artifacts/artifacts"
MPU = "/api/2.0/mlflow-artifacts/mpu"


def _write_file(path: Path, size: int) -> str:
    """`size` bytes, 1 MiB blocks each stamped with its index (parts joined out of order would show);
    returns the sha256."""
    base = bytearray(os.urandom(MiB))
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(0, size, MiB):
            base[:8] = i.to_bytes(8, "big")
            block = bytes(base[:min(MiB, size - i)])
            fh.write(block)
            digest.update(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def _peak_rss(pid: int) -> int:
    """VmHWM (the peak resident set) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "weights.bin"
    return path, _write_file(path, BIG)


@pytest.fixture(scope="module")
def s3_endpoint():
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _s3_env(endpoint: str, tmp: Path) -> dict[str, str]:
    return {"MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials")}


def _bucket(endpoint: str) -> str:
    import boto3

    name = f"mltrail-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=name)
    return name


def _proxy_repo(uri: str, root: str) -> HttpArtifactRepository:
    return HttpArtifactRepository(f"{uri}{ART}/{root}")


def _round_trips(uri: str, big: Path, digest: str, tmp: Path, monkeypatch) -> None:
    """The file up with one streamed PUT and down, then up in parts (MLflow's mpu) and down."""
    repo = _proxy_repo(uri, "1/run/artifacts")
    for how, multipart in (("put", "false"), ("mpu", "true")):
        monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", multipart)
        repo.log_artifact(str(big), how)
        out = tmp / how / big.name
        repo.download_file(f"{how}/{big.name}", str(out))
        assert _sha256(out) == digest, how
        out.unlink()
    assert {f.path: f.file_size for f in repo.list_artifacts("mpu")} == {f"mpu/{big.name}": BIG}


def test_300mb_each_way_to_a_local_destination_in_bounded_memory(big_file, tmp_path, monkeypatch):
    big, digest = big_file
    srv = ServerProcess(tmp_path).start()
    try:
        _round_trips(srv.uri, big, digest, tmp_path, monkeypatch)
        assert srv.proc is not None
        assert _peak_rss(srv.proc.pid) < PEAK_RSS_BOUND
        # the staging area of finished uploads is gone, and never listed
        dest = srv.root / "artifacts"
        assert not any((dest / ".mltrail-uploads").iterdir())
        listed = requests.get(srv.uri + ART, timeout=30).json()["files"]
        assert [f["path"] for f in listed] == ["1"]
    finally:
        srv.stop()


def test_300mb_each_way_to_an_s3_destination_in_bounded_memory(big_file, s3_endpoint, tmp_path, monkeypatch):
    big, digest = big_file
    bucket = _bucket(s3_endpoint)
    srv = ServerProcess(tmp_path, extra_args=["--artifacts-destination", f"s3://{bucket}/proxied"],
                        env=_s3_env(s3_endpoint, tmp_path)).start()
    try:
        _round_trips(srv.uri, big, digest, tmp_path, monkeypatch)
        assert srv.proc is not None
        assert _peak_rss(srv.proc.pid) < PEAK_RSS_BOUND
    finally:
        srv.stop()


# ------------------------------------------------------------------ ranges and the mpu protocol
@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    srv = ServerThread(create_app(server_settings(tmp_path_factory.mktemp("mpu")))).start()
    yield srv.uri
    close_stores(srv.uri)
    srv.stop()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory, s3_endpoint):
    """A server subprocess over an S3 destination that hands out presigned URLs."""
    tmp = tmp_path_factory.mktemp("s3-presigned")
    bucket = _bucket(s3_endpoint)
    srv = ServerProcess(tmp, extra_args=["--artifacts-destination", f"s3://{bucket}/p", "--artifacts-presigned-urls"],
                        env=_s3_env(s3_endpoint, tmp)).start()
    yield srv.uri
    srv.stop()


def _check_ranges(uri: str, path: str, data: bytes) -> None:
    url = f"{uri}{ART}/{path}"
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Accept-Ranges"] == "bytes"
    size = len(data)
    for header, first, last in (("bytes=10-19", 10, 19), (f"bytes={size - 5}-", size - 5, size - 1),
                                ("bytes=-7", size - 7, size - 1), (f"bytes=100-{size * 2}", 100, size - 1)):
        r = requests.get(url, headers={"Range": header}, timeout=30)
        assert r.status_code == 206, header
        assert r.headers["Content-Range"] == f"bytes {first}-{last}/{size}", header
        assert r.content == data[first:last + 1], header
    r = requests.get(url, headers={"Range": f"bytes={size + 10}-{size + 20}"}, timeout=30)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{size}"


def test_ranged_reads_from_local_and_s3_destinations(local_server, s3_server, monkeypatch):
    data = os.urandom(3 * MiB + 123)
    for uri in (local_server, s3_server):
        assert requests.put(f"{uri}{ART}/2/r/range.bin", data=data, timeout=60).status_code == 200
        monkeypatch.delenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", raising=False)
        _check_ranges(uri, "2/r/range.bin", data)


def test_mpu_create_part_complete_and_abort_over_http(local_server, tmp_path):
    created = requests.post(f"{local_server}{MPU}/create/3/r", json={"path": "/home/me/local/model.bin", "num_parts": 2}, timeout=30).json()
    upload_id = created["upload_id"]
    assert [c["part_number"] for c in created["credentials"]] == [1, 2]
    url1, url2 = (c["url"] for c in created["credentials"])
    assert url1.startswith(f"{local_server}{MPU}/part/3/r/model.bin?")  # the file keeps the local file's name
    # an unknown upload id is refused (the id is the capability), before any byte is stored
    bogus = url1.replace(upload_id, "0" * 32)
    assert requests.put(bogus, data=b"x", timeout=30).status_code == 404
    etags = [requests.put(url, data=body, timeout=30).headers["ETag"] for url, body in ((url2, b"world"),
                                                                                      (url1, b"hello "))]
    parts = [{"part_number": 1, "etag": etags[1]}, {"part_number": 2, "etag": etags[0]}]
    bad = requests.post(f"{local_server}{MPU}/complete/3/r", timeout=30, json={
        "path": "model.bin", "upload_id": upload_id, "parts": [{"part_number": 1, "etag": "nope"}]})
    assert bad.status_code == 400 and "ETag" in bad.json()["message"]
    done = requests.post(f"{local_server}{MPU}/complete/3/r", timeout=30,
                         json={"path": "model.bin", "upload_id": upload_id, "parts": parts})
    assert done.status_code == 200, done.text
    assert requests.get(f"{local_server}{ART}/3/r/model.bin", timeout=30).content == b"hello world"
    # abort drops the parts; the upload is gone afterwards
    other = requests.post(f"{local_server}{MPU}/create/3/r", json={"path": "x.bin", "num_parts": 1},
                          timeout=30).json()
    assert requests.put(other["credentials"][0]["url"], data=b"part", timeout=30).status_code == 200
    assert requests.post(f"{local_server}{MPU}/abort/3/r", json={"path": "x.bin", "upload_id": other["upload_id"]},
                         timeout=30).status_code == 200
    assert requests.put(other["credentials"][0]["url"], data=b"part", timeout=30).status_code == 404
    assert requests.get(f"{local_server}{ART}/3/r/x.bin", timeout=30).status_code == 404
    # MLflow's checks of the request
    r = requests.post(f"{local_server}{MPU}/create/3/r", json={"num_parts": 1}, timeout=30)
    assert r.status_code == 400 and "'path'" in r.json()["message"]


def test_our_client_uploads_in_parts_and_takes_parts_back_on_abort(local_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(MiB))
    monkeypatch.delenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", raising=False)  # server-info decides
    src = tmp_path / "five.bin"
    digest = _write_file(src, 5 * MiB + 17)
    repo = _proxy_repo(local_server, "4/r/artifacts")
    repo.log_artifact(str(src))
    out = tmp_path / "back.bin"
    repo.download_file("five.bin", str(out))
    assert _sha256(out) == digest


# ------------------------------------------------------------------ a failing part is sent again alone
class PartCounter:
    """ASGI middleware in front of the real app: counts the part PUTs it sees by part number; with
    `fail_part`, the first PUT of that part answers 503."""

    def __init__(self, app, fail_part: int | None = None):
        self.app = app
        self.fail_part = fail_part
        self.puts: dict[int, int] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "PUT" and "/mpu/part/" in scope["path"]:
            query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
            number = int(query["part_number"])
            self.puts[number] = self.puts.get(number, 0) + 1
            if number == self.fail_part and self.puts[number] == 1:
                while (await receive()).get("more_body"):
                    pass  # read the part, as a server that fails late would
                await send({"type": "http.response.start", "status": 503, "headers": [(b"retry-after", b"0")]})
                await send({"type": "http.response.body", "body": b"{}"})
                return
        await self.app(scope, receive, send)


def test_a_part_that_fails_once_is_sent_again_alone(tmp_path, monkeypatch):
    app = PartCounter(create_app(server_settings(tmp_path)), fail_part=2)
    srv = ServerThread(app).start()
    try:
        monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MiB))
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(2 * MiB))
        src = tmp_path / "three-parts.bin"
        digest = _write_file(src, 5 * MiB)
        repo = _proxy_repo(srv.uri, "5/r/artifacts")
        repo.log_artifact(str(src))
        assert app.puts == {1: 1, 2: 2, 3: 1}
        out = tmp_path / "back.bin"
        repo.download_file("three-parts.bin", str(out))
        assert _sha256(out) == digest
    finally:
        close_stores(srv.uri)
        srv.stop()


# ------------------------------------------------------------------ presigned: straight to and from S3
def test_presigned_parts_and_downloads_go_straight_to_s3(s3_server, s3_endpoint, tmp_path, monkeypatch):
    info = requests.get(f"{s3_server}/api/3.0/mlflow/server-info", timeout=30).json()
    assert info["multipart_uploads_enabled"] is True and info["multipart_downloads_enabled"] is True
    created = requests.post(f"{s3_server}{MPU}/create/6/r", json={"path": "m.bin", "num_parts": 2},
                            timeout=30).json()
    assert all(c["url"].startswith(s3_endpoint) for c in created["credentials"])
    assert requests.post(f"{s3_server}{MPU}/abort/6/r", json={"path": "m.bin", "upload_id": created["upload_id"]},
                         timeout=30).status_code == 200
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))  # S3's smallest part but the last
    src = tmp_path / "direct.bin"
    digest = _write_file(src, 11 * MiB)
    repo = _proxy_repo(s3_server, "6/r/artifacts")
    repo.log_artifact(str(src))
    found = requests.get(f"{s3_server}/api/2.0/mlflow-artifacts/presigned/6/r/artifacts/direct.bin", timeout=30)
    assert found.json()["file_size"] == 11 * MiB and found.json()["url"].startswith(s3_endpoint)
    out = tmp_path / "back.bin"
    repo.download_file("direct.bin", str(out))
    assert _sha256(out) == digest
    missing = requests.get(f"{s3_server}/api/2.0/mlflow-artifacts/presigned/6/r/artifacts/none.bin", timeout=30)
    assert missing.status_code == 404


def test_presigned_downloads_are_refused_unless_the_server_hands_them_out(local_server):
    r = requests.get(f"{local_server}/api/2.0/mlflow-artifacts/presigned/1/x.bin", timeout=30)
    assert r.status_code == 501
    assert r.json()["message"].startswith("Multipart download is not supported for the current artifact repository")


# ------------------------------------------------------------------ the real mlflow client
MLFLOW_SCRIPT = textwrap.dedent("""
    import hashlib, os, sys
    import mlflow

    src = sys.argv[1]
    with mlflow.start_run() as run:
        mlflow.log_artifact(src, "weights")
    out = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="weights/" + os.path.basename(src),
                                              dst_path=sys.argv[2])
    print("sha256", hashlib.sha256(open(out, "rb").read()).hexdigest())
""")


def _mlflow_round_trip(python: str, uri: str, tmp: Path, size: int, chunk: int, extra_env: dict[str, str]) -> None:
    src = tmp / "mlflow-weights.bin"
    digest = _write_file(src, size)
    script = tmp / "mlflow_mpu.py"
    script.write_text(MLFLOW_SCRIPT)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
           "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(MiB), "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(chunk),
           **extra_env}
    proc = subprocess.run([python, str(script), str(src), str(tmp / "out")], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"sha256 {digest}" in proc.stdout
    assert "multipart upload" not in proc.stderr.lower()  # MLflow warns when it falls back


def test_the_mlflow_client_uploads_in_parts_through_us(mlflow_python, tmp_path):
    app = PartCounter(create_app(server_settings(tmp_path)))
    srv = ServerThread(app).start()
    try:
        _mlflow_round_trip(mlflow_python, srv.uri, tmp_path, 7 * MiB + 5, 2 * MiB, {})
    finally:
        srv.stop()
    assert app.puts == {1: 1, 2: 1, 3: 1, 4: 1}  # in parts, not one PUT of the whole file


def test_the_mlflow_client_goes_straight_to_s3_with_presigned_urls(mlflow_python, s3_server, s3_endpoint, tmp_path):
    env = {k: v for k, v in _s3_env(s3_endpoint, tmp_path).items() if k != "MLFLOW_S3_ENDPOINT_URL"}
    env["MLFLOW_MULTIPART_DOWNLOAD_MINIMUM_FILE_SIZE"] = str(MiB)
    env["MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE"] = str(4 * MiB)
    _mlflow_round_trip(mlflow_python, s3_server, tmp_path, 11 * MiB, 5 * MiB, env)


# ------------------------------------------------------------------ the progress bar
def test_progress_bar_draws_at_most_five_times_a_second(monkeypatch):
    out = io.StringIO()
    started = time.monotonic()
    with ProgressBar(100 * MiB, "Uploading w.bin", stream=out, enabled=True) as bar:
        for _ in range(10000):
            bar.update(10 * 1024)
    elapsed = time.monotonic() - started
    assert bar.redraws <= 2 + 5 * elapsed  # the first, at most five a second after it, and the last
    last = out.getvalue().rstrip("\n").rsplit("\r", 1)[-1]
    assert last.startswith("Uploading w.bin: ") and "97.7/100.0 MiB" in last
    monkeypatch.delenv("MLTRAIL_PROGRESS", raising=False)
    assert progress_wanted(100 * MiB, io.StringIO()) is False  # not a terminal
    monkeypatch.setenv("MLTRAIL_PROGRESS", "true")
    assert progress_wanted(100 * MiB, io.StringIO()) is True
    assert progress_wanted(MiB, io.StringIO()) is False  # a small transfer shows none
    monkeypatch.setenv("MLTRAIL_PROGRESS", "false")
    assert progress_wanted(100 * MiB, io.StringIO()) is False


def test_a_missing_file_is_a_404_from_s3_too(s3_server, tmp_path):
    repo = _proxy_repo(s3_server, "7/r")
    with pytest.raises(ResourceDoesNotExist):
        repo.download_file("none.bin", str(tmp_path / "none.bin"))


def test_staged_parts_are_no_artifacts_and_stale_uploads_are_dropped(local_server, tmp_path):
    from mltrail.store.artifact.local import STALE_UPLOAD_S, UPLOADS_DIR, LocalArtifactRepository

    created = requests.post(f"{local_server}{MPU}/create/8/r", json={"path": "p.bin", "num_parts": 1},
                            timeout=30).json()
    listing = requests.get(f"{local_server}{ART}", params={"path": UPLOADS_DIR}, timeout=30)
    assert listing.status_code == 400 and created["upload_id"] not in listing.text
    assert requests.get(f"{local_server}{ART}/{UPLOADS_DIR}/{created['upload_id']}/target",
                        timeout=30).status_code == 400
    repo = LocalArtifactRepository(str(tmp_path / "root"))
    old = repo.create_multipart_upload("a/old.bin")
    staging = tmp_path / "root" / UPLOADS_DIR / old
    os.utime(staging, (time.time() - STALE_UPLOAD_S - 60,) * 2)
    fresh = repo.create_multipart_upload("a/new.bin")
    assert not staging.exists() and (tmp_path / "root" / UPLOADS_DIR / fresh).is_dir()
