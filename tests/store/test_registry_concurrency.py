"""Eight processes registering versions of one model at once get distinct, gap-free, increasing numbers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import mltrail
from mltrail.store import clear_cache, get_store

PROCESSES = 8
VERSIONS_EACH = 6

WORKER = textwrap.dedent("""
    import sys
    import mltrail
    from mltrail.errors import ResourceAlreadyExists
    uri, run_id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = mltrail.MlflowClient(uri)
    try:  # all of them race to create the model too
        client.create_registered_model("shared")
    except ResourceAlreadyExists:
        pass
    got = [client.create_model_version("shared", f"runs:/{run_id}/model", run_id=run_id).version for _ in range(n)]
    print(" ".join(str(v) for v in got))
""")


def _register_concurrently(uri: str, tmp_path) -> None:
    clear_cache()
    store = get_store(uri, artifact_root=str(tmp_path / "artifacts"))  # schema and a run, before the race
    run_id = store.create_run("0", "tester", None, [], None).info.run_id
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, uri, run_id, str(VERSIONS_EACH)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(PROCESSES)]
    results = [p.communicate(timeout=300) for p in procs]
    per_process = []
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err
        per_process.append([int(x) for x in out.split()])
    for got in per_process:
        assert len(got) == VERSIONS_EACH and got == sorted(got) and len(set(got)) == VERSIONS_EACH
    everything = sorted(n for got in per_process for n in got)
    assert everything == list(range(1, PROCESSES * VERSIONS_EACH + 1))  # distinct and gap-free
    client = mltrail.MlflowClient(uri)
    listed = client.search_model_versions("name = 'shared'", order_by=["version_number"])
    assert [int(mv.version) for mv in listed] == everything
    assert len(client.search_registered_models("name = 'shared'")) == 1


def test_eight_processes_on_one_sqlite_file(tmp_path):
    _register_concurrently(f"sqlite:///{tmp_path}/registry.db", tmp_path)


@pytest.mark.postgres
def test_eight_processes_on_postgresql(postgres_uri, tmp_path):
    _register_concurrently(postgres_uri, tmp_path)
