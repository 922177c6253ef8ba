"""The remote store's write-ahead journal: log calls survive a killed process and land once.

Each process logging to a tracking server appends to its own file,
`<journal dir>/<hash of the tracking URI>/<time>-<pid>-<random>.jnl` (the directory is
`MLTRAIL_JOURNAL_DIR`, default `~/.cache/mltrail/journal`). A file is a sequence of JSON lines:

- a header `{"mltrail_journal": 1, "uri": ..., "pid": ...}`;
- an entry per accepted log call: `{"e": seq, "r": run_id, "m": [metric...], "p": [...], "t": [...]}`;
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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from mltrail.errors import (
    INTERNAL_ERROR,
    INVALID_STATE,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    MltrailException,
)

logger = logging.getLogger("mltrail.journal")

MAX_METRICS = 1000
MAX_PARAMS = 100
MAX_TAGS = 100
MAX_ENTITIES = 1000
ROTATE_BYTES = 32 * 1024 * 1024


def journal_root() -> str:
    env = os.environ.get("MLTRAIL_JOURNAL_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "mltrail", "journal")


def uri_dir(root: str, uri: str) -> str:
    """The directory holding the journals of one tracking URI."""
    return os.path.join(root, hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16])


def fsync_interval() -> float:
    try:
        return max(0.0, float(os.environ.get("MLTRAIL_JOURNAL_FSYNC_INTERVAL", "1")))
    except ValueError:
        return 1.0


class TransientError(Exception):
    """A send that may succeed later (connection refused, timeout, 429, 5xx)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# a poster sends one log-batch JSON body; raises TransientError or MltrailException (refused)
Poster = Callable[[bytes], None]


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


def entry_line(e: Entry) -> bytes:
    # run ids are validated ([A-Za-z0-9_-]) before they get here, so they need no escaping
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
    if first.solo:
        return batch
    nm, np_, nt = first.n_metrics, len(first.params), len(first.tags)
    params = dict(first.params)
    while queue:
        e = queue[0]
        if e.solo or e.run_id != first.run_id:
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


def batch_body(batch_id: str, entries: list[Entry]) -> bytes:
    """The log-batch request body (MLflow's JSON plus our `batch_id`)."""
    metrics = b",".join(e.metrics for e in entries if e.metrics)
    params = [{"key": k, "value": val} for e in entries for k, val in e.params]
    tags = [{"key": k, "value": val} for e in entries for k, val in e.tags]
    return (b'{"run_id":"%s","batch_id":"%s","metrics":[%s],"params":%s,"tags":%s}'
            % (entries[0].run_id.encode(), batch_id.encode(), metrics, orjson.dumps(params), orjson.dumps(tags)))


class Journal:
    """One journal file, opened by its owner (create) or by a process finishing it (claim)."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self.dirty = False

    @classmethod
    def create(cls, directory: str, uri: str) -> Journal:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        name = f"{int(time.time() * 1000)}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jnl"
        path = os.path.join(directory, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        j = cls(path, fd)
        j.append(orjson.dumps({"mltrail_journal": 1, "uri": uri, "pid": os.getpid(),
                               "created": int(time.time() * 1000)}) + b"\n")
        return j

    @classmethod
    def claim(cls, path: str) -> Journal | None:
        """Open another process's file if no live process holds it; None when it is taken or gone."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        if not os.path.exists(path):  # finished and deleted between open and lock
            os.close(fd)
            return None
        j = cls(path, fd)
        if j.size and os.pread(fd, 1, j.size - 1) != b"\n":
            j.append(b"\n")  # a torn last line (power loss) must not swallow the next record
        return j

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.size += len(data)
        self.dirty = True

    def sync(self) -> None:
        if self.dirty and self.fd >= 0:
            self.dirty = False  # before fsync: an append racing with it marks the file dirty again
            try:
                os.fsync(self.fd)
            except OSError:  # closed meanwhile (rotated or finished): nothing left to protect
                pass

    def read(self) -> bytes:
        return os.pread(self.fd, os.fstat(self.fd).st_size, 0)

    def close(self, delete: bool = False) -> None:
        if self.fd < 0:
            return
        if delete:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
        os.close(self.fd)  # releases the lock
        self.fd = -1


@dataclass
class JournalState:
    """What a journal file still owes the server."""

    uri: str | None = None
    pending_plans: list[tuple[str, list[Entry]]] = field(default_factory=list)
    unplanned: list[Entry] = field(default_factory=list)
    corrupt_lines: int = 0


def parse(data: bytes) -> JournalState:
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
            if i != len(lines) - 1:  # only the last line may be torn
                state.corrupt_lines += 1
            continue
        if "e" in rec:
            metrics = rec.get("m") or []
            entries[rec["e"]] = Entry(rec["e"], rec["r"], orjson.dumps(metrics)[1:-1] if metrics else b"",
                                      len(metrics), tuple((k, val) for k, val in rec.get("p") or ()),
                                      tuple((k, val) for k, val in rec.get("t") or ()))
        elif "b" in rec:
            plans[rec["b"]] = [s for a, b in rec["s"] for s in range(a, b + 1)]
        elif "a" in rec:
            acks[rec["a"]] = rec.get("x", "ok")
        elif "mltrail_journal" in rec:
            state.uri = rec.get("uri")
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
    body = batch_body(batch_id, entries)
    attempt = 0
    while True:
        try:
            post(body)
        except TransientError as e:
            attempt += 1
            if e.status == 500 and attempt >= 3:  # a server error that repeats is not going away
                err = MltrailException(str(e), INTERNAL_ERROR)
                return _refused(journal, batch_id, entries, err)
            if on_retry is not None:
                on_retry(str(e))
            if give_up():
                return "deferred", str(e)
            time.sleep(min(0.05 * 2 ** min(attempt, 7), 5.0))
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
        os.register_at_fork(after_in_child=self._init_state)

    def _init_state(self) -> None:
        """Fresh state (also in a forked child: the parent keeps its journal and sends it)."""
        lock = threading.Lock()
        self._lock = lock
        self._work = threading.Condition(lock)
        self._done = threading.Condition(lock)
        self._queue: deque[Entry] = deque()
        self._inflight: list[Entry] | None = None
        self._journal: Journal | None = None
        self._seq = 0
        self._errors: list[MltrailException] = []
        self._last_transient: str | None = None
        self._thread: threading.Thread | None = None
        self._idle = False
        self._stop = False
        self._interval = fsync_interval()

    # ------------------------------------------------------------------ caller side
    def put(self, run_id: str, metrics: bytes, n_metrics: int, params: tuple[tuple[str, str], ...],
            tags: tuple[tuple[str, str], ...]) -> None:
        with self._lock:
            journal = self._journal
            if journal is None:
                journal = self._journal = Journal.create(uri_dir(journal_root(), self.uri), self.uri)
            self._seq += 1
            entry = Entry(self._seq, run_id, metrics, n_metrics, params, tags)
            try:
                journal.append(entry_line(entry))
            except OSError as e:
                self._seq -= 1
                raise MltrailException(f"Could not write the logging journal {journal.path}: {e}. The call was "
                                       "not recorded.", INTERNAL_ERROR) from e
            if self._interval == 0:
                journal.sync()
            self._queue.append(entry)
            if self._idle:
                self._work.notify()
            elif self._thread is None:
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
                if self._thread is None or not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._done.wait(remaining if remaining is not None else 1.0)
        return True

    def take_errors(self) -> list[MltrailException]:
        with self._lock:
            errors, self._errors = self._errors, []
            return errors

    def flush(self, timeout: float) -> None:
        """Wait for the queue; raise the first refusal (MltrailException) or a timeout error."""
        if not self.wait(timeout):
            with self._lock:
                n = len(self._queue) + (len(self._inflight) if self._inflight else 0)
                path = self._journal.path if self._journal else "(none)"
                last = self._last_transient
            raise MltrailException(
                f"Timed out after {timeout:g} s sending {n} logged call(s) to {self.uri}"
                f"{f': {last}' if last else ''}. Nothing is lost: they stay in the journal {path}, and "
                "`mltrail sync` (or the next process using this tracking URI) sends them.", TEMPORARILY_UNAVAILABLE)
        errors = self.take_errors()
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
            with self._lock:
                if not self._queue and not self._stop:
                    j = self._journal
                    if j is not None and j.size > ROTATE_BYTES and not self._inflight:
                        self._close_journal_if_done()  # a fresh file starts with the next call
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
                batch = take_batch(self._queue)
                self._inflight = batch
                journal = self._journal
                batch_id = uuid.uuid4().hex
                if journal is None:  # cannot happen: entries are queued only with a journal open
                    self._inflight = None
                    continue
                journal.append(plan_line(batch_id, batch))
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
                    self._errors.append(err)
                elif status == "ok":
                    self._last_transient = None
                self._inflight = batch if status == "deferred" else None
                self._done.notify_all()
                if status == "deferred":
                    self._thread = None
                    return

    def _note_retry(self, message: str) -> None:
        self._last_transient = message
        logger.debug("retrying a log batch: %s", message)


@dataclass
class RecoveryResult:
    path: str
    uri: str | None
    sent_calls: int = 0
    sent_batches: int = 0
    failed: list[MltrailException] = field(default_factory=list)
    deferred: str | None = None  # why some entries could not be sent now (they stay)
    finished: bool = False  # the file was emptied and deleted


def journal_files(root: str, uri: str | None = None) -> list[str]:
    """Journal files under `root` (of one tracking URI, or all), oldest first."""
    dirs = [uri_dir(root, uri)] if uri else [os.path.join(root, d) for d in _listdir(root)]
    files = [os.path.join(d, f) for d in dirs for f in _listdir(d) if f.endswith(".jnl")]
    return sorted(files, key=os.path.basename)


def _listdir(d: str) -> list[str]:
    try:
        return sorted(os.listdir(d))
    except (FileNotFoundError, NotADirectoryError):
        return []


def read_uri(path: str) -> str | None:
    """The tracking URI in a journal's header."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline()
        return orjson.loads(first).get("uri")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None


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
        result = RecoveryResult(path, state.uri)
        if not state.uri:
            result.deferred = "the journal has no header naming its tracking URI"
            return result
        post = post_for(state.uri)
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
