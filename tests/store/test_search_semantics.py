"""Search means the same on every backend (SQLite, PostgreSQL, our REST server over SQLite):
typed attributes refused with INVALID_PARAMETER_VALUE, run status case rules for `=` and `IN`,
and `LIKE`/`ILIKE` with SQL's semantics (`%`, `_`, a backslash escape, no glob characters,
LIKE case-sensitive) for runs, experiments, logged models, registered models and versions.
The `store` fixture is the conformance suite's (tests/store/conftest.py): every backend."""

from __future__ import annotations

import time

import pytest

from mltrail.entities import RunStatus
from mltrail.errors import MltrailException

# names every entity can carry (no '/', ':', '%' or backslash: registered model names refuse them)
VALUES = ["Hello_World", "helloXworld", "a*b", "a?b", "a[1]b", "axb"]
# (operator, pattern as written inside the filter's quotes, the VALUES it matches)
PATTERNS = [
    ("LIKE", "hello%", {"helloXworld"}),  # LIKE keeps case, on SQLite too
    ("ILIKE", "HELLO%", {"Hello_World", "helloXworld"}),
    ("LIKE", "Hello\\_%", {"Hello_World"}),  # \_ is a literal underscore
    ("ILIKE", "hello\\_w%", {"Hello_World"}),
    ("LIKE", "a_b", {"a*b", "a?b", "axb"}),
    ("LIKE", "a*b", {"a*b"}),  # no glob characters: * ? [ ] are plain
    ("LIKE", "a?b", {"a?b"}),
    ("LIKE", "a[1]b", {"a[1]b"}),
    ("LIKE", "a[1-9]b", set()),
    ("LIKE", "a%", {"a*b", "a?b", "a[1]b", "axb"}),
    ("LIKE", "a\\%", set()),  # \% is a literal percent sign
    ("LIKE", "%", set(VALUES)),
    ("ILIKE", "A\\*B", {"a*b"}),
]


def now() -> int:
    return int(time.time() * 1000)


def _refused(call, *words):
    with pytest.raises(MltrailException) as e:
        call()
    assert e.value.error_code == "INVALID_PARAMETER_VALUE" and e.value.http_status == 400, e.value
    for word in words:
        assert word in e.value.message, e.value.message
    return e.value


# ---------------------------------------------------------------- typed attributes
@pytest.mark.parametrize("flt", [
    "attributes.experiment_id = 'abc'",
    "attributes.experiment_id IN ('1', 'x')",
    "attributes.experiment_id != '1.5'",
])
def test_a_non_integer_experiment_id_is_invalid_parameter_value(store, flt):
    _refused(lambda: store.search_runs(["0"], flt), "Invalid experiment ID")
    _refused(lambda: store.search_experiments(filter_string=flt), "Invalid experiment ID")


def test_experiment_id_compares_as_an_integer(store):
    exp = store.create_experiment("e")
    run = store.create_run(exp, "u", now(), [], "r")
    padded = f"'00{exp}'"
    assert [r.info.run_id for r in store.search_runs([exp], f"attributes.experiment_id = {padded}")] == \
        [run.info.run_id]
    assert store.search_runs([exp], f"attributes.experiment_id NOT IN ({padded}, '0')") == []
    assert [e.name for e in store.search_experiments(filter_string=f"experiment_id IN ({padded})")] == ["e"]
    _refused(lambda: store.search_runs([exp], "attributes.experiment_id LIKE '1%'"), "integer ID")


def test_numbers_beyond_64_bits_compare_without_error(store):
    exp = store.create_experiment("e")
    store.create_run(exp, "u", now(), [], "r")
    assert store.search_runs([exp], "attributes.start_time > 1e30") == []
    assert len(store.search_runs([exp], "attributes.start_time < 1e30")) == 1
    assert len(store.search_runs([exp], "attributes.start_time > -1e300")) == 1


def test_a_version_number_beyond_64_bits_compares_without_error(store):
    store.create_registered_model("m")
    run = store.create_run("0", "u", now(), [], "r")
    store.create_model_version("m", f"runs:/{run.info.run_id}/model")
    assert store.search_model_versions("version_number < 1e30") != []
    assert store.search_model_versions("version_number > 1e30") == []


# ---------------------------------------------------------------- run status
def test_status_in_matches_as_status_equals_does(store):
    exp = store.create_experiment("e")
    running = store.create_run(exp, "u", now(), [], "running").info.run_id
    done = store.create_run(exp, "u", now(), [], "done").info.run_id
    store.update_run_info(done, RunStatus.FINISHED, now(), None)

    def ids(flt):
        return {r.info.run_id for r in store.search_runs([exp], flt)}

    assert ids("status = 'running'") == ids("status IN ('running')") == ids("status IN ('RUNNING')") == {running}
    assert ids("status != 'running'") == ids("status NOT IN ('Running')") == {done}
    assert ids("status IN ('running', 'finished')") == {running, done}
    _refused(lambda: store.search_runs([exp], "status IN ('running', 'bogus')"), "unknown run status", "bogus")
    # LIKE is a pattern over the stored (upper-case) value, case-sensitive as everywhere
    assert ids("status LIKE 'RUN%'") == {running} and ids("status LIKE 'run%'") == set()
    assert ids("status ILIKE 'run%'") == {running}


# ---------------------------------------------------------------- LIKE / ILIKE
def _populate(store):
    exp = store.create_experiment("like-runs")
    for v in VALUES:
        run = store.create_run(exp, "u", now(), [], v)
        store.set_tag(run.info.run_id, _tag("t", v))
        store.create_experiment(v)
        store.create_logged_model("0", v, None)
        store.create_registered_model(v)
        store.create_model_version(v, f"runs:/{run.info.run_id}/model")
    _flush(store)
    return exp


def _flush(store):
    """A remote store queues log calls (set_tag among them) until flushed."""
    flush = getattr(store, "flush", None)
    if flush is not None:
        flush()


def _tag(key, value):
    from mltrail.entities import RunTag

    return RunTag(key, value)


def _searches(store, exp):
    """Per entity, a function from a filter to the VALUES it found."""
    return {
        "run tag": lambda flt: {r.data.tags["t"] for r in store.search_runs([exp], f"tags.t {flt}")},
        "run name": lambda flt: {r.info.run_name for r in store.search_runs([exp], f"attributes.run_name {flt}")},
        "experiment": lambda flt: {e.name for e in store.search_experiments(filter_string=f"name {flt}")}
        & set(VALUES),
        "logged model": lambda flt: {m.name for m in store.search_logged_models(["0"], f"name {flt}")},
        "registered model": lambda flt: {m.name for m in store.search_registered_models(f"name {flt}")},
        "model version": lambda flt: {m.name for m in store.search_model_versions(f"name {flt}")},
    }


def test_like_and_ilike_have_sql_semantics_for_every_entity(store):
    exp = _populate(store)
    searches = _searches(store, exp)
    wrong = []
    for op, pattern, expected in PATTERNS:
        for entity, search in searches.items():
            found = search(f"{op} '{pattern}'")
            if found != expected:
                wrong.append((entity, op, pattern, sorted(found), sorted(expected)))
    assert wrong == []


def test_a_pattern_ending_with_the_escape_character_is_refused(store):
    exp = _populate(store)
    for entity, search in _searches(store, exp).items():
        err = _refused(lambda s=search: s("LIKE 'a\\\\'"), "escape character")
        assert "position" in err.message, entity


def test_literal_percent_and_backslash_in_values(store):
    exp = store.create_experiment("e")
    values = {"50%off": None, "50xoff": None, "back\\slash": None, "backxslash": None}
    for v in values:
        run = store.create_run(exp, "u", now(), [], None)
        store.set_tag(run.info.run_id, _tag("t", v))
    _flush(store)

    def found(flt):
        return {r.data.tags["t"] for r in store.search_runs([exp], f"tags.t {flt}")}

    assert found("LIKE '50\\%off'") == {"50%off"}
    assert found("LIKE '50_off'") == {"50%off", "50xoff"}
    # the filter's string syntax reads \\ as one backslash, so the LIKE pattern \\ takes four
    assert found("LIKE 'back\\\\\\\\slash'") == {"back\\slash"}
    assert found("LIKE 'back_slash'") == {"back\\slash", "backxslash"}
