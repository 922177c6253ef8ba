"""The SQL tracking and registry stores (SQLAlchemy Core over SQLite and PostgreSQL)."""
