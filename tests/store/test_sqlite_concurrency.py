"""Several processes writing one SQLite store at once: every point stored, no 'database is locked'."""

import subprocess
import sys
import textwrap

import mltrail

WORKER = textwrap.dedent("""
    import sys
    import mltrail
    from mltrail.entities import Metric, Param
    mltrail.set_tracking_uri(sys.argv[1])
    exp = mltrail.set_experiment("shared")  # all four may create it at once
    client = mltrail.MlflowClient()
    with mltrail.start_run() as run:
        for i in range(300):
            mltrail.log_metric("single", i, step=i)
        for b in range(5):
            client.log_batch(run.info.run_id, metrics=[Metric("batch", float(j), 0, b * 100 + j) for j in range(100)],
                             params=[Param(f"p{b}", str(b))])
    print(run.info.run_id)
""")


def test_four_processes_log_to_one_sqlite_store(tmp_path):
    uri = f"sqlite:///{tmp_path}/shared.db"  # a fresh file: the schema is created under contention too
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err
    client = mltrail.MlflowClient(uri)
    run_ids = [out.strip() for out, _ in results]
    assert len(set(run_ids)) == 4
    for run_id in run_ids:
        assert [m.step for m in client.get_metric_history(run_id, "single")] == list(range(300))
        assert len(client.get_metric_history(run_id, "batch")) == 500
        assert client.get_run(run_id).data.params == {f"p{b}": str(b) for b in range(5)}
    exps = [e for e in client.search_experiments() if e.name == "shared"]
    assert len(exps) == 1
