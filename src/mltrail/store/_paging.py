"""Page tokens: opaque to callers, an offset inside (base64 JSON, like MLflow's)."""

from __future__ import annotations

import base64
import json

from mltrail.errors import InvalidParameterValue


def encode_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token.encode(), validate=True))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError):
        raise InvalidParameterValue(
            f"Invalid page token {token!r}: expected a token returned by a previous search."
        ) from None


def check_max_results(max_results: int | None, limit: int = 50000, default: int = 1000) -> int:
    if max_results is None:
        return default
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results <= 0:
        raise InvalidParameterValue(f"Invalid max_results {max_results!r}: expected a positive integer.")
    if max_results > limit:
        raise InvalidParameterValue(f"Invalid max_results {max_results}: it must be at most {limit}.")
    return max_results
