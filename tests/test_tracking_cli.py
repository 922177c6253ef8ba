"""The tracking CLI commands, run through click against a real SQLite store."""

import os

from click.testing import CliRunner

import mltrail
from mltrail.cli import main


def run_cli(*args, uri):
    result = CliRunner().invoke(main, list(args), env={"MLTRAIL_TRACKING_URI": uri}, catch_exceptions=False)
    return result


def test_experiments_commands(sqlite_uri):
    r = run_cli("experiments", "create", "-n", "cli-exp", uri=sqlite_uri)
    assert r.exit_code == 0 and "Created experiment 'cli-exp'" in r.output
    exp_id = r.output.strip().rsplit(" ", 1)[1]
    mltrail.set_tracking_uri(sqlite_uri)
    with mltrail.start_run(experiment_id=exp_id):
        pass
    listing = run_cli("experiments", "list", uri=sqlite_uri).output
    line = next(x for x in listing.splitlines() if x.endswith("cli-exp"))
    assert line.split()[:2] == [exp_id, "1"]
    dup = CliRunner().invoke(main, ["experiments", "create", "-n", "cli-exp"], env={"MLTRAIL_TRACKING_URI": sqlite_uri})
    assert dup.exit_code != 0 and "RESOURCE_ALREADY_EXISTS" in dup.output
    assert run_cli("experiments", "delete", "-x", exp_id, uri=sqlite_uri).exit_code == 0
    assert "cli-exp" not in run_cli("experiments", "list", uri=sqlite_uri).output
    assert "cli-exp" in run_cli("experiments", "list", "--view", "all", uri=sqlite_uri).output


def test_runs_commands_and_gc(sqlite_uri):
    mltrail.set_tracking_uri(sqlite_uri)
    with mltrail.start_run(run_name="keep") as keep:
        mltrail.log_metric("acc", 0.9)
    with mltrail.start_run(run_name="drop") as drop:
        mltrail.log_text("bye", "f.txt")
    out = run_cli("runs", "list", "--filter", "metrics.acc > 0.5", uri=sqlite_uri).output
    assert keep.info.run_id in out and drop.info.run_id not in out
    desc = run_cli("runs", "describe", "-r", keep.info.run_id, uri=sqlite_uri).output
    assert '"run_name": "keep"' in desc and '"acc"' in desc
    bad = CliRunner().invoke(main, ["runs", "list", "--filter", "metrics.acc >> 1"],
                             env={"MLTRAIL_TRACKING_URI": sqlite_uri})
    assert bad.exit_code != 0 and "INVALID_PARAMETER_VALUE" in bad.output
    art_dir = drop.info.artifact_uri
    assert os.path.exists(os.path.join(art_dir, "f.txt"))
    not_deleted = CliRunner().invoke(main, ["gc", "--run-ids", keep.info.run_id], env={"MLTRAIL_TRACKING_URI": sqlite_uri})
    assert not_deleted.exit_code != 0 and "not in the deleted state" in not_deleted.output
    assert run_cli("runs", "delete", "-r", drop.info.run_id, uri=sqlite_uri).exit_code == 0
    gc = run_cli("gc", uri=sqlite_uri)
    assert gc.exit_code == 0 and f"Purged run {drop.info.run_id}" in gc.output
    assert not os.path.exists(art_dir)
    assert "keep" in run_cli("runs", "list", uri=sqlite_uri).output


def test_gc_forgets_old_batch_ids(sqlite_uri):
    from sqlalchemy import insert, select

    from mltrail.store import get_store
    from mltrail.store.sql import schema

    store = get_store(sqlite_uri)
    with store.engine.begin() as conn:
        conn.execute(insert(schema.applied_batches), [{"batch_id": "old", "applied_time": 0},
                                                      {"batch_id": "new", "applied_time": 2**50}])
    assert run_cli("gc", uri=sqlite_uri).exit_code == 0
    with store.engine.connect() as conn:
        assert [r.batch_id for r in conn.execute(select(schema.applied_batches))] == ["new"]


def test_db_upgrade(tmp_path):
    r = CliRunner().invoke(main, ["db", "upgrade", f"sqlite:///{tmp_path}/fresh.db"])
    from mltrail.store.sql.migrations import HEAD

    assert r.exit_code == 0 and f"from empty to {HEAD}" in r.output


def test_gc_against_a_server_asks_for_the_database_uri(sqlite_uri):
    for env_uri, args in (("http://127.0.0.1:9/", []), (sqlite_uri, ["--backend-store-uri", "https://tracking.example"])):
        r = CliRunner().invoke(main, ["gc", *args], env={"MLTRAIL_TRACKING_URI": env_uri})
        assert r.exit_code == 2, r.output
        assert "needs the tracking server's database URI" in r.output and "received the server URI" in r.output


def test_gc_keeps_the_rows_of_a_run_whose_artifacts_remain_and_reports_it(sqlite_uri):
    from sqlalchemy import update

    from mltrail.store import get_store
    from mltrail.store.sql import schema

    mltrail.set_tracking_uri(sqlite_uri)
    runs = {}
    for name in ("stuck", "fine"):
        with mltrail.start_run(run_name=name) as run:
            mltrail.log_text("x", "f.txt")
        runs[name] = run.info
        assert run_cli("runs", "delete", "-r", run.info.run_id, uri=sqlite_uri).exit_code == 0
    store = get_store(sqlite_uri)
    stuck = runs["stuck"]
    with store.engine.begin() as conn:  # an artifact root this mltrail cannot reach: deleting it fails
        conn.execute(update(schema.runs).where(schema.runs.c.run_uuid == stuck.run_id)
                     .values(artifact_uri="unreachable-scheme://bucket/artifacts"))

    gc = CliRunner().invoke(main, ["gc"], env={"MLTRAIL_TRACKING_URI": sqlite_uri})
    assert gc.exit_code == 1, gc.output
    assert f"Purged run {runs['fine'].run_id}" in gc.output and "1 run(s) purged." in gc.output
    assert f"kept run {stuck.run_id}: could not delete its artifacts" in gc.output
    assert "1 run(s) kept because their artifacts could not be deleted" in gc.output and stuck.run_id in gc.output
    assert not os.path.exists(runs["fine"].artifact_uri)
    assert store.deleted_run_ids() == [stuck.run_id]  # its rows stay, still deleted, for the next gc

    with store.engine.begin() as conn:  # the cause fixed: the next gc removes files, then rows
        conn.execute(update(schema.runs).where(schema.runs.c.run_uuid == stuck.run_id)
                     .values(artifact_uri=stuck.artifact_uri))
    assert os.path.exists(os.path.join(stuck.artifact_uri, "f.txt"))
    again = run_cli("gc", uri=sqlite_uri)
    assert again.exit_code == 0 and f"Purged run {stuck.run_id}" in again.output
    assert not os.path.exists(stuck.artifact_uri) and store.deleted_run_ids() == []
