"""One journal file on disk: where it lives (and where it falls back to), creating it under a lock,
claiming a dead process's file, appending whole lines, and letting go of it in a forked child.

The journal's records and the sending of them live in `mltrail.store.journal`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import stat
import tempfile
import time
import uuid
import warnings
import weakref

import orjson

from mltrail.errors import INTERNAL_ERROR, MltrailException, MltrailWarning

logger = logging.getLogger("mltrail.journal")

COMPACT_BYTES = 8 * 1024 * 1024


def journal_root() -> str:
    """The configured journal directory (`MLTRAIL_JOURNAL_DIR`, default `~/.cache/mltrail/journal`)."""
    env = os.environ.get("MLTRAIL_JOURNAL_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "mltrail", "journal")


def fallback_root() -> str:
    """Where journals go when the configured directory cannot hold them: a per-user temp directory."""
    return os.path.join(tempfile.gettempdir(), f"mltrail-journal-{os.getuid()}")


def journal_roots() -> list[str]:
    """Every directory this user's journals may be in: the configured one, then the fallback."""
    return list(dict.fromkeys((journal_root(), fallback_root())))


def compact_bytes() -> int:
    try:
        return max(4096, int(os.environ.get("MLTRAIL_JOURNAL_COMPACT_BYTES", COMPACT_BYTES)))
    except ValueError:
        return COMPACT_BYTES


def uri_dir(root: str, uri: str) -> str:
    """The directory holding the journals of one tracking URI."""
    return os.path.join(root, uri_hash(uri))


def uri_hash(uri: str) -> str:
    return hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]


def fsync_interval() -> float:
    try:
        return max(0.0, float(os.environ.get("MLTRAIL_JOURNAL_FSYNC_INTERVAL", "1")))
    except ValueError:
        return 1.0


# every journal open in this process, so a forked child can let go of them all (see `_forget_in_child`)
_open_journals: weakref.WeakSet[Journal] = weakref.WeakSet()


def _forget_in_child() -> None:
    # a forked child shares its parent's open file descriptions, and with them the parent's flocks;
    # closing the child's copies (never unlocking: that would unlock the parent too) leaves each
    # lock to the parent alone, so a dead parent's journal can be claimed while the child lives
    for j in list(_open_journals):
        j.forget()


os.register_at_fork(after_in_child=_forget_in_child)


class Journal:
    """One journal file, opened by its owner (create) or by a process finishing it (claim)."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self.dirty = False
        self.torn = False  # the last write stopped mid-line: the next record starts a fresh line
        _open_journals.add(self)

    @classmethod
    def create(cls, directory: str, uri: str, publish: bool = True) -> Journal:
        """A new file of this process, locked before it gets its listed `.jnl` name (so nobody can
        claim it first); with `publish` False it stays unlisted until `publish` (a compaction)."""
        os.makedirs(directory, mode=0o700, exist_ok=True)
        stem = f"{int(time.time() * 1000)}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp = os.path.join(directory, stem + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh inode: no one else can hold it
        j = cls(tmp, fd)
        try:
            j.append(orjson.dumps({"mltrail_journal": 1, "uri": uri, "pid": os.getpid(),
                                   "created": int(time.time() * 1000)}) + b"\n")
            if publish:
                j.publish(os.path.join(directory, stem + ".jnl"))
        except BaseException:
            j.close(delete=True)
            raise
        return j

    def publish(self, path: str) -> None:
        """Give this (locked) file its listed name, atomically replacing any file there."""
        os.rename(self.path, path)
        self.path = path

    @classmethod
    def claim(cls, path: str) -> Journal | None:
        """Open another process's file if no live process holds it; None when it is taken or gone."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        # the name must still lead to the file we locked: it may have been finished and deleted, or
        # compacted (replaced by a newer file its owner holds) between our open and our lock
        try:
            now = os.stat(path)
        except OSError:
            now = None
        mine = os.fstat(fd)
        if now is None or (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
            os.close(fd)
            return None
        j = cls(path, fd)
        if j.size and os.pread(fd, 1, j.size - 1) != b"\n":
            j.torn = True  # a torn last line (a crash mid-write) must not swallow the next record
        return j

    def append(self, data: bytes) -> None:
        """Write whole records; a failed write is undone (or, failing that, fenced off by a newline)."""
        if self.torn:
            data = b"\n" + data
        view = memoryview(data)
        written = 0
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
                written += n
        except OSError:
            if written:
                try:
                    os.ftruncate(self.fd, self.size)  # a full disk still lets a file shrink
                except OSError:
                    self.size += written
                    self.torn = True
            raise
        self.torn = False
        self.size += len(data)
        self.dirty = True

    def sync(self) -> None:
        if self.dirty and self.fd >= 0:
            self.dirty = False  # before fsync: an append racing with it marks the file dirty again
            try:
                os.fsync(self.fd)
            except OSError:  # closed meanwhile (compacted or finished): nothing left to protect
                pass

    def read(self) -> bytes:
        return os.pread(self.fd, os.fstat(self.fd).st_size, 0)

    def close(self, delete: bool = False) -> bool:
        """Close the file (releasing the lock), after removing it with `delete`; False when the
        removal failed (a read-only directory): the file stays, owing nothing, for a later cleanup."""
        if self.fd < 0:
            return False
        removed = False
        if delete:
            try:
                os.remove(self.path)
                removed = True
            except FileNotFoundError:
                removed = True
            except OSError as e:
                logger.warning("mltrail: could not delete the finished journal %s (%s); it owes nothing and "
                               "the next `mltrail sync` removes it.", self.path, e.strerror or e)
        os.close(self.fd)  # releases the lock
        self.fd = -1
        _open_journals.discard(self)
        return removed

    def forget(self) -> None:
        """In a forked child: drop this process's copy of the file without touching the parent's lock."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


_fallback_warned: set[str] = set()


def _private_dir(path: str) -> bool:
    # a shared temp directory: use ours only if it is a real directory of this user that others cannot enter
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def open_journal(uri: str) -> Journal:
    """A new journal for `uri` in the journal directory, else in the per-user fallback (one warning).

    Raises:
        MltrailException: when no directory can hold it, naming each one tried and why.
    """
    tried: list[str] = []
    primary = journal_root()
    for root in journal_roots():
        directory = uri_dir(root, uri)
        if root != primary and not _private_dir(root):
            tried.append(f"{directory} (not a private directory of this user)")
            continue
        try:
            j = Journal.create(directory, uri)
        except OSError as e:
            tried.append(f"{directory} ({e.strerror or e})")
            continue
        if tried and directory not in _fallback_warned:
            _fallback_warned.add(directory)
            warnings.warn(f"mltrail: the journal directory cannot hold the logging journal: tried {tried[0]}. "
                          f"Journaling to {directory} instead; set MLTRAIL_JOURNAL_DIR to a writable "
                          "directory to choose another place.", MltrailWarning, stacklevel=2)
        return j
    raise MltrailException(
        f"Could not create the logging journal for {uri}: tried {'; '.join(tried)}. A call logged to a "
        "tracking server is journaled on disk before it returns; set MLTRAIL_JOURNAL_DIR to a writable "
        "directory.", INTERNAL_ERROR)


def journal_files(root: str | None = None, uri: str | None = None) -> list[str]:
    """Journal files under `root` (None: every root of `journal_roots()`), of one tracking URI or
    all, oldest first."""
    roots = journal_roots() if root is None else [root]
    dirs = [d for r in roots for d in ([uri_dir(r, uri)] if uri else [os.path.join(r, n) for n in _listdir(r)])]
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
