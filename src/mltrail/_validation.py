"""Checks on what users log, with MLflow's limits and messages that say what was expected."""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from mltrail.errors import InvalidParameterValue

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000

# MLflow's key charset: alphanumerics, underscores, dashes, periods, spaces, slashes and colons.
_VALID_KEY = re.compile(r"^[/\w.\- :]*$")
_RUN_ID = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}")  # fullmatch: "$" would accept a trailing newline


_known_good_keys: set[str] = set()  # keys repeat endlessly in logging: check each once


def validate_key(kind: str, key: Any) -> str:
    """Check a metric, param or tag key: a non-empty string of MLflow's charset, no path escapes."""
    if key in _known_good_keys:
        return key
    if not isinstance(key, str) or not key:
        raise InvalidParameterValue(f"Invalid {kind} name: {key!r}. Expected a non-empty string.")
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameterValue(
            f"{kind.capitalize()} name '{key[:40]}...' has length {len(key)}, which exceeds the limit "
            f"of {MAX_ENTITY_KEY_LENGTH}."
        )
    if not _VALID_KEY.match(key):
        raise InvalidParameterValue(
            f"Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores (_), "
            "dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)."
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidParameterValue(
            f"Invalid {kind} name: '{key}'. Names may be treated as files in certain cases, and must not "
            "resolve to other names when treated as such: no leading '/', no '..' components."
        )
    if len(_known_good_keys) < 100_000:
        _known_good_keys.add(key)
    return key


def validate_metric(key: str, value: Any, timestamp: Any, step: Any) -> tuple[str, float, int, int]:
    validate_key("metric", key)
    # the common case first: exact Python types need none of the conversions below
    if type(value) is float and type(timestamp) is int and type(step) is int:
        return key, value, timestamp, step
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        try:  # numpy scalars and 0-d arrays are numbers in all but name
            value = float(value)
        except (TypeError, ValueError):
            raise InvalidParameterValue(
                f"Got invalid value {value!r} for metric '{key}' (timestamp={timestamp}). Please specify "
                "a value that can be converted to a float."
            ) from None
    value = float(value)
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral | int):
        try:
            timestamp = int(timestamp)
        except (TypeError, ValueError):
            raise InvalidParameterValue(
                f"Got invalid timestamp {timestamp!r} for metric '{key}' (value={value}). Timestamp must "
                "be an integer (milliseconds since the epoch)."
            ) from None
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        try:
            if float(step) != int(step):
                raise ValueError
            step = int(step)
        except (TypeError, ValueError):
            raise InvalidParameterValue(
                f"Got invalid step {step!r} for metric '{key}' (value={value}). Step must be an integer."
            ) from None
    return key, value, int(timestamp), int(step)


def param_value_to_str(value: Any) -> str:
    """Params are stored as text, as MLflow does (`False` becomes 'False')."""
    return value if isinstance(value, str) else str(value)


def validate_param(key: str, value: Any) -> tuple[str, str]:
    validate_key("param", key)
    text = param_value_to_str(value)
    if len(text) > MAX_PARAM_VAL_LENGTH:
        raise InvalidParameterValue(
            f"Param value '{text[:40]}...' for key '{key}' has length {len(text)}, which exceeds the limit "
            f"of {MAX_PARAM_VAL_LENGTH}."
        )
    return key, text


def validate_batch_params(params: Any) -> dict[str, str]:
    """Validate a batch's params into key -> text; a key given twice must have one value."""
    out: dict[str, str] = {}
    for p in params:
        key, text = validate_param(p.key, p.value)
        if key in out and out[key] != text:
            raise InvalidParameterValue(
                f"Duplicate parameter keys with different values in one batch: '{key}' is given as "
                f"'{out[key]}' and '{text}'.")
        out[key] = text
    return out


def validate_tag(key: str, value: Any) -> tuple[str, str]:
    validate_key("tag", key)
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VAL_LENGTH:
        raise InvalidParameterValue(
            f"Tag value '{text[:40]}...' for key '{key}' has length {len(text)}, which exceeds the limit "
            f"of {MAX_TAG_VAL_LENGTH}."
        )
    return key, text


def validate_batch_limits(n_metrics: int, n_params: int, n_tags: int) -> None:
    problems = []
    if n_metrics > MAX_METRICS_PER_BATCH:
        problems.append(f"{n_metrics} metrics (at most {MAX_METRICS_PER_BATCH})")
    if n_params > MAX_PARAMS_TAGS_PER_BATCH:
        problems.append(f"{n_params} params (at most {MAX_PARAMS_TAGS_PER_BATCH})")
    if n_tags > MAX_PARAMS_TAGS_PER_BATCH:
        problems.append(f"{n_tags} tags (at most {MAX_PARAMS_TAGS_PER_BATCH})")
    if n_metrics + n_params + n_tags > MAX_ENTITIES_PER_BATCH:
        problems.append(f"{n_metrics + n_params + n_tags} entities in all (at most {MAX_ENTITIES_PER_BATCH})")
    if problems:
        raise InvalidParameterValue(
            "A batch logging request can contain at most 1000 metrics, 100 params and 100 tags "
            f"(1000 entities in all); received {', '.join(problems)}. Split it into several batches."
        )


def validate_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InvalidParameterValue(f"Invalid run ID: {run_id!r}. Expected a string of letters, digits, '-' or '_'.")
    return run_id


def validate_experiment_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterValue(f"Invalid experiment name: {name!r}. Expected a non-empty string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameterValue(
            f"Experiment name has length {len(name)}, which exceeds the limit of {MAX_EXPERIMENT_NAME_LENGTH}."
        )
    return name


def is_nan(value: float) -> bool:
    return math.isnan(value)
