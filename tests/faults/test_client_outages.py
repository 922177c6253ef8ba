"""The client side of outages, with real processes: a `mltrail server` SIGKILLed and restarted while a
client logs, a server refusing one run's call, `end_run` with the server gone (bounded, one warning,
the run FINISHED later by `mltrail sync`), and a create request resent after a lost answer (a real
TCP proxy dropping the first answer) creating one run or logged model.

The longest time a logging call blocked the caller is measured and written to `tmp_path/*.json`
and printed (pytest shows it with `-s` or in a failure report); it is never asserted (bench/ holds timings).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pytest
from faults_support import LoggingChild, ServerChild

import mltrail
from mltrail.errors import InvalidParameterValue
from mltrail.store.rest import JournaledCallsWarning

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))

from server_fixture import close_stores, start_server  # noqa: E402


def _sqlite_server(tmp_path: Path) -> ServerChild:
    return ServerChild(f"sqlite:///{tmp_path / 'server.db'}", tmp_path)


def _report(tmp_path: Path, name: str, figures: dict[str, object]) -> None:
    (tmp_path / f"{name}.json").write_text(json.dumps(figures, indent=1))
    print(f"{name}: {json.dumps(figures)}")


def _wait_status(client: mltrail.MlflowClient, run_id: str, status: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = client.get_run(run_id).info.status
        if seen == status:
            return seen
        time.sleep(0.1)
    return seen


# ---------------------------------------------------------------------- the server killed and restarted
def test_server_sigkilled_and_restarted_while_logging_loses_nothing(tmp_path):
    srv = _sqlite_server(tmp_path).start()
    try:
        reader = mltrail.MlflowClient(srv.uri)
        run_id = reader.create_run("0").info.run_id
        n = 3000
        child = LoggingChild(srv.uri, run_id, n=n, out=tmp_path / "child.json", pause_s=0.001).start()
        child.wait_for_step(300)
        srv.kill()  # SIGKILL mid-logging: the calls it had not answered stay in the child's journal
        killed_at = time.perf_counter()
        time.sleep(2.0)
        srv.start()
        report = child.wait(timeout=120)
        drained_s = time.perf_counter() - killed_at
        history = reader.get_metric_history(run_id, "m")
        steps = sorted(m.step for m in history)
        _report(tmp_path, "server_sigkill", {
            "acked": report["acked"], "stored": len(history), "max_block_s": report["max_block_s"],
            "blocks_over_50ms": report["blocks_over_50ms"], "end_run_s": report["end_run_s"],
            "kill_to_drained_s": round(drained_s, 3)})
        assert report["errors"] == []
        assert report["acked"] == n
        assert steps == list(range(n)), "every acknowledged point stored exactly once"
        assert all(m.value == m.step * 0.5 for m in history)
        assert reader.get_run(run_id).info.status == "FINISHED"
    finally:
        close_stores(srv.uri)
        srv.stop()


# ---------------------------------------------------------------------- a refusal goes to its own run
def test_a_refusal_is_reported_to_the_run_that_made_the_call(tmp_path):
    srv = _sqlite_server(tmp_path).start()
    try:
        client = mltrail.MlflowClient(srv.uri)
        bad = client.create_run("0").info.run_id
        good = client.create_run("0").info.run_id
        client.log_param(bad, "lr", "0.1")
        client.log_param(bad, "lr", "0.2")  # a changed param: the server refuses it (400)
        for step in range(50):
            client.log_metric(good, "loss", 1.0 / (step + 1), step=step)
        client.log_metric(bad, "loss", 0.5, step=0)
        # the other run ends cleanly: the refusal is not raised into whoever flushes next
        client.set_terminated(good)
        assert client.get_run(good).info.status == "FINISHED"
        assert len(client.get_metric_history(good, "loss")) == 50
        with pytest.raises(InvalidParameterValue, match="lr"):
            client.set_terminated(bad)
        info = client.get_run(bad)
        assert info.info.status == "FINISHED", "the refused run still ends"
        assert info.data.params == {"lr": "0.1"}
        assert [m.value for m in client.get_metric_history(bad, "loss")] == [0.5]
        client.flush(timeout=5)  # reported once: nothing left to raise
    finally:
        close_stores(srv.uri)
        srv.stop()


# ---------------------------------------------------------------------- end_run with the server down
def test_end_run_with_the_server_down_returns_in_time_and_the_run_finishes_later(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_FLUSH_TIMEOUT", "2")
    srv = _sqlite_server(tmp_path).start()
    try:
        mltrail.set_tracking_uri(srv.uri)
        run = mltrail.start_run()
        run_id = run.info.run_id
        mltrail.log_metric("before", 1.0)
        mltrail.flush(timeout=10)
        srv.kill()
        max_block = 0.0
        for step in range(200):
            t0 = time.perf_counter()
            mltrail.log_metric("during", float(step), step=step)
            max_block = max(max_block, time.perf_counter() - t0)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mltrail.end_run()
        end_run_s = time.perf_counter() - t0
        ours = [w for w in caught if issubclass(w.category, JournaledCallsWarning)]
        assert len(ours) == 1, [str(w.message) for w in caught]
        assert "remain journaled" in str(ours[0].message) and "mltrail sync" in str(ours[0].message)
        assert mltrail.active_run() is None
        srv.start()  # the same port: this process's sender delivers what it kept, the end last
        client = mltrail.MlflowClient(srv.uri)
        assert _wait_status(client, run_id, "FINISHED") == "FINISHED"
        assert sorted(m.step for m in client.get_metric_history(run_id, "during")) == list(range(200))
        _report(tmp_path, "end_run_server_down", {"end_run_s": round(end_run_s, 3), "max_block_s": max_block})
    finally:
        close_stores(srv.uri)
        srv.stop()


_EXITING_CLIENT = textwrap.dedent("""
    import json, sys, time, warnings
    import mltrail
    uri, run_id, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    client = mltrail.MlflowClient(uri)
    for i in range(n):
        client.log_metric(run_id, "m", float(i), step=i)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.set_terminated(run_id, "FAILED")
    took = time.perf_counter() - t0
    with open(out, "w") as fh:
        json.dump({"set_terminated_s": took, "warnings": [str(w.message) for w in caught]}, fh)
""")


def test_a_run_ended_while_the_server_is_down_is_finished_by_mltrail_sync(tmp_path):
    srv = _sqlite_server(tmp_path).start()
    try:
        client = mltrail.MlflowClient(srv.uri)
        run_id = client.create_run("0").info.run_id
        srv.kill()
        out = tmp_path / "exiting.json"
        env = {"MLTRAIL_FLUSH_TIMEOUT": "1", "MLTRAIL_JOURNAL_RECOVERY": "0"}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _EXITING_CLIENT, srv.uri, run_id, "300", str(out)],
                              capture_output=True, text=True, timeout=120, env={**_env(), **env})
        process_s = time.perf_counter() - t0
        assert proc.returncode == 0, proc.stderr
        report = json.loads(out.read_text())
        assert len(report["warnings"]) == 1 and "remain journaled" in report["warnings"][0]
        srv.start()
        assert client.get_run(run_id).info.status == "RUNNING"  # nothing sent yet: it is all journaled
        sync = subprocess.run([sys.executable, "-m", "mltrail.cli", "sync", "--timeout", "30"],
                              capture_output=True, text=True, timeout=120, env=_env())
        assert sync.returncode == 0, sync.stdout + sync.stderr
        assert client.get_run(run_id).info.status == "FAILED"
        assert sorted(m.step for m in client.get_metric_history(run_id, "m")) == list(range(300))
        _report(tmp_path, "end_run_then_exit_server_down", {
            "set_terminated_s": round(report["set_terminated_s"], 3), "process_s": round(process_s, 3)})
    finally:
        close_stores(srv.uri)
        srv.stop()


def _env() -> dict[str, str]:
    return dict(os.environ)


# ---------------------------------------------------------------------- a lost answer, resent once
class DroppingProxy:
    """A TCP proxy on 127.0.0.1 that forwards everything, except that the first answer to a request
    whose head holds `marker` never reaches the client: the proxy closes the client's connection
    once the server has answered (the request was applied, the answer lost)."""

    def __init__(self, upstream_port: int, marker: bytes) -> None:
        self.upstream_port = upstream_port
        self.marker = marker
        self.dropped = 0
        self._armed = True
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.uri = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            state = {"drop": False}
            threading.Thread(target=self._to_server, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._to_client, args=(upstream, client, state), daemon=True).start()

    def _to_server(self, client: socket.socket, upstream: socket.socket, state: dict[str, bool]) -> None:
        try:
            while data := client.recv(65536):
                with self._lock:
                    if self._armed and self.marker in data:
                        self._armed = False
                        state["drop"] = True
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)

    def _to_client(self, upstream: socket.socket, client: socket.socket, state: dict[str, bool]) -> None:
        try:
            while data := upstream.recv(65536):
                if state["drop"]:  # the server answered: lose the answer, cut the client off
                    with self._lock:
                        self.dropped += 1
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)

    def close(self) -> None:
        self._closed = True
        _close(self.sock)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


@pytest.mark.parametrize("what", ["run", "logged model"])
def test_a_create_resent_after_a_lost_answer_creates_one(tmp_path, request, what):
    uri = start_server(request, tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    marker = b"/runs/create" if what == "run" else b"POST /api/2.0/mlflow/logged-models HTTP"
    proxy = DroppingProxy(port, marker)
    request.addfinalizer(proxy.close)
    direct = mltrail.MlflowClient(uri)
    exp = direct.create_experiment("lost-answers")
    via_proxy = mltrail.MlflowClient(proxy.uri)
    if what == "run":
        created = via_proxy.create_run(exp).info.run_id
        stored = [r.info.run_id for r in direct.search_runs([exp])]
    else:
        created = via_proxy.create_logged_model(exp, name="net").model_id
        stored = [m.model_id for m in direct.search_logged_models([exp])]
    assert proxy.dropped == 1, "the proxy lost the first answer"
    assert stored == [created], f"one {what}, the one the client got back"


# ---------------------------------------------------------------------- the autolog writer waits
def test_the_autolog_writer_waits_for_the_server_and_says_so_once(tmp_path, monkeypatch):
    from mltrail.tensorflow._async_writer import AsyncWriter, AutologWarning, FailureReport

    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_MAX_RETRIES", "0")  # each read fails at once while it is down
    srv = _sqlite_server(tmp_path).start()
    try:
        client = mltrail.MlflowClient(srv.uri)
        run_id = client.create_run("0").info.run_id
        srv.kill()
        failures = FailureReport()
        writer = AsyncWriter(client, run_id, failures)
        t0 = time.perf_counter()
        writer.log_params({"epochs": 3, "units": 8})  # reads the run's params first: the server is needed
        queued_s = time.perf_counter() - t0
        assert not writer.flush(timeout=1.5), "nothing can be stored while the server is down"
        t0 = time.perf_counter()
        writer.add_metrics(("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(40))  # queued behind it
        queued_s = max(queued_s, time.perf_counter() - t0)
        srv.start()
        assert writer.flush(timeout=60)
        writer.close()
        assert client.get_run(run_id).data.params == {"epochs": "3", "units": "8"}
        assert len(client.get_metric_history(run_id, "loss")) == 40
        assert failures.kinds == set(), "waiting is not a failure"
        with pytest.warns(AutologWarning, match="waiting for the tracking store") as record:
            failures.emit()
            failures.emit()
        assert len(record) == 1
        _report(tmp_path, "autolog_writer_server_down", {"queue_calls_s": round(queued_s, 4)})
    finally:
        close_stores(srv.uri)
        srv.stop()


_LEFT_OPEN = textwrap.dedent("""
    import sys
    import mltrail
    mltrail.set_tracking_uri(sys.argv[1])
    run = mltrail.start_run()
    print(run.info.run_id, flush=True)
    sys.stdin.readline()  # the test kills the server meanwhile
    for i in range(100):
        mltrail.log_metric("m", float(i), step=i)
    # no end_run: interpreter exit ends the run
""")


def test_a_run_left_open_at_exit_with_the_server_down_is_ended_by_the_next_sync(tmp_path):
    srv = _sqlite_server(tmp_path).start()
    try:
        env = {**_env(), "MLTRAIL_FLUSH_TIMEOUT": "1", "MLTRAIL_JOURNAL_RECOVERY": "0"}
        child = subprocess.Popen([sys.executable, "-c", _LEFT_OPEN, srv.uri], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert child.stdout is not None and child.stdin is not None
        run_id = child.stdout.readline().strip()
        srv.kill()
        t0 = time.perf_counter()
        _, stderr = child.communicate("go\n", timeout=120)
        exit_s = time.perf_counter() - t0
        assert child.returncode == 0, stderr
        assert "remain journaled" in stderr and "Traceback" not in stderr
        srv.start()
        client = mltrail.MlflowClient(srv.uri)
        assert client.get_run(run_id).info.status == "RUNNING"
        sync = subprocess.run([sys.executable, "-m", "mltrail.cli", "sync", "--timeout", "30"],
                              capture_output=True, text=True, timeout=120, env=_env())
        assert sync.returncode == 0, sync.stdout + sync.stderr
        assert client.get_run(run_id).info.status == "FINISHED"
        assert sorted(m.step for m in client.get_metric_history(run_id, "m")) == list(range(100))
        _report(tmp_path, "exit_with_open_run_server_down", {"exit_s": round(exit_s, 3), "stderr": stderr[-1500:]})
    finally:
        close_stores(srv.uri)
        srv.stop()


def test_the_server_honours_the_idempotency_key_and_requests_without_one_are_unchanged(tmp_path, request):
    import requests

    uri = start_server(request, tmp_path)
    url = f"{uri}/api/2.0/mlflow/runs/create"
    keyed = {"experiment_id": "0", "mltrail_idempotency_key": "k-1"}
    first = requests.post(url, json=keyed, timeout=30).json()["run"]["info"]["run_id"]
    again = requests.post(url, json=keyed, timeout=30).json()["run"]["info"]["run_id"]
    other = requests.post(url, json={**keyed, "mltrail_idempotency_key": "k-2"}, timeout=30).json()
    plain = [requests.post(url, json={"experiment_id": "0"}, timeout=30).json()["run"]["info"]["run_id"]
             for _ in range(2)]  # what MLflow's client sends: each request creates a run
    assert first == again and other["run"]["info"]["run_id"] != first and plain[0] != plain[1]
    bad = requests.post(url, json={"experiment_id": "0", "mltrail_idempotency_key": 7}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "mltrail_idempotency_key" in bad.json()["message"]
    runs = mltrail.MlflowClient(uri).search_runs(["0"])
    assert len(runs) == 4
