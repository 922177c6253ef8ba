"""The model registry's tables, on the tracking schema's `MetaData` (revision 0002 creates them).

A registered model has a surrogate integer id, so renaming it rewrites one row; its versions,
tags and aliases refer to that id. `last_version` is the per-model counter that version numbers
come from: it is bumped in the same write transaction that inserts the version, so concurrent
registrations get distinct, gap-free numbers, and a deleted version's number is never reused.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from mltrail.store.sql.schema import belongs_to, metadata

MAX_MODEL_NAME_LENGTH = 256

registered_models = Table(
    "registered_models", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(MAX_MODEL_NAME_LENGTH), nullable=False, unique=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text),
    Column("last_version", Integer, nullable=False, server_default="0"),
)

registered_model_tags = Table(
    "registered_model_tags", metadata,
    belongs_to(registered_models.c.id, "rm_id"),
    Column("key", String(250), nullable=False),
    Column("value", Text),
    PrimaryKeyConstraint("rm_id", "key"),
    Index("ix_registered_model_tags_key_value", "key", "value"),
)

model_versions = Table(
    "model_versions", metadata,
    belongs_to(registered_models.c.id, "rm_id"),
    Column("version", Integer, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text),
    Column("user_id", String(256)),
    Column("current_stage", String(20), nullable=False, server_default="None"),
    # the normalised source as registered, and where its files really are (the download URI)
    Column("source", Text, nullable=False),
    Column("storage_location", Text, nullable=False),
    Column("run_id", String(32)),
    Column("run_link", Text),
    Column("model_id", String(36)),
    Column("status", String(20), nullable=False, server_default="READY"),
    Column("status_message", Text),
    PrimaryKeyConstraint("rm_id", "version"),
    Index("ix_model_versions_run_id", "run_id"),
    Index("ix_model_versions_model_id", "model_id"),
)

model_version_tags = Table(
    "model_version_tags", metadata,
    Column("rm_id", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text),
    PrimaryKeyConstraint("rm_id", "version", "key"),
    Index("ix_model_version_tags_key_value", "key", "value"),
)

registered_model_aliases = Table(
    "registered_model_aliases", metadata,
    belongs_to(registered_models.c.id, "rm_id"),
    Column("alias", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("rm_id", "alias"),
)

TABLES = ["registered_models", "registered_model_tags", "model_versions", "model_version_tags",
          "registered_model_aliases"]
