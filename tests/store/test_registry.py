"""The model registry on every SQL store (SQLite, PostgreSQL): models, versions, aliases, tags, stages, search."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from mltrail.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))  # the real-server fixture
from test_registry_rest import server  # noqa: E402, F401  (the fixture)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "rest"])
def store_uri(request, tmp_path):
    """The conformance backends plus `rest`: our REST client talking to a real server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    if request.param == "postgres":
        return request.getfixturevalue("postgres_uri")
    return request.getfixturevalue("server")


def now() -> int:
    return int(time.time() * 1000)


def new_run(store):
    return store.create_run("0", "tester", now(), [], None)


def new_logged_model(store, run=None, name="model"):
    return store.create_logged_model("0", name, run.info.run_id if run else None)


def version_of(store, name, run=None):
    run = run or new_run(store)
    return store.create_model_version(name, f"runs:/{run.info.run_id}/model")


# ---------------------------------------------------------------- registered models
def test_create_and_get_registered_model(store):
    rm = store.create_registered_model("clf", tags={"team": "vision"}, description="a classifier")
    assert rm.name == "clf" and rm.tags == {"team": "vision"} and rm.description == "a classifier"
    got = store.get_registered_model("clf")
    assert got.name == "clf" and got.tags == {"team": "vision"} and got.description == "a classifier"
    assert got.creation_timestamp == rm.creation_timestamp and got.latest_versions == [] and got.aliases == {}
    with pytest.raises(ResourceAlreadyExists, match="clf"):
        store.create_registered_model("clf")
    with pytest.raises(ResourceDoesNotExist, match="nope"):
        store.get_registered_model("nope")


def test_names_are_normalised(store):
    store.create_registered_model("my model")
    for alias in ("my%20model", "my%2520model", "  my model  "):
        assert store.get_registered_model(alias).name == "my model"
        with pytest.raises(ResourceAlreadyExists):
            store.create_registered_model(alias)
    decomposed, composed = "cafe\u0301", "caf\u00e9"
    store.create_registered_model(decomposed)
    assert store.get_registered_model(composed).name == composed
    with pytest.raises(ResourceAlreadyExists):
        store.create_registered_model("caf%C3%A9")


@pytest.mark.parametrize("bad", ["", "   ", "a/b", "a%2Fb", "a%252Fb", "a:b", "a\\b", "a%5Cb", "..", ".", "..x",
                                 "x\x00y", "%0a", "n" * 257])
def test_invalid_names_are_refused(store, bad):
    with pytest.raises(InvalidParameterValue):
        store.create_registered_model(bad)


def test_rename_update_delete(store):
    store.create_registered_model("a")
    store.create_registered_model("b")
    version_of(store, "a")
    renamed = store.rename_registered_model("a", "c")
    assert renamed.name == "c" and [mv.version for mv in renamed.latest_versions] == [1]
    assert store.get_model_version("c", 1).name == "c"
    with pytest.raises(ResourceDoesNotExist):
        store.get_registered_model("a")
    with pytest.raises(ResourceAlreadyExists):
        store.rename_registered_model("c", "b")
    with pytest.raises(ResourceAlreadyExists):
        store.rename_registered_model("c", "b%20".strip("%20"))
    updated = store.update_registered_model("c", "new description")
    assert updated.description == "new description"
    assert updated.last_updated_timestamp >= updated.creation_timestamp
    store.set_registered_model_alias("c", "prod", 1)
    store.delete_registered_model("c")
    with pytest.raises(ResourceDoesNotExist):
        store.get_registered_model("c")
    with pytest.raises(ResourceDoesNotExist):
        store.get_model_version("c", 1)
    store.create_registered_model("c")  # the name is free again, numbering starts over
    assert version_of(store, "c").version == 1


def test_registered_model_tags(store):
    store.create_registered_model("m")
    store.set_registered_model_tag("m", "k", "v1")
    store.set_registered_model_tag("m", "k", "v2")
    store.set_registered_model_tag("m", "other", "x")
    assert store.get_registered_model("m").tags == {"k": "v2", "other": "x"}
    store.delete_registered_model_tag("m", "k")
    store.delete_registered_model_tag("m", "k")  # absent: nothing to do, as in MLflow
    assert store.get_registered_model("m").tags == {"other": "x"}
    with pytest.raises(ResourceDoesNotExist):
        store.set_registered_model_tag("missing", "k", "v")
    with pytest.raises(InvalidParameterValue):
        store.set_registered_model_tag("m", "../k", "v")


# ---------------------------------------------------------------- versions
def test_versions_count_up_and_are_never_reused(store):
    store.create_registered_model("m")
    run = new_run(store)
    mvs = [store.create_model_version("m", f"runs:/{run.info.run_id}/model", tags={"i": str(i)},
                                      description=f"v{i}", run_link="http://ci/1") for i in range(3)]
    assert [mv.version for mv in mvs] == [1, 2, 3]
    assert all(isinstance(mv.version, int) for mv in mvs)
    mv = store.get_model_version("m", "2")
    assert (mv.name, mv.version, mv.tags, mv.description, mv.run_id, mv.status, mv.current_stage) == \
        ("m", 2, {"i": "1"}, "v1", run.info.run_id, "READY", "None")
    assert mv.source == f"runs:/{run.info.run_id}/model" and mv.run_link == "http://ci/1"
    assert store.get_model_version("m", 2) == mv
    store.delete_model_version("m", 3)
    with pytest.raises(ResourceDoesNotExist, match="version=3"):
        store.get_model_version("m", 3)
    assert store.create_model_version("m", f"runs:/{run.info.run_id}/model").version == 4
    with pytest.raises(ResourceDoesNotExist):
        store.create_model_version("no-such-model", f"runs:/{run.info.run_id}/model")
    with pytest.raises(InvalidParameterValue, match="integer"):
        store.get_model_version("m", "two")


def test_update_model_version_and_tags(store):
    store.create_registered_model("m")
    version_of(store, "m")
    mv = store.update_model_version("m", 1, "better")
    assert mv.description == "better" and store.get_model_version("m", 1).description == "better"
    store.set_model_version_tag("m", 1, "k", "v")
    store.set_model_version_tag("m", "1", "k", "w")
    assert store.get_model_version("m", 1).tags == {"k": "w"}
    store.delete_model_version_tag("m", 1, "k")
    assert store.get_model_version("m", 1).tags == {}
    with pytest.raises(ResourceDoesNotExist):
        store.set_model_version_tag("m", 9, "k", "v")


def test_logged_model_source_and_download_uri(store):
    run = new_run(store)
    lm = new_logged_model(store, run)
    store.create_registered_model("m")
    mv = store.create_model_version("m", f"models:/{lm.model_id}")
    assert mv.model_id == lm.model_id and mv.run_id == run.info.run_id and mv.source == f"models:/{lm.model_id}"
    assert store.get_model_version_download_uri("m", 1) == lm.artifact_location
    # the logged model's exact artifact location, with or without model_id
    assert store.create_model_version("m", lm.artifact_location).model_id == lm.model_id
    assert store.create_model_version("m", lm.artifact_location, model_id=lm.model_id).model_id == lm.model_id
    # runs:/<run>/<name> names the run's logged model (MLflow 3), when the run has it as an output
    from mltrail.entities import LoggedModelOutput

    store.log_outputs(run.info.run_id, [LoggedModelOutput(lm.model_id, 0)])
    mv = store.create_model_version("m", f"runs:/{run.info.run_id}/model")
    assert mv.model_id == lm.model_id
    assert store.get_model_version_download_uri("m", mv.version) == lm.artifact_location
    other = store.create_model_version("m", f"runs:/{run.info.run_id}/elsewhere")
    assert other.model_id is None
    assert store.get_model_version_download_uri("m", other.version) == f"{run.info.artifact_uri}/elsewhere"
    # a path inside the run's artifacts
    inside = store.create_model_version("m", f"{run.info.artifact_uri}/sub/dir", run_id=run.info.run_id)
    assert inside.source == f"{run.info.artifact_uri}/sub/dir"
    assert store.get_model_version_download_uri("m", inside.version) == f"{run.info.artifact_uri}/sub/dir"
    if run.info.artifact_uri.startswith("/"):  # a local artifact store: its file:// form is the same place
        file_form = store.create_model_version("m", f"file://{run.info.artifact_uri}/x", run_id=run.info.run_id)
        assert file_form.source == f"{run.info.artifact_uri}/x"


# ---------------------------------------------------------------- source safety
@pytest.fixture
def two_runs(store):
    store.create_registered_model("m")
    return new_run(store), new_run(store)


def test_sources_outside_the_run_are_refused(store, two_runs, tmp_path):
    mine, other = two_runs
    rid, root = mine.info.run_id, mine.info.artifact_uri
    refused = [
        (other.info.artifact_uri + "/model", rid),  # another run's path
        (f"file://{other.info.artifact_uri}/model", rid),
        (str(tmp_path / "model"), rid),  # any local path
        (str(tmp_path / "model"), None),
        ("file:///etc", rid),
        ("/etc/passwd", None),
        ("relative/path", rid),
        (f"{root}/../../{other.info.run_id}/artifacts", rid),
        (f"{root}/%2e%2e/%2e%2e/x", rid),
        (f"{root}/%252e%252e/x", rid),
        (f"{root}/a%2F..%2F..%2Fb", rid),
        (f"{root}/a\\..\\b", rid),
        (f"{root}/a%5c..", rid),
        (f"{root}/model?x=1", rid),
        (f"{root}/model#frag", rid),
        (f"file://{root}/%2e%2e/%2e%2e/x", rid),
        ("s3://bucket/key", rid),
        (f"runs:/{rid}/../{other.info.run_id}/model", None),
        (f"runs:/{rid}/%2e%2e/x", None),
        (f"runs:/{rid}/%252e%252e/x", None),
        (f"runs:/{rid}//etc/passwd", None),
        (f"runs:/{other.info.run_id}/model", rid),  # run_id must be the source's run
        (f"runs://{rid}/model", None),
        ("runs:/0123456789abcdef0123456789abcdef/model", None),  # no such run
        ("models:/m-0123456789abcdef0123456789abcdef", None),  # no such logged model
        ("models:/m/1", None),  # registered-model URIs are not sources
        ("models:/../m-0123456789abcdef0123456789abcdef", None),
        ("", None),
        ("http://evil.example/model", rid),
    ]
    for source, run_id in refused:
        with pytest.raises(InvalidParameterValue, match="source"):
            store.create_model_version("m", source, run_id=run_id)
            pytest.fail(f"accepted {source!r} (run_id={run_id})")
    assert store.search_model_versions("name = 'm'") == []
    assert store.create_model_version("m", f"runs:/{rid}/model", run_id=rid).version == 1


def test_logged_model_sources_must_match_their_ids(store, two_runs):
    mine, other = two_runs
    lm = new_logged_model(store, mine)
    lm_other = new_logged_model(store, other)
    with pytest.raises(InvalidParameterValue):
        store.create_model_version("m", f"models:/{lm.model_id}", run_id=other.info.run_id)
    with pytest.raises(InvalidParameterValue):
        store.create_model_version("m", f"models:/{lm.model_id}", model_id=lm_other.model_id)
    with pytest.raises(InvalidParameterValue):
        store.create_model_version("m", lm_other.artifact_location, model_id=lm.model_id)
    with pytest.raises(InvalidParameterValue):
        store.create_model_version("m", lm.artifact_location + "/../../" + lm_other.model_id + "/artifacts")
    with pytest.raises(InvalidParameterValue):
        store.create_model_version("m", f"runs:/{mine.info.run_id}/model", model_id=lm.model_id)
    store.delete_logged_model(lm.model_id)
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        store.create_model_version("m", f"models:/{lm.model_id}")


# ---------------------------------------------------------------- aliases
def test_aliases(store):
    store.create_registered_model("m")
    run = new_run(store)
    for _ in range(3):
        version_of(store, "m", run)
    store.set_registered_model_alias("m", "champion", 1)
    store.set_registered_model_alias("m", "challenger", "2")
    assert store.get_model_version_by_alias("m", "champion").version == 1
    store.set_registered_model_alias("m", "champion", 3)  # moving an alias
    mv = store.get_model_version_by_alias("m", "champion")
    assert mv.version == 3 and mv.aliases == ["champion"]
    assert store.get_registered_model("m").aliases == {"challenger": "2", "champion": "3"}
    assert store.get_model_version_by_alias("m", "latest").version == 3
    store.delete_registered_model_alias("m", "challenger")
    store.delete_registered_model_alias("m", "challenger")
    with pytest.raises(InvalidParameterValue) as missing:  # as MLflow: INVALID_PARAMETER_VALUE
        store.get_model_version_by_alias("m", "challenger")
    assert missing.value.message == "Registered model alias challenger not found."
    store.delete_model_version("m", 3)  # its aliases go with it
    assert store.get_registered_model("m").aliases == {}
    for reserved in ("latest", "LATEST", "v1", "V12"):
        with pytest.raises(InvalidParameterValue, match="reserved"):
            store.set_registered_model_alias("m", reserved, 1)
    for bad in ("", "a b", "a/b", "a@b", "x" * 256):
        with pytest.raises(InvalidParameterValue):
            store.set_registered_model_alias("m", bad, 1)
    with pytest.raises(ResourceDoesNotExist):
        store.set_registered_model_alias("m", "x", 99)
    with pytest.raises(ResourceDoesNotExist):
        store.get_model_version_by_alias("missing", "x")


# ---------------------------------------------------------------- stages
def test_stages_and_latest_versions(store):
    store.create_registered_model("m")
    run = new_run(store)
    for _ in range(4):
        version_of(store, "m", run)
    assert store.transition_model_version_stage("m", 1, "production").current_stage == "Production"
    store.transition_model_version_stage("m", 2, "Staging")
    store.transition_model_version_stage("m", 3, "Production", archive_existing_versions=True)
    assert store.get_model_version("m", 1).current_stage == "Archived"
    latest = {mv.current_stage: mv.version for mv in store.get_latest_versions("m")}
    assert latest == {"Archived": 1, "Staging": 2, "Production": 3, "None": 4}
    assert [mv.version for mv in store.get_latest_versions("m", ["Production"])] == [3]
    assert [mv.version for mv in store.get_latest_versions("m", ["staging", "None"])] == [2, 4]
    assert {mv.version for mv in store.get_registered_model("m").latest_versions} == {1, 2, 3, 4}
    with pytest.raises(InvalidParameterValue, match="stage"):
        store.transition_model_version_stage("m", 1, "Prod")
    with pytest.raises(InvalidParameterValue):
        store.transition_model_version_stage("m", 1, "Archived", archive_existing_versions=True)
    with pytest.raises(InvalidParameterValue):
        store.get_latest_versions("m", ["nope"])


# ---------------------------------------------------------------- search
def test_search_registered_models(store):
    for name, team in [("alpha", "a"), ("beta", "b"), ("Gamma", "a"), ("delta", None)]:
        store.create_registered_model(name, tags={"team": team} if team else None)
        time.sleep(0.002)  # creation times a millisecond apart, so ordering by them is defined
    store.create_registered_model("prompt", tags={"mlflow.prompt.is_prompt": "true"})

    def names(filter_string=None, **kw):
        return [m.name for m in store.search_registered_models(filter_string, **kw)]

    assert names() == ["Gamma", "alpha", "beta", "delta"]
    assert names("name = 'alpha'") == ["alpha"]
    assert names("name != 'alpha'") == ["Gamma", "beta", "delta"]
    assert names("name LIKE '%ta'") == ["beta", "delta"]
    assert names("name ILIKE 'g%'") == ["Gamma"]
    assert names("name LIKE 'g%'") == []
    assert names("name IN ('alpha', 'delta')") == ["alpha", "delta"]
    assert names("tags.team = 'a'") == ["Gamma", "alpha"]
    assert names("tags.team != 'a'") == ["beta"]
    assert names("tags.team = 'a' AND name LIKE 'a%'") == ["alpha"]
    assert names("tags.`mlflow.prompt.is_prompt` = 'true'") == ["prompt"]
    assert names(order_by=["name DESC"]) == ["delta", "beta", "alpha", "Gamma"]
    assert names(order_by=["creation_timestamp DESC"])[0] == "delta"
    page1 = store.search_registered_models(max_results=3)
    assert len(page1) == 3 and page1.token
    page2 = store.search_registered_models(max_results=3, page_token=page1.token)
    assert [m.name for m in page1 + page2] == names() and page2.token is None
    with pytest.raises(InvalidParameterValue):
        store.search_registered_models("version_number = 1")
    with pytest.raises(InvalidParameterValue):
        store.search_registered_models(max_results=1001)
    with pytest.raises(InvalidParameterValue):
        store.search_registered_models(order_by=["name", "name DESC"])


def test_search_model_versions(store):
    store.create_registered_model("a")
    store.create_registered_model("b")
    run1, run2 = new_run(store), new_run(store)
    for _ in range(3):
        store.create_model_version("a", f"runs:/{run1.info.run_id}/model")
    store.create_model_version("b", f"runs:/{run2.info.run_id}/other", tags={"k": "v"})
    store.set_model_version_tag("a", 2, "k", "w")
    store.set_registered_model_alias("a", "best", 2)

    def found(filter_string=None, **kw):
        return [(mv.name, mv.version) for mv in store.search_model_versions(filter_string, **kw)]

    assert sorted(found()) == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]
    assert found("name = 'a'", order_by=["version_number ASC"]) == [("a", 1), ("a", 2), ("a", 3)]
    assert found("name = 'a' AND version_number >= 2", order_by=["version_number DESC"]) == [("a", 3), ("a", 2)]
    assert found(f"run_id = '{run2.info.run_id}'") == [("b", 1)]
    assert sorted(found(f"run_id IN ('{run1.info.run_id}', '{run2.info.run_id}')")) == \
        [("a", 1), ("a", 2), ("a", 3), ("b", 1)]
    assert found("source_path LIKE '%/other'") == [("b", 1)]
    assert sorted(found("tags.k LIKE '%'")) == [("a", 2), ("b", 1)]
    assert found("tags.k = 'w'") == [("a", 2)]
    assert found("name = 'a'", order_by=["name", "version_number DESC"]) == [("a", 3), ("a", 2), ("a", 1)]
    best = store.search_model_versions("name = 'a' AND version_number = 2")[0]
    assert best.aliases == ["best"] and best.tags == {"k": "w"}
    page = store.search_model_versions("name = 'a'", max_results=2, order_by=["version_number"])
    rest = store.search_model_versions("name = 'a'", max_results=2, order_by=["version_number"],
                                       page_token=page.token)
    assert [mv.version for mv in page + rest] == [1, 2, 3] and rest.token is None
    with pytest.raises(InvalidParameterValue):
        store.search_model_versions("version_number = 1.5")
    with pytest.raises(InvalidParameterValue):
        store.search_model_versions("metrics.acc > 1")


# ---------------------------------------------------------------- migration
def _migrate_to(engine, revision):
    import os

    from alembic import command
    from alembic.config import Config

    from mltrail.store.sql import engine as eng

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(eng.__file__), "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_0001_database_upgrades_to_the_registry(backend, tmp_path, request):
    from sqlalchemy import inspect

    from mltrail.store import clear_cache, get_store
    from mltrail.store.sql import engine as eng
    from mltrail.store.sql.migrations import HEAD

    uri = f"sqlite:///{tmp_path}/old.db" if backend == "sqlite" else request.getfixturevalue("postgres_uri")
    engine = eng.make_engine(uri)
    _migrate_to(engine, "0001")
    assert eng.current_revision(engine) == "0001"
    assert not inspect(engine).has_table("registered_models")
    if backend == "postgres":  # a shared database is upgraded on purpose only (`mltrail db upgrade`)
        eng.upgrade(engine)
    clear_cache()
    store = get_store(uri, artifact_root=str(tmp_path / "artifacts"))
    assert eng.current_revision(store.engine) == HEAD
    if backend == "postgres":  # 0003: the planner's statistics on (key, value) pairs
        from sqlalchemy import text

        with store.engine.connect() as conn:
            names = set(conn.execute(text("SELECT stxname FROM pg_statistic_ext")).scalars())
        assert {f"{t}_key_value_stats" for t in ("params", "tags", "latest_metrics")} <= names
    store.create_registered_model("after-upgrade")
    assert version_of(store, "after-upgrade").version == 1
    engine.dispose()
