"""Tables that let several server replicas share what one process used to remember (revision 0005).

A load balancer sends consecutive requests of one client to different replicas, so nothing a
client relies on may live in one process's memory: the answers of keyed create requests
(`idempotency_keys`), sessions signed out before their cookies expire (`auth_ended_sessions`)
and failed logins (`auth_login_failures`) are rows here, on the tracking schema's `MetaData`.
Every table has an expiry column and an index on it, so old rows are pruned with a range delete.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from mltrail.store.sql.schema import metadata

MAX_IDEMPOTENCY_KEY_LENGTH = 200
MAX_ADDRESS_LENGTH = 64

# One keyed create request: `answer` (the response's JSON) is NULL while the first request is
# still creating; `claimed_at` says since when, so a claim left by a replica that died is taken over.
idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("scope", String(64), nullable=False),
    Column("key", String(MAX_IDEMPOTENCY_KEY_LENGTH), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("claimed_at", BigInteger, nullable=False),
    Column("answer", Text),
    PrimaryKeyConstraint("scope", "key"),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

# A session signed out: the sha256 of its nonce, kept until its cookie would have expired anyway.
auth_ended_sessions = Table(
    "auth_ended_sessions", metadata,
    Column("nonce_hash", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_auth_ended_sessions_expires_at", "expires_at"),
)

# One failed login: `who` is a digest of the username (any text a client sent, NUL included; NULL
# once that user logged in from that address, so it still counts for the address alone).
auth_login_failures = Table(
    "auth_login_failures", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("who", String(64)),
    Column("address", String(MAX_ADDRESS_LENGTH), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_auth_login_failures_address_at", "address", "at"),
    Index("ix_auth_login_failures_at", "at"),
)

TABLES = ["idempotency_keys", "auth_ended_sessions", "auth_login_failures"]
