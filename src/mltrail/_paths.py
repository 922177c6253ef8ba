"""Artifact paths that cannot escape their root.

Every relative artifact path goes through `safe_relpath` before any file system or object-store
call: `..` components, absolute paths, drive letters, backslashes, NUL, `#`/`?` and
percent-encoded (even doubly encoded) forms of these are refused, whatever layer the path came from.
`resolve_under` then resolves symlinks and checks the result still lies under the root.
"""

from __future__ import annotations

import os
import re
import urllib.parse

from mltrail.errors import InvalidParameterValue

_DRIVE = re.compile(r"^[a-zA-Z]:")
_FORBIDDEN_CHARS = ("\\", "\x00", "#", "?")


def _decoded_forms(path: str) -> list[str]:
    """The path and every distinct form percent-decoding gives, up to 4 levels (%252e -> %2e -> .)."""
    forms = [path]
    for _ in range(4):
        nxt = urllib.parse.unquote(forms[-1])
        if nxt == forms[-1]:
            break
        forms.append(nxt)
    return forms


def safe_relpath(path: str | None, what: str = "artifact path") -> str:
    """Normalise a relative artifact path ('' for the root) or refuse it with a clear error.

    Refusals start with MLflow's words for them, "Invalid path", then say what was wrong.
    """
    if path is None:
        return ""
    if not isinstance(path, str):
        raise InvalidParameterValue(f"Invalid path: the {what} {path!r} is not a string.")
    for form in _decoded_forms(path):
        bad = next((c for c in _FORBIDDEN_CHARS if c in form), None)
        if bad is not None:
            raise InvalidParameterValue(
                f"Invalid path: the {what} {path!r} contains {bad!r}. Expected a relative path of '/'-separated names."
            )
        if form.startswith("/") or _DRIVE.match(form) or form.startswith("~"):
            raise InvalidParameterValue(
                f"Invalid path: the {what} {path!r} is absolute. Expected a path relative to the "
                "artifact root."
            )
        if ".." in form.split("/"):
            raise InvalidParameterValue(
                f"Invalid path: the {what} {path!r} has '..' components. Expected a path that stays under "
                "the artifact root."
            )
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/".join(parts)


def join_relpath(*parts: str | None) -> str:
    """Join relative artifact paths, checking each."""
    return "/".join(p for p in (safe_relpath(x) for x in parts) if p)


def resolve_under(root: str, relpath: str | None) -> str:
    """The absolute local path of `relpath` under `root`, refusing anything that escapes it."""
    rel = safe_relpath(relpath)
    root_real = os.path.realpath(root)
    target = os.path.realpath(os.path.join(root_real, rel)) if rel else root_real
    if target != root_real and not target.startswith(root_real + os.sep):
        raise InvalidParameterValue(
            f"Invalid path: the artifact path {relpath!r} resolves outside the artifact root (through a symlink?)."
        )
    return target
