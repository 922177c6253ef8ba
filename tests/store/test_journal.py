"""The logging journal: its file format, batching rules, claiming dead processes' files, and
exact-once recovery against a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import deque
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from server_fixture import start_server  # noqa: E402

from mltrail.client import Client  # noqa: E402
from mltrail.entities import Metric  # noqa: E402
from mltrail.errors import InvalidParameterValue, MltrailException, MltrailWarning  # noqa: E402
from mltrail.store.journal import (  # noqa: E402
    Entry,
    Journal,
    batch_body,
    deliver,
    entry_line,
    journal_files,
    parse,
    plan_line,
    recover,
    take_batch,
    uri_dir,
)
from mltrail.store.rest import HttpClient  # noqa: E402

RUN = "a" * 32


def metric_entry(seq, run=RUN, n=1, params=(), tags=()):
    frag = b",".join(orjson.dumps({"key": "m", "value": float(seq), "timestamp": 1, "step": seq * 10 + i})
                     for i in range(n))
    return Entry(seq, run, frag, n, tuple(params), tuple(tags))


# ------------------------------------------------------------------ batching rules
def test_take_batch_merges_consecutive_calls_of_one_run():
    q = deque([metric_entry(1), metric_entry(2), metric_entry(3, run="b" * 32), metric_entry(4)])
    assert [e.seq for e in take_batch(q)] == [1, 2]
    assert [e.seq for e in take_batch(q)] == [3]
    assert [e.seq for e in take_batch(q)] == [4]


def test_take_batch_respects_mlflow_limits():
    q = deque([metric_entry(i, n=300) for i in range(1, 6)])
    assert [e.seq for e in take_batch(q)] == [1, 2, 3]  # 900 metrics; a 4th would make 1200
    q = deque([metric_entry(i, n=0, params=[(f"p{i}_{j}", "v") for j in range(40)]) for i in range(1, 5)])
    assert [e.seq for e in take_batch(q)] == [1, 2]  # 80 params; a 3rd would make 120
    q = deque([metric_entry(i, n=0, tags=[(f"t{i}_{j}", "v") for j in range(60)]) for i in range(1, 4)])
    assert [e.seq for e in take_batch(q)] == [1]


def test_take_batch_never_merges_a_param_change_or_a_solo_entry():
    q = deque([metric_entry(1, params=[("p", "1")]), metric_entry(2, params=[("p", "1")]),
               metric_entry(3, params=[("p", "2")])])
    assert [e.seq for e in take_batch(q)] == [1, 2]
    assert [e.seq for e in take_batch(q)] == [3]
    solo = metric_entry(2)
    solo.solo = True
    q = deque([metric_entry(1), solo, metric_entry(3)])
    assert [e.seq for e in take_batch(q)] == [1]
    assert [e.seq for e in take_batch(q)] == [2]


def test_batch_body_is_mlflow_log_batch_json():
    entries = [metric_entry(1, n=2, params=[("p", "1")]), metric_entry(2, tags=[("t", 'q"uote')])]
    body = orjson.loads(batch_body("bid", entries))
    assert body["run_id"] == RUN and body["batch_id"] == "bid" and len(body["metrics"]) == 3
    assert body["params"] == [{"key": "p", "value": "1"}] and body["tags"] == [{"key": "t", "value": 'q"uote'}]


# ------------------------------------------------------------------ file format and parsing
def test_parse_finds_what_is_still_owed(tmp_path):
    j = Journal.create(str(tmp_path), "http://x")
    entries = [metric_entry(i) for i in range(1, 8)]
    for e in entries:
        j.append(entry_line(e))
    j.append(plan_line("done", entries[0:2]))
    j.append(b'{"a":"done"}\n')
    j.append(plan_line("refused", entries[2:3]))
    j.append(b'{"a":"refused","x":"failed","code":"INVALID_PARAMETER_VALUE","msg":"no"}\n')
    j.append(plan_line("split", entries[3:5]))
    j.append(b'{"a":"split","x":"split"}\n')
    j.append(plan_line("inflight", entries[5:6]))
    j.append(b'{"e":99,"r":"' + RUN.encode() + b'","m":[{"key":')  # torn by a power loss
    state = parse(Path(j.path).read_bytes())
    j.close()
    assert state.uri == "http://x" and state.corrupt_lines == 0
    assert [(b, [e.seq for e in es]) for b, es in state.pending_plans] == [("inflight", [6])]
    assert [(e.seq, e.solo) for e in state.unplanned] == [(4, True), (5, True), (7, False)]


def test_claim_skips_files_of_live_processes(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from mltrail.store.journal import Journal
        j = Journal.create({str(tmp_path)!r}, "http://x")
        print(j.path, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        path = proc.stdout.readline().strip()
        assert Journal.claim(path) is None  # its owner is alive
    finally:
        proc.kill()
        proc.wait()
    claimed = Journal.claim(path)  # the kernel dropped the dead owner's lock
    assert claimed is not None
    assert Journal.claim(path) is None  # and now we hold it
    claimed.close()


def test_claim_repairs_a_torn_last_line(tmp_path):
    path = tmp_path / "x.jnl"
    path.write_bytes(b'{"mltrail_journal":1,"uri":"http://x"}\n{"e":1,"r":"ab')
    j = Journal.claim(str(path))
    j.append(b'{"a":"z"}\n')
    j.close()
    assert path.read_bytes().endswith(b'"ab\n{"a":"z"}\n')


# ------------------------------------------------------------------ recovery against a server
@pytest.fixture
def server(request, tmp_path):
    uri = start_server(request, tmp_path)
    client = Client(uri)
    return uri, client, client.create_run("0").info.run_id


def dead_journal(root, uri, run_id, n_entries, sent_plan=None):
    """Write a journal as a killed process leaves it; `sent_plan` entries were posted, never acked."""
    j = Journal.create(uri_dir(str(root), uri), uri)
    entries = []
    for seq in range(1, n_entries + 1):
        frag = orjson.dumps({"key": "m", "value": float(seq), "timestamp": 1, "step": seq})
        e = Entry(seq, run_id, frag, 1, (), ())
        j.append(entry_line(e))
        entries.append(e)
    if sent_plan:
        batch = entries[:sent_plan]
        j.append(plan_line("planned-and-sent", batch))
        HttpClient(uri).post_batch(batch_body("planned-and-sent", batch))
    path = j.path
    j.close()
    return path


def test_recovery_resends_exactly_once(server, tmp_path):
    uri, client, run_id = server
    path = dead_journal(tmp_path / "j", uri, run_id, 50, sent_plan=20)
    assert len(client.get_metric_history(run_id, "m")) == 20
    result = recover(path, lambda u: HttpClient(u).post_batch)
    assert result.finished and not result.failed and result.sent_calls == 50
    steps = [m.step for m in client.get_metric_history(run_id, "m")]
    assert sorted(steps) == list(range(1, 51))  # the resent plan was skipped by the server
    assert not os.path.exists(path)
    assert recover(path, lambda u: HttpClient(u).post_batch) is None


def test_recovery_reports_refusals_and_defers_when_unreachable(server, tmp_path):
    uri, client, run_id = server
    path = dead_journal(tmp_path / "j", "http://127.0.0.1:1", run_id, 3)
    result = recover(path, lambda u: HttpClient(u).post_batch)  # nobody listens on port 1
    assert not result.finished and result.deferred and os.path.exists(path)
    path = dead_journal(tmp_path / "j2", uri, "0123456789abcdef0123456789abcdef", 3)
    result = recover(path, lambda u: HttpClient(u).post_batch)
    assert result.finished and len(result.failed) == 1 and result.failed[0].error_code == "RESOURCE_DOES_NOT_EXIST"


def test_deliver_splits_a_refused_merge(server, tmp_path):
    uri, client, run_id = server
    client.log_param(run_id, "p", "1")
    client.flush()
    j = Journal.create(str(tmp_path / "j"), uri)
    good = Entry(1, run_id, orjson.dumps({"key": "m", "value": 1.0, "timestamp": 1, "step": 0}), 1, (), ())
    bad = Entry(2, run_id, b"", 0, (("p", "2"),), ())
    status, err = deliver(HttpClient(uri).post_batch, j, "merged", [good, bad], give_up=lambda: True)
    assert status == "split" and isinstance(err, InvalidParameterValue)
    assert client.get_metric_history(run_id, "m") == []  # the refused batch wrote nothing
    assert deliver(HttpClient(uri).post_batch, j, "one", [good], give_up=lambda: True)[0] == "ok"
    status, err = deliver(HttpClient(uri).post_batch, j, "two", [bad], give_up=lambda: True)
    assert status == "failed" and isinstance(err, MltrailException)
    j.close()


def test_new_store_recovers_dead_journals_in_the_background(server, tmp_path, monkeypatch):
    uri, client, run_id = server
    from mltrail.store import clear_cache, get_store
    from mltrail.store.journal import journal_root

    path = dead_journal(journal_root(), uri, run_id, 7)
    clear_cache()
    get_store(uri)  # starts the recovery thread
    deadline = time.monotonic() + 30
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(path)
    assert len(Client(uri).get_metric_history(run_id, "m")) == 7
    assert journal_files(journal_root(), uri) == []


def test_sync_command(server, tmp_path):
    from click.testing import CliRunner

    from mltrail.store.sync_cli import sync

    uri, client, run_id = server
    root = tmp_path / "jsync"
    dead_journal(root, uri, run_id, 5, sent_plan=2)
    out = CliRunner().invoke(sync, ["--journal-dir", str(root)])
    assert out.exit_code == 0, out.output
    assert "sent 5 logged call(s)" in out.output
    assert len(client.get_metric_history(run_id, "m")) == 5
    again = CliRunner().invoke(sync, ["--journal-dir", str(root)])
    assert again.exit_code == 0 and "no journals" in again.output.lower()


# ------------------------------------------------------------------ the journal under faults
def metric_line(step):
    return orjson.dumps({"key": "m", "value": float(step), "timestamp": 1, "step": step})


def run_child(code, *args, env=None, timeout=60):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                         text=True, timeout=timeout, env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_a_write_cut_short_by_a_full_disk_costs_only_that_call(tmp_path):
    # RLIMIT_FSIZE makes write(2) stop part way, as a full disk does; the next call must still be readable
    out = run_child("""
        import os, resource, signal, sys
        import orjson
        from mltrail.store.journal import Entry, Journal, entry_line
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        j = Journal.create(sys.argv[1], "http://x")
        line = lambda s: entry_line(Entry(s, "r" * 32, orjson.dumps({"key": "m", "value": 1.0, "timestamp": 1,
                                                                     "step": s}), 1, (), ()))
        j.append(line(1))
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (j.size + 10, hard))
        try:
            j.append(line(2))
        except OSError as e:
            print("refused", e.errno)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        j.append(line(3))
        print(j.path)
    """, tmp_path)
    assert out.stdout.startswith("refused")
    state = parse(Path(out.stdout.split()[-1]).read_bytes())
    assert [e.seq for e in state.unplanned] == [1, 3] and state.skipped == 0


def test_a_torn_last_line_costs_only_that_line(tmp_path):
    j = Journal.create(str(tmp_path), "http://x")
    for seq in (1, 2):
        j.append(entry_line(metric_entry(seq)))
    j.close()
    data = Path(j.path).read_bytes()
    Path(j.path).write_bytes(data[:-9])  # the crash cut entry 2 short
    claimed = Journal.claim(j.path)
    claimed.append(entry_line(metric_entry(3)))  # the next call lands on a line of its own
    claimed.close()
    state = parse(Path(j.path).read_bytes())
    assert [e.seq for e in state.unplanned] == [1, 3] and state.corrupt_lines == 1 and not state.torn_tail


def test_json_that_is_not_a_record_is_skipped_counted_and_reported(server, tmp_path, caplog):
    uri, client, run_id = server
    path = dead_journal(tmp_path / "j", uri, run_id, 3)
    with open(path, "ab") as fh:
        fh.write(b'[1, 2]\n{"hello": 1}\n{"e": "x", "r": "a"}\n{"e": 9, "r": "bad\\"id", "m": []}\n'
                 b'{"e": 10, "r": "' + run_id.encode() + b'", "m": 5}\n{"b": "p", "s": "nope"}\n'
                 b'not json at all\n{"e": 11, "r": "' + run_id.encode() + b'", "m": [], "p": [["k", "v"]]}\n'
                 b'{"e": 12, "r": "' + run_id.encode() + b'", "m": [{"key": "m", "value": 1.0, "timest')
    state = parse(Path(path).read_bytes())
    assert (state.not_records, state.corrupt_lines, state.torn_tail, state.skipped) == (6, 1, True, 8)
    assert [e.seq for e in state.unplanned] == [1, 2, 3, 11]
    with caplog.at_level("WARNING", logger="mltrail.journal"):
        result = recover(path, lambda u: HttpClient(u).post_batch)
    assert result.finished and result.sent_calls == 4 and result.skipped == 8
    warned = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warned) == 1 and "6 JSON line(s) that are not journal records" in warned[0].getMessage()
    assert len(client.get_metric_history(run_id, "m")) == 3 and client.get_run(run_id).data.params == {"k": "v"}


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """Python's temp directory (the journal's fallback) moved into the test's own directory."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def test_an_unusable_journal_dir_falls_back_with_one_warning(tmp_path, temp_dir, monkeypatch):
    from mltrail.store.journal_file import fallback_root, open_journal

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the journal directory should be")
    monkeypatch.setenv("MLTRAIL_JOURNAL_DIR", str(blocked / "journal"))
    monkeypatch.setattr("mltrail.store.journal_file._fallback_warned", set())
    with pytest.warns(MltrailWarning, match="MLTRAIL_JOURNAL_DIR") as record:
        j1 = open_journal("http://x")
    assert len(record) == 1 and str(blocked) in str(record[0].message)
    j2 = open_journal("http://x")  # no second warning (filterwarnings = error would raise it)
    assert os.path.dirname(j1.path) == uri_dir(fallback_root(), "http://x") == os.path.dirname(j2.path)
    assert fallback_root().startswith(str(temp_dir))
    assert sorted(journal_files(None, "http://x")) == sorted([j1.path, j2.path])  # sync and recovery find them
    j1.close(delete=True)
    j2.close(delete=True)


def test_no_writable_journal_dir_is_one_clear_error(tmp_path, temp_dir, monkeypatch):
    from mltrail.store.journal import LogQueue

    (tmp_path / "blocked").write_text("")
    monkeypatch.setenv("MLTRAIL_JOURNAL_DIR", str(tmp_path / "blocked" / "journal"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "blocked"))  # the fallback is blocked too
    queue = LogQueue("http://x", lambda body, endpoint="": None)
    with pytest.raises(MltrailException, match="Could not create the logging journal for http://x") as info:
        queue.put(RUN, metric_line(1), 1, (), ())
    message = str(info.value)
    assert "MLTRAIL_JOURNAL_DIR" in message and message.count(str(tmp_path / "blocked")) == 2
    assert "Not a directory" in message and not isinstance(info.value, PermissionError)


def test_a_shared_fallback_dir_of_another_owner_is_refused(tmp_path, temp_dir, monkeypatch):
    from mltrail.store.journal_file import fallback_root, open_journal

    (tmp_path / "blocked").write_text("")
    monkeypatch.setenv("MLTRAIL_JOURNAL_DIR", str(tmp_path / "blocked" / "journal"))
    os.makedirs(fallback_root(), mode=0o777)
    os.chmod(fallback_root(), 0o777)  # others could plant files in it: not ours to trust
    with pytest.raises(MltrailException, match="not a private directory of this user"):
        open_journal("http://x")


FORK_CHILD = """
    import os, sys, time
    from mltrail.store.journal import LogQueue
    q = LogQueue("http://127.0.0.1:1", lambda body, endpoint="": None)
    step = b'{"key":"m","value":1.0,"timestamp":1,"step":0}'
    q.put("r" * 32, step, 1, (), ())
    parent_journal = q._journal.path
    pid = os.fork()
    if pid == 0:
        q.put("r" * 32, step, 1, (), ())  # the child's call goes to a journal of its own
        print(q._journal.path, flush=True)
        time.sleep(60)
        os._exit(0)
    print(pid, parent_journal, flush=True)
    time.sleep(60)
"""


def test_a_forked_child_has_its_own_journal_and_not_the_parents_lock(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(FORK_CHILD)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "MLTRAIL_JOURNAL_DIR": str(tmp_path / "j")})
    child_pid = None
    try:
        lines = sorted((proc.stdout.readline().split() for _ in range(2)), key=len)
        child_journal, (pid, parent_journal) = lines[0][0], lines[1]
        child_pid = int(pid)
        assert child_journal != parent_journal and f"-{child_pid}-" in os.path.basename(child_journal)
        assert Journal.claim(parent_journal) is None  # the parent lives and holds it
        proc.kill()
        proc.wait()
        claimed = Journal.claim(parent_journal)  # the child lives on, yet holds no lock on it
        assert claimed is not None
        claimed.close()
        assert Journal.claim(child_journal) is None  # but it holds its own
    finally:
        proc.kill()
        if child_pid:
            os.kill(child_pid, signal.SIGKILL)


def test_a_new_file_is_locked_before_anyone_can_list_it(tmp_path):
    j = Journal.create(str(tmp_path / "root" / "d"), "http://x")
    assert j.path.endswith(".jnl") and not list(tmp_path.rglob("*.new"))
    assert Journal.claim(j.path) is None
    unlisted = Journal.create(str(tmp_path / "root" / "d"), "http://x", publish=False)
    assert unlisted.path.endswith(".new") and journal_files(str(tmp_path / "root")) == [j.path]
    unlisted.close(delete=True)
    j.close(delete=True)


CLAIMER = """
    import sys
    from mltrail.store.journal import recover
    from mltrail.store.rest import HttpClient
    r = recover(sys.argv[1], lambda u: HttpClient(u).post_batch)
    print("none" if r is None else r.sent_calls)
"""


def test_processes_racing_for_a_dead_journal_send_it_once(server, tmp_path):
    uri, client, run_id = server
    path = dead_journal(tmp_path / "j", uri, run_id, 300)
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(CLAIMER), path], stdout=subprocess.PIPE,
                              text=True) for _ in range(4)]
    answers = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert sorted(answers) == ["300", "none", "none", "none"]  # one claimed it; the others saw it taken or gone
    steps = [m.step for m in client.get_metric_history(run_id, "m")]
    assert sorted(steps) == list(range(1, 301)), "a point was lost or stored twice"
    assert not os.path.exists(path)


def test_a_store_reused_after_close_keeps_and_sends_everything(tmp_path, monkeypatch):
    from server_fixture import ServerThread, close_stores, free_port, server_settings

    from mltrail.server.app import create_app
    from mltrail.store.rest import RestTrackingStore

    monkeypatch.setenv("MLTRAIL_JOURNAL_RECOVERY", "0")
    port = free_port()
    settings = server_settings(tmp_path)
    srv = ServerThread(create_app(settings), port=port).start()
    store = RestTrackingStore(srv.uri)
    try:
        run_id = store.create_run("0", "u", None, [], None).info.run_id
        store.log_batch(run_id, [Metric("m", 0.0, 1, 0)])
        store.close(timeout=10)
        store.log_batch(run_id, [Metric("m", 1.0, 1, 1)])  # used again after close(): it sends
        store.flush(timeout=10)
        srv.stop()  # now close while the server is down: the batch in flight must not be deleted
        store.log_batch(run_id, [Metric("m", 2.0, 1, 2)])
        time.sleep(0.3)
        store.close(timeout=0.2)
        owed = journal_files(None, srv.uri)
        assert len(owed) == 1 and [e.seq for _, es in parse(Path(owed[0]).read_bytes()).pending_plans
                                   for e in es] == [3]
        srv = ServerThread(create_app(settings), port=port).start()
        store.log_batch(run_id, [Metric("m", 3.0, 1, 3)])
        store.flush(timeout=30)
        assert sorted(m.step for m in store.get_metric_history(run_id, "m")) == [0, 1, 2, 3]
    finally:
        close_stores(srv.uri)
        store.close(timeout=1)
        srv.stop()


def test_the_journal_is_compacted_while_sending_continues(server, monkeypatch):
    from mltrail.store.journal import LogQueue

    uri, client, run_a = server
    run_b = client.create_run("0").info.run_id
    monkeypatch.setenv("MLTRAIL_JOURNAL_COMPACT_BYTES", "8192")
    http = HttpClient(uri)
    sends = threading.Semaphore(0)  # the server answers only as many requests as the test allows

    def post(body, endpoint="runs/log-batch"):
        sends.acquire()
        http.post_batch(body, endpoint)

    queue = LogQueue(uri, post)
    runs = (run_a, run_b)  # alternating runs: one request per call, so acks pile up fast
    for step in range(300):
        queue.put(runs[step % 2], metric_line(step), 1, (), ())
    path = queue._journal.path
    for step in range(300, 600):  # logging goes on while 400 requests are answered
        queue.put(runs[step % 2], metric_line(step), 1, (), ())
        if step % 3 == 0:
            sends.release(4)
    deadline = time.monotonic() + 30
    while queue.pending() > 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    now = os.stat(path)
    state = parse(Path(path).read_bytes())
    owed = sorted(e.seq for e in state.unplanned + [e for _, es in state.pending_plans for e in es])
    kept = Path(path).read_bytes().count(b'{"e":')
    assert 200 <= kept < 600, f"{kept} of 600 calls in the file: it was not compacted"
    assert owed == list(range(401, 601)) and state.skipped == 0  # all it holds is what is owed (seqs from 1)
    owed_bytes = sum(len(entry_line(e)) for e in state.unplanned)
    assert now.st_size <= 2 * owed_bytes + 8192, f"{now.st_size} bytes for {owed_bytes} bytes owed"
    sends.release(1000)
    queue.flush(timeout=30)
    queue.close()
    steps = [m.step for r in runs for m in client.get_metric_history(r, "m")]
    assert sorted(steps) == list(range(600)), "a point was lost or stored twice"


def test_a_compacted_file_keeps_what_must_go_alone(tmp_path):
    from mltrail.store.journal import _solo_lines

    j = Journal.create(str(tmp_path), "http://x")
    entries = [metric_entry(1), metric_entry(2), metric_entry(3)]
    entries[1].solo = True
    j.append(b"".join(entry_line(e) for e in entries) + _solo_lines(entries))
    j.close()
    state = parse(Path(j.path).read_bytes())
    assert [(e.seq, e.solo) for e in state.unplanned] == [(1, False), (2, True), (3, False)]


# ------------------------------------------------------------------ mltrail sync and credentials
class RecordingServer:
    """A real HTTP server on 127.0.0.1 that records each request's path and Authorization header and
    answers log-batch with `status` (200: stored)."""

    def __init__(self, status=200):
        import http.server

        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, self.headers.get("Authorization")))
                body = b"{}" if outer.status == 200 else b'{"error_code":"UNAUTHENTICATED","message":"who?"}'
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.status = status
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def two_servers():
    a, b = RecordingServer(), RecordingServer()
    yield a, b
    a.close()
    b.close()


def run_sync(*args):
    from click.testing import CliRunner

    from mltrail.store.sync_cli import sync

    return CliRunner().invoke(sync, list(args))


def test_sync_sends_the_current_credentials_only_to_their_own_host(two_servers, tmp_path, monkeypatch):
    a, b = two_servers
    root = tmp_path / "journal"  # MLTRAIL_JOURNAL_DIR (conftest)
    dead_journal(root, a.uri, RUN, 3)
    b_path = dead_journal(root, b.uri, RUN, 2)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "secret-of-a")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", a.uri + "/")
    out = run_sync()
    assert out.exit_code == 1, out.output
    assert a.requests and all(auth == "Bearer secret-of-a" for _, auth in a.requests)
    assert b.requests == [], "another host's credentials were sent"
    assert f"skipped {b_path}: written for {b.uri}" in out.output
    assert "MLFLOW_TRACKING_TOKEN" in out.output and f"mltrail sync --tracking-uri {b.uri}" in out.output
    assert os.path.exists(b_path) and journal_files(None, a.uri) == []
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "secret-of-b")  # as the message says: B's own credentials
    out = run_sync("--tracking-uri", b.uri)
    assert out.exit_code == 0, out.output
    assert [auth for _, auth in b.requests] == ["Bearer secret-of-b"] and not os.path.exists(b_path)


def test_sync_without_credentials_sends_every_journal_to_its_own_server(two_servers, tmp_path):
    a, b = two_servers
    dead_journal(tmp_path / "journal", a.uri, RUN, 3)
    dead_journal(tmp_path / "journal", b.uri, RUN, 2)
    out = run_sync()
    assert out.exit_code == 0, out.output
    assert len(a.requests) == 1 and len(b.requests) == 1 and {auth for _, auth in a.requests + b.requests} == {None}
    assert journal_files(None) == []


def test_sync_keeps_a_journal_whose_server_refuses_the_credentials(tmp_path, monkeypatch):
    srv = RecordingServer(status=401)
    try:
        path = dead_journal(tmp_path / "journal", srv.uri, RUN, 3)
        monkeypatch.setenv("MLTRAIL_TRACKING_TOKEN", "stale")
        out = run_sync("--tracking-uri", srv.uri, "--timeout", "5")
        assert out.exit_code == 1 and "refused the credentials (UNAUTHENTICATED)" in out.output, out.output
        assert len(srv.requests) == 1 and os.path.exists(path)
        assert [e.seq for _, es in parse(Path(path).read_bytes()).pending_plans for e in es] == [1, 2, 3]
    finally:
        srv.close()


def test_a_journal_filed_under_another_uri_is_not_sent(two_servers, tmp_path):
    a, b = two_servers
    path = dead_journal(tmp_path / "journal", a.uri, RUN, 2)
    moved = Path(uri_dir(str(tmp_path / "journal"), b.uri)) / os.path.basename(path)
    moved.parent.mkdir(parents=True)
    os.rename(path, moved)  # its header names A, but it lies among B's journals
    out = run_sync()
    assert out.exit_code == 1 and f"its header names {a.uri}" in out.output, out.output
    assert a.requests == [] and b.requests == [] and moved.exists()
