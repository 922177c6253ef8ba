"""One filter comparison (`key op value` of MLflow's grammar): compiled to SQLAlchemy, or evaluated in Python.

The searches compile comparisons to SQL (`sql_compare`); the small result sets (logged models,
experiments) are filtered and ordered in Python (`compare`, `sort_key`). Both read `LIKE` and
`ILIKE` patterns one way, SQL's: `%` is any run of characters, `_` any one character, a
backslash makes the next character literal (PostgreSQL's default escape, written out as an
explicit `ESCAPE` so that SQLite agrees), and nothing else is special (no glob `*`, `?`, `[`).
`LIKE` is case-sensitive on every backend: on SQLite it is compiled to the equivalent GLOB
pattern (SQLite's LIKE ignores ASCII case unless a deprecated pragma says otherwise); `ILIKE`
compares lower-cased text there (ASCII case only: SQLite's lower() knows no other).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from sqlalchemy import Boolean, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from mltrail.errors import InvalidParameterValue

_ESCAPE = "\\"
_GLOB_SPECIAL = frozenset("*?[")
_INT64 = 2**63


def like_tokens(pattern: str) -> list[tuple[str, bool]]:
    """A LIKE pattern as (text, is_wildcard) pieces: ("%", True), ("_", True) or a literal character.

    Raises:
        InvalidParameterValue: the pattern ends with a lone escape character (PostgreSQL refuses
            it, SQLite silently matches nothing).
    """
    out: list[tuple[str, bool]] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == _ESCAPE:
            if i + 1 == n:
                raise InvalidParameterValue(
                    f"Invalid LIKE pattern '{pattern}': it ends with the escape character '\\'; expected a "
                    "character after it (write '\\\\' for a literal backslash).")
            out.append((pattern[i + 1], False))
            i += 2
            continue
        out.append((c, c in "%_"))
        i += 1
    return out


def _glob(pattern: str) -> str:
    """The SQLite GLOB pattern (case-sensitive) matching what the LIKE `pattern` matches."""
    parts = []
    for text, wildcard in like_tokens(pattern):
        if wildcard:
            parts.append("*" if text == "%" else "?")
        else:
            parts.append(f"[{text}]" if text in _GLOB_SPECIAL else text)
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    parts = []
    for text, wildcard in like_tokens(pattern):
        if wildcard:
            parts.append(".*" if text == "%" else ".")
        else:
            parts.append(re.escape(text))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def like(value: str, pattern: str, case_insensitive: bool = False) -> bool:
    """Whether `value` matches the SQL LIKE (or, case-insensitively, ILIKE) `pattern`."""
    return _like_regex(pattern, case_insensitive).fullmatch(value) is not None


class SqlLike(ColumnElement[bool]):
    """`column LIKE pattern ESCAPE '\\'` (or ILIKE), compiled per dialect to the same meaning."""

    __visit_name__ = "mltrail_sql_like"
    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_clauseelement),
        ("glob", InternalTraversal.dp_clauseelement),
        ("case_insensitive", InternalTraversal.dp_boolean),
    ]

    def __init__(self, column: Any, pattern: str, case_insensitive: bool) -> None:
        self.column = column
        self.glob = literal(_glob(pattern))  # validates the pattern too
        self.pattern = literal(pattern)
        self.case_insensitive = case_insensitive


@compiles(SqlLike)
def _compile_like(element: SqlLike, compiler: Any, **kw: Any) -> str:
    col = element.column
    expr = (col.ilike(element.pattern, escape=_ESCAPE) if element.case_insensitive
            else col.like(element.pattern, escape=_ESCAPE))
    return str(compiler.process(expr, **kw))


@compiles(SqlLike, "sqlite")
def _compile_like_sqlite(element: SqlLike, compiler: Any, **kw: Any) -> str:
    if element.case_insensitive:  # lower(column) LIKE lower(pattern), whatever case_sensitive_like says
        return _compile_like(element, compiler, **kw)
    # GLOB is SQLite's case-sensitive LIKE without relying on the deprecated case_sensitive_like pragma
    return str(compiler.process(element.column.op("GLOB")(element.glob), **kw))


def sql_number(value: Any) -> Any:
    """A filter's number for an integer column: an int when it is one that fits 64 bits, else the
    float itself (SQLite cannot bind larger ints; both databases compare an integer column with a
    float exactly enough for `start_time > 1e30`)."""
    if isinstance(value, float) and value.is_integer() and -_INT64 <= value < _INT64:
        return int(value)
    return value


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
    if op in ("LIKE", "ILIKE"):
        return SqlLike(col, str(value), op == "ILIKE")
    if op == "IN":
        return col.in_(list(value))
    if op == "NOT IN":
        return col.not_in(list(value))
    raise InvalidParameterValue(f"Unsupported comparison operator {op!r}.")


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
        return like(str(left), str(right), op == "ILIKE")
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
