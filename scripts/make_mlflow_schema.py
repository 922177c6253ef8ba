"""Dump MLflow's SQLite schema (its latest Alembic revision) as DDL for `mltrail export-mlflow`.

Run with the MLflow venv's python, never with ours (mltrail does not depend on `mlflow`):

    ~/.cache/mltrail-test/mlflow-venv/bin/python scripts/make_mlflow_schema.py \
        > src/mltrail/interop/mlflow/mlflow_schema_sqlite.sql

The first line of the output names the revision (`-- alembic_version: <rev>`) and the MLflow version;
then one statement per table and index, in the order SQLite created them, each ending with `;`.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path


def main() -> int:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "mlflow.db"
        mlflow.set_tracking_uri(f"sqlite:///{db}")
        # a client call creates the tracking schema and runs every migration; a registry call is harmless
        client = mlflow.MlflowClient()
        client.search_experiments()
        client.search_registered_models()
        conn = sqlite3.connect(db)
        try:
            (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            statements = [sql for (sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
                "ORDER BY rowid")]
        finally:
            conn.close()
    out = sys.stdout
    out.write(f"-- alembic_version: {revision}\n-- generated from mlflow {mlflow.__version__} "
              "by scripts/make_mlflow_schema.py; do not edit by hand\n")
    for sql in statements:
        out.write(sql.strip() + ";\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
