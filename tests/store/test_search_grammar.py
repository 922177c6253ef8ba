"""MLflow's filter / order_by grammar: every operator, kind, alias and quoting style, and every error."""

from __future__ import annotations

import pytest

from mltrail.errors import InvalidParameterValue
from mltrail.store.search_grammar import (
    RUN_STATUSES,
    Comparison,
    OrderKey,
    parse_filter,
    parse_order_by,
)

C = Comparison

# -- valid filters --------------------------------------------------------------------------------

RUN_FILTERS: list[tuple[str, list[Comparison]]] = [
    # metrics: every numeric comparator, every number form
    ("metrics.acc = 1", [C("metric", "acc", "=", 1.0)]),
    ("metrics.acc != 1", [C("metric", "acc", "!=", 1.0)]),
    ("metrics.acc < 1", [C("metric", "acc", "<", 1.0)]),
    ("metrics.acc <= 1", [C("metric", "acc", "<=", 1.0)]),
    ("metrics.acc > 0.5", [C("metric", "acc", ">", 0.5)]),
    ("metrics.acc >= 0.5", [C("metric", "acc", ">=", 0.5)]),
    ("metrics.loss > -1.5", [C("metric", "loss", ">", -1.5)]),
    ("metrics.loss < 1e-3", [C("metric", "loss", "<", 1e-3)]),
    ("metrics.loss < 1E+3", [C("metric", "loss", "<", 1e3)]),
    ("metrics.loss < -2.5e-2", [C("metric", "loss", "<", -2.5e-2)]),
    ("metrics.loss < .5", [C("metric", "loss", "<", 0.5)]),
    ("metrics.loss < 5.", [C("metric", "loss", "<", 5.0)]),
    ("metrics.loss < +3", [C("metric", "loss", "<", 3.0)]),
    ("metrics.loss<-1", [C("metric", "loss", "<", -1.0)]),
    ("metrics.loss>=.25", [C("metric", "loss", ">=", 0.25)]),
    ("metrics.step = 1700000000000", [C("metric", "step", "=", 1.7e12)]),
    ("metric.acc > 0", [C("metric", "acc", ">", 0.0)]),
    ("metrics.val_loss < 0.1", [C("metric", "val_loss", "<", 0.1)]),
    ("metrics.epoch/loss < 0.1", [C("metric", "epoch/loss", "<", 0.1)]),
    ("metrics.`my metric` > 0", [C("metric", "my metric", ">", 0.0)]),
    ("metrics.`a.b c` > 0", [C("metric", "a.b c", ">", 0.0)]),
    ('metrics."a b" > 0', [C("metric", "a b", ">", 0.0)]),
    ("metrics.acc IS NULL", [C("metric", "acc", "IS NULL", None)]),
    ("metrics.acc is not null", [C("metric", "acc", "IS NOT NULL", None)]),
    # params: every string comparator, both quote styles, escapes
    ("params.lr = '0.1'", [C("param", "lr", "=", "0.1")]),
    ('params.lr = "0.1"', [C("param", "lr", "=", "0.1")]),
    ("params.opt != 'adam'", [C("param", "opt", "!=", "adam")]),
    ("params.opt LIKE 'ad%'", [C("param", "opt", "LIKE", "ad%")]),
    ("params.opt like 'ad%'", [C("param", "opt", "LIKE", "ad%")]),
    ("params.opt ILIKE '%AD%'", [C("param", "opt", "ILIKE", "%AD%")]),
    ("params.opt iLike '%AD%'", [C("param", "opt", "ILIKE", "%AD%")]),
    ("params.opt IN ('adam', 'sgd')", [C("param", "opt", "IN", ("adam", "sgd"))]),
    ("params.opt in('adam')", [C("param", "opt", "IN", ("adam",))]),
    ("params.opt NOT IN ( 'adam' ,  \"sgd\" )", [C("param", "opt", "NOT IN", ("adam", "sgd"))]),
    ("params.opt not   in ('a,b', 'c)')", [C("param", "opt", "NOT IN", ("a,b", "c)"))]),
    ("params.opt IS NULL", [C("param", "opt", "IS NULL", None)]),
    ("params.opt IS NOT NULL", [C("param", "opt", "IS NOT NULL", None)]),
    ("param.lr = 'x'", [C("param", "lr", "=", "x")]),
    ("parameter.lr = 'x'", [C("param", "lr", "=", "x")]),
    ("parameters.lr = 'x'", [C("param", "lr", "=", "x")]),
    ('params."a b" = \'x\'', [C("param", "a b", "=", "x")]),
    ("params.`a b` = 'x'", [C("param", "a b", "=", "x")]),
    ("params.x = 'it''s'", [C("param", "x", "=", "it's")]),
    ("params.x = 'it\\'s'", [C("param", "x", "=", "it's")]),
    ('params.x = "say \\"hi\\""', [C("param", "x", "=", 'say "hi"')]),
    ('params.x = "a""b"', [C("param", "x", "=", 'a"b')]),
    ("params.x = 'a\\\\b'", [C("param", "x", "=", "a\\b")]),
    ("params.x LIKE 'a\\_b'", [C("param", "x", "LIKE", "a\\_b")]),
    ("params.x = ''", [C("param", "x", "=", "")]),
    ("params.x = 'a AND b OR c'", [C("param", "x", "=", "a AND b OR c")]),
    ("params.x = '  spaced  '", [C("param", "x", "=", "  spaced  ")]),
    ("params.größe = 'groß'", [C("param", "größe", "=", "groß")]),
    # tags
    ("tags.mlflow.parentRunId = 'abc'", [C("tag", "mlflow.parentRunId", "=", "abc")]),
    ("tags.mlflow.runName = 'r'", [C("tag", "mlflow.runName", "=", "r")]),
    ("tag.team != 'a'", [C("tag", "team", "!=", "a")]),
    ("tags.`my.tag` LIKE '%x'", [C("tag", "my.tag", "LIKE", "%x")]),
    ("tags.t ILIKE 'X%'", [C("tag", "t", "ILIKE", "X%")]),
    ("tags.t IN ('a')", [C("tag", "t", "IN", ("a",))]),
    ("tags.t NOT IN ('a', 'b')", [C("tag", "t", "NOT IN", ("a", "b"))]),
    ("tags.t IS NULL", [C("tag", "t", "IS NULL", None)]),
    ("tags.t IS NOT NULL", [C("tag", "t", "IS NOT NULL", None)]),
    # attributes: prefixes, bare names, aliases
    ("attributes.run_id = 'a'", [C("attribute", "run_id", "=", "a")]),
    ("attribute.run_id != 'a'", [C("attribute", "run_id", "!=", "a")]),
    ("attr.run_id LIKE 'a%'", [C("attribute", "run_id", "LIKE", "a%")]),
    ("run.run_id ILIKE 'A%'", [C("attribute", "run_id", "ILIKE", "A%")]),
    ("run_id IN ('a', 'b')", [C("attribute", "run_id", "IN", ("a", "b"))]),
    ("run_uuid NOT IN ('a')", [C("attribute", "run_id", "NOT IN", ("a",))]),
    ("id = 'a'", [C("attribute", "run_id", "=", "a")]),
    ("attributes.id = 'a'", [C("attribute", "run_id", "=", "a")]),
    ("run_name = 'r'", [C("attribute", "run_name", "=", "r")]),
    ("attributes.run_name LIKE 'r%'", [C("attribute", "run_name", "LIKE", "r%")]),
    ('"run name" = \'r\'', [C("attribute", "run_name", "=", "r")]),
    ("attributes.`Run Name` = 'r'", [C("attribute", "run_name", "=", "r")]),
    ('attributes."Run name" = \'r\'', [C("attribute", "run_name", "=", "r")]),
    ("user_id = 'me'", [C("attribute", "user_id", "=", "me")]),
    ("attributes.artifact_uri LIKE 'file:%'", [C("attribute", "artifact_uri", "LIKE", "file:%")]),
    ("lifecycle_stage = 'active'", [C("attribute", "lifecycle_stage", "=", "active")]),
    ("experiment_id IN ('0', '1')", [C("attribute", "experiment_id", "IN", ("0", "1"))]),
    ("start_time > 1700000000000", [C("attribute", "start_time", ">", 1.7e12)]),
    ("attributes.start_time <= 5", [C("attribute", "start_time", "<=", 5.0)]),
    ("end_time != 0", [C("attribute", "end_time", "!=", 0.0)]),
    ("created >= 10", [C("attribute", "start_time", ">=", 10.0)]),
    ("Created < 10", [C("attribute", "start_time", "<", 10.0)]),
    ("attributes.created = 10", [C("attribute", "start_time", "=", 10.0)]),
    # status: upper-cased and validated for = / !=, left alone otherwise
    ("status = 'running'", [C("attribute", "status", "=", "RUNNING")]),
    ("attributes.status != 'Finished'", [C("attribute", "status", "!=", "FINISHED")]),
    ("status LIKE 'FIN%'", [C("attribute", "status", "LIKE", "FIN%")]),
    ("status IN ('FAILED', 'KILLED')", [C("attribute", "status", "IN", ("FAILED", "KILLED"))]),
    # datasets
    ("datasets.name = 'mnist'", [C("dataset", "name", "=", "mnist")]),
    ("dataset.digest IN ('a', 'b')", [C("dataset", "digest", "IN", ("a", "b"))]),
    ("datasets.context LIKE 'tr%'", [C("dataset", "context", "LIKE", "tr%")]),
    ("datasets.name NOT IN ('x')", [C("dataset", "name", "NOT IN", ("x",))]),
    # prefixes are case-insensitive, keys are not
    ("METRICS.Acc > 1", [C("metric", "Acc", ">", 1.0)]),
    ("Tags.X = 'y'", [C("tag", "X", "=", "y")]),
    # AND in any case, whitespace anywhere
    (
        "metrics.acc > 0.9 and params.opt = 'adam' AND tags.t != 'x' AnD status = 'FAILED'",
        [
            C("metric", "acc", ">", 0.9),
            C("param", "opt", "=", "adam"),
            C("tag", "t", "!=", "x"),
            C("attribute", "status", "=", "FAILED"),
        ],
    ),
    ("  metrics.a>1\tAND\nparams.b='c'  ", [C("metric", "a", ">", 1.0), C("param", "b", "=", "c")]),
    ("params.a='x'AND params.b='y'", [C("param", "a", "=", "x"), C("param", "b", "=", "y")]),
    ("metrics.a IS NULL AND metrics.b IS NOT NULL",
     [C("metric", "a", "IS NULL", None), C("metric", "b", "IS NOT NULL", None)]),
    ("params.a IN ('x') AND params.b NOT IN ('y')",
     [C("param", "a", "IN", ("x",)), C("param", "b", "NOT IN", ("y",))]),
    ("metrics.a > 1 AND metrics.a < 2", [C("metric", "a", ">", 1.0), C("metric", "a", "<", 2.0)]),
]


@pytest.mark.parametrize(("filter_string", "expected"), RUN_FILTERS, ids=[f for f, _ in RUN_FILTERS])
def test_run_filters(filter_string: str, expected: list[Comparison]) -> None:
    assert parse_filter(filter_string) == expected
    assert parse_filter(filter_string, "run") == expected


@pytest.mark.parametrize("status", sorted(RUN_STATUSES))
def test_every_run_status(status: str) -> None:
    assert parse_filter(f"status = '{status.lower()}'") == [C("attribute", "status", "=", status)]


def test_number_values_are_floats_and_strings_stay_str() -> None:
    (metric,) = parse_filter("metrics.a = 3")
    assert type(metric.value) is float
    (param,) = parse_filter("params.a = '3'")
    assert type(param.value) is str
    (listed,) = parse_filter("params.a IN ('3', '4')")
    assert type(listed.value) is tuple


@pytest.mark.parametrize("empty", [None, "", "   ", "\t\n"])
def test_empty_filter(empty: str | None) -> None:
    assert parse_filter(empty) == []


OTHER_ENTITY_FILTERS: list[tuple[str, str, list[Comparison]]] = [
    ("experiment", "name = 'exp'", [C("attribute", "name", "=", "exp")]),
    ("experiment", "attributes.name LIKE 'e%'", [C("attribute", "name", "LIKE", "e%")]),
    ("experiment", "name ILIKE '%E%'", [C("attribute", "name", "ILIKE", "%E%")]),
    ("experiment", "creation_time > 5", [C("attribute", "creation_time", ">", 5.0)]),
    ("experiment", "last_update_time <= 5", [C("attribute", "last_update_time", "<=", 5.0)]),
    ("experiment", "experiment_id IN ('1', '2')", [C("attribute", "experiment_id", "IN", ("1", "2"))]),
    ("experiment", "tags.team = 'ml'", [C("tag", "team", "=", "ml")]),
    ("experiment", "tag.`a b` != 'x'", [C("tag", "a b", "!=", "x")]),
    ("logged_model", "name = 'm'", [C("attribute", "name", "=", "m")]),
    ("logged_model", "model_id = 'm-1'", [C("attribute", "model_id", "=", "m-1")]),
    ("logged_model", "model_type LIKE 'keras%'", [C("attribute", "model_type", "LIKE", "keras%")]),
    ("logged_model", "status = 'READY'", [C("attribute", "status", "=", "READY")]),
    ("logged_model", "source_run_id IN ('r')", [C("attribute", "source_run_id", "IN", ("r",))]),
    ("logged_model", "creation_time > 1", [C("attribute", "creation_timestamp", ">", 1.0)]),
    ("logged_model", "creation_timestamp > 1", [C("attribute", "creation_timestamp", ">", 1.0)]),
    ("logged_model", "last_updated_timestamp < 1", [C("attribute", "last_updated_timestamp", "<", 1.0)]),
    ("logged_model", "metrics.acc >= 0.9", [C("metric", "acc", ">=", 0.9)]),
    ("logged_model", "params.lr = '0.1'", [C("param", "lr", "=", "0.1")]),
    ("logged_model", "tags.t = 'x'", [C("tag", "t", "=", "x")]),
    ("registered_model", "name = 'm'", [C("attribute", "name", "=", "m")]),
    ("registered_model", "name LIKE 'm%'", [C("attribute", "name", "LIKE", "m%")]),
    ("registered_model", "tags.owner = 'me'", [C("tag", "owner", "=", "me")]),
    ("model_version", "name = 'm'", [C("attribute", "name", "=", "m")]),
    ("model_version", "version = 3", [C("attribute", "version", "=", 3.0)]),
    ("model_version", "version_number > 1", [C("attribute", "version", ">", 1.0)]),
    ("model_version", "run_id IN ('a', 'b')", [C("attribute", "run_id", "IN", ("a", "b"))]),
    ("model_version", "source_path LIKE '%/model'", [C("attribute", "source_path", "LIKE", "%/model")]),
    ("model_version", "tags.stage = 'prod'", [C("tag", "stage", "=", "prod")]),
    ("model_version", "name = 'm' and version >= 2",
     [C("attribute", "name", "=", "m"), C("attribute", "version", ">=", 2.0)]),
]


@pytest.mark.parametrize(
    ("entity", "filter_string", "expected"),
    OTHER_ENTITY_FILTERS,
    ids=[f"{e}:{f}" for e, f, _ in OTHER_ENTITY_FILTERS],
)
def test_other_entity_filters(entity: str, filter_string: str, expected: list[Comparison]) -> None:
    assert parse_filter(filter_string, entity) == expected


# -- filter errors ---------------------------------------------------------------------------------

# (entity, filter, position, offending token, phrase of what was expected)
FILTER_ERRORS: list[tuple[str, str, int, str, str]] = [
    ("run", "metrics.acc >> 0.5", 13, "'>'", "expected a value"),
    ("run", "foo.bar = 1", 0, "'foo'", "metrics., metric., params."),
    ("run", "foo.bar = 1", 0, "'foo'", "datasets."),
    ("experiment", "metrics.a > 1", 0, "'metrics'", "tags., tag., attributes."),
    ("registered_model", "params.a = 'x'", 0, "'params'", "unknown prefix"),
    ("model_version", "datasets.name = 'x'", 0, "'datasets'", "unknown prefix"),
    # missing operator
    ("run", "metrics.acc 0.5", 12, "'0.5'", "expected a comparison operator"),
    ("run", "params.a 'x'", 9, "\"'x'\"", "expected a comparison operator"),
    ("run", "metrics.acc", 11, "end of the filter", "expected a comparison operator"),
    ("run", "metrics.acc gt 1", 12, "'gt'", "expected a comparison operator"),
    ("run", "metrics.acc ! 1", 12, "'!'", "expected a comparison operator"),
    ("run", "metrics.acc ~ 1", 12, "'~'", "expected a comparison operator"),
    ("run", "metrics.a NOT LIKE 'x'", 14, "'LIKE'", "IN after NOT"),
    ("run", "params.a NOT 'x'", 13, "\"'x'\"", "IN after NOT"),
    ("run", "metrics.a IS 1", 13, "'1'", "NULL or NOT NULL"),
    ("run", "metrics.a IS NOT 1", 17, "'1'", "NULL after IS NOT"),
    ("run", "metrics.a IS", 12, "end of the filter", "NULL or NOT NULL"),
    # missing value
    ("run", "metrics.acc >", 13, "end of the filter", "expected a value"),
    ("run", "metrics.acc > AND metrics.b > 1", 14, "'AND'", "expected a value"),
    ("run", "params.a =", 10, "end of the filter", "expected a value"),
    ("run", "metrics.a == 1", 11, "'='", "expected a value"),
    ("run", "params.a = adam", 11, "'adam'", "expected a value"),
    ("run", "params.a = `adam`", 11, "'`adam`'", "expected a value"),
    # malformed numbers
    ("run", "metrics.a = 1e", 12, "'1e'", "expected a number"),
    ("run", "metrics.a = 1.2.3", 12, "'1.2.3'", "expected a number"),
    ("run", "metrics.a = 12abc", 12, "'12abc'", "expected a number"),
    ("run", "metrics.a = -", 12, "'-'", "expected a number"),
    ("run", "metrics.a = .", 12, "'.'", "expected a number"),
    ("run", "metrics.a = 1'x'", 12, "'1'", "expected a number"),
    # unterminated strings and keys
    ("run", "params.a = 'abc", 11, "\"'abc\"", "unterminated string"),
    ("run", 'params.a = "abc', 11, "'\"abc'", "expected a closing \""),
    ("run", "params.a = 'it''s", 11, "\"'it''s\"", "unterminated string"),
    ("run", "params.a = 'abc\\'", 11, "\"'abc\\'\"", "unterminated string"),
    ("run", "metrics.`abc > 1", 8, "'`abc > 1'", "expected a closing `"),
    ("run", "params.a IN ('x', 'y)", 18, "\"'y)\"", "unterminated string"),
    # bad IN lists
    ("run", "params.a IN 'x'", 12, "\"'x'\"", "'(' opening a list"),
    ("run", "params.a IN", 11, "end of the filter", "'(' opening a list"),
    ("run", "params.a IN ()", 13, "')'", "lists may not be empty"),
    ("run", "params.a IN ('x',)", 17, "')'", "expected a quoted string"),
    ("run", "params.a IN ('x' 'y')", 17, "\"'y'\"", "',' or ')'"),
    ("run", "params.a IN ('x', 1)", 18, "'1'", "expected a quoted string"),
    ("run", "params.a IN (x)", 13, "'x'", "expected a quoted string"),
    ("run", "params.a IN ('x'", 16, "end of the filter", "',' or ')'"),
    ("run", "params.a NOT IN ('x', ", 22, "end of the filter", "expected a quoted string"),
    # trailing garbage
    ("run", "metrics.a > 1 metrics.b > 2", 14, "'metrics.b'", "expected AND or the end of the filter"),
    ("run", "metrics.a > 1 )", 14, "')'", "expected AND or the end of the filter"),
    ("run", "params.a = 'x' 'y'", 15, "\"'y'\"", "expected AND or the end of the filter"),
    ("run", "metrics.a > 1 ANDmetrics.b > 1", 14, "'ANDmetrics.b'", "expected AND"),
    ("run", "metrics.a > 1;", 13, "';'", "expected AND"),
    ("run", "params.a IN ('x') 'y'", 18, "\"'y'\"", "expected AND"),
    # AND without a comparison after it, or nothing before it
    ("run", "metrics.a > 1 AND", 17, "end of the filter", "expected a key"),
    ("run", "metrics.a > 1 AND AND metrics.b > 1", 18, "'AND'", "expected a key"),
    ("run", "metrics.a > 1 AND OR metrics.b > 1", 18, "'OR'", "expected a key"),
    ("run", "AND metrics.a > 1", 0, "'AND'", "expected a key"),
    # OR
    ("run", "metrics.a > 1 OR metrics.b > 2", 14, "'OR'", "OR is not supported"),
    ("run", "metrics.a > 1 or metrics.b > 2", 14, "'OR'", "only be joined with AND"),
    # grouping is not part of the grammar
    ("run", "(metrics.a > 1)", 0, "'('", "expected a key"),
    # wrong operator for the kind
    ("run", "params.a > 'x'", 9, "'>'", "not valid for param 'a'"),
    ("run", "tags.t <= 'x'", 7, "'<='", "not valid for tag 't'"),
    ("run", "metrics.a LIKE '1'", 10, "'LIKE'", "not valid for metric 'a'"),
    ("run", "metrics.a IN ('1')", 10, "'IN'", "not valid for metric 'a'"),
    ("run", "metrics.a NOT IN ('1')", 10, "'NOT IN'", "=, !=, <, <=, >, >=, IS NULL, IS NOT NULL"),
    ("run", "start_time LIKE '1%'", 11, "'LIKE'", "not valid for numeric attribute 'start_time'"),
    ("run", "end_time IS NULL", 9, "'IS NULL'", "not valid for numeric attribute 'end_time'"),
    ("run", "run_name > 'a'", 9, "'>'", "not valid for attribute 'run_name'"),
    ("run", "datasets.name IS NULL", 14, "'IS NULL'", "not valid for dataset 'name'"),
    ("experiment", "creation_time ILIKE 'x'", 14, "'ILIKE'", "numeric attribute 'creation_time'"),
    ("model_version", "version LIKE '1'", 8, "'LIKE'", "numeric attribute 'version'"),
    # value of the wrong type
    ("run", "metrics.a = 'x'", 12, "\"'x'\"", "compares with a number"),
    ("run", "metrics.a = '0.5'", 12, "\"'0.5'\"", "compares with a number"),
    ("run", "start_time > '2024-01-01'", 13, "\"'2024-01-01'\"", "compares with a number"),
    ("experiment", "last_update_time > 'x'", 19, "\"'x'\"", "compares with a number"),
    ("run", "params.a = 1", 11, "'1'", "quote it, e.g. '1'"),
    ("run", "params.lr = 0.001", 12, "'0.001'", "quote it, e.g. '0.001'"),
    ("run", "tags.t != -1", 10, "'-1'", "quote it"),
    ("run", "run_name = 5", 11, "'5'", "quoted string"),
    ("run", "datasets.name = 5", 16, "'5'", "quoted string"),
    ("registered_model", "name = 5", 7, "'5'", "quoted string"),
    # run status
    ("run", "status = 'bogus'", 9, "\"'bogus'\"", "FAILED, FINISHED, KILLED, RUNNING, SCHEDULED"),
    ("run", "attributes.status != 'DONE'", 21, "\"'DONE'\"", "unknown run status"),
    # empty keys and bad keys
    ("run", "metrics. > 1", 0, "'metrics.'", "empty key"),
    ("run", "metrics.`` > 1", 0, "'metrics.'", "empty key"),
    ('run', 'params."" = \'x\'', 0, "'params.'", "empty key"),
    ("run", "metrics > 1", 0, "'metrics'", "not followed by '.' and a key"),
    ("run", "= 1", 0, "'='", "expected a key"),
    ("run", ".acc > 1", 0, "'.acc'", "expected a key"),
    ("run", "'acc' > 1", 0, "\"'acc'\"", "expected a key"),
    ("run", "unknown = 'x'", 0, "'unknown'", "unknown attribute"),
    ("run", "attributes.foo = 'x'", 11, "'foo'", "artifact_uri, end_time, experiment_id"),
    ("run", "name = 'x'", 0, "'name'", "unknown attribute"),
    ("run", "datasets.foo = 'x'", 9, "'foo'", "name, digest, context"),
    ("experiment", "run_name = 'x'", 0, "'run_name'", "creation_time, experiment_id, last_update_time, name"),
    ("registered_model", "version = 1", 0, "'version'", "unknown attribute"),
    ("model_version", "status = 'x'", 0, "'status'", "unknown attribute"),
    ("logged_model", "run_id = 'x'", 0, "'run_id'", "model_id"),
    ("run", "attr.`Run  Name` = 'x'", 5, "'Run  Name'", "unknown attribute"),
    ("run", "metrics.`a`b > 1", 11, "'b'", "expected a comparison operator"),
]


@pytest.mark.parametrize(
    ("entity", "filter_string", "position", "token", "expected"),
    FILTER_ERRORS,
    ids=[f"{e}:{f}" for e, f, *_ in FILTER_ERRORS],
)
def test_filter_errors(entity: str, filter_string: str, position: int, token: str, expected: str) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        parse_filter(filter_string, entity)
    message = str(info.value)
    assert message.startswith(f"Invalid filter '{filter_string}': ")
    assert f"at position {position}" in message
    assert token in message
    assert expected in message
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_error_message_shape() -> None:
    with pytest.raises(InvalidParameterValue) as info:
        parse_filter("metrics.acc >> 0.5")
    assert str(info.value) == (
        "Invalid filter 'metrics.acc >> 0.5': unexpected token '>' at position 13; "
        "expected a value (a number or a quoted string)."
    )


def test_long_tokens_are_shortened_in_messages() -> None:
    key = "x" * 200
    with pytest.raises(InvalidParameterValue) as info:
        parse_filter(f"metrics.a > 1 {key}")
    assert "'" + "x" * 37 + "...'" in str(info.value)


def test_non_string_filter_is_refused() -> None:
    with pytest.raises(InvalidParameterValue, match="expected a string"):
        parse_filter(42)  # type: ignore[arg-type]


def test_unknown_entity_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="logged_model"):
        parse_filter("name = 'x'", "bogus")


# -- order_by --------------------------------------------------------------------------------------

O = OrderKey  # noqa: E741

RUN_ORDER_BY: list[tuple[str, OrderKey]] = [
    ("metrics.acc DESC", O("metric", "acc", False)),
    ("metrics.acc desc", O("metric", "acc", False)),
    ("metrics.acc ASC", O("metric", "acc", True)),
    ("metrics.acc", O("metric", "acc", True)),
    ("metric.acc Desc", O("metric", "acc", False)),
    ("metrics.`a b` desc", O("metric", "a b", False)),
    ('metrics."a.b c" DESC', O("metric", "a.b c", False)),
    ("params.lr", O("param", "lr", True)),
    ("param.lr DESC", O("param", "lr", False)),
    ("parameters.lr", O("param", "lr", True)),
    ("tags.mlflow.runName DESC", O("tag", "mlflow.runName", False)),
    ("tag.t", O("tag", "t", True)),
    ("attributes.start_time ASC", O("attribute", "start_time", True)),
    ("attribute.end_time DESC", O("attribute", "end_time", False)),
    ("attr.status", O("attribute", "status", True)),
    ("run.run_name", O("attribute", "run_name", True)),
    ("start_time", O("attribute", "start_time", True)),
    ("start_time DESC", O("attribute", "start_time", False)),
    ("run_name", O("attribute", "run_name", True)),
    ("created DESC", O("attribute", "start_time", False)),
    ("Created", O("attribute", "start_time", True)),
    ("run_uuid", O("attribute", "run_id", True)),
    ("user_id", O("attribute", "user_id", True)),
    ("  metrics.acc   DESC  ", O("metric", "acc", False)),
]


@pytest.mark.parametrize(("item", "expected"), RUN_ORDER_BY, ids=[i for i, _ in RUN_ORDER_BY])
def test_run_order_by(item: str, expected: OrderKey) -> None:
    assert parse_order_by([item]) == [expected]


def test_order_by_keeps_order_of_items() -> None:
    assert parse_order_by(["metrics.acc DESC", "params.lr", "start_time"]) == [
        O("metric", "acc", False),
        O("param", "lr", True),
        O("attribute", "start_time", True),
    ]


@pytest.mark.parametrize("empty", [None, []])
def test_empty_order_by(empty: list[str] | None) -> None:
    assert parse_order_by(empty) == []


OTHER_ORDER_BY: list[tuple[str, str, OrderKey]] = [
    ("experiment", "name", O("attribute", "name", True)),
    ("experiment", "experiment_id DESC", O("attribute", "experiment_id", False)),
    ("experiment", "creation_time DESC", O("attribute", "creation_time", False)),
    ("experiment", "attributes.last_update_time", O("attribute", "last_update_time", True)),
    ("logged_model", "creation_time DESC", O("attribute", "creation_timestamp", False)),
    ("logged_model", "metrics.acc DESC", O("metric", "acc", False)),
    ("logged_model", "name", O("attribute", "name", True)),
    ("registered_model", "name DESC", O("attribute", "name", False)),
    ("registered_model", "timestamp DESC", O("attribute", "creation_timestamp", False)),
    ("registered_model", "last_updated_timestamp", O("attribute", "last_updated_timestamp", True)),
    ("model_version", "version_number DESC", O("attribute", "version", False)),
    ("model_version", "creation_timestamp", O("attribute", "creation_timestamp", True)),
]


@pytest.mark.parametrize(
    ("entity", "item", "expected"), OTHER_ORDER_BY, ids=[f"{e}:{i}" for e, i, _ in OTHER_ORDER_BY]
)
def test_other_entity_order_by(entity: str, item: str, expected: OrderKey) -> None:
    assert parse_order_by([item], entity) == [expected]


ORDER_BY_ERRORS: list[tuple[str, str, int, str, str]] = [
    ("run", "metrics.acc DESCX", 12, "'DESCX'", "expected ASC, DESC or the end of the clause"),
    ("run", "metrics.acc DOWN", 12, "'DOWN'", "expected ASC, DESC"),
    ("run", "metrics.acc DESC x", 17, "'x'", "expected the end of the clause after DESC"),
    ("run", "metrics.acc > 1", 12, "'>'", "expected ASC, DESC"),
    ("run", "", 0, "end of the order_by clause", "expected a key"),
    ("run", "   ", 3, "end of the order_by clause", "expected a key"),
    ("run", "foo.x", 0, "'foo'", "unknown prefix"),
    ("run", "metrics. DESC", 0, "'metrics.'", "empty key"),
    ("run", "metrics.`a b DESC", 8, "'`a b DESC'", "unterminated string"),
    ("run", "bogus DESC", 0, "'bogus'", "unknown attribute"),
    ("run", "datasets.name", 0, "'datasets.name'", "cannot order runs by dataset"),
    ("experiment", "tags.t", 0, "'tags.t'", "cannot order experiments by tag"),
    ("registered_model", "tags.t DESC", 0, "'tags.t'", "cannot order registered models by tag"),
    ("model_version", "status", 0, "'status'", "unknown attribute"),
]


@pytest.mark.parametrize(
    ("entity", "item", "position", "token", "expected"),
    ORDER_BY_ERRORS,
    ids=[f"{e}:{i}" for e, i, *_ in ORDER_BY_ERRORS],
)
def test_order_by_errors(entity: str, item: str, position: int, token: str, expected: str) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        parse_order_by([item], entity)
    message = str(info.value)
    assert message.startswith(f"Invalid order_by clause '{item}': ")
    assert f"at position {position}" in message
    assert token in message
    assert expected in message


def test_non_string_order_by_item_is_refused() -> None:
    with pytest.raises(InvalidParameterValue, match="expected a string"):
        parse_order_by([None])  # type: ignore[list-item]


# -- caching ---------------------------------------------------------------------------------------


def test_cached_results_are_fresh_lists() -> None:
    first = parse_filter("metrics.cache_probe > 1")
    first.append(C("metric", "x", "=", 0.0))
    assert parse_filter("metrics.cache_probe > 1") == [C("metric", "cache_probe", ">", 1.0)]
    keys = parse_order_by(["metrics.cache_probe DESC"])
    keys.clear()
    assert parse_order_by(["metrics.cache_probe DESC"]) == [O("metric", "cache_probe", False)]


def test_same_string_for_different_entities_is_not_confused() -> None:
    assert parse_filter("name = 'x'", "experiment") == [C("attribute", "name", "=", "x")]
    with pytest.raises(InvalidParameterValue):
        parse_filter("name = 'x'", "run")


def test_errors_are_raised_every_time() -> None:
    for _ in range(3):
        with pytest.raises(InvalidParameterValue, match="position 13"):
            parse_filter("metrics.acc >> 0.5")
