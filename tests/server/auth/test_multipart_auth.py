"""MLflow's multipart upload endpoints under auth (#15): create, complete and abort need EDIT on the
experiment the path lies in, as the proxy's PUT; a part needs no identity (MLflow's client sends
parts without credentials), for the upload id in its URL is the capability."""

from __future__ import annotations

import requests
from auth_support import ADMIN, auth_app
from server_fixture import ServerThread, close_stores, server_settings

MPU = "/api/2.0/mlflow-artifacts/mpu"


def test_mpu_needs_edit_on_the_experiment_and_parts_carry_their_capability(tmp_path):
    srv = ServerThread(auth_app(server_settings(tmp_path, auth=True))).start()
    try:
        uri = srv.uri
        made = requests.post(f"{uri}/api/2.0/mlflow/users/create", auth=ADMIN, timeout=30,
                             json={"username": "bob", "password": "a long password for bob"})
        assert made.status_code == 200, made.text
        bob = ("bob", "a long password for bob")
        exp = requests.post(f"{uri}/api/2.0/mlflow/experiments/create", auth=ADMIN, json={"name": "private"},
                            timeout=30).json()["experiment_id"]
        body = {"path": "/somewhere/w.bin", "num_parts": 1}
        assert requests.post(f"{uri}{MPU}/create/{exp}/r", json=body, timeout=30).status_code == 401
        assert requests.post(f"{uri}{MPU}/create/{exp}/r", json=body, auth=bob, timeout=30).status_code == 403
        created = requests.post(f"{uri}{MPU}/create/{exp}/r", json=body, auth=ADMIN, timeout=30).json()
        part = requests.put(created["credentials"][0]["url"], data=b"payload", timeout=30)  # no credentials
        assert part.status_code == 200
        done = {"path": "w.bin", "upload_id": created["upload_id"],
                "parts": [{"part_number": 1, "etag": part.headers["ETag"]}]}
        assert requests.post(f"{uri}{MPU}/complete/{exp}/r", json=done, auth=bob, timeout=30).status_code == 403
        assert requests.post(f"{uri}{MPU}/complete/{exp}/r", json=done, auth=ADMIN, timeout=30).status_code == 200
        got = requests.get(f"{uri}/api/2.0/mlflow-artifacts/artifacts/{exp}/r/w.bin", auth=ADMIN, timeout=30)
        assert got.content == b"payload"
        # a guessed upload id stores nothing
        guessed = created["credentials"][0]["url"].replace(created["upload_id"], "f" * 32)
        assert requests.put(guessed, data=b"x", timeout=30).status_code == 404
    finally:
        close_stores(srv.uri)
        srv.stop()
