"""One conformance suite for every tracking store (SQLite, PostgreSQL, and REST where registered)."""

from __future__ import annotations

import math
import time

import pytest

from mltrail.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelOutput,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import (
    InvalidParameterValue,
    InvalidState,
    MltrailException,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)


def now() -> int:
    return int(time.time() * 1000)


def new_run(store, exp_id="0", name=None, tags=()):
    return store.create_run(exp_id, "tester", now(), list(tags), name)


# ---------------------------------------------------------------- experiments
def test_default_experiment_exists(store):
    exp = store.get_experiment("0")
    assert exp.name == "Default" and exp.lifecycle_stage == "active"
    assert store.get_experiment_by_name("Default").experiment_id == "0"


def test_experiment_lifecycle(store):
    exp_id = store.create_experiment("exp-a", tags={"team": "vision"})
    exp = store.get_experiment(exp_id)
    assert exp.name == "exp-a" and exp.tags == {"team": "vision"}
    assert exp.artifact_location.endswith(f"/{exp_id}")
    with pytest.raises(ResourceAlreadyExists, match="exp-a"):
        store.create_experiment("exp-a")
    store.rename_experiment(exp_id, "exp-b")
    assert store.get_experiment_by_name("exp-b").experiment_id == exp_id
    assert store.get_experiment_by_name("exp-a") is None
    store.set_experiment_tag(exp_id, "k", "v")
    assert store.get_experiment(exp_id).tags["k"] == "v"
    store.delete_experiment_tag(exp_id, "k")
    assert "k" not in store.get_experiment(exp_id).tags
    store.delete_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert exp_id not in [e.experiment_id for e in store.search_experiments()]
    assert exp_id in [e.experiment_id for e in store.search_experiments(view_type=ViewType.DELETED_ONLY)]
    store.restore_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == "active"


def test_unknown_experiment_is_resource_does_not_exist(store):
    with pytest.raises(ResourceDoesNotExist) as e:
        store.get_experiment("987654")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST" and e.value.http_status == 404
    with pytest.raises(InvalidParameterValue, match="experiment ID"):
        store.get_experiment("not-a-number")


def test_default_experiment_cannot_be_deleted(store):
    with pytest.raises(InvalidParameterValue, match="default experiment"):
        store.delete_experiment("0")


def test_search_experiments_filter_order_and_pages(store):
    for name in ("alpha", "beta", "gamma"):
        store.create_experiment(name, tags={"kind": "greek"})
    names = [e.name for e in store.search_experiments(filter_string="name LIKE '%a'", order_by=["name ASC"])]
    assert names == ["alpha", "beta", "gamma"]
    assert [e.name for e in store.search_experiments(filter_string="tags.kind = 'greek' AND name = 'beta'")] == ["beta"]
    page1 = store.search_experiments(max_results=2, order_by=["name DESC"])
    page2 = store.search_experiments(max_results=2, order_by=["name DESC"], page_token=page1.token)
    assert [e.name for e in page1] == ["gamma", "beta"]
    assert [e.name for e in page2] == ["alpha", "Default"] and page2.token is None


# ---------------------------------------------------------------- runs
def test_create_and_get_run(store):
    run = new_run(store, name="first", tags=[RunTag("a", "1")])
    got = store.get_run(run.info.run_id)
    assert got.info.run_name == "first" and got.info.status == RunStatus.RUNNING
    assert got.info.experiment_id == "0" and got.info.user_id == "tester"
    assert got.info.artifact_uri.endswith(f"/0/{run.info.run_id}/artifacts")
    assert got.data.tags["mlflow.runName"] == "first" and got.data.tags["a"] == "1"
    assert got.info.lifecycle_stage == "active"


def test_run_without_name_gets_a_readable_one(store):
    run = new_run(store)
    assert run.info.run_name.count("-") == 2
    assert store.get_run(run.info.run_id).data.tags["mlflow.runName"] == run.info.run_name


def test_update_and_terminate_run(store):
    run = new_run(store)
    end = now()
    info = store.update_run_info(run.info.run_id, RunStatus.FINISHED, end, "renamed")
    assert info.status == "FINISHED" and info.end_time == end and info.run_name == "renamed"
    got = store.get_run(run.info.run_id)
    assert got.data.tags["mlflow.runName"] == "renamed"
    with pytest.raises(InvalidParameterValue, match="status"):
        store.update_run_info(run.info.run_id, "DONE", None, None)


def test_unknown_run(store, logged):
    with pytest.raises(ResourceDoesNotExist, match="abcdef"):
        store.get_run("abcdef0123456789abcdef0123456789")
    with pytest.raises(ResourceDoesNotExist):
        logged("abcdef0123456789abcdef0123456789", metrics=[Metric("m", 1.0, now(), 0)])


def test_delete_and_restore_run(store, logged):
    run = new_run(store)
    store.delete_run(run.info.run_id)
    assert store.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(InvalidState, match="active"):
        logged(run.info.run_id, params=[Param("p", "1")])
    store.restore_run(run.info.run_id)
    logged(run.info.run_id, params=[Param("p", "1")])
    assert store.get_run(run.info.run_id).data.params == {"p": "1"}


def test_deleted_run_ids(local_store):
    run = new_run(local_store)
    local_store.delete_run(run.info.run_id)
    assert run.info.run_id in local_store.deleted_run_ids()


def test_run_in_deleted_experiment_refused(store):
    exp_id = store.create_experiment("gone")
    store.delete_experiment(exp_id)
    with pytest.raises(InvalidState, match="active"):
        new_run(store, exp_id)


# ---------------------------------------------------------------- logging
def test_log_batch_and_latest_metrics(store):
    run_id = new_run(store).info.run_id
    ts = now()
    store.log_batch(run_id, metrics=[Metric("loss", 1.0, ts, 0), Metric("loss", 0.5, ts, 1),
                                     Metric("acc", 0.7, ts, 1)],
                    params=[Param("lr", "0.01")], tags=[RunTag("stage", "dev")])
    store.log_batch(run_id, metrics=[Metric("loss", 9.0, ts, 0)])  # an older step does not become latest
    data = store.get_run(run_id).data
    assert data.metrics == {"loss": 0.5, "acc": 0.7}
    assert data.params == {"lr": "0.01"} and data.tags["stage"] == "dev"
    hist = store.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in hist] == [(0, 1.0), (0, 9.0), (1, 0.5)]


def test_nan_and_infinities_round_trip(store):
    run_id = new_run(store).info.run_id
    store.log_batch(run_id, metrics=[Metric("a", math.nan, now(), 0), Metric("b", math.inf, now(), 0),
                                     Metric("c", -math.inf, now(), 0)])
    m = store.get_run(run_id).data.metrics
    assert math.isnan(m["a"]) and m["b"] == math.inf and m["c"] == -math.inf
    assert math.isnan(store.get_metric_history(run_id, "a")[0].value)


def test_param_cannot_change_and_bad_batch_writes_nothing(store, logged):
    run_id = new_run(store).info.run_id
    logged(run_id, params=[Param("lr", "0.1")])
    logged(run_id, params=[Param("lr", "0.1")])  # the same value again is fine
    with pytest.raises(InvalidParameterValue) as e:
        logged(run_id, metrics=[Metric("m", 1.0, now(), 0)], params=[Param("lr", "0.2")],
                        tags=[RunTag("t", "x")])
    assert "0.1" in e.value.message and "0.2" in e.value.message
    data = store.get_run(run_id).data
    assert "m" not in data.metrics and "t" not in data.tags and data.params["lr"] == "0.1"
    assert store.get_metric_history(run_id, "m") == []


@pytest.mark.parametrize("bad_key", ["", "../x", "/abs", "a\\b", "tab\tkey", "x" * 251])
def test_invalid_keys_refused(store, bad_key):
    run_id = new_run(store).info.run_id
    with pytest.raises(InvalidParameterValue):
        store.log_batch(run_id, metrics=[Metric(bad_key, 1.0, now(), 0)])
    with pytest.raises(InvalidParameterValue):
        store.log_batch(run_id, params=[Param(bad_key, "1")])


def test_batch_limits(store):
    run_id = new_run(store).info.run_id
    with pytest.raises(InvalidParameterValue, match="1001 metrics"):
        store.log_batch(run_id, metrics=[Metric("m", 1.0, now(), i) for i in range(1001)])
    with pytest.raises(InvalidParameterValue, match="101 params"):
        store.log_batch(run_id, params=[Param(f"p{i}", "v") for i in range(101)])
    with pytest.raises(InvalidParameterValue, match="101 tags"):
        store.log_batch(run_id, tags=[RunTag(f"t{i}", "v") for i in range(101)])
    store.log_batch(run_id, metrics=[Metric("m", 1.0, now(), i) for i in range(1000)])
    assert len(store.get_metric_history(run_id, "m")) == 1000


@pytest.mark.parametrize("size", [1, 3, 512, 999])
def test_every_point_of_a_batch_is_stored_once_and_in_order(store, size):
    # batches are written in chunks of power-of-two sizes: none may be lost or doubled at their edges
    run_id = new_run(store).info.run_id
    special = [math.nan, math.inf, -math.inf, -0.0]
    points = [Metric(f"k{i % 3}", special[i % 4] if i % 97 == 5 else i * 0.5, 1000 + i, i // 3) for i in range(size)]
    store.log_batch(run_id, metrics=points)
    for key in {p.key for p in points}:
        got = [(m.step, m.timestamp, m.value) for m in store.get_metric_history(run_id, key)]
        want = [(p.step, p.timestamp, p.value) for p in points if p.key == key]
        assert len(got) == len(want)
        assert all(g[:2] == w[:2] and (g[2] == w[2] or (math.isnan(g[2]) and math.isnan(w[2])))
                   for g, w in zip(got, want, strict=True))


def test_value_length_limits(store):
    run_id = new_run(store).info.run_id
    with pytest.raises(InvalidParameterValue, match="6001"):
        store.log_batch(run_id, params=[Param("long", "x" * 6001)])
    store.log_batch(run_id, params=[Param("ok", "x" * 6000)])
    with pytest.raises(InvalidParameterValue, match="8001"):
        store.log_batch(run_id, tags=[RunTag("long", "x" * 8001)])


def test_invalid_metric_values(store):
    run_id = new_run(store).info.run_id
    with pytest.raises(InvalidParameterValue, match="value"):
        store.log_batch(run_id, metrics=[Metric("m", "abc", now(), 0)])  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterValue, match="step"):
        store.log_batch(run_id, metrics=[Metric("m", 1.0, now(), 1.5)])  # type: ignore[arg-type]


def test_delete_tag(store):
    run_id = new_run(store, tags=[RunTag("t", "1")]).info.run_id
    store.delete_tag(run_id, "t")
    assert "t" not in store.get_run(run_id).data.tags
    with pytest.raises(ResourceDoesNotExist):
        store.delete_tag(run_id, "t")


def test_idempotent_batches(store):
    run_id = new_run(store).info.run_id
    batch = [Metric("m", 1.0, now(), 0)]
    store.log_batch(run_id, metrics=batch, batch_id="b-1")
    store.log_batch(run_id, metrics=batch, batch_id="b-1")
    assert len(store.get_metric_history(run_id, "m")) == 1


def test_metric_history_pages_and_sampling(store):
    run_id = new_run(store).info.run_id
    values = [float(i % 7) for i in range(1000)]
    values[500] = 100.0  # a spike must survive downsampling
    for start in range(0, 1000, 500):
        store.log_batch(run_id, metrics=[Metric("m", values[i], now(), i) for i in range(start, start + 500)])
    page = store.get_metric_history(run_id, "m", max_results=300)
    assert len(page) == 300 and page.token
    rest = store.get_metric_history(run_id, "m", max_results=1000, page_token=page.token)
    assert len(rest) == 700 and rest.token is None
    sampled = store.get_metric_history_sampled(run_id, "m", 50)
    assert len(sampled) <= 50
    assert sampled[0].step == 0 and sampled[-1].step == 999
    assert max(p.value for p in sampled) == 100.0
    zoomed = store.get_metric_history_sampled(run_id, "m", 1000, min_step=100, max_step=199)
    assert [p.step for p in zoomed] == list(range(100, 200))


# ---------------------------------------------------------------- search
@pytest.fixture
def populated(store):
    exp_id = store.create_experiment("search")
    ids = {}
    for name, lr, acc, model in [("r1", "0.1", 0.5, "cnn"), ("r2", "0.01", 0.9, "cnn"), ("r3", "0.01", 0.7, "mlp"),
                                 ("r4", "0.001", math.nan, "mlp")]:
        run = new_run(store, exp_id, name=name, tags=[RunTag("model", model)])
        store.log_batch(run.info.run_id, metrics=[Metric("acc", acc, now(), 0)], params=[Param("lr", lr)])
        ids[name] = run.info.run_id
    store.update_run_info(ids["r4"], RunStatus.FAILED, now(), None)
    return exp_id, ids


def names(runs):
    return [r.info.run_name for r in runs]


@pytest.mark.parametrize("filter_string, expected", [
    ("metrics.acc > 0.6", {"r2", "r3"}),
    ("metrics.acc >= 0.5 AND params.lr = '0.01'", {"r2", "r3"}),
    ("params.lr != '0.01'", {"r1", "r4"}),
    ("params.lr IN ('0.1', '0.001')", {"r1", "r4"}),
    ("params.lr NOT IN ('0.1', '0.001')", {"r2", "r3"}),
    ("tags.model LIKE 'c%'", {"r1", "r2"}),
    ("tags.model ILIKE 'C%'", {"r1", "r2"}),
    ("tags.model LIKE 'C%'", set()),
    ("attributes.run_name = 'r3'", {"r3"}),
    ("attributes.status = 'FAILED'", {"r4"}),
    ("run_name LIKE 'r%' and metrics.acc < 0.6", {"r1"}),
    ("tags.`mlflow.runName` = 'r1'", {"r1"}),
    ("metrics.missing > 0", set()),
    ("", {"r1", "r2", "r3", "r4"}),
])
def test_search_filters(store, populated, filter_string, expected):
    exp_id, _ = populated
    assert set(names(store.search_runs([exp_id], filter_string))) == expected


def test_search_order_by_several_keys_and_missing_last(store, populated):
    exp_id, _ = populated
    assert names(store.search_runs([exp_id], order_by=["metrics.acc DESC"])) == ["r2", "r3", "r1", "r4"]
    assert names(store.search_runs([exp_id], order_by=["metrics.acc ASC"])) == ["r1", "r3", "r2", "r4"]
    assert names(store.search_runs([exp_id], order_by=["params.lr DESC", "metrics.acc ASC"])) == [
        "r1", "r3", "r2", "r4"]
    assert names(store.search_runs([exp_id], order_by=["attributes.run_name DESC"])) == ["r4", "r3", "r2", "r1"]


@pytest.mark.parametrize("others", [0, 30])  # the metric mostly in the searched experiment, or elsewhere
def test_metric_ordered_search_pages_whichever_runs_hold_the_metric(store, others):
    # SQLite walks the metric's index or scans the experiment, depending on where the metric's
    # runs are: the pages must be the same either way
    exp_id, elsewhere = store.create_experiment(f"ordered-{others}"), store.create_experiment(f"other-{others}")
    for i in range(others):
        run_id = new_run(store, elsewhere).info.run_id
        store.log_batch(run_id, metrics=[Metric("acc", i / 10, now(), 0)])
    expected = []
    for name, acc, lr in [("a", 0.3, "x"), ("b", 0.9, "x"), ("c", 0.5, "y"), ("d", None, "x"), ("e", 0.7, "x")]:
        run_id = new_run(store, exp_id, name=name).info.run_id
        store.log_batch(run_id, metrics=[Metric("acc", acc, now(), 0)] if acc is not None else [],
                        params=[Param("lr", lr)])
        if lr == "x":
            expected.append((acc is None, -(acc or 0), name))
    expected = [name for *_, name in sorted(expected)]
    seen, token = [], None
    while True:
        page = store.search_runs([exp_id], "params.lr = 'x'", order_by=["metrics.acc DESC"], max_results=2,
                                 page_token=token)
        seen += names(page)
        token = page.token
        if not token:
            break
    assert seen == expected == ["b", "e", "a", "d"]


def test_search_pages(store, populated):
    exp_id, _ = populated
    seen, token = [], None
    while True:
        page = store.search_runs([exp_id], order_by=["attributes.run_name"], max_results=3, page_token=token)
        seen += names(page)
        token = page.token
        if not token:
            break
    assert seen == ["r1", "r2", "r3", "r4"]


def test_search_run_view_type(store, populated):
    exp_id, ids = populated
    store.delete_run(ids["r1"])
    assert "r1" not in names(store.search_runs([exp_id]))
    assert names(store.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == ["r1"]
    assert len(store.search_runs([exp_id], run_view_type=ViewType.ALL)) == 4


def test_malformed_filter_names_position_and_token(store):
    with pytest.raises(InvalidParameterValue) as e:
        store.search_runs(["0"], "metrics.acc >> 0.5")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "position" in e.value.message and "'>'" in e.value.message


def test_search_returns_full_runs(store, populated):
    exp_id, ids = populated
    run = store.search_runs([exp_id], "attributes.run_name = 'r2'")[0]
    assert run.info.run_id == ids["r2"] and run.data.params == {"lr": "0.01"} and run.data.metrics == {"acc": 0.9}
    assert run.data.tags["model"] == "cnn"


# ---------------------------------------------------------------- inputs, outputs, logged models
def test_log_inputs_and_dataset_search(store):
    run_id = new_run(store).info.run_id
    ds = Dataset(name="digits", digest="abc123", source_type="code", source="{}", schema="{}",
                 profile='{"num_rows": 10}')
    store.log_inputs(run_id, [DatasetInput(ds, [InputTag("mlflow.data.context", "training")])])
    store.log_inputs(run_id, [DatasetInput(ds, [InputTag("mlflow.data.context", "training")])])  # no duplicate
    inputs = store.get_run(run_id).inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == "digits"
    assert inputs[0].tags == [InputTag("mlflow.data.context", "training")]
    assert [r.info.run_id for r in store.search_runs(["0"], "datasets.name = 'digits'")] == [run_id]
    assert [r.info.run_id for r in store.search_runs(["0"], "datasets.context = 'training'")] == [run_id]


def test_metrics_logged_with_a_model_id_are_the_models_metrics_too(store):
    # MLflow 3 logs a logged model's metrics with its model_id: they land on the run and on the model
    run_id = new_run(store).info.run_id
    model = store.create_logged_model("0", name="clf", source_run_id=run_id)
    t0 = now()
    points = [Metric("acc", 0.9, t0, 1, model_id=model.model_id, dataset_name="val", dataset_digest="d1"),
              Metric("loss", 0.1, t0, 1)]
    store.log_batch(run_id, metrics=points)
    store.log_batch(run_id, metrics=[Metric("acc", 0.8, t0, 1, model_id="m-" + "0" * 32)])  # unknown model
    got = store.get_logged_model(model.model_id)
    assert [(m.key, m.value, m.step, m.run_id, m.dataset_name, m.dataset_digest) for m in got.metrics] == [
        ("acc", 0.9, 1, run_id, "val", "d1")]
    assert sorted(m.value for m in store.get_metric_history(run_id, "acc")) == [0.8, 0.9]


def test_logged_models(store):
    run_id = new_run(store).info.run_id
    model = store.create_logged_model("0", name="clf", source_run_id=run_id, tags={"t": "1"}, params={"p": "2"},
                                      model_type="keras")
    assert model.model_id.startswith("m-") and len(model.model_id) == 34
    assert model.status == "PENDING" and model.artifact_location.endswith(f"/models/{model.model_id}/artifacts")
    ready = store.finalize_logged_model(model.model_id, "READY")
    assert ready.status == "READY"
    store.set_logged_model_tags(model.model_id, {"stage": "dev"})
    store.log_logged_model_params(model.model_id, {"q": "3"})
    got = store.get_logged_model(model.model_id)
    assert got.tags == {"t": "1", "stage": "dev"} and got.params == {"p": "2", "q": "3"}
    assert got.source_run_id == run_id and got.name == "clf"
    store.log_outputs(run_id, [LoggedModelOutput(model.model_id, 3)])
    assert store.get_run(run_id).outputs.model_outputs == [LoggedModelOutput(model.model_id, 3)]
    other = store.create_logged_model("0", name="other")
    found = store.search_logged_models(["0"], filter_string="name = 'clf'")
    assert [m.model_id for m in found] == [model.model_id]
    assert {m.model_id for m in store.search_logged_models(["0"])} == {model.model_id, other.model_id}
    assert [m.name for m in store.search_logged_models(["0"], order_by=["name ASC"])] == ["clf", "other"]
    store.delete_logged_model_tag(model.model_id, "t")
    assert "t" not in store.get_logged_model(model.model_id).tags
    store.delete_logged_model(other.model_id)
    with pytest.raises(ResourceDoesNotExist):
        store.get_logged_model(other.model_id)
    with pytest.raises(MltrailException):
        store.finalize_logged_model(model.model_id, "DONE")


def test_purge_run(local_store):
    run_id = new_run(local_store).info.run_id
    local_store.log_batch(run_id, metrics=[Metric("m", 1.0, now(), 0)], params=[Param("p", "1")])
    local_store.delete_run(run_id)
    local_store.purge_run(run_id)
    with pytest.raises(ResourceDoesNotExist):
        local_store.get_run(run_id)
