"""Checks on what the model registry is given: model names, aliases, versions and version sources.

Names are normalised before anything compares them: percent-decoded until stable, NFC, stripped,
so `my%20model`, `my model` and a decomposed `é` all name one model. A version's source is split
into (scheme, authority, path parts) with every backslash, control character and percent-encoded
form refused, so that comparing it with a run's or logged model's artifact location is a plain
comparison of parts. A local path's `..` is resolved first (as MLflow resolves a local source), so
`.../artifacts/model/..` is the artifacts folder; a remote URI's `..` is refused, as MLflow does.
Refusals start with MLflow's words ("Invalid model version source: '<source>'.").
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
import urllib.parse
from typing import Any, NamedTuple

from mltrail.errors import InvalidParameterValue
from mltrail.uri_forms import is_model_id, parse_models_uri, parse_runs_uri

MAX_MODEL_NAME_LENGTH = 256
MAX_ALIAS_LENGTH = 255
_ALIAS = re.compile(r"^[\w\-]+$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
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


def check_model_id(model_id: Any) -> str:
    if not isinstance(model_id, str) or not is_model_id(model_id):
        raise InvalidParameterValue(f"Invalid model_id {model_id!r}: expected a logged model id such as 'm-<32 hex>'.")
    return model_id


# ------------------------------------------------------------------ sources
def source_error(source: str, detail: str) -> InvalidParameterValue:
    """MLflow's first sentence for a refused source ("Invalid model version source: '<source>'."), then why."""
    return InvalidParameterValue(f"Invalid model version source: '{source}'. {detail}")


def _refuse(source: str, why: str) -> InvalidParameterValue:
    return source_error(
        source, f"{why[0].upper()}{why[1:]}. Expected models:/<model_id>, models:/<name>/<version>, "
        "runs:/<run_id>/<path>, or a location inside the artifacts of the run (run_id) or logged model (model_id) "
        "it came from.")


def relative_refusal(source: str) -> InvalidParameterValue:
    """MLflow's refusal of '..' in a source that is not a local path
    (handlers.py `_validate_non_local_source_contains_relative_paths`)."""
    return source_error(
        source, "If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts "
        "uri, an absolute path must be provided without relative path references present. Please provide an "
        "absolute path.")


def id_refusal(source: str, id_name: str, detail: str = "") -> InvalidParameterValue:
    """MLflow's refusal when run_id/model_id does not name what holds the source
    (handlers.py `_raise_invalid_model_version_source`), with what we found."""
    return source_error(
        source, f"The {id_name} request parameter must identify the resource that contains the source."
        + (f" {detail}" if detail else ""))


def local_path_refusal(source: str, id_name: str, detail: str = "") -> InvalidParameterValue:
    """MLflow's refusal of a local path outside the artifacts `id_name` names (handlers.py
    `_validate_source_run` / `_validate_source_model`), with what we found."""
    return source_error(
        source, f"To use a local path as a model version source, the {id_name} request parameter has to be "
        f"specified and the local path has to be contained within the artifact directory of the run specified "
        f"by the {id_name}." + (f" {detail}" if detail else ""))


def check_source_chars(source: Any) -> str:
    if not isinstance(source, str) or not source.strip():
        raise source_error(str(source), "Expected a non-empty string.")
    decoded = _unquote_fully(source)
    for form in (source, decoded):
        if "\\" in form or _has_control(form):
            raise _refuse(source, "it contains a backslash or control characters")
    return source.strip()


def split_location(uri: str, trusted: bool, normalise_local: bool = False) -> tuple[str, str, tuple[str, ...]]:
    """(scheme, authority, path parts) of an artifact location; a plain path counts as `file`.

    Args:
        trusted: a location the store made itself (normalised, never refused); an untrusted one
            (a user's source) is refused if it holds a query, a fragment or percent-encoding.
        normalise_local: for an untrusted local path (`/x`, `file:///x`), resolve `..` components
            lexically, as MLflow resolves a local source before its containment check; the caller
            must then check containment. Otherwise `..` is refused. A remote URI's `..` is always
            refused: an object store keeps `a/../b` as a key of its own.
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
        if not trusted and (scheme != "file" or authority or not normalise_local):
            if scheme != "file" or authority:
                raise relative_refusal(uri)
            raise _refuse(uri, "'..' components are not allowed here")
        segments = [p for p in posixpath.normpath("/" + "/".join(segments)).split("/") if p]
    return scheme, authority, tuple(segments)


def has_dotdot(uri: str) -> bool:
    return ".." in uri.split("/")


def resolves_inside(source: tuple[str, str, tuple[str, ...]], root: tuple[str, str, tuple[str, ...]]) -> bool:
    """For local paths: whether `source` still lies under `root` once symlinks are resolved on this machine
    (MLflow resolves both with `Path.resolve()`); other schemes have no symlinks to follow."""
    import os

    if source[0] != "file" or source[1] or root[0] != "file" or root[1]:
        return True
    real_root = os.path.realpath("/" + "/".join(root[2]))
    real_source = os.path.realpath("/" + "/".join(source[2]))
    return real_source == real_root or real_source.startswith(real_root.rstrip(os.sep) + os.sep)


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
    """(run_id, safe relative path) of `runs:/<run_id>/<path>`, read by `mltrail.uri_forms`."""
    path = source.partition(":")[2]
    if has_dotdot(path) or has_dotdot(_unquote_fully(path)):
        raise relative_refusal(source)
    try:
        parsed = parse_runs_uri(source)
    except InvalidParameterValue as e:
        raise source_error(source, e.message) from None
    return str(parsed.run_id), parsed.subpath


class ModelsUri(NamedTuple):
    """A parsed `models:/` source: a logged model id, or a registered model's version, stage, alias or latest."""

    model_id: str | None = None
    name: str | None = None
    version: int | None = None
    stage: str | None = None
    alias: str | None = None


def parse_models_source(source: str) -> ModelsUri:
    """`models:/<model_id>`, `models:/<name>/<version|stage|latest>` or `models:/<name>@<alias>`, read by
    `mltrail.uri_forms`; a path inside the model, or any other form, is refused."""
    body = source[len("models:"):]
    if body.startswith("//"):  # MLflow: _resolve_registered_model_source_lineage
        raise source_error(source, "Registered model sources must use the active model registry.")
    try:
        parsed = parse_models_uri(source)
    except InvalidParameterValue as e:
        raise source_error(source, e.message) from None
    if parsed.subpath:
        raise _refuse(source, "a models: source must be models:/<model_id>, models:/<name>/<version> or "
                              "models:/<name>@<alias>, not a path inside the model")
    if parsed.kind == "logged_model":
        if not is_model_id(str(parsed.model_id)):
            raise _refuse(source, "a models: source names a logged model as models:/m-<32 hex>, or a registered "
                                  "model version as models:/<name>/<version>")
        return ModelsUri(model_id=parsed.model_id)
    try:
        name = normalize_model_name(parsed.name)
        if parsed.kind == "registered_version":
            return ModelsUri(name=name, version=parse_version(parsed.version))
        if parsed.kind == "registered_alias":
            return ModelsUri(name=name, alias=check_alias(parsed.alias))
    except InvalidParameterValue as e:
        raise source_error(source, e.message) from None
    return ModelsUri(name=name, stage=parsed.stage)  # a stage, or None: the latest of all versions
