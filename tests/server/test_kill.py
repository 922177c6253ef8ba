"""Crashes lose nothing and duplicate nothing: a logging client killed with SIGKILL mid-stream, and a
server killed with SIGKILL while big batches are in flight. Real processes, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from server_fixture import ServerProcess

from mltrail.entities import Metric
from mltrail.store.rest import RestTrackingStore
from mltrail.store.sql.store import SqlTrackingStore

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent("""
    import sys
    from mltrail.client import Client
    uri, run_id = sys.argv[1], sys.argv[2]
    client = Client(uri)
    out = sys.stdout
    for i in range(10_000_000):
        client.log_metric(run_id, "m", float(i), step=i)
        out.write(f"{i}\\n")  # printed only after the call returned
        out.flush()
""")


def _history_steps(server: ServerProcess, run_id: str) -> list[int]:
    store = SqlTrackingStore(f"sqlite:///{server.root}/mltrail.db", str(server.root / "artifacts"))
    return [m.step for m in store.get_metric_history(run_id, "m")]


def test_client_killed_mid_stream_loses_nothing_after_sync(tmp_path):
    server = ServerProcess(tmp_path).start()
    journal_dir = tmp_path / "journal-child"
    env = {**os.environ, "MLTRAIL_JOURNAL_DIR": str(journal_dir), "MLTRAIL_JOURNAL_RECOVERY": "0"}
    try:
        run_id = RestTrackingStore(server.uri).create_run("0", "t", None, [], None).info.run_id
        child = subprocess.Popen([sys.executable, "-c", CHILD, server.uri, run_id], stdout=subprocess.PIPE,
                                 env=env, text=True)
        last = -1
        stopped = False
        while True:
            line = child.stdout.readline()
            assert line, "the logging child died on its own"
            last = int(line)
            if last == 2000 and not stopped:
                # freeze the server: the batch in flight hangs, later calls pile up in the journal
                os.killpg(server.proc.pid, signal.SIGSTOP)
                stopped = True
            if last >= 6000:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        # the child may have returned from a few more calls before the kill landed
        last = max([last, *(int(x) for x in child.stdout.read().split() if x.isdigit())])
        os.killpg(server.proc.pid, signal.SIGCONT)
        assert list(journal_dir.rglob("*.jnl")), "the dead child left its journal"
        sync = subprocess.run([sys.executable, "-m", "mltrail.cli", "sync", "--journal-dir", str(journal_dir)],
                              capture_output=True, text=True, timeout=300, env=env)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        steps = _history_steps(server, run_id)
        assert len(steps) == len(set(steps)), "a point was stored twice"
        assert set(range(last + 1)) <= set(steps), "a point whose call returned was lost"
        assert not list(journal_dir.rglob("*.jnl"))
    finally:
        if server.proc is not None and server.proc.poll() is None:
            os.killpg(server.proc.pid, signal.SIGCONT)
        server.stop()


def test_server_killed_mid_batch_stores_no_half_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_JOURNAL_RECOVERY", "0")
    server = ServerProcess(tmp_path).start()
    n_batches, size = 150, 1000
    store = RestTrackingStore(server.uri)
    try:
        run_id = store.create_run("0", "t", None, [], None).info.run_id
        for b in range(n_batches):  # each call fills one request: 1000 metrics cannot merge with more
            store.log_batch(run_id, metrics=[Metric("m", float(j), 1, b * size + j) for j in range(size)])
        deadline = time.monotonic() + 120
        while store._queue.pending() > n_batches * 2 // 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store._queue.pending() > 0, "everything was sent before the kill"
        server.kill(signal.SIGKILL)
        steps = _history_steps(server, run_id)
        per_batch = [0] * n_batches
        for s in steps:
            per_batch[s // size] += 1
        assert set(per_batch) <= {0, size}, f"a half-stored batch: {sorted(set(per_batch))}"
        assert 0 < sum(per_batch) < n_batches * size
        # the same server comes back: the client resends what was not acknowledged, each batch once
        server.start()
        store.flush(timeout=300)
        steps = _history_steps(server, run_id)
        assert len(steps) == n_batches * size and len(set(steps)) == n_batches * size
    finally:
        store.close()
        server.stop()
