"""Predictions as MLflow's response JSON: `{"predictions": ...}`, a list or a dict of lists.

The writing itself lives in `mltrail.models.scoring_io` (shared with `mltrail.models.predict`);
this module adds the scoring server's error body.
"""

from __future__ import annotations

import orjson

from mltrail.models.scoring_io import dumps, predictions_body

__all__ = ["dumps", "error_body", "predictions_body"]


def error_body(error_code: str, message: str) -> bytes:
    return orjson.dumps({"error_code": error_code, "message": message})
