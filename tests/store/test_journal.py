"""The logging journal: its file format, batching rules, claiming dead processes' files, and
exact-once recovery against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import deque
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from server_fixture import start_server  # noqa: E402

from mltrail.client import Client  # noqa: E402
from mltrail.errors import InvalidParameterValue, MltrailException  # noqa: E402
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
