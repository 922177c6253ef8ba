"""The one reading of `runs:/`, `models:/` and `mlflow-artifacts:/` URIs: parsed into frozen values, no I/O.

Every caller (loading, registering, downloading, the stores' source checks, the server's proxy)
parses through here, so one URI means one thing everywhere. Resolution (which run, which logged
model, which files) is `mltrail.uris`' job; this module only reads the text and refuses what is
malformed, starting with MLflow's words where MLflow has them ("Not a proper models:/ URI: ...",
"Not a proper runs:/ URI: ...").

Forms read (a trailing slash is ignored; every sub-path goes through `safe_relpath`, so `..`,
backslashes and their percent-encoded forms are refused):

- `runs:/<run_id>[/<path>]`: kind "run";
- `models:/<model_id>[/<path>]`: kind "logged_model" (an id is `m-` and 32 hex digits; a single
  segment that is not an id is read as an id too, as MLflow does, and is then not found);
- `models:/<name>/<version>[/<path>]`: "registered_version" (a positive integer);
- `models:/<name>/latest[/<path>]`: "registered_latest" (case-insensitive);
- `models:/<name>/<stage>[/<path>]`: "registered_stage" (None, Staging, Production, Archived);
- `models:/<name>@<alias>[/<path>]`: "registered_alias" (the last `@` splits: names may hold `@`);
- `mlflow-artifacts:/<path>`, `mlflow-artifacts://<host:port>/<path>` and the proxy's http(s) form
  `http(s)://<host>[/prefix]/api/2.0/mlflow-artifacts/artifacts/<path>`: `ProxyArtifactUri`.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from mltrail._paths import safe_relpath
from mltrail.entities.model_registry import ModelVersionStage
from mltrail.errors import InvalidParameterValue

ModelUriKind = Literal["run", "logged_model", "registered_version", "registered_alias", "registered_stage",
                       "registered_latest"]

PROXY_HTTP_ANCHOR = "/api/2.0/mlflow-artifacts/artifacts"
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_VERSION = re.compile(r"^[0-9]+$")  # ASCII digits only: str.isdigit() also takes '١' and '²'
_ALIAS = re.compile(r"^[\w\-]+$")
_RUNS_FORM = "Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'"


def is_model_id(value: str) -> bool:
    """Whether `value` looks like a logged model id (`m-` and 32 hex digits)."""
    return bool(_MODEL_ID.match(value))


@dataclass(frozen=True)
class ModelUri:
    """A parsed `runs:/` or `models:/` URI; which fields are set depends on `kind`."""

    kind: ModelUriKind
    run_id: str | None = None
    model_id: str | None = None
    name: str | None = None
    version: str | None = None  # digits, no leading zeros
    alias: str | None = None
    stage: str | None = None  # canonical spelling ('production' -> 'Production')
    subpath: str = ""  # for "run": the run-relative path; otherwise the path inside the model

    @property
    def is_registered(self) -> bool:
        """Whether the URI names a registered model version (through the model registry)."""
        return self.kind.startswith("registered_")

    @property
    def base(self) -> str:
        """The URI without its sub-path (`runs:/<run_id>`, `models:/<id>`, `models:/<name>/<version>`, ...)."""
        if self.kind == "run":
            return f"runs:/{self.run_id}"
        if self.kind == "logged_model":
            return f"models:/{self.model_id}"
        if self.kind == "registered_alias":
            return f"models:/{self.name}@{self.alias}"
        suffix = {"registered_version": self.version, "registered_stage": self.stage}.get(self.kind, "latest")
        return f"models:/{self.name}/{suffix}"

    @property
    def head(self) -> str:
        """The first segment of the sub-path: for `runs:/<run_id>/<name>/...`, the name a logged model may have."""
        return self.subpath.partition("/")[0]

    @property
    def rest(self) -> str:
        """The sub-path after its first segment."""
        return self.subpath.partition("/")[2]

    def __str__(self) -> str:
        return f"{self.base}/{self.subpath}" if self.subpath else self.base


@dataclass(frozen=True)
class ProxyArtifactUri:
    """A location behind a tracking server's artifact proxy."""

    base: str | None  # the server's base URL; None for `mlflow-artifacts:/`, the tracking server in force
    path: str  # the checked path under the proxy root ('' for the root)


def _improper_models(uri: str, why: str) -> InvalidParameterValue:
    # MLflow's words (store/artifact/utils/models.py _improper_model_uri_msg), then what was wrong
    return InvalidParameterValue(
        f"Not a proper models:/ URI: {uri}. Models URIs must be of the form 'models:/name/suffix' or "
        "'models:/name@alias' where suffix is a version, stage, or the string 'latest' and where alias is a "
        "registered model alias. Only one of suffix or alias can be defined at a time. Logged models are "
        f"'models:/<model_id>'. Here: {why}.")


def _improper_runs(uri: str, why: str) -> InvalidParameterValue:
    # MLflow's words (RunsArtifactRepository.parse_runs_uri), then what was wrong
    return InvalidParameterValue(f"Not a proper runs:/ URI: {uri}. {_RUNS_FORM}. Here: {why}.")


def _scheme(uri: str) -> str:
    head, sep, _ = uri.partition(":")
    return head.lower() if sep and len(head) > 1 and "/" not in head else ""


def _segments(body: str) -> list[str]:
    """The '/'-separated segments of a URI body ('/<...>'), trailing slashes ignored, none empty."""
    if "?" in body or "#" in body:
        raise ValueError("it has a query or fragment ('?' or '#')")
    if not body.startswith("/") or body.startswith("//"):
        raise ValueError("expected exactly one '/' after the scheme (no host part)")
    parts = body[1:].rstrip("/").split("/")
    if parts == [""]:
        raise ValueError("nothing after the scheme")
    if "" in parts:
        raise ValueError("an empty segment ('//')")
    return parts


def _subpath(uri: str, parts: list[str]) -> str:
    return safe_relpath("/".join(parts), f"path in {uri!r}") if parts else ""


def is_runs_uri(uri: str) -> bool:
    """Whether `uri` has the `runs:` scheme."""
    return _scheme(uri) == "runs"


def is_models_uri(uri: str) -> bool:
    """Whether `uri` has the `models:` scheme."""
    return _scheme(uri) == "models"


def parse_runs_uri(uri: str) -> ModelUri:
    """`runs:/<run_id>[/<path>]` as a ModelUri of kind "run", or MLflow's refusal."""
    if not is_runs_uri(uri):
        raise _improper_runs(uri, "the scheme is not runs:")
    try:
        parts = _segments(uri[len("runs:"):])
    except ValueError as e:
        raise _improper_runs(uri, str(e)) from None
    if not _RUN_ID.match(parts[0]):
        raise _improper_runs(uri, f"{parts[0]!r} is not a run id (letters, digits, '-' or '_')")
    return ModelUri("run", run_id=parts[0], subpath=_subpath(uri, parts[1:]))


def _registered(uri: str, name: str, suffix: str, sub: list[str]) -> ModelUri:
    if name.strip() in ("", ".", ".."):
        raise _improper_models(uri, f"the registered model name {name!r} is empty or a relative path")
    path = _subpath(uri, sub)
    if _VERSION.match(suffix):
        if int(suffix) < 1:
            raise _improper_models(uri, f"version {suffix!r} is not a positive integer")
        return ModelUri("registered_version", name=name, version=str(int(suffix)), subpath=path)
    if suffix.lower() == "latest":
        return ModelUri("registered_latest", name=name, subpath=path)
    try:
        stage = ModelVersionStage.canonical(suffix)
    except InvalidParameterValue:
        raise _improper_models(uri, f"{suffix!r} is not a version number, 'latest' or a stage "
                                    f"({', '.join(ModelVersionStage.ALL)})") from None
    return ModelUri("registered_stage", name=name, stage=stage, subpath=path)


def parse_models_uri(uri: str) -> ModelUri:
    """A `models:/` URI as a ModelUri (logged model or registered version), or MLflow's refusal."""
    if not is_models_uri(uri):
        raise _improper_models(uri, "the scheme is not models:")
    try:
        parts = _segments(uri[len("models:"):])
    except ValueError as e:
        raise _improper_models(uri, str(e)) from None
    head = parts[0]
    if is_model_id(head):
        return ModelUri("logged_model", model_id=head, subpath=_subpath(uri, parts[1:]))
    if "@" in head:
        name, _, alias = head.rpartition("@")
        if not alias:
            raise _improper_models(uri, "'@' with no alias after it")
        if not _ALIAS.match(alias):
            raise _improper_models(uri, f"alias {alias!r} holds characters other than letters, digits, '_' "
                                        "and '-'")
        if name.strip() in ("", ".", ".."):
            raise _improper_models(uri, f"the registered model name {name!r} is empty or a relative path")
        return ModelUri("registered_alias", name=name, alias=alias, subpath=_subpath(uri, parts[1:]))
    if len(parts) == 1:
        if head.strip() in ("", ".", ".."):
            raise _improper_models(uri, f"{head!r} is not a model id")
        return ModelUri("logged_model", model_id=head)
    return _registered(uri, head, parts[1], parts[2:])


def parse_model_uri(uri: str) -> ModelUri:
    """A `runs:/` or `models:/` URI as a ModelUri, or a clear refusal (no I/O: nothing is looked up)."""
    if not isinstance(uri, str):
        raise InvalidParameterValue(f"Invalid model URI {uri!r}: expected a string.")
    if is_runs_uri(uri):
        return parse_runs_uri(uri)
    if is_models_uri(uri):
        return parse_models_uri(uri)
    raise InvalidParameterValue(f"Invalid model URI {uri!r}: expected runs:/<run_id>/<path> or models:/...")


def is_proxy_uri(uri: str) -> bool:
    """Whether `uri` names a location behind a tracking server's artifact proxy (any of its forms)."""
    scheme = _scheme(uri)
    if scheme == "mlflow-artifacts":
        return True
    return scheme in ("http", "https") and PROXY_HTTP_ANCHOR in urllib.parse.urlsplit(uri).path


def parse_artifact_uri(uri: str) -> ProxyArtifactUri:
    """A proxy artifact URI (`mlflow-artifacts:/p`, `mlflow-artifacts://host:port/p`, its http(s) form).

    The path is percent-decoded once (the http form's encoding) and checked with `safe_relpath`.
    """
    scheme = _scheme(uri) if isinstance(uri, str) else ""
    if scheme == "mlflow-artifacts":
        rest = uri[len("mlflow-artifacts:"):]
        base = None
        if rest.startswith("//"):
            netloc, _, rest = rest[2:].partition("/")
            if not netloc:
                raise InvalidParameterValue(
                    f"Invalid proxy artifact URI {uri!r}: expected mlflow-artifacts://HOST:PORT/PATH (a host after '//').")
            base = f"http://{netloc}"
        return ProxyArtifactUri(base, safe_relpath(urllib.parse.unquote(rest).lstrip("/"), "artifact URI path"))
    if scheme in ("http", "https"):
        parsed = urllib.parse.urlsplit(uri)
        prefix, anchor, path = parsed.path.partition(PROXY_HTTP_ANCHOR)
        if anchor and (not path or path.startswith("/")):
            return ProxyArtifactUri(f"{parsed.scheme}://{parsed.netloc}{prefix}",
                                    safe_relpath(urllib.parse.unquote(path).lstrip("/"), "artifact URI path"))
    raise InvalidParameterValue(
        f"Invalid proxy artifact URI {uri!r}: expected mlflow-artifacts:/PATH, mlflow-artifacts://HOST:PORT/PATH "
        f"or http(s)://HOST{PROXY_HTTP_ANCHOR}/PATH.")
