"""Recognising an MLflow tracking store where mltrail expects its own, before anything is written to it.

MLflow's databases carry an Alembic revision that is not one of ours (upgrading them ends in
"Can't locate revision"), and its FileStore folders (`./mlruns`) hold `meta.yaml` files that a
plain-path mltrail store would ignore while creating `mltrail.db` beside them. Both are refused
with one error that names the command that imports them. The checks only read (SQLite files are
opened read-only), so the MLflow store stays byte for byte as it was. No SQLAlchemy here: the
store package imports this module when `import mltrail` runs.
"""

from __future__ import annotations

import os

from mltrail.errors import InvalidParameterValue

# Tables every MLflow tracking database has had since its first revision.
_MLFLOW_CORE_TABLES = frozenset({"experiments", "runs", "metrics", "params", "tags"})
_TRASH_FOLDER = ".trash"  # MLflow's FileStore keeps deleted experiments there


def our_revisions() -> frozenset[str]:
    """The Alembic revisions mltrail's migrations define (from the file names in `migrations/versions`)."""
    versions = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql", "migrations", "versions")
    return frozenset(name.split("_", 1)[0] for name in os.listdir(versions)
                     if name.endswith(".py") and name[:1].isdigit())


def mlflow_store_error(uri: str, what: str) -> InvalidParameterValue:
    """The one error for an MLflow store opened as mltrail's: what it is, and the command that imports it."""
    return InvalidParameterValue(
        f"{uri} is {what}, not an mltrail store; mltrail opened it read-only and changed nothing in it. "
        f"Bring it over with `mltrail import-mlflow {uri}` (add `--to URI` to choose the mltrail store it "
        "goes into), then point mltrail at that store.")


def check_revision(uri: str, revision: str | None, table_names: set[str]) -> None:
    """Refuse a database whose schema revision is not mltrail's (an MLflow one gets the import hint)."""
    if revision is None or revision in our_revisions():
        return
    if revision.isdigit():  # our numbering, but a revision this mltrail does not have
        raise InvalidParameterValue(
            f"The database {uri} has schema revision {revision!r}, newer than this mltrail's "
            f"({max(our_revisions())}): it was written by a newer mltrail; upgrade mltrail to open it.")
    if table_names >= _MLFLOW_CORE_TABLES:
        raise mlflow_store_error(uri, f"an MLflow tracking database (schema revision {revision!r})")
    raise InvalidParameterValue(
        f"The database {uri} has schema revision {revision!r}, which is not one of mltrail's "
        f"({', '.join(sorted(our_revisions()))}): it was made by another program; mltrail changed nothing in it.")


def check_sqlite_file(path: str, uri: str) -> None:
    """Refuse an existing SQLite file that another program's Alembic history made (read-only check)."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    import sqlite3
    import urllib.parse

    # mode=ro: opening must not create a journal, switch to WAL or otherwise touch the file
    conn = sqlite3.connect(f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro", uri=True)
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        revision = None
        if "alembic_version" in names:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
    except sqlite3.DatabaseError:
        return  # not a database we can read: the real open reports it
    finally:
        conn.close()
    check_revision(uri, revision, names)


def is_mlflow_file_store(directory: str) -> bool:
    """Whether `directory` is an MLflow FileStore root (`mlruns`): `.trash/` or `<experiment id>/meta.yaml`."""
    if not os.path.isdir(directory) or os.path.exists(os.path.join(directory, "mltrail.db")):
        return False
    if os.path.isdir(os.path.join(directory, _TRASH_FOLDER)):
        return True
    try:
        entries = os.listdir(directory)
    except OSError:
        return False
    return any(name.isdigit() and os.path.isfile(os.path.join(directory, name, "meta.yaml")) for name in entries)


def check_not_file_store(directory: str, uri: str) -> None:
    """Refuse to make an mltrail store inside an MLflow FileStore folder."""
    if is_mlflow_file_store(directory):
        raise mlflow_store_error(uri, f"an MLflow FileStore folder ({os.path.abspath(directory)})")
