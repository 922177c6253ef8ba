"""How fast `mltrail import-mlflow` brings an MLflow SQLite store over, into SQLite and PostgreSQL.

The MLflow store is made without MLflow: its tables come from MLflow 3.17.2's own DDL
(`mltrail/interop/mlflow/mlflow_schema_sqlite.sql`, dumped from a database MLflow created), filled with
N runs x 10 metrics x M steps, two params and three tags per run, and artifacts (one file per run,
`--artifact-mb` in all). It is cached under ~/.cache/mltrail-bench, keyed by its size.

    python bench/import_mlflow_bench.py                          # 50 runs x 10 x 1,000 (500k points)
    python bench/import_mlflow_bench.py --runs 1000 --steps 1000 # the issue's 10M points, 10 MB of artifacts
    python bench/import_mlflow_bench.py --postgres postgresql+psycopg://u@host/db   # an existing database

Without `--postgres`, PostgreSQL is measured in a throwaway server when PostgreSQL is installed
(`tests/pg_server.py`). The goal (issue #12): at least 200,000 metric points/s into both.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
DDL = ROOT / "src" / "mltrail" / "interop" / "mlflow" / "mlflow_schema_sqlite.sql"
KEYS = [f"metric_{i}" for i in range(10)]
T0 = 1_700_000_000_000


def _run_id(i: int) -> str:
    return f"{i:032x}"


def build_mlflow_store(folder: Path, runs: int, steps: int, artifact_mb: float) -> Path:
    """An MLflow 3.17 SQLite store (`mlflow.db`) with artifacts beside it; built once per size."""
    db = folder / "mlflow.db"
    if (folder / "done").exists():
        return db
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    artifacts = folder / "mlartifacts"
    revision = DDL.read_text().splitlines()[0].split(":", 1)[1].strip()
    conn = sqlite3.connect(db)
    conn.executescript(DDL.read_text())
    conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    for exp_id, name in ((0, "Default"), (1, "bench")):
        conn.execute("INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
                     "last_update_time) VALUES (?, ?, ?, 'active', ?, ?)",
                     (exp_id, name, (artifacts / str(exp_id)).as_uri(), T0, T0))
    per_file = max(1, int(artifact_mb * 1024 * 1024 / max(runs, 1)))
    for i in range(runs):
        run_id = _run_id(i)
        uri = (artifacts / "1" / run_id / "artifacts").as_uri()
        conn.execute("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                     "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES "
                     "(?, ?, 'LOCAL', '', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, 1)",
                     (run_id, f"run-{i}", T0 + i, T0 + i + steps, uri))
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                         [("lr", str(0.001 * (i + 1)), run_id), ("batch", "32", run_id)])
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                         [("mlflow.runName", f"run-{i}", run_id), ("mlflow.user", "bench", run_id),
                          ("team", "bench", run_id)])
        conn.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
                         _points(run_id, steps))
        conn.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                         "VALUES (?, ?, ?, ?, 0, ?)",
                         [(k, 1.0 / steps, T0 + steps - 1, steps - 1, run_id) for k in KEYS])
        target = artifacts / "1" / run_id / "artifacts"
        target.mkdir(parents=True)
        (target / "weights.bin").write_bytes(os.urandom(per_file))
    conn.commit()
    conn.close()
    (folder / "done").write_text("ok")
    return db


def _points(run_id: str, steps: int) -> Iterator[tuple[str, float, int, str, int]]:
    for key in KEYS:
        for step in range(steps):
            yield key, 1.0 / (step + 1), T0 + step, run_id, step


def measure(source_uri: str, dest: str, artifacts_dest: str | None) -> dict[str, float]:
    from mltrail.interop.mlflow.importer import import_store, open_source
    from mltrail.interop.mlflow.progress import LineProgress

    reader = open_source(source_uri)
    try:
        began = time.perf_counter()
        report = import_store(reader, dest, artifacts_dest=artifacts_dest, progress=LineProgress(io.StringIO()))
        total = time.perf_counter() - began
    finally:
        reader.close()
    if not report.ok:
        print(report.summary())
        raise SystemExit("the import's counts differ from the source's")
    points = report.written.get("metrics", 0)
    return {"points": points, "seconds": total, "points_per_s": points / total,
            "metric_phase_points_per_s": report.metric_points_per_second, "artifact_mb": report.artifact_bytes / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--artifact-mb", type=float, default=10.0)
    parser.add_argument("--postgres", default=None, help="an empty PostgreSQL database URI to import into")
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    args = parser.parse_args(argv)

    cache = Path("~/.cache/mltrail-bench").expanduser() / f"mlflow-{args.runs}x{args.steps}-{args.artifact_mb:g}mb"
    began = time.perf_counter()
    db = build_mlflow_store(cache, args.runs, args.steps, args.artifact_mb)
    print(f"MLflow store: {args.runs} runs x {len(KEYS)} metrics x {args.steps} steps = "
          f"{args.runs * len(KEYS) * args.steps:,} points ({time.perf_counter() - began:.1f}s to build or find) "
          f"at {db}")
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="mltrail-import-bench-") as tmp:
        rows.append(("SQLite", measure(f"sqlite:///{db}", os.path.join(tmp, "mltrail"), None)))
        server = None
        pg_uri = args.postgres
        if pg_uri is None and not args.no_postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            from pg_server import ThrowawayPostgres, find_pg_bin

            bin_dir = find_pg_bin()
            if bin_dir is not None:
                server = ThrowawayPostgres(bin_dir)
                server.start()
                pg_uri = server.create_database()
        try:
            if pg_uri:
                rows.append(("PostgreSQL", measure(f"sqlite:///{db}", pg_uri, os.path.join(tmp, "pg-artifacts"))))
        finally:
            if server is not None:
                server.stop()
    print(f"{'destination':<12} {'points':>12} {'seconds':>8} {'points/s':>12} {'metric phase/s':>15} {'artifacts':>10}")
    for name, r in rows:
        print(f"{name:<12} {r['points']:>12,.0f} {r['seconds']:>8.1f} {r['points_per_s']:>12,.0f} "
              f"{r['metric_phase_points_per_s']:>15,.0f} {r['artifact_mb']:>8.1f}MB")
    print("goal: 200,000 metric points/s (issue #12)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
