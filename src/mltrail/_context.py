"""System tags for a new run: who started it, from which program, at which git commit.

The git commit is read from `.git` files directly (no subprocess), walking up from the source.
"""

from __future__ import annotations

import getpass
import os
import sys


def _source_name() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else "")
    return os.path.abspath(path) if path and path not in ("-c", "-m") else (path or "<console>")


def _in_notebook() -> bool:
    return "ipykernel" in sys.modules


def _git_dir(start: str) -> str | None:
    d = os.path.abspath(start)
    while True:
        candidate = os.path.join(d, ".git")
        if os.path.isdir(candidate):
            return candidate
        if os.path.isfile(candidate):  # a worktree or submodule: "gitdir: <path>"
            with open(candidate) as fh:
                line = fh.read().strip()
            if line.startswith("gitdir:"):
                return os.path.normpath(os.path.join(d, line[len("gitdir:"):].strip()))
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def git_commit(start: str) -> str | None:
    """The commit HEAD points at, for the checkout containing `start`, or None."""
    try:
        gd = _git_dir(start)
        if gd is None:
            return None
        with open(os.path.join(gd, "HEAD")) as fh:
            head = fh.read().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head[4:].strip()
        ref_file = os.path.join(gd, ref)
        if os.path.isfile(ref_file):
            with open(ref_file) as fh:
                return fh.read().strip() or None
        common = gd
        commondir = os.path.join(gd, "commondir")
        if os.path.isfile(commondir):
            with open(commondir) as fh:
                common = os.path.normpath(os.path.join(gd, fh.read().strip()))
        packed = os.path.join(common, "packed-refs")
        if os.path.isfile(common + "/" + ref):
            with open(common + "/" + ref) as fh:
                return fh.read().strip() or None
        if os.path.isfile(packed):
            with open(packed) as fh:
                for line in fh:
                    parts = line.strip().split(" ")
                    if len(parts) == 2 and parts[1] == ref:
                        return parts[0]
    except OSError:
        return None
    return None


def current_user() -> str:
    """The operating system's name for who runs this process ("unknown" where it has none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def system_tags() -> dict[str, str]:
    source = _source_name()
    tags = {
        "mlflow.user": current_user(),
        "mlflow.source.name": source,
        "mlflow.source.type": "NOTEBOOK" if _in_notebook() else "LOCAL",
    }
    start = os.path.dirname(source) if os.path.isabs(source) else os.getcwd()
    commit = git_commit(start)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags
