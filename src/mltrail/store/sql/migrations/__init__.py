"""Alembic migrations for the SQL stores. `HEAD` must name the newest revision (a test checks it)."""

HEAD = "0006"
