"""One filter comparison (`key op value` of MLflow's grammar): compiled to SQLAlchemy, or evaluated in Python.

The searches compile comparisons to SQL (`sql_compare`); the small result sets (logged models,
experiments) are filtered and ordered in Python (`compare`, `sort_key`).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from sqlalchemy import func

from mltrail.errors import InvalidParameterValue


def sql_compare(col: Any, op: str, value: Any) -> Any:
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op == "<":
        return col < value
    if op == "<=":
        return col <= value
    if op == ">":
        return col > value
    if op == ">=":
        return col >= value
    if op == "LIKE":
        return col.like(value)
    if op == "ILIKE":
        return func.lower(col).like(func.lower(value))
    if op == "IN":
        return col.in_(list(value))
    if op == "NOT IN":
        return col.not_in(list(value))
    raise InvalidParameterValue(f"Unsupported comparison operator {op!r}.")


def _like(value: str, pattern: str, case_insensitive: bool) -> bool:
    glob = pattern.replace("[", "[[]").replace("%", "*").replace("_", "?")
    if case_insensitive:
        return fnmatch.fnmatchcase(value.lower(), glob.lower())
    return fnmatch.fnmatchcase(value, glob)


def compare(left: Any, op: str, right: Any) -> bool:
    """Evaluate one filter comparison in Python (for small result sets such as logged models)."""
    if op == "IS NULL":
        return left is None
    if op == "IS NOT NULL":
        return left is not None
    if left is None:
        return False
    if op in ("IN", "NOT IN"):
        return (str(left) in right) == (op == "IN")
    if op in ("LIKE", "ILIKE"):
        return _like(str(left), str(right), op == "ILIKE")
    if isinstance(right, float):
        try:
            left = float(left)
        except (TypeError, ValueError):
            return False
    else:
        left = str(left)
    return {"=": left == right, "!=": left != right, "<": left < right, "<=": left <= right,
            ">": left > right, ">=": left >= right}[op]


def sort_key(value: Any) -> Any:
    return (0, value) if isinstance(value, int | float) else (1, str(value))
