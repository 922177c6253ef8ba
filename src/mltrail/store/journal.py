"""The remote store's write-ahead journal: log calls survive a killed process and land once.

Each process logging to a tracking server appends to its own file,
`<journal dir>/<hash of the tracking URI>/<time>-<pid>-<random>.jnl` (the directory is
`MLTRAIL_JOURNAL_DIR`, default `~/.cache/mltrail/journal`). A file is a sequence of JSON lines:

- a header `{"mltrail_journal": 1, "uri": ..., "pid": ...}`;
- an entry per accepted log call: `{"e": seq, "r": run_id, "m": [metric...], "p": [...], "t": [...]}`;
- an entry ending a run: `{"e": seq, "r": run_id, "end": [status, end_time]}`, sent (alone, after the
  run's earlier calls) as a runs/update request: a run ends when its end arrives, even in a later process;
- a plan before each request: `{"b": batch_id, "s": [[first_seq, last_seq], ...]}`, naming the
  entries one log-batch request carries;
- an ack after the server answered: `{"a": batch_id}` (stored), with `"x": "failed"` (refused for
  good: the error is reported, the entries are dropped) or `"x": "split"` (a merged batch was
  refused for a reason that may be one call's fault, such as a changed param: its entries are
  resent one call per request, so one bad call spoils only itself; a missing or deleted run
  fails the whole batch at once).

Durability: a log call returns once its entry is written with `write(2)` to the file, so it is
in the kernel's page cache: killing the process (even SIGKILL) loses nothing. The file is
fsync'd by the sender thread at most once per `MLTRAIL_JOURNAL_FSYNC_INTERVAL` seconds (default
1) while it holds unsent entries; a power loss or kernel crash can lose the calls of that last
interval that were not sent yet. `MLTRAIL_JOURNAL_FSYNC_INTERVAL=0` fsyncs on every call
(far slower). Exactly once: the plan is written before its request and the server records each
applied batch id, so a resent plan (same id, same entries) is skipped by the server.

The owner holds an exclusive `flock` on its file for its lifetime; the kernel drops it when the
process dies, so another process can claim a dead process's file (`claim`) and finish it. A
file whose entries are all acknowledged is deleted.

Faults. A file is created under a name no one lists (`.new`), locked, given its header, then
renamed to `.jnl`, so no other process can claim it first; `claim` checks that the name still
leads to the file it locked (a compaction may have replaced it). A forked child closes its copies
of every open journal (`os.register_at_fork`) without unlocking them, so it never holds its
parent's lock, and starts its own journal. A torn last line (a crash or a full disk mid-write)
costs only that line: the next record starts on a fresh line. Lines that are not records are
skipped and counted (`JournalState.skipped`), and recovery warns once about them. When the
journal directory cannot hold a new file (read-only, full, not a directory), a per-user temp
directory (`<tmp>/mltrail-journal-<uid>`) is used with one warning; when neither can, the log
call raises one error naming both. Once a file passes `MLTRAIL_JOURNAL_COMPACT_BYTES` (default
8 MiB) and holds more than twice what is still owed, the sender rewrites it (beside it, then renamed
over it) holding only what is owed, while callers keep appending: its size stays within twice what
the server has not acknowledged (plus that threshold). A file that owes nothing is deleted instead,
and the next call starts a new one. A store used after `close()` sends again; a batch cut short by
the close is resent under its plan's id, never dropped.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from mltrail.errors import (
    INTERNAL_ERROR,
    INVALID_STATE,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    MltrailException,
)
from mltrail.store.backoff import Backoff
from mltrail.store.journal_file import (  # re-exported: the journal's callers import them from here
    Journal,
    compact_bytes,
    fsync_interval,
    open_journal,
    uri_hash,
)
from mltrail.store.journal_file import journal_files as journal_files
from mltrail.store.journal_file import journal_root as journal_root
from mltrail.store.journal_file import uri_dir as uri_dir

logger = logging.getLogger("mltrail.journal")

MAX_METRICS = 1000
MAX_PARAMS = 100
MAX_TAGS = 100
MAX_ENTITIES = 1000
class TransientError(Exception):
    """A send that may succeed later (connection refused, timeout, 429, 5xx); `retry_after` in seconds."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Poster(Protocol):
    """Sends one JSON body to `endpoint` (under /api/2.0/mlflow/); raises TransientError or
    MltrailException (refused)."""

    def __call__(self, body: bytes, endpoint: str = ...) -> None: ...


LOG_BATCH = "runs/log-batch"
RUN_UPDATE = "runs/update"


@dataclass(slots=True)
class Entry:
    """One accepted log call: metrics as a ready JSON fragment, params and tags as pairs."""

    seq: int
    run_id: str
    metrics: bytes  # comma-separated JSON objects without brackets (b"" when none)
    n_metrics: int
    params: tuple[tuple[str, str], ...]
    tags: tuple[tuple[str, str], ...]
    solo: bool = False  # send alone (after a merged batch holding it was refused)
    end: tuple[str, int] | None = None  # (status, end_time): this entry ends the run


def entry_line(e: Entry) -> bytes:
    # run ids are validated ([A-Za-z0-9_-]) before they get here, so they need no escaping
    if e.end is not None:
        return orjson.dumps({"e": e.seq, "r": e.run_id, "end": list(e.end)}) + b"\n"
    return (b'{"e":%d,"r":"%s","m":[%s],"p":%s,"t":%s}\n'
            % (e.seq, e.run_id.encode(), e.metrics, orjson.dumps(e.params) if e.params else b"[]",
               orjson.dumps(e.tags) if e.tags else b"[]"))


def _ranges(seqs: Iterable[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for s in seqs:
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def take_batch(queue: deque[Entry]) -> list[Entry]:
    """Pop the next request's entries: consecutive calls for one run, within MLflow's batch limits,
    never two different values for one param (the server would refuse the whole batch)."""
    first = queue.popleft()
    batch = [first]
    if first.solo or first.end is not None:
        return batch
    nm, np_, nt = first.n_metrics, len(first.params), len(first.tags)
    params = dict(first.params)
    while queue:
        e = queue[0]
        if e.solo or e.end is not None or e.run_id != first.run_id:
            break
        m2, p2, t2 = nm + e.n_metrics, np_ + len(e.params), nt + len(e.tags)
        if m2 > MAX_METRICS or p2 > MAX_PARAMS or t2 > MAX_TAGS or m2 + p2 + t2 > MAX_ENTITIES:
            break
        if any(params.get(k, val) != val for k, val in e.params):
            break
        queue.popleft()
        batch.append(e)
        params.update(e.params)
        nm, np_, nt = m2, p2, t2
    return batch


def request_for(batch_id: str, entries: list[Entry]) -> tuple[str, bytes]:
    """The endpoint and body that send `entries` (a run's end goes alone, as runs/update)."""
    end = entries[0].end
    if end is not None:
        run_id = entries[0].run_id
        return RUN_UPDATE, orjson.dumps({"run_id": run_id, "run_uuid": run_id, "status": end[0],
                                         "end_time": end[1]})
    return LOG_BATCH, batch_body(batch_id, entries)


def batch_body(batch_id: str, entries: list[Entry]) -> bytes:
    """The log-batch request body (MLflow's JSON plus our `batch_id`)."""
    metrics = b",".join(e.metrics for e in entries if e.metrics)
    params = [{"key": k, "value": val} for e in entries for k, val in e.params]
    tags = [{"key": k, "value": val} for e in entries for k, val in e.tags]
    return (b'{"run_id":"%s","batch_id":"%s","metrics":[%s],"params":%s,"tags":%s}'
            % (entries[0].run_id.encode(), batch_id.encode(), metrics, orjson.dumps(params), orjson.dumps(tags)))


@dataclass
class JournalState:
    """What a journal file still owes the server, and what in it could not be read."""

    uri: str | None = None
    pending_plans: list[tuple[str, list[Entry]]] = field(default_factory=list)
    unplanned: list[Entry] = field(default_factory=list)
    corrupt_lines: int = 0  # lines that are not JSON, before the last line
    not_records: int = 0  # JSON lines that are no record of ours (or a malformed one)
    torn_tail: bool = False  # the last line was cut short by a crash mid-write

    @property
    def skipped(self) -> int:
        return self.corrupt_lines + self.not_records + int(self.torn_tail)

    def describe_skipped(self) -> str:
        parts = []
        if self.torn_tail:
            parts.append("a torn last line (a crash mid-write)")
        if self.corrupt_lines:
            parts.append(f"{self.corrupt_lines} line(s) that are not JSON")
        if self.not_records:
            parts.append(f"{self.not_records} JSON line(s) that are not journal records")
        return ", ".join(parts)


# a run id as the validators admit it, with nothing that would need escaping in a JSON string
_RUN_ID = re.compile(r"\w[\w-]{0,255}")


def _pairs(value: Any) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(value, list):
        return None
    if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], str)
               for p in value):
        return None
    return tuple((k, val) for k, val in value)


def _entry(rec: dict[str, Any]) -> Entry | None:
    """The entry a record holds, or None when it is malformed (it is then skipped and counted)."""
    seq, run_id = rec["e"], rec.get("r")
    if type(seq) is not int or not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        return None
    if "end" in rec:
        end = rec["end"]
        if isinstance(end, list) and len(end) == 2 and isinstance(end[0], str) and type(end[1]) is int:
            return Entry(seq, run_id, b"", 0, (), (), end=(end[0], end[1]))
        return None
    metrics = rec.get("m", [])
    params, tags = _pairs(rec.get("p", [])), _pairs(rec.get("t", []))
    if not isinstance(metrics, list) or not all(isinstance(m, dict) for m in metrics) \
            or params is None or tags is None:
        return None
    return Entry(seq, run_id, orjson.dumps(metrics)[1:-1] if metrics else b"", len(metrics), params, tags)


def _plan(rec: dict[str, Any]) -> list[int] | None:
    ranges = rec.get("s")
    if not isinstance(rec["b"], str) or not isinstance(ranges, list):
        return None
    if not all(isinstance(r, list) and len(r) == 2 and type(r[0]) is int and type(r[1]) is int
               and 0 <= r[1] - r[0] < 1_000_000 for r in ranges):
        return None
    return [s for a, b in ranges for s in range(a, b + 1)]


def parse(data: bytes) -> JournalState:
    """Read a journal file: what it still owes, and how many lines could not be read (skipped)."""
    state = JournalState()
    entries: dict[int, Entry] = {}
    plans: dict[str, list[int]] = {}
    acks: dict[str, str] = {}
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            if i == len(lines) - 1:  # no newline after it: the write that made it never finished
                state.torn_tail = True
            else:
                state.corrupt_lines += 1
            continue
        if not isinstance(rec, dict):
            state.not_records += 1
        elif "e" in rec:
            entry = _entry(rec)
            if entry is None:
                state.not_records += 1
            else:
                entries[entry.seq] = entry
        elif "b" in rec:
            seqs = _plan(rec)
            if seqs is None:
                state.not_records += 1
            else:
                plans[rec["b"]] = seqs
        elif "a" in rec and isinstance(rec["a"], str) and rec.get("x", "ok") in ("ok", "failed", "split"):
            acks[rec["a"]] = rec.get("x", "ok")
        elif "mltrail_journal" in rec and (rec.get("uri") is None or isinstance(rec.get("uri"), str)):
            state.uri = rec.get("uri")
        else:
            state.not_records += 1
    done: set[int] = set()
    planned: set[int] = set()
    for batch_id, seqs in plans.items():
        status = acks.get(batch_id)
        if status in ("ok", "failed"):
            done.update(seqs)
    for batch_id, seqs in plans.items():
        if batch_id not in acks:
            todo = [entries[s] for s in seqs if s in entries and s not in done]
            if todo:
                state.pending_plans.append((batch_id, todo))
                planned.update(s for s in seqs)
    state.unplanned = [entries[s] for s in sorted(entries) if s not in done and s not in planned]
    # split batches were refused as a whole: their entries go alone from now on
    split = {s for b, seqs in plans.items() if acks.get(b) == "split" for s in seqs}
    for e in state.unplanned:
        e.solo = e.seq in split
    return state


def deliver(post: Poster, journal: Journal, batch_id: str, entries: list[Entry],
            give_up: Callable[[], bool], on_retry: Callable[[str], None] | None = None) -> tuple[str, Any]:
    """Send one planned batch until the server answers for good.

    Returns ("ok", None), ("failed", error), ("split", error) or ("deferred", message) when
    `give_up()` says to stop retrying a transient failure (the plan stays in the journal).
    """
    endpoint, body = request_for(batch_id, entries)
    backoff = Backoff()  # transient failures (connection, 429, 5xx) are waited out, never dropped
    while True:
        try:
            if endpoint == LOG_BATCH:
                post(body)
            else:
                post(body, endpoint)
        except TransientError as e:
            if on_retry is not None:
                on_retry(str(e))
            if give_up() or not backoff.sleep(e.retry_after, give_up):
                return "deferred", str(e)
            continue
        except MltrailException as e:
            return _refused(journal, batch_id, entries, e)
        journal.append(b'{"a":"%s"}\n' % batch_id.encode())
        return "ok", None


def _refused(journal: Journal, batch_id: str, entries: list[Entry], err: MltrailException) -> tuple[str, Any]:
    # a missing or deleted run refuses every call alike; other refusals may be one call's fault
    if len(entries) > 1 and err.error_code not in (RESOURCE_DOES_NOT_EXIST, INVALID_STATE):
        journal.append(b'{"a":"%s","x":"split"}\n' % batch_id.encode())
        return "split", err
    journal.append(orjson.dumps({"a": batch_id, "x": "failed", "code": err.error_code,
                                 "msg": err.message[:2000]}) + b"\n")
    return "failed", err


def plan_line(batch_id: str, entries: list[Entry]) -> bytes:
    return orjson.dumps({"b": batch_id, "s": _ranges(e.seq for e in entries)}) + b"\n"


class LogQueue:
    """The live journal of one store in one process, and the thread that sends it.

    `put` (the caller's thread) validates nothing: the store has done that. It writes the entry
    and returns; the sender thread merges queued entries into log-batch requests.
    """

    def __init__(self, uri: str, post: Poster) -> None:
        self.uri = uri.rstrip("/")
        self._post = post
        self._init_state()
        ref = weakref.ref(self)  # the hook must not keep a closed store alive
        os.register_at_fork(after_in_child=lambda: _reset_in_child(ref))

    def _init_state(self) -> None:
        """Fresh state (also in a forked child: the parent keeps its journal and sends it)."""
        lock = threading.Lock()
        self._lock = lock
        self._work = threading.Condition(lock)
        self._done = threading.Condition(lock)
        self._queue: deque[Entry] = deque()
        self._inflight: list[Entry] | None = None
        self._inflight_id: str | None = None  # the plan `_inflight` was sent under
        self._journal: Journal | None = None
        self._compact_bytes = compact_bytes()  # no compaction below this size
        self._line_bytes = 0  # bytes and count of entry lines written: their mean sizes what is owed
        self._lines = 0
        self._seq = 0
        self._errors: list[tuple[str, MltrailException]] = []  # (run id, refusal): reported to that run
        self._last_transient: str | None = None
        self._outage_noted = False
        self._thread: threading.Thread | None = None
        self._idle = False
        self._stop = False
        self._interval = fsync_interval()

    # ------------------------------------------------------------------ caller side
    def put(self, run_id: str, metrics: bytes, n_metrics: int, params: tuple[tuple[str, str], ...],
            tags: tuple[tuple[str, str], ...], end: tuple[str, int] | None = None) -> None:
        """Journal one call (or, with `end`, the end of the run: status and end time)."""
        with self._lock:
            journal = self._journal
            if journal is None:
                journal = self._journal = open_journal(self.uri)
            self._seq += 1
            entry = Entry(self._seq, run_id, metrics, n_metrics, params, tags, end=end)
            line = entry_line(entry)
            try:
                journal.append(line)
            except OSError as e:
                self._seq -= 1
                raise MltrailException(f"Could not write the logging journal {journal.path}: {e}. The call was "
                                       "not recorded.", INTERNAL_ERROR) from e
            if self._interval == 0:
                journal.sync()
            self._line_bytes += len(line)
            self._lines += 1
            self._queue.append(entry)
            self._stop = False  # a store used again after close() sends again
            if self._idle:
                self._work.notify()
            elif self._thread is None:
                self._start_sender()

    def _start_sender(self) -> None:
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="mltrail-log-sender", daemon=True)
        self._thread.start()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + (len(self._inflight) if self._inflight else 0)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every call accepted so far is sent (or refused); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._seq
            while ((self._queue and self._queue[0].seq <= target)
                   or (self._inflight and self._inflight[0].seq <= target)):
                if self._thread is None:  # stopped by close(): waiting means sending again
                    self._start_sender()
                elif not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._done.wait(remaining if remaining is not None else 1.0)
        return True

    def take_errors(self, run_id: str | None = None) -> list[MltrailException]:
        """The refusals not reported yet: of one run's calls, or (None) of every run's."""
        with self._lock:
            mine = [err for rid, err in self._errors if run_id is None or rid == run_id]
            self._errors = [(rid, err) for rid, err in self._errors if run_id is not None and rid != run_id]
            return mine

    def flush(self, timeout: float, run_id: str | None = None) -> None:
        """Wait for the queue; raise the first refusal (of `run_id`'s calls, or of any) or a timeout error."""
        if not self.wait(timeout):
            with self._lock:
                n = len(self._queue) + (len(self._inflight) if self._inflight else 0)
                path = self._journal.path if self._journal else "(none)"
                last = self._last_transient
            raise MltrailException(
                f"Timed out after {timeout:g} s sending {n} logged call(s) to {self.uri}"
                f"{f': {last}' if last else ''}. Nothing is lost: they stay in the journal {path}, and "
                "`mltrail sync` (or the next process using this tracking URI) sends them.", TEMPORARILY_UNAVAILABLE)
        errors = self.take_errors(run_id)
        if errors:
            first = errors[0]
            if len(errors) > 1:
                first.message += f" ({len(errors) - 1} more logging call(s) were also refused.)"
                first.args = (first.message,)
            raise first

    def close(self, timeout: float = 0.0) -> None:
        """Stop the sender (after `timeout` s of waiting); delete the journal if it owes nothing."""
        if timeout:
            self.wait(timeout)
        with self._lock:
            self._stop = True
            self._work.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._lock:
            self._close_journal_if_done()

    def _close_journal_if_done(self) -> None:
        j = self._journal
        if j is not None and not self._queue and not self._inflight:
            j.close(delete=True)
            self._journal = None

    def release(self) -> None:
        """At exit: delete the journal if everything was sent, else leave it for recovery."""
        with self._lock:
            self._close_journal_if_done()

    # ------------------------------------------------------------------ sender thread
    def _run(self) -> None:
        last_sync = time.monotonic()
        while True:
            j = self._journal
            if j is not None and j.dirty and self._interval and time.monotonic() - last_sync >= self._interval:
                j.sync()  # outside the lock: callers keep appending while the disk catches up
                last_sync = time.monotonic()
            if j is not None and self._queue and self._inflight is None and self._compaction_due(j):
                self._compact(j)
            with self._lock:
                if not self._queue and self._inflight is None and not self._stop:
                    j = self._journal
                    if j is not None and j.size > self._compact_bytes:
                        self._close_journal_if_done()  # it owes nothing: a fresh file starts with the next call
                        j = None
                    timeout = None
                    if j is not None and j.dirty and self._interval:
                        timeout = max(0.0, self._interval - (time.monotonic() - last_sync))
                    self._idle = True
                    self._work.wait(timeout)
                    self._idle = False
                    continue
                if self._stop:
                    self._thread = None
                    self._done.notify_all()
                    return
                journal = self._journal
                if journal is None:  # cannot happen: entries are queued only with a journal open
                    self._thread = None
                    return
                if self._inflight is not None and self._inflight_id is not None:
                    batch, batch_id = self._inflight, self._inflight_id  # a stop cut its retries short: resend
                else:
                    batch, batch_id = take_batch(self._queue), uuid.uuid4().hex
                    try:
                        journal.append(plan_line(batch_id, batch))
                    except OSError as e:  # no plan, no send (it would not be exactly once): wait for the disk
                        self._queue.extendleft(reversed(batch))
                        self._note_retry(f"could not write the journal {journal.path}: {e}")
                        self._work.wait(1.0)
                        continue
                    self._inflight, self._inflight_id = batch, batch_id
            try:
                status, err = deliver(self._post, journal, batch_id, batch, give_up=lambda: self._stop,
                                      on_retry=self._note_retry)
            except Exception as exc:  # noqa: BLE001 - the sender must survive anything and report it
                status, err = "failed", MltrailException(f"Unexpected error sending logged values: {exc!r}",
                                                         INTERNAL_ERROR)
            with self._lock:
                if status == "split":
                    for entry in reversed(batch):
                        entry.solo = True
                        self._queue.appendleft(entry)
                elif status == "failed":
                    self._errors.append((batch[0].run_id, err))
                elif status == "ok":
                    if self._outage_noted:
                        logger.warning("mltrail: %s answers again; sending the journaled calls.", self.uri)
                    self._last_transient = None
                    self._outage_noted = False
                self._inflight = batch if status == "deferred" else None
                if self._inflight is None:
                    self._inflight_id = None
                self._done.notify_all()
                if status == "deferred":
                    self._thread = None
                    return

    def _compaction_due(self, j: Journal) -> bool:
        # at least half the file is acknowledged or dead lines: rewriting it costs no more than what it frees
        owed = len(self._queue) * self._line_bytes / max(1, self._lines)
        return j.size > self._compact_bytes and j.size > 2 * owed

    def _compact(self, old: Journal) -> None:
        """Rewrite the journal holding only what is still owed (sender thread, nothing in flight): the
        new file is written beside it unlisted, then renamed over it, so a crash leaves one or the other."""
        with self._lock:
            owed, last_seq = list(self._queue), self._seq
        new: Journal | None = None
        try:
            new = Journal.create(os.path.dirname(old.path), self.uri, publish=False)
            new.append(b"".join(entry_line(e) for e in owed) + _solo_lines(owed))
            os.fsync(new.fd)
            with self._lock:
                tail = [e for e in self._queue if e.seq > last_seq]  # logged while we wrote
                if tail:
                    new.append(b"".join(entry_line(e) for e in tail))
                new.publish(old.path)
                self._journal = new
                old.close()  # its name now leads to the new file
        except OSError as e:
            if new is not None:
                new.close(delete=True)
            logger.warning("mltrail: could not compact the logging journal %s (%s); it keeps every call and "
                           "grows until it can be compacted.", old.path, e.strerror or e)
            self._compact_bytes = 2 * old.size  # try again once it has doubled
            return
        self._compact_bytes = compact_bytes()

    def _note_retry(self, message: str) -> None:
        self._last_transient = message
        if not self._outage_noted:  # once per outage: the calls are safe, say what is awaited
            self._outage_noted = True
            logger.warning("mltrail: waiting for %s (%s); logged calls stay in the journal and are retried "
                           "with backoff until it answers.", self.uri, message)
        else:
            logger.debug("retrying a log batch: %s", message)


def _reset_in_child(ref: weakref.ReferenceType[LogQueue]) -> None:
    queue = ref()
    if queue is not None:
        queue._init_state()


def _solo_lines(entries: list[Entry]) -> bytes:
    """A plan acknowledged as split for the entries that must go alone (how `parse` knows them)."""
    solo = [e for e in entries if e.solo]
    if not solo:
        return b""
    split_id = uuid.uuid4().hex
    return plan_line(split_id, solo) + b'{"a":"%s","x":"split"}\n' % split_id.encode()


@dataclass
class RecoveryResult:
    path: str
    uri: str | None
    sent_calls: int = 0
    sent_batches: int = 0
    failed: list[MltrailException] = field(default_factory=list)
    deferred: str | None = None  # why some entries could not be sent now (they stay)
    finished: bool = False  # the file was emptied and deleted
    skipped: int = 0  # lines that could not be read (a torn last line, lines that are not records)
    skipped_what: str = ""


def recover(path: str, post_for: Callable[[str], Poster], stop: Callable[[], bool] = lambda: False,
            retry_transient: bool = False) -> RecoveryResult | None:
    """Finish a dead process's journal: resend its pending plans, then its unsent calls.

    Returns None when a live process holds the file. With `retry_transient` False, the first
    connection failure defers the rest (the file keeps it for the next attempt).
    """
    journal = Journal.claim(path)
    if journal is None:
        return None
    try:
        state = parse(journal.read())
        result = RecoveryResult(path, state.uri, skipped=state.skipped, skipped_what=state.describe_skipped())
        if state.skipped:
            logger.warning("mltrail: skipped %s in the journal %s; every other line was read.",
                           result.skipped_what, path)
        owes = bool(state.pending_plans or state.unplanned)
        if owes and not state.uri:
            result.deferred = "the journal has no header naming its tracking URI"
            return result
        if owes and state.uri and os.path.basename(os.path.dirname(path)) != uri_hash(state.uri):
            # files are filed by their URI's hash: a header naming another server is not believed
            result.deferred = (f"its header names {state.uri}, but it lies among the journals of another "
                               "tracking URI")
            return result
        if not owes:
            result.finished = journal.close(delete=True)
            return result
        post = post_for(str(state.uri))
        work: list[tuple[str | None, list[Entry]]] = [(b, es) for b, es in state.pending_plans]
        queue = deque(state.unplanned)

        def give_up() -> bool:
            return stop() or not retry_transient

        while work or queue:
            if work:
                batch_id, batch = work.pop(0)
            else:
                batch_id, batch = None, take_batch(queue)
            if batch_id is None:
                batch_id = uuid.uuid4().hex
                journal.append(plan_line(batch_id, batch))
            status, err = deliver(post, journal, batch_id, batch, give_up)
            if status == "ok":
                result.sent_calls += len(batch)
                result.sent_batches += 1
            elif status == "failed":
                result.failed.append(err)
            elif status == "split":
                for e in reversed(batch):
                    e.solo = True
                    queue.appendleft(e)
            else:
                result.deferred = str(err)
                return result
        journal.sync()
        journal.close(delete=True)
        result.finished = True
        return result
    finally:
        journal.close()
