"""Checks on what the model registry is given: model names, aliases, versions and version sources.

Names are normalised before anything compares them: percent-decoded until stable, NFC, stripped,
so `my%20model`, `my model` and a decomposed `é` all name one model. A version's source is split
into (scheme, authority, path parts) with every `..`, backslash, control character and
percent-encoded form refused, so that comparing it with a run's or logged model's artifact
location is a plain comparison of parts.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
import urllib.parse
from typing import Any

from mltrail.errors import InvalidParameterValue

MAX_MODEL_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
_ALIAS = re.compile(r"^[\w\-]+$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_NAME_FORBIDDEN = ("/", ":", "\\")


def _unquote_fully(value: str) -> str:
    # each round that changes the string shortens it, so this ends
    while True:
        nxt = urllib.parse.unquote(value)
        if nxt == value:
            return value
        value = nxt


def _has_control(value: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def normalize_model_name(name: Any, what: str = "name") -> str:
    """The canonical form of a registered model name, or InvalidParameterValue saying what is wrong."""
    if not isinstance(name, str):
        raise InvalidParameterValue(f"Invalid registered model {what} {name!r}: expected a non-empty string.")
    norm = unicodedata.normalize("NFC", _unquote_fully(name)).strip()
    if not norm:
        raise InvalidParameterValue(f"Registered model {what} cannot be empty (got {name!r}).")
    if len(norm) > MAX_MODEL_NAME_LENGTH:
        raise InvalidParameterValue(
            f"Registered model {what} '{norm[:40]}...' has length {len(norm)}, which exceeds the limit of "
            f"{MAX_MODEL_NAME_LENGTH}.")
    bad = [c for c in _NAME_FORBIDDEN if c in norm]
    if bad or _has_control(norm):
        shown = ", ".join(repr(c) for c in bad) or "control characters"
        raise InvalidParameterValue(
            f"Invalid registered model {what} {name!r}: names cannot contain {shown} (no '/', ':', '\\' or "
            "control characters, also when percent-encoded).")
    if norm in (".", "..") or norm.startswith(".."):
        raise InvalidParameterValue(
            f"Invalid registered model {what} {name!r}: names may be used as paths and must not be '.', '..' "
            "or start with '..'.")
    return norm


def check_alias(alias: Any, reserved: bool = False) -> str:
    """An alias name: letters, digits, '_' and '-'; `reserved` also refuses 'latest' and 'v<digits>'."""
    if not isinstance(alias, str) or not alias:
        raise InvalidParameterValue(f"Registered model alias name cannot be empty (got {alias!r}).")
    if not _ALIAS.match(alias):
        raise InvalidParameterValue(
            f"Invalid alias name: {alias!r}. Names may only contain alphanumerics, underscores (_), and dashes (-).")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameterValue(
            f"Registered model alias name '{alias[:40]}...' has length {len(alias)}, which exceeds the limit of "
            f"{MAX_ALIAS_LENGTH}.")
    if reserved and alias.lower() == "latest":
        raise InvalidParameterValue("'latest' alias name (case insensitive) is reserved.")
    if reserved and _VERSION_ALIAS.match(alias):
        raise InvalidParameterValue(f"Version alias name '{alias}' is reserved: it would read as a version.")
    return alias


def parse_version(version: Any) -> int:
    """A model version number (an int or a string of digits)."""
    if isinstance(version, bool):
        raise InvalidParameterValue(f"Model version must be an integer, got {version!r}.")
    try:
        number = int(str(version).strip()) if not isinstance(version, int) else version
    except ValueError:
        raise InvalidParameterValue(f"Model version must be an integer, got {version!r}.") from None
    if number < 1:
        raise InvalidParameterValue(f"Model version must be a positive integer, got {version!r}.")
    return number


def is_model_id(value: str) -> bool:
    return bool(_MODEL_ID.match(value))


def check_model_id(model_id: Any) -> str:
    if not isinstance(model_id, str) or not is_model_id(model_id):
        raise InvalidParameterValue(f"Invalid model_id {model_id!r}: expected a logged model id such as 'm-<32 hex>'.")
    return model_id


# ------------------------------------------------------------------ sources
def _refuse(source: str, why: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Invalid model version source {source!r}: {why}. Expected models:/<model_id>, runs:/<run_id>/<path>, "
        "or a location inside the artifacts of the run (run_id) or logged model (model_id) it came from.")


def check_source_chars(source: Any) -> str:
    if not isinstance(source, str) or not source.strip():
        raise InvalidParameterValue(f"Invalid model version source {source!r}: expected a non-empty string.")
    decoded = _unquote_fully(source)
    for form in (source, decoded):
        if "\\" in form or _has_control(form):
            raise _refuse(source, "it contains a backslash or control characters")
    return source.strip()


def split_location(uri: str, trusted: bool) -> tuple[str, str, tuple[str, ...]]:
    """(scheme, authority, path parts) of an artifact location; a plain path counts as `file`.

    Args:
        trusted: a location the store made itself (normalised, never refused); an untrusted one
            (a user's source) is refused if it holds `..`, a query, a fragment or percent-encoding.
    """
    from mltrail.tracking_uri import scheme_of

    if not trusted and ("?" in uri or "#" in uri):
        raise _refuse(uri, "it has a query or fragment ('?' or '#')")
    scheme = scheme_of(uri)
    if scheme == "":
        scheme, authority, path = "file", "", uri
        if not path.startswith("/"):
            if not trusted:
                raise _refuse(uri, "a relative local path")
            path = posixpath.abspath(path)
    else:
        parts = urllib.parse.urlsplit(uri)
        authority = parts.netloc.lower()
        path = parts.path
        if scheme == "file":
            path = urllib.parse.unquote(path)  # the one decoding a file: URI is entitled to
            if authority == "localhost":
                authority = ""
    if not trusted and _unquote_fully(path) != path:
        raise _refuse(uri, "percent-encoded characters are not allowed in a source path")
    segments = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in segments:
        if not trusted:
            raise _refuse(uri, "'..' components are not allowed")
        segments = [p for p in posixpath.normpath("/" + "/".join(segments)).split("/") if p]
    return scheme, authority, tuple(segments)


def relative_under(source: tuple[str, str, tuple[str, ...]], root: tuple[str, str, tuple[str, ...]]) -> str | None:
    """The path of `source` below `root` ('' when equal), or None when it is not inside."""
    if source[0] != root[0] or source[1] != root[1] or not root[2]:
        return None
    n = len(root[2])
    if source[2][:n] != root[2]:
        return None
    return "/".join(source[2][n:])


def join_location(root: str, rel: str) -> str:
    return root.rstrip("/") + "/" + rel if rel else root


def parse_runs_source(source: str) -> tuple[str, str]:
    """(run_id, safe relative path) of `runs:/<run_id>/<path>`."""
    from mltrail import _validation as v
    from mltrail._paths import safe_relpath

    body = source[len("runs:"):]
    if not body.startswith("/") or body.startswith("//"):
        raise _refuse(source, "a runs: URI must look like runs:/<run_id>/<path>")
    run_id, _, path = body[1:].partition("/")
    try:
        v.validate_run_id(run_id)
        rel = safe_relpath(path, "model version source path")
    except InvalidParameterValue as e:
        raise _refuse(source, e.message.rstrip(".")) from None
    return run_id, rel


def parse_models_source(source: str) -> str:
    """The logged model id of `models:/<model_id>`; other models: URIs are refused."""
    body = source[len("models:"):]
    if body.startswith("/") and not body.startswith("//"):
        model_id = body[1:].rstrip("/")
        if is_model_id(model_id):
            return model_id
    raise _refuse(source, "a models: source must be models:/<model_id> of a logged model (m-<32 hex>)")
