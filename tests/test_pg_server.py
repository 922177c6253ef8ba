"""The throwaway PostgreSQL server: it starts, takes SQL, and hands each test its own database."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres

# Database names seen by the tests below, to check that two tests get two databases.
_seen: dict[str, str] = {}


def _roundtrip(uri: str) -> list[tuple[int, str]]:
    import sqlalchemy as sa

    engine = sa.create_engine(uri)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"))
            conn.execute(sa.text("INSERT INTO item (id, name) VALUES (1, 'a'), (2, 'b')"))
        with engine.connect() as conn:
            return [
                (row.id, row.name) for row in conn.execute(sa.text("SELECT id, name FROM item ORDER BY id"))
            ]
    finally:
        engine.dispose()


def _current_database(uri: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SELECT current_database()")).scalar_one())
    finally:
        engine.dispose()


def test_server_uri_shape(pg_server) -> None:
    uri = pg_server.uri
    assert uri is not None
    assert uri.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert uri.endswith(f":{pg_server.port}/postgres")
    assert pg_server.root is not None and pg_server.root.is_dir()


def test_first_database_is_empty_and_usable(postgres_uri: str) -> None:
    assert _roundtrip(postgres_uri) == [(1, "a"), (2, "b")]
    _seen["first"] = _current_database(postgres_uri)


def test_second_database_is_another_one(postgres_uri: str) -> None:
    # The same CREATE TABLE would fail if this were the first test's database.
    assert _roundtrip(postgres_uri) == [(1, "a"), (2, "b")]
    name = _current_database(postgres_uri)
    assert name == postgres_uri.rsplit("/", 1)[1]
    if "first" in _seen:
        assert name != _seen["first"]


def test_dropped_after_test(pg_server) -> None:
    import sqlalchemy as sa

    if "first" not in _seen:
        pytest.skip("needs test_first_database_is_empty_and_usable to have run first")
    engine = sa.create_engine(pg_server.uri)
    try:
        with engine.connect() as conn:
            names = set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()
    assert _seen["first"] not in names


def test_create_database_rejects_bad_name(pg_server) -> None:
    with pytest.raises(ValueError, match="database name"):
        pg_server.create_database("Robert'); DROP TABLE students;--")


def test_named_database(pg_server) -> None:
    uri = pg_server.create_database("mltrail_named_db")
    try:
        assert uri.endswith("/mltrail_named_db")
        assert _current_database(uri) == "mltrail_named_db"
    finally:
        pg_server.drop_database("mltrail_named_db")
