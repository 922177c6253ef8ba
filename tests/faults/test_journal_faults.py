"""The journal under faults, with real processes: a logging client killed with SIGKILL whose journal
the next process sends; the journal directory made unusable while a run logs; a journal cut short
mid-line before `mltrail sync` sends it. After each: every acknowledged point stored exactly once,
nothing raised into the logging loop, and the longest time one logging call blocked (printed, and
written to `journal_faults.json` under the test's directory)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from faults_support import ServerChild

from mltrail.store.journal import parse
from mltrail.store.journal_file import journal_files
from mltrail.store.rest import RestTrackingStore
from mltrail.store.sql.store import SqlTrackingStore

pytestmark = pytest.mark.slow

# logs metric "m" (step i, value i / 2) until killed or `n` calls; after each call returns it prints
# "<step> <longest block so far in ms>", so the parent knows which calls were acknowledged
LOGGER = textwrap.dedent("""
    import os, sys, time
    from mltrail.client import Client
    uri, run_id, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    client = Client(uri)
    worst = steady = 0.0  # the longest call, and the longest after the first (which opens the store)
    second = None
    for i in range(n):
        if i == n // 2 and go != "-":
            client.flush()
            print("half", flush=True)
            while not os.path.exists(go):  # the parent breaks the journal directory meanwhile
                time.sleep(0.01)
            from mltrail.store.rest import RestTrackingStore
            second = RestTrackingStore(uri)  # a store opened now needs a new journal
        t = time.perf_counter()
        if second is not None and i % 2:
            from mltrail.entities import Metric
            second.log_batch(run_id, [Metric("m", i / 2, 1, i)])
        else:
            client.log_metric(run_id, "m", i / 2, step=i)
        took = time.perf_counter() - t
        if took > worst:
            worst = took
            sys.stderr.write(f"worst {i} {took * 1000:.3f}\\n")
        if i:
            steady = max(steady, took)
        print(i, round(worst * 1000, 3), round(steady * 1000, 3), flush=True)
    client.flush()
    if second is not None:
        second.flush()
""")


def stored_steps(server: ServerChild, run_id: str) -> list[int]:
    store = SqlTrackingStore(server.store_uri, str(server.root / "artifacts"))
    return [m.step for m in store.get_metric_history(run_id, "m")]


def record(tmp_path: Path, row: dict[str, Any]) -> None:
    """The figures of one fault (for the closing table): printed and kept as JSON beside the test."""
    print(json.dumps(row))
    (tmp_path / "journal_faults.json").write_text(json.dumps(row, indent=1))


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_JOURNAL_RECOVERY", "0")  # this test process must not send the child's journal
    srv = ServerChild(f"sqlite:///{tmp_path}/server.db", tmp_path).start()
    yield srv
    srv.stop()


def new_run(server: ServerChild) -> str:
    store = RestTrackingStore(server.uri)
    try:
        return store.create_run("0", "faults", None, [], None).info.run_id
    finally:
        store.close(timeout=5)


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**os.environ, "MLTRAIL_JOURNAL_DIR": str(tmp_path / "journal"), "MLTRAIL_JOURNAL_RECOVERY": "0",
            "TMPDIR": str(tmp_path / "tmp"), "PYTHONWARNINGS": "default", **extra}


def worst_call(stderr: str) -> str:
    """Which call blocked longest ("step N"), from the child's "worst <step> <ms>" lines."""
    worst = [line.split() for line in stderr.splitlines() if line.startswith("worst ")]
    return f"step {worst[-1][1]}" if worst else "none"


def read_progress(line: str, last: tuple[int, float]) -> tuple[int, float]:
    parts = line.split()
    if len(parts) == 3 and parts[0].isdigit():
        return int(parts[0]), float(parts[1])
    return last


def steady_ms(stdout_lines: list[str]) -> float:
    """The longest block after the first call, from the child's last progress line."""
    parts = [line.split() for line in stdout_lines if len(line.split()) == 3]
    return float(parts[-1][2]) if parts else 0.0


def test_client_sigkilled_mid_logging_the_next_process_sends_its_journal(server, tmp_path):
    run_id = new_run(server)
    # a small compaction threshold: the journal is rewritten while the child logs and sends
    env = child_env(tmp_path, MLTRAIL_JOURNAL_COMPACT_BYTES="16384")
    child = subprocess.Popen([sys.executable, "-c", LOGGER, server.uri, run_id, "10000000", "-"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    acked, worst = -1, 0.0
    seen: list[str] = []
    frozen = False
    try:
        while acked < 4000:
            line = child.stdout.readline()
            assert line, f"the logging child died on its own: {child.stderr.read()}"
            seen.append(line)
            acked, worst = read_progress(line, (acked, worst))
            if acked >= 2500 and not frozen:
                server.kill(signal.SIGSTOP)  # the server stops answering: calls pile up in the journal
                frozen = True
        child.kill()  # SIGKILL, mid-logging
        child.wait(timeout=30)
        for line in child.stdout.read().splitlines():  # calls that returned before the kill landed
            seen.append(line)
            acked, worst = read_progress(line, (acked, worst))
        slowest = worst_call(child.stderr.read())
    finally:
        if child.poll() is None:
            child.kill()
        server.kill(signal.SIGCONT)
    assert journal_files(str(tmp_path / "journal")), "the killed child left no journal"
    started = time.perf_counter()
    nxt = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        from mltrail.store.journal_file import journal_files
        from mltrail.store.rest import RestTrackingStore
        store = RestTrackingStore(sys.argv[1])  # the next process on this URI sends the dead one's journal
        deadline = time.monotonic() + 120
        while journal_files(None, sys.argv[1]) and time.monotonic() < deadline:
            time.sleep(0.02)
        print(len(journal_files(None, sys.argv[1])))
    """), server.uri], capture_output=True, text=True, timeout=180, env={**env, "MLTRAIL_JOURNAL_RECOVERY": "1"})
    drain_s = time.perf_counter() - started
    assert nxt.returncode == 0 and nxt.stdout.strip() == "0", nxt.stdout + nxt.stderr
    steps = stored_steps(server, run_id)
    assert len(steps) == len(set(steps)), "a point was stored twice"
    assert set(range(acked + 1)) <= set(steps), "a point whose call returned was lost"
    record(tmp_path, {"fault": "client SIGKILL mid-logging, next process sends", "acknowledged": acked + 1,
                      "stored": len(steps), "max_block_ms": worst, "slowest": slowest,
                      "max_block_after_first_ms": steady_ms(seen[-3:]), "drain_s": round(drain_s, 2)})


def test_journal_dir_made_unusable_mid_run(server, tmp_path):
    run_id = new_run(server)
    journal_dir, go = tmp_path / "journal", tmp_path / "go"
    env = child_env(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", LOGGER, server.uri, run_id, "2000", str(go)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        while (line := child.stdout.readline()) and line.strip() != "half":
            pass
        assert line, f"the logging child died: {child.stderr.read()}"
        # as root, chmod does not stop writes; a file where the directory was stops everyone
        os.rename(journal_dir, tmp_path / "journal.moved")
        journal_dir.write_text("not a directory any more")
        go.write_text("")
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err  # nothing raised into the logging loop
    worst = max((read_progress(x, (0, 0.0))[1] for x in out.splitlines()), default=0.0)
    assert err.count("Journaling to") == 1, err  # one warning, naming the fallback
    assert str(tmp_path / "tmp" / f"mltrail-journal-{os.getuid()}") in err
    steps = stored_steps(server, run_id)
    assert sorted(steps) == list(range(2000)), "a point was lost or stored twice"
    owed = [f for f in journal_files(str(tmp_path / "tmp" / f"mltrail-journal-{os.getuid()}"))
            if parse(Path(f).read_bytes()).unplanned]
    assert owed == []
    record(tmp_path, {"fault": "journal directory unusable mid-run (fallback)", "acknowledged": 2000,
                      "stored": len(steps), "max_block_ms": worst, "slowest": worst_call(err),
                      "max_block_after_first_ms": steady_ms(out.splitlines()[-3:]), "drain_s": 0.0})


def test_journal_truncated_mid_line_is_sent_by_sync(server, tmp_path):
    run_id = new_run(server)
    env = child_env(tmp_path)
    server.kill(signal.SIGSTOP)  # nothing is delivered: every call stays in the journal
    child = subprocess.Popen([sys.executable, "-c", LOGGER, server.uri, run_id, "10000000", "-"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    acked, worst = -1, 0.0
    seen = []
    try:
        while acked < 1500:
            seen.append(child.stdout.readline() or "x")
            acked, worst = read_progress(seen[-1], (acked, worst))
            assert child.poll() is None, child.stderr.read()
        child.kill()
        child.wait(timeout=30)
        slowest = worst_call(child.stderr.read())
    finally:
        if child.poll() is None:
            child.kill()
        server.kill(signal.SIGCONT)
    (path,) = journal_files(str(tmp_path / "journal"))
    data = Path(path).read_bytes()
    cut = data.rindex(b'{"e":') + 20  # a crash in the middle of writing the last entry
    Path(path).write_bytes(data[:cut])
    state = parse(data[:cut])
    whole = [e.seq for _, es in state.pending_plans for e in es] + [e.seq for e in state.unplanned]
    started = time.perf_counter()
    sync = subprocess.run([sys.executable, "-m", "mltrail.cli", "sync"], capture_output=True, text=True,
                          timeout=180, env=env)
    drain_s = time.perf_counter() - started
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert "torn last line" in sync.stderr and f"sent {len(whole)} logged call(s)" in sync.stdout
    steps = stored_steps(server, run_id)
    assert len(steps) == len(set(steps)) == len(whole), "a point was lost or stored twice"
    assert set(range(len(whole))) == set(steps)  # all but the torn one, which no call had returned from
    record(tmp_path, {"fault": "journal truncated mid-line, mltrail sync", "acknowledged": len(whole),
                      "stored": len(steps), "max_block_ms": worst, "slowest": slowest,
                      "max_block_after_first_ms": steady_ms(seen[-3:]), "drain_s": round(drain_s, 2)})
