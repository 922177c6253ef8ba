"""One reading of every URI: each form of runs:/, models:/ and mlflow-artifacts:/, and each malformed one."""

from __future__ import annotations

import pytest

from mltrail.errors import InvalidParameterValue
from mltrail.uri_forms import (
    ModelUri,
    ProxyArtifactUri,
    is_proxy_uri,
    parse_artifact_uri,
    parse_model_uri,
)

MID = "m-0123456789abcdef0123456789abcdef"
RID = "0123456789abcdef0123456789abcdef"

# uri -> (kind, the fields that kind sets, subpath)
FORMS: list[tuple[str, str, dict[str, str], str]] = [
    (f"runs:/{RID}", "run", {"run_id": RID}, ""),
    (f"runs:/{RID}/", "run", {"run_id": RID}, ""),
    (f"runs:/{RID}/model", "run", {"run_id": RID}, "model"),
    (f"runs:/{RID}/model/", "run", {"run_id": RID}, "model"),
    (f"runs:/{RID}/model/data/weights.bin", "run", {"run_id": RID}, "model/data/weights.bin"),
    (f"runs:/{RID}/./model", "run", {"run_id": RID}, "model"),
    (f"RUNS:/{RID}/model", "run", {"run_id": RID}, "model"),
    (f"models:/{MID}", "logged_model", {"model_id": MID}, ""),
    (f"models:/{MID}/", "logged_model", {"model_id": MID}, ""),
    (f"models:/{MID}/data/weights.bin", "logged_model", {"model_id": MID}, "data/weights.bin"),
    ("models:/some-id", "logged_model", {"model_id": "some-id"}, ""),  # MLflow reads one segment as an id
    ("models:/clf/3", "registered_version", {"name": "clf", "version": "3"}, ""),
    ("models:/clf/03/", "registered_version", {"name": "clf", "version": "3"}, ""),
    ("models:/clf/3/data/weights.bin", "registered_version", {"name": "clf", "version": "3"}, "data/weights.bin"),
    ("models:/my model/1", "registered_version", {"name": "my model", "version": "1"}, ""),
    ("models:/my%20model/1", "registered_version", {"name": "my%20model", "version": "1"}, ""),  # the store decodes
    ("models:/clf/latest", "registered_latest", {"name": "clf"}, ""),
    ("models:/clf/LATEST/MLmodel", "registered_latest", {"name": "clf"}, "MLmodel"),
    ("models:/clf/production", "registered_stage", {"name": "clf", "stage": "Production"}, ""),
    ("models:/clf/None", "registered_stage", {"name": "clf", "stage": "None"}, ""),
    ("models:/clf@champion", "registered_alias", {"name": "clf", "alias": "champion"}, ""),
    ("models:/clf@champion/", "registered_alias", {"name": "clf", "alias": "champion"}, ""),
    ("models:/clf@champion/data", "registered_alias", {"name": "clf", "alias": "champion"}, "data"),
    ("models:/team@x@champion", "registered_alias", {"name": "team@x", "alias": "champion"}, ""),
    ("models:/clf@latest", "registered_alias", {"name": "clf", "alias": "latest"}, ""),
]


@pytest.mark.parametrize(("uri", "kind", "fields", "subpath"), FORMS, ids=[f[0] for f in FORMS])
def test_each_form_is_read_one_way(uri, kind, fields, subpath):
    parsed = parse_model_uri(uri)
    assert parsed == ModelUri(kind, subpath=subpath, **fields)  # type: ignore[arg-type]
    assert parsed.is_registered == kind.startswith("registered_")
    assert parse_model_uri(str(parsed)) == parsed  # the canonical text reads back the same


def test_canonical_text_and_parts():
    parsed = parse_model_uri(f"runs:/{RID}/model/data/")
    assert (str(parsed), parsed.base, parsed.head, parsed.rest) == (
        f"runs:/{RID}/model/data", f"runs:/{RID}", "model", "data")
    assert parse_model_uri("models:/clf/production/x").base == "models:/clf/Production"
    assert parse_model_uri("models:/clf/Latest").base == "models:/clf/latest"


RUNS_WORDS = r"^Not a proper runs:/ URI: .*Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'"
MODELS_WORDS = r"^Not a proper models:/ URI: .*Models URIs must be of the form 'models:/name/suffix'"
PATH_WORDS = r"^Invalid path: "

# uri -> (MLflow's first words, then what we say was wrong)
MALFORMED: list[tuple[str, str, str]] = [
    ("runs:/", RUNS_WORDS, "nothing after the scheme"),
    ("runs:", RUNS_WORDS, "exactly one '/'"),
    ("runs:abc/model", RUNS_WORDS, "exactly one '/'"),
    (f"runs://{RID}/model", RUNS_WORDS, "no host part"),
    (f"runs:/{RID}//model", RUNS_WORDS, r"empty segment"),
    ("runs:/bad id/model", RUNS_WORDS, "is not a run id"),
    ("runs:/../model", RUNS_WORDS, "is not a run id"),
    (f"runs:/{RID}/model?x=1", RUNS_WORDS, "query or fragment"),
    (f"runs:/{RID}/model#frag", RUNS_WORDS, "query or fragment"),
    (f"runs:/{RID}/../other", PATH_WORDS, "'..' components"),
    (f"runs:/{RID}/model/../../x", PATH_WORDS, "'..' components"),
    (f"runs:/{RID}/%2e%2e/x", PATH_WORDS, "'..' components"),
    (f"runs:/{RID}/%252e%252e/x", PATH_WORDS, "'..' components"),
    (f"runs:/{RID}/model%2f..%2f..%2fx", PATH_WORDS, "'..' components"),
    (f"runs:/{RID}/a\\b", PATH_WORDS, "contains"),
    (f"runs:/{RID}/a%5cb", PATH_WORDS, "contains"),
    (f"runs:/{RID}/a%00b", PATH_WORDS, "contains"),
    ("models:/", MODELS_WORDS, "nothing after the scheme"),
    ("models:", MODELS_WORDS, "exactly one '/'"),
    ("models:clf/1", MODELS_WORDS, "exactly one '/'"),
    ("models://profile@databricks/clf/1", MODELS_WORDS, "no host part"),
    ("models:/clf//1", MODELS_WORDS, "empty segment"),
    ("models://", MODELS_WORDS, "no host part"),
    ("models:/ /1", MODELS_WORDS, "name ' ' is empty"),
    ("models:/../1", MODELS_WORDS, "name '..' is empty or a relative path"),
    ("models:/clf/0", MODELS_WORDS, "version '0' is not a positive integer"),
    ("models:/clf/-1", MODELS_WORDS, "'-1' is not a version number"),
    ("models:/clf/1.5", MODELS_WORDS, "'1.5' is not a version number"),
    ("models:/clf/v1", MODELS_WORDS, "'v1' is not a version number"),
    ("models:/clf/\u0661", MODELS_WORDS, "is not a version number"),  # Arabic-Indic one: isdigit() but not ours
    ("models:/clf/Staged", MODELS_WORDS, "'Staged' is not a version number, 'latest' or a stage"),
    ("models:/clf@", MODELS_WORDS, "'@' with no alias"),
    ("models:/clf@/data", MODELS_WORDS, "'@' with no alias"),
    ("models:/@champion", MODELS_WORDS, "name '' is empty"),
    ("models:/clf@cham pion", MODELS_WORDS, "alias 'cham pion' holds characters"),
    ("models:/clf@a.b", MODELS_WORDS, "alias 'a.b' holds characters"),
    ("models:/clf/1?x", MODELS_WORDS, "query or fragment"),
    ("models:/..", MODELS_WORDS, "'..' is not a model id"),
    (f"models:/{MID}/../x", PATH_WORDS, "'..' components"),
    (f"models:/{MID}/%2E%2E/x", PATH_WORDS, "'..' components"),
    ("models:/clf/1/../../x", PATH_WORDS, "'..' components"),
    ("models:/clf@champion/%2e%2e", PATH_WORDS, "'..' components"),
    ("s3://bucket/model", r"^Invalid model URI 's3://bucket/model': expected runs:/", ""),
    ("", r"^Invalid model URI '': expected runs:/", ""),
]


@pytest.mark.parametrize(("uri", "words", "why"), MALFORMED, ids=[m[0] or "<empty>" for m in MALFORMED])
def test_each_malformed_form_is_refused_clearly(uri, words, why):
    with pytest.raises(InvalidParameterValue, match=words) as e:
        parse_model_uri(uri)
    assert why in e.value.message
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_non_string_is_refused():
    with pytest.raises(InvalidParameterValue, match="expected a string"):
        parse_model_uri(42)  # type: ignore[arg-type]


PROXY: list[tuple[str, ProxyArtifactUri]] = [
    ("mlflow-artifacts:/", ProxyArtifactUri(None, "")),
    ("mlflow-artifacts:/0/abc/artifacts", ProxyArtifactUri(None, "0/abc/artifacts")),
    ("mlflow-artifacts:/0/abc/artifacts/", ProxyArtifactUri(None, "0/abc/artifacts")),
    ("mlflow-artifacts:0/abc", ProxyArtifactUri(None, "0/abc")),
    ("mlflow-artifacts://host:5000/0/abc", ProxyArtifactUri("http://host:5000", "0/abc")),
    ("mlflow-artifacts:/a%20b", ProxyArtifactUri(None, "a b")),
    ("http://h:5000/api/2.0/mlflow-artifacts/artifacts/0/a%20b",
     ProxyArtifactUri("http://h:5000", "0/a b")),
    ("https://h/prefix/api/2.0/mlflow-artifacts/artifacts", ProxyArtifactUri("https://h/prefix", "")),
]


@pytest.mark.parametrize(("uri", "expected"), PROXY, ids=[p[0] for p in PROXY])
def test_each_proxy_form(uri, expected):
    assert is_proxy_uri(uri)
    assert parse_artifact_uri(uri) == expected


PROXY_MALFORMED: list[tuple[str, str]] = [
    ("mlflow-artifacts:/0/../../etc", "'..' components"),
    ("mlflow-artifacts:/0/%2e%2e/%2e%2e/etc", "'..' components"),
    ("mlflow-artifacts://host:5000/0/..", "'..' components"),
    ("mlflow-artifacts:///0/abc", "a host after '//'"),
    ("mlflow-artifacts:/0/a\\b", "contains"),
    ("http://h/api/2.0/mlflow-artifacts/artifacts/0/%2e%2e/x", "'..' components"),
    ("http://h/api/2.0/mlflow-artifacts/artifactsX/0", "expected mlflow-artifacts:/PATH"),
    ("http://h/other/0", "expected mlflow-artifacts:/PATH"),
    ("s3://bucket/0", "expected mlflow-artifacts:/PATH"),
]


@pytest.mark.parametrize(("uri", "why"), PROXY_MALFORMED, ids=[p[0] for p in PROXY_MALFORMED])
def test_each_malformed_proxy_form_is_refused(uri, why):
    with pytest.raises(InvalidParameterValue) as e:
        parse_artifact_uri(uri)
    assert why in e.value.message


def test_proxy_uri_recognition():
    assert not is_proxy_uri("http://h/other/0")
    assert not is_proxy_uri("s3://bucket/mlflow-artifacts:/x")
    assert is_proxy_uri("MLFLOW-ARTIFACTS:/x")
