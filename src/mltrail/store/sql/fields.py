"""Column values every part of the SQL store writes alike: experiment ids, timestamps, artifact URIs."""

from __future__ import annotations

import time
from typing import Any

from mltrail.errors import InvalidParameterValue


def now_ms() -> int:
    return int(time.time() * 1000)


def join_uri(base: str, *parts: str) -> str:
    """Join artifact URI parts with '/', whatever the scheme (local paths are POSIX here)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def parse_experiment_id(experiment_id: Any) -> int:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise InvalidParameterValue(
            f"Invalid experiment ID {experiment_id!r}: expected a string of digits, such as '0' or '12'."
        ) from None
