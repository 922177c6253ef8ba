"""Parse MLflow's search filter strings and order_by clauses into plain comparisons and sort keys.

A single-pass, hand-written scanner (no regex, no sqlparse): the tracking server parses a filter on
every search request, so parsing must be cheap, and its errors must say where the input went wrong
(character position, offending token, what was expected). The SQL store compiles the result into
SQLAlchemy Core; nothing here knows about SQL.

Grammar (MLflow's)::

    filter     := comparison ( AND comparison )*            AND is case-insensitive; OR is refused
    comparison := key op value | key IN list | key NOT IN list | key IS [NOT] NULL
    key        := prefix "." name | attribute                e.g. metrics.acc, tags.mlflow.runName
    name       := bare | `back quoted` | "double quoted"     bare names may contain dots
    value      := 'string' | "string" | number               1, -1.5, 1e-3, .5
    list       := "(" string ( "," string )* ")"
    order_item := key [ ASC | DESC ]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from mltrail.errors import InvalidParameterValue

__all__ = [
    "ATTRIBUTE",
    "DATASET",
    "METRIC",
    "MODEL",
    "NULL_OPS",
    "NUMERIC_OPS",
    "PARAM",
    "RUN_STATUSES",
    "STRING_OPS",
    "TAG",
    "Comparison",
    "OrderKey",
    "parse_filter",
    "parse_order_by",
]

METRIC = "metric"
PARAM = "param"
TAG = "tag"
ATTRIBUTE = "attribute"
DATASET = "dataset"
# Reserved for comparisons on a run's logged models; no prefix produces it yet.
MODEL = "model"

NUMERIC_OPS: tuple[str, ...] = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS: tuple[str, ...] = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
NULL_OPS: tuple[str, ...] = ("IS NULL", "IS NOT NULL")
RUN_STATUSES = frozenset({"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"})

_CACHE_SIZE = 1024
_WHITESPACE = frozenset(" \t\n\r\f\v")
_VALUE_QUOTES = frozenset("'\"")
_KEY_QUOTES = frozenset('`"')
# Characters of a bare (unquoted) key; anything else (spaces, operators, quotes) needs quoting.
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/:$")
_DIGITS = frozenset("0123456789")
# Characters a backslash escapes inside a quoted string or key; other backslashes stay, so LIKE
# patterns such as 'a\_b' reach the database unchanged.
_ESCAPABLE = frozenset("'\"`\\")
_DATASET_KEYS = ("name", "digest", "context")
_ID_OPS = ("=", "!=", "IN", "NOT IN")
_MAX_TOKEN = 40
_EXPECTED_KEY = "a key such as metrics.acc, params.lr, tags.`my tag` or an attribute"
_EXPECTED_OP = "a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL)"


@dataclass(frozen=True)
class Comparison:
    """One AND-ed condition of a filter.

    `kind` is one of "metric", "param", "tag", "attribute", "dataset" ("model" is reserved);
    `key` has its prefix removed, quotes stripped and attribute aliases resolved (`created` ->
    `start_time`); `op` is one of NUMERIC_OPS, STRING_OPS or NULL_OPS, upper-cased; `value` is a
    float for metrics and numeric attributes, a str for strings, a tuple of str for IN / NOT IN
    and None for IS NULL / IS NOT NULL.
    """

    kind: str
    key: str
    op: str
    value: object


@dataclass(frozen=True)
class OrderKey:
    """One order_by item: `kind` is "metric", "param", "tag" or "attribute"; ascending by default."""

    kind: str
    key: str
    ascending: bool


@dataclass(frozen=True)
class _Entity:
    """What one search endpoint accepts: prefixes, attribute spellings and which are numeric."""

    label: str
    prefixes: Mapping[str, str]  # lower-cased prefix -> kind
    attributes: Mapping[str, str]  # accepted spelling -> canonical name, in filters
    order_attributes: Mapping[str, str]  # the same, in order_by
    numeric: frozenset[str]  # canonical names of numeric attributes
    order_kinds: frozenset[str]
    ids: frozenset[str] = frozenset()  # string attributes holding an integer ID (quoted in filters)


def _same(*names: str) -> dict[str, str]:
    return {n: n for n in names}


_METRIC_PREFIXES = {"metrics": METRIC, "metric": METRIC}
_PARAM_PREFIXES = {"params": PARAM, "param": PARAM, "parameters": PARAM, "parameter": PARAM}
_TAG_PREFIXES = {"tags": TAG, "tag": TAG}
_ATTRIBUTE_PREFIXES = {"attributes": ATTRIBUTE, "attribute": ATTRIBUTE, "attr": ATTRIBUTE}

_RUN_ATTRIBUTES = {
    **_same("run_id", "run_name", "status", "start_time", "end_time", "user_id", "artifact_uri",
            "lifecycle_stage", "experiment_id"),
    "run_uuid": "run_id",
    "id": "run_id",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
    "created": "start_time",
    "Created": "start_time",
}
_EXPERIMENT_ATTRIBUTES = _same("name", "experiment_id", "creation_time", "last_update_time")
_LOGGED_MODEL_ATTRIBUTES = {
    **_same("name", "model_id", "model_type", "status", "source_run_id", "creation_timestamp",
            "last_updated_timestamp"),
    "creation_time": "creation_timestamp",
}
_MODEL_TIMES = {
    **_same("creation_timestamp", "last_updated_timestamp"),
    "timestamp": "creation_timestamp",
}
_MODEL_VERSION_ATTRIBUTES = {**_same("name", "version", "run_id", "source_path"), "version_number": "version"}

_ENTITIES: dict[str, _Entity] = {
    "run": _Entity(
        label="runs",
        prefixes={**_METRIC_PREFIXES, **_PARAM_PREFIXES, **_TAG_PREFIXES, **_ATTRIBUTE_PREFIXES,
                  "run": ATTRIBUTE, "datasets": DATASET, "dataset": DATASET},
        attributes=_RUN_ATTRIBUTES,
        order_attributes=_RUN_ATTRIBUTES,
        numeric=frozenset({"start_time", "end_time"}),
        order_kinds=frozenset({METRIC, PARAM, TAG, ATTRIBUTE}),
        ids=frozenset({"experiment_id"}),
    ),
    "experiment": _Entity(
        label="experiments",
        prefixes={**_TAG_PREFIXES, **_ATTRIBUTE_PREFIXES},
        attributes=_EXPERIMENT_ATTRIBUTES,
        order_attributes=_EXPERIMENT_ATTRIBUTES,
        numeric=frozenset({"creation_time", "last_update_time"}),
        order_kinds=frozenset({ATTRIBUTE}),
        ids=frozenset({"experiment_id"}),
    ),
    "logged_model": _Entity(
        label="logged models",
        prefixes={**_METRIC_PREFIXES, **_PARAM_PREFIXES, **_TAG_PREFIXES, **_ATTRIBUTE_PREFIXES},
        attributes=_LOGGED_MODEL_ATTRIBUTES,
        order_attributes=_LOGGED_MODEL_ATTRIBUTES,
        numeric=frozenset({"creation_timestamp", "last_updated_timestamp"}),
        order_kinds=frozenset({METRIC, PARAM, TAG, ATTRIBUTE}),
    ),
    "registered_model": _Entity(
        label="registered models",
        prefixes={**_TAG_PREFIXES, **_ATTRIBUTE_PREFIXES},
        attributes=_same("name"),
        order_attributes={**_same("name"), **_MODEL_TIMES},
        numeric=frozenset({"creation_timestamp", "last_updated_timestamp"}),
        order_kinds=frozenset({ATTRIBUTE}),
    ),
    "model_version": _Entity(
        label="model versions",
        prefixes={**_TAG_PREFIXES, **_ATTRIBUTE_PREFIXES},
        attributes=_MODEL_VERSION_ATTRIBUTES,
        order_attributes={**_MODEL_VERSION_ATTRIBUTES, **_MODEL_TIMES},
        numeric=frozenset({"version", "creation_timestamp", "last_updated_timestamp"}),
        order_kinds=frozenset({ATTRIBUTE}),
    ),
}

_KIND_LABEL = {METRIC: "metric", PARAM: "param", TAG: "tag", ATTRIBUTE: "attribute", DATASET: "dataset"}


def _entity(entity: str) -> _Entity:
    spec = _ENTITIES.get(entity)
    if spec is None:
        raise ValueError(f"Unknown search entity {entity!r}; expected one of {sorted(_ENTITIES)}")
    return spec


def _ends_with_escape(pattern: str) -> bool:
    """Whether a LIKE pattern ends with a lone backslash (an escape with nothing to escape)."""
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1


def _is_key_char(c: str) -> bool:
    return c in _KEY_CHARS or (c > "\x7f" and c.isalnum())


def _q(token: str) -> str:
    """A token quoted for an error message, shortened when long; double quotes when it holds a '."""
    if len(token) > _MAX_TOKEN:
        token = token[: _MAX_TOKEN - 3] + "..."
    return f'"{token}"' if "'" in token else f"'{token}'"


class _Scanner:
    """A cursor over one filter or order_by string; every read advances `pos` past what it read."""

    __slots__ = ("src", "n", "pos", "what", "spec")

    def __init__(self, src: str, what: str, spec: _Entity) -> None:
        self.src = src
        self.n = len(src)
        self.pos = 0
        self.what = what
        self.spec = spec

    # -- errors -----------------------------------------------------------------------------

    def fail(self, detail: str) -> InvalidParameterValue:
        return InvalidParameterValue(f"Invalid {self.what} '{self.src}': {detail}.")

    def token_at(self, p: int) -> str:
        """The token starting at `p`, as the user wrote it, for error messages."""
        s, n = self.src, self.n
        c = s[p]
        if c in _VALUE_QUOTES or c == "`":
            close = s.find(c, p + 1)
            end = n if close < 0 else close + 1
        elif _is_key_char(c):
            end = p + 1
            while end < n and _is_key_char(s[end]):
                end += 1
        else:
            end = p + 1
        return s[p:end]

    def unexpected(self, p: int, expected: str) -> InvalidParameterValue:
        if p >= self.n:
            return self.fail(f"unexpected end of the {self.what} at position {p}; expected {expected}")
        return self.fail(f"unexpected token {_q(self.token_at(p))} at position {p}; expected {expected}")

    # -- lexing -----------------------------------------------------------------------------

    def skip_ws(self) -> None:
        s, n, p = self.src, self.n, self.pos
        while p < n and s[p] in _WHITESPACE:
            p += 1
        self.pos = p

    def at_end(self) -> bool:
        return self.pos >= self.n

    def read_word(self) -> str:
        """A run of bare-key characters without dots (keywords: AND, LIKE, ASC, ...)."""
        s, n, p = self.src, self.n, self.pos
        start = p
        while p < n and s[p] != "." and _is_key_char(s[p]):
            p += 1
        self.pos = p
        return s[start:p]

    def read_quoted(self) -> str:
        """A string in ', " or ` quotes; backslash escapes a quote or backslash, '' is one quote."""
        s, n, start = self.src, self.n, self.pos
        q = s[start]
        chunks: list[str] = []
        i = start + 1
        while True:
            close = s.find(q, i)
            if close < 0:
                raise self.fail(
                    f"unterminated string {_q(s[start:])} at position {start}; expected a closing {q}"
                )
            bs = s.find("\\", i, close)
            if bs >= 0:
                chunks.append(s[i:bs])
                if s[bs + 1] in _ESCAPABLE:
                    chunks.append(s[bs + 1])
                    i = bs + 2
                else:
                    chunks.append("\\")
                    i = bs + 1
                continue
            chunks.append(s[i:close])
            if close + 1 < n and s[close + 1] == q:
                chunks.append(q)
                i = close + 2
                continue
            self.pos = close + 1
            return "".join(chunks)

    def read_number(self) -> float:
        """An int or float literal with optional sign and exponent: 1, -1.5, 1e-3, .5."""
        s, n, start = self.src, self.n, self.pos
        p = start
        if s[p] in "+-":
            p += 1
        digits = 0
        while p < n and s[p] in _DIGITS:
            p += 1
            digits += 1
        if p < n and s[p] == ".":
            p += 1
            while p < n and s[p] in _DIGITS:
                p += 1
                digits += 1
        if digits and p < n and s[p] in "eE":
            e = p + 1
            if e < n and s[e] in "+-":
                e += 1
            exp_start = e
            while e < n and s[e] in _DIGITS:
                e += 1
            if e > exp_start:
                p = e
        if not digits or (p < n and (_is_key_char(s[p]) or s[p] in _VALUE_QUOTES)):
            end = p
            while end < n and (_is_key_char(s[end]) or s[end] in "+-"):
                end += 1
            raise self.fail(
                f"malformed number {_q(s[start:max(end, start + 1)])} at position {start}; "
                "expected a number such as 1, -1.5, 1e-3 or .5, or a quoted string"
            )
        self.pos = p
        return float(s[start:p])

    # -- grammar ----------------------------------------------------------------------------

    def read_key(self, attributes: Mapping[str, str]) -> tuple[str, str, int]:
        """`prefix.name` or a bare attribute; returns (kind, canonical key, start position)."""
        self.skip_ws()
        s, n, start = self.src, self.n, self.pos
        spec = self.spec
        if start < n and s[start] in _KEY_QUOTES:
            first = self.read_quoted()
            quoted = True
        elif start < n and _is_key_char(s[start]) and s[start] != ".":
            first = self.read_word()
            quoted = False
        else:
            raise self.unexpected(start, _EXPECTED_KEY)

        if self.pos < n and s[self.pos] == ".":
            kind = spec.prefixes.get(first.lower())
            if kind is None:
                raise self.fail(
                    f"unknown prefix {_q(first)} at position {start}; expected one of "
                    f"{', '.join(p + '.' for p in spec.prefixes)} or a bare attribute name for {spec.label}"
                )
            self.pos += 1
            key_start = key_pos = self.pos
            if key_start < n and s[key_start] in _KEY_QUOTES:
                key = self.read_quoted()
            else:
                p = key_start
                while p < n and _is_key_char(s[p]):
                    p += 1
                key = s[key_start:p]
                self.pos = p
            if not key:
                raise self.fail(
                    f"empty key after prefix {_q(first + '.')} at position {start}; expected a name "
                    f"such as {first}.my_key or {first}.`my key`"
                )
        else:
            if not quoted and first.lower() in spec.prefixes:
                raise self.fail(
                    f"prefix {_q(first)} at position {start} is not followed by '.' and a key; expected "
                    f"e.g. {first}.my_key"
                )
            kind, key, key_pos = ATTRIBUTE, first, start

        if kind == ATTRIBUTE:
            canonical = attributes.get(key)
            if canonical is None and not quoted and key.upper() in ("AND", "OR"):
                raise self.unexpected(start, _EXPECTED_KEY)
            if canonical is None:
                raise self.fail(
                    f"unknown attribute {_q(key)} at position {key_pos}; expected one of "
                    f"{', '.join(sorted(set(attributes.values())))} for {spec.label}"
                )
            key = canonical
        elif kind == DATASET and key not in _DATASET_KEYS:
            raise self.fail(
                f"unknown dataset key {_q(key)} at position {key_pos}; expected one of "
                f"{', '.join(_DATASET_KEYS)}"
            )
        return kind, key, start

    def read_op(self) -> tuple[str, int]:
        self.skip_ws()
        s, n, p = self.src, self.n, self.pos
        if p >= n:
            raise self.unexpected(p, _EXPECTED_OP)
        c = s[p]
        nxt = s[p + 1] if p + 1 < n else ""
        if c == "=":
            self.pos = p + 1
            return "=", p
        if c == "!" and nxt == "=":
            self.pos = p + 2
            return "!=", p
        if c in "<>":
            if nxt == "=":
                self.pos = p + 2
                return c + "=", p
            self.pos = p + 1
            return c, p
        if c in _KEY_CHARS and c not in _DIGITS and c not in "./-:$":
            word = self.read_word().upper()
            if word in ("LIKE", "ILIKE", "IN"):
                return word, p
            if word == "NOT":
                self.skip_ws()
                at = self.pos
                if self.read_word().upper() == "IN":
                    return "NOT IN", p
                raise self.unexpected(at, "IN after NOT (NOT IN is the only negated operator)")
            if word == "IS":
                self.skip_ws()
                at = self.pos
                second = self.read_word().upper()
                if second == "NULL":
                    return "IS NULL", p
                if second == "NOT":
                    self.skip_ws()
                    at = self.pos
                    if self.read_word().upper() == "NULL":
                        return "IS NOT NULL", p
                    raise self.unexpected(at, "NULL after IS NOT")
                raise self.unexpected(at, "NULL or NOT NULL after IS")
        raise self.unexpected(p, _EXPECTED_OP)

    def read_list(self) -> tuple[str, ...]:
        self.skip_ws()
        s, n = self.src, self.n
        if self.pos >= n or s[self.pos] != "(":
            raise self.unexpected(self.pos, "'(' opening a list of quoted strings, e.g. ('a', 'b')")
        self.pos += 1
        values: list[str] = []
        while True:
            self.skip_ws()
            p = self.pos
            if p >= n or s[p] not in _VALUE_QUOTES:
                what = "a quoted string (lists may not be empty)" if not values else "a quoted string"
                raise self.unexpected(p, what)
            values.append(self.read_quoted())
            self.skip_ws()
            p = self.pos
            if p < n and s[p] == ",":
                self.pos = p + 1
                continue
            if p < n and s[p] == ")":
                self.pos = p + 1
                return tuple(values)
            raise self.unexpected(p, "',' or ')' in a list of quoted strings")

    def read_value(self) -> tuple[object, bool, int]:
        """A quoted string or a number; returns (value, is_string, start position)."""
        self.skip_ws()
        s, p = self.src, self.pos
        if p < self.n:
            c = s[p]
            if c in _VALUE_QUOTES:
                return self.read_quoted(), True, p
            if c in _DIGITS or c in "+-.":
                return self.read_number(), False, p
        raise self.unexpected(p, "a value (a number or a quoted string)")

    def read_comparison(self) -> Comparison:
        spec = self.spec
        kind, key, key_pos = self.read_key(spec.attributes)
        op, op_pos = self.read_op()
        numeric = kind == METRIC or (kind == ATTRIBUTE and key in spec.numeric)
        if kind in (METRIC, PARAM, TAG):
            allowed = (NUMERIC_OPS if numeric else STRING_OPS) + NULL_OPS
        else:
            allowed = NUMERIC_OPS if numeric else STRING_OPS
        if op not in allowed:
            label = "numeric attribute" if kind == ATTRIBUTE and numeric else _KIND_LABEL[kind]
            raise self.fail(
                f"operator '{op}' at position {op_pos} is not valid for {label} {_q(key)}; "
                f"expected one of {', '.join(allowed)}"
            )
        if kind == ATTRIBUTE and key in spec.ids and op not in _ID_OPS:
            raise self.fail(
                f"operator '{op}' at position {op_pos} is not valid for attribute {_q(key)}, an integer "
                f"ID; expected one of {', '.join(_ID_OPS)}"
            )
        if op in NULL_OPS:
            return Comparison(kind, key, op, None)
        if op in ("IN", "NOT IN"):
            list_pos = self.pos
            items = self.read_list()
            if kind == ATTRIBUTE and key in spec.ids:
                items = tuple(self.integer_id(key, item, list_pos) for item in items)
            elif spec.label == "runs" and kind == ATTRIBUTE and key == "status":
                items = tuple(self.run_status(item, list_pos) for item in items)
            return Comparison(kind, key, op, items)

        value, is_string, value_pos = self.read_value()
        raw = self.src[value_pos : self.pos]
        if op in ("LIKE", "ILIKE") and _ends_with_escape(str(value)):
            raise self.fail(
                f"pattern {_q(raw)} at position {value_pos} ends with the escape character '\\'; "
                "expected a character after it (a literal backslash is written twice)"
            )
        if kind == ATTRIBUTE and key in spec.ids:
            return Comparison(kind, key, op, self.integer_id(key, value, value_pos))
        if numeric and is_string:
            raise self.fail(
                f"unexpected string {_q(raw)} at position {value_pos}; {_KIND_LABEL[kind]} {_q(key)} "
                "compares with a number (unquoted), e.g. 0.5"
            )
        if not numeric and not is_string:
            raise self.fail(
                f"unexpected number {_q(raw)} at position {value_pos}; {_KIND_LABEL[kind]} {_q(key)} "
                f"compares with a quoted string: quote it, e.g. '{raw}'"
            )
        if spec.label == "runs" and kind == ATTRIBUTE and key == "status" and op in ("=", "!="):
            value = self.run_status(value, value_pos, raw)
        return Comparison(kind, key, op, value)

    def run_status(self, value: object, pos: int, raw: str | None = None) -> str:
        """A run status compared by = or IN, upper-cased: `status IN ('running')` means `= 'RUNNING'`."""
        status = str(value).upper()
        if status not in RUN_STATUSES:
            raise self.fail(
                f"unknown run status {_q(raw or str(value))} at position {pos}; expected one of "
                f"{', '.join(sorted(RUN_STATUSES))}"
            )
        return status

    def integer_id(self, key: str, value: object, pos: int) -> str:
        """An ID attribute's value in its canonical spelling ('007' -> '7'); a non-integer is refused
        here, as MLflow refuses it, rather than reaching the database."""
        text = str(value).strip()
        if not (text.isascii() and text.lstrip("-").isdigit()):
            raise self.fail(
                f"Invalid experiment ID {_q(str(value))} at position {pos}. Experiment ID must be a valid "
                f"integer (attribute {_q(key)} compares with a quoted integer, e.g. '1')"
                if key == "experiment_id" else
                f"invalid {key} {_q(str(value))} at position {pos}; expected a quoted integer, e.g. '1'"
            )
        return str(int(text))

    def parse_filter(self) -> tuple[Comparison, ...]:
        out = [self.read_comparison()]
        while True:
            self.skip_ws()
            if self.at_end():
                return tuple(out)
            p = self.pos
            word = self.read_word().upper()
            if word == "AND":
                out.append(self.read_comparison())
                continue
            if word == "OR":
                raise self.fail(
                    f"unsupported token 'OR' at position {p}; OR is not supported, "
                    "comparisons can only be joined with AND"
                )
            raise self.unexpected(p, "AND or the end of the filter")

    def parse_order_item(self) -> OrderKey:
        spec = self.spec
        kind, key, key_pos = self.read_key(spec.order_attributes)
        if kind not in spec.order_kinds:
            raise self.fail(
                f"cannot order {spec.label} by {_KIND_LABEL[kind]} {_q(self.src[key_pos:self.pos])} "
                f"at position {key_pos}; expected "
                f"a key of kind {', '.join(sorted(spec.order_kinds))}"
            )
        self.skip_ws()
        ascending = True
        if not self.at_end():
            p = self.pos
            word = self.read_word().upper()
            if word not in ("ASC", "DESC"):
                raise self.unexpected(p, "ASC, DESC or the end of the clause")
            ascending = word == "ASC"
            self.skip_ws()
            if not self.at_end():
                raise self.unexpected(self.pos, "the end of the clause after " + word)
        return OrderKey(kind, key, ascending)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parse_filter_cached(filter_string: str, entity: str) -> tuple[Comparison, ...]:
    scanner = _Scanner(filter_string, "filter", _entity(entity))
    scanner.skip_ws()
    if scanner.at_end():
        return ()
    return scanner.parse_filter()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parse_order_item_cached(item: str, entity: str) -> OrderKey:
    return _Scanner(item, "order_by clause", _entity(entity)).parse_order_item()


def parse_filter(filter_string: str | None, entity: str = "run") -> list[Comparison]:
    """Parse an MLflow filter string into its AND-ed comparisons.

    Args:
        filter_string: e.g. ``"metrics.acc > 0.9 and params.opt = 'adam'"``; None or blank -> [].
        entity: which search it is for: "run", "experiment", "logged_model", "registered_model"
            or "model_version"; it decides the valid prefixes and attributes.

    Returns:
        The comparisons in the order written (a fresh list; the parsed tuple is cached).

    Raises:
        InvalidParameterValue: naming the character position, the offending token and what was
            expected.
    """
    if not filter_string:
        return []
    if not isinstance(filter_string, str):
        raise InvalidParameterValue(
            f"Invalid filter {filter_string!r}: expected a string, got {type(filter_string).__name__}."
        )
    return list(_parse_filter_cached(filter_string, entity))


def parse_order_by(order_by: list[str] | None, entity: str = "run") -> list[OrderKey]:
    """Parse order_by items such as ``"metrics.acc DESC"`` or ``"start_time"`` (ascending by default).

    Args:
        order_by: the items, most significant first; None or [] -> [].
        entity: as for `parse_filter`.

    Raises:
        InvalidParameterValue: naming the character position, the offending token and what was
            expected.
    """
    if not order_by:
        return []
    out = []
    for item in order_by:
        if not isinstance(item, str):
            raise InvalidParameterValue(
                f"Invalid order_by clause {item!r}: expected a string such as 'metrics.acc DESC', "
                f"got {type(item).__name__}."
            )
        out.append(_parse_order_item_cached(item, entity))
    return out
