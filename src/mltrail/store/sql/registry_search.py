"""Loading registry entities in bulk, and search_registered_models / search_model_versions in SQL.

Filters use MLflow's grammar (`mltrail.store.search_grammar`): `name` (and for versions `run_id`,
`source_path`, `version_number`) plus `tags.<key>`, each tag condition an EXISTS on the tag
table. As in MLflow, prompts (models tagged `mlflow.prompt.is_prompt = 'true'`) are left out
unless the filter asks for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, exists, func, not_, select

from mltrail.entities import ModelVersion, PagedList, RegisteredModel
from mltrail.errors import InvalidParameterValue
from mltrail.store._paging import check_max_results, decode_token, encode_token
from mltrail.store.readable import Readable
from mltrail.store.registry_base import (
    SEARCH_MODEL_VERSIONS_DEFAULT,
    SEARCH_MODEL_VERSIONS_MAX,
    SEARCH_REGISTERED_MODELS_DEFAULT,
    SEARCH_REGISTERED_MODELS_MAX,
)
from mltrail.store.sql import registry_schema as r
from mltrail.store.sql.comparisons import sql_compare, sql_number
from mltrail.store.sql.readable_sql import readable_condition

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_TAG_OPS = ("=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL")
_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
_DEFAULT_VERSION_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]


def _queries_prompts(comparisons: Sequence[Any]) -> bool:
    for c in comparisons:
        if c.kind == "tag" and c.key == IS_PROMPT_TAG and isinstance(c.value, str):
            return (c.op == "=" and c.value.lower() == "true") or (c.op == "!=" and c.value.lower() == "false")
    return False


def _tag_condition(tags: Any, owner: list[Any], key: str, op: str, value: Any) -> Any:
    """EXISTS (a tag row of the owner with this key whose value matches), or its absence for IS NULL."""
    if op not in _TAG_OPS:
        raise InvalidParameterValue(
            f"Invalid comparator {op!r} for tag '{key}': expected one of {', '.join(_TAG_OPS)}.")
    match = [*owner, tags.c.key == key]
    if op == "IS NULL":
        return not_(exists(select(tags.c.key).where(and_(*match))))
    if op != "IS NOT NULL":
        match.append(sql_compare(tags.c.value, op, value))
    return exists(select(tags.c.key).where(and_(*match)))


def _prompt_exclusion(tags: Any, owner_col: Any) -> Any:
    return not_(exists(select(tags.c.rm_id).where(and_(
        tags.c.rm_id == owner_col, tags.c.key == IS_PROMPT_TAG, func.lower(tags.c.value) == "true"))))


def _page(rows: list[Any], offset: int, max_results: int) -> tuple[list[Any], str | None]:
    if len(rows) > max_results:
        return rows[:max_results], encode_token(offset + max_results)
    return rows, None


class RegistrySearchMixin:
    """Entity loading and the two searches; mixed into the SQL store with RegistryMixin."""

    def _read(self) -> Any:
        raise NotImplementedError

    # ---------------------------------------------------------------- loading
    def _load_versions(self, conn: Connection, rows: Sequence[Any], names: dict[int, str]) -> list[ModelVersion]:
        """ModelVersion entities for `model_versions` rows, tags and aliases fetched in bulk."""
        out = [ModelVersion(
            name=names[row.rm_id], version=int(row.version), creation_timestamp=row.creation_time,
            last_updated_timestamp=row.last_updated_time, description=row.description, user_id=row.user_id,
            current_stage=row.current_stage, source=row.source, run_id=row.run_id, status=row.status,
            status_message=row.status_message, run_link=row.run_link, model_id=row.model_id) for row in rows]
        by_key = {(row.rm_id, row.version): mv for row, mv in zip(rows, out, strict=True)}
        rm_ids = sorted({row.rm_id for row in rows})
        for start in range(0, len(rm_ids), 500):
            chunk = rm_ids[start:start + 500]
            tags, al = r.model_version_tags, r.registered_model_aliases
            for tag in conn.execute(select(tags).where(tags.c.rm_id.in_(chunk))):
                mv = by_key.get((tag.rm_id, tag.version))
                if mv is not None:
                    mv.tags[tag.key] = tag.value
            for a in conn.execute(select(al).where(al.c.rm_id.in_(chunk)).order_by(al.c.alias)):
                mv = by_key.get((a.rm_id, a.version))
                if mv is not None:
                    mv.aliases.append(a.alias)
        return out

    def _load_registered_models(self, conn: Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
        """RegisteredModel entities with tags, aliases and the newest version of each stage."""
        models = {row.id: RegisteredModel(
            name=row.name, creation_timestamp=row.creation_time, last_updated_timestamp=row.last_updated_time,
            description=row.description) for row in rows}
        names = {row.id: row.name for row in rows}
        ids = list(models)
        mv = r.model_versions
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for tag in conn.execute(select(r.registered_model_tags).where(r.registered_model_tags.c.rm_id.in_(chunk))):
                models[tag.rm_id].tags[tag.key] = tag.value
            al = r.registered_model_aliases
            for a in conn.execute(select(al).where(al.c.rm_id.in_(chunk)).order_by(al.c.alias)):
                models[a.rm_id].aliases[a.alias] = str(a.version)
            latest = (select(mv.c.rm_id, func.max(mv.c.version).label("version"))
                      .where(mv.c.rm_id.in_(chunk)).group_by(mv.c.rm_id, mv.c.current_stage).subquery())
            version_rows = conn.execute(select(mv).join(latest, and_(
                mv.c.rm_id == latest.c.rm_id, mv.c.version == latest.c.version)).order_by(mv.c.version)).all()
            for row, version in zip(version_rows, self._load_versions(conn, version_rows, names), strict=True):
                models[row.rm_id].latest_versions.append(version)
        return [models[row.id] for row in rows]

    # ---------------------------------------------------------------- searches
    def search_registered_models(self, filter_string: str | None = None,
                                 max_results: int = SEARCH_REGISTERED_MODELS_DEFAULT,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None,
                                 readable: Readable | None = None) -> PagedList[RegisteredModel]:
        """Registered models; with `readable`, only those whose names it allows (before paging)."""
        from mltrail.store.search_grammar import parse_filter, parse_order_by

        comparisons = parse_filter(filter_string, entity="registered_model")
        order = parse_order_by(list(order_by or []), entity="registered_model")
        max_results = check_max_results(max_results, limit=SEARCH_REGISTERED_MODELS_MAX,
                                        default=SEARCH_REGISTERED_MODELS_DEFAULT)
        offset = decode_token(page_token)
        rm, tags = r.registered_models, r.registered_model_tags
        prompts = _queries_prompts(comparisons)
        cond: list[Any] = [] if prompts else [_prompt_exclusion(tags, rm.c.id)]
        for c in comparisons:
            if c.kind == "tag":
                if c.key == IS_PROMPT_TAG and not prompts:
                    continue
                cond.append(_tag_condition(tags, [tags.c.rm_id == rm.c.id], c.key, c.op, c.value))
            elif c.key == "name" and c.op in _STRING_OPS:
                cond.append(sql_compare(rm.c.name, c.op, c.value))
            else:
                raise InvalidParameterValue(
                    f"Invalid filter on registered models: {c.key} {c.op}. Expected name (=, !=, LIKE, ILIKE, IN, "
                    "NOT IN) or tags.<key> (=, !=, LIKE, ILIKE).")
        columns = {"name": rm.c.name, "creation_timestamp": rm.c.creation_time,
                   "last_updated_timestamp": rm.c.last_updated_time}
        clauses = _order_clauses(order, columns, "registered models")
        if "name" not in {k.key for k in order}:
            clauses.append(rm.c.name.asc())
        with self._read() as conn:
            if readable is not None:
                cond.append(readable_condition(conn, readable, rm.c.name))
            query = select(rm).where(and_(*cond)).order_by(*clauses).limit(max_results + 1).offset(offset)
            rows, token = _page(list(conn.execute(query).all()), offset, max_results)
            return PagedList(self._load_registered_models(conn, rows), token)

    def search_model_versions(self, filter_string: str | None = None,
                              max_results: int = SEARCH_MODEL_VERSIONS_DEFAULT,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None,
                              readable: Readable | None = None) -> PagedList[ModelVersion]:
        """Model versions; with `readable`, only of registered models whose names it allows (before paging)."""
        from mltrail.store.search_grammar import parse_filter, parse_order_by

        comparisons = parse_filter(filter_string, entity="model_version")
        order = parse_order_by(list(order_by or _DEFAULT_VERSION_ORDER), entity="model_version")
        max_results = check_max_results(max_results, limit=SEARCH_MODEL_VERSIONS_MAX,
                                        default=SEARCH_MODEL_VERSIONS_DEFAULT)
        offset = decode_token(page_token)
        rm, mv = r.registered_models, r.model_versions
        tags, rm_tags = r.model_version_tags, r.registered_model_tags
        prompts = _queries_prompts(comparisons)
        cond: list[Any] = [] if prompts else [_prompt_exclusion(rm_tags, mv.c.rm_id)]
        strings = {"name": rm.c.name, "run_id": mv.c.run_id, "source_path": mv.c.source}
        for c in comparisons:
            if c.kind == "tag":
                if c.key == IS_PROMPT_TAG and not prompts:
                    continue
                owner = [tags.c.rm_id == mv.c.rm_id, tags.c.version == mv.c.version]
                cond.append(_tag_condition(tags, owner, c.key, c.op, c.value))
            elif c.key == "version" and c.op in _NUMERIC_OPS:
                if not float(c.value).is_integer():  # type: ignore[arg-type]
                    raise InvalidParameterValue(f"Invalid value for numeric attribute 'version_number': {c.value!r}.")
                cond.append(sql_compare(mv.c.version, c.op, sql_number(c.value)))
            elif c.key in strings and c.op in _STRING_OPS and not (c.key == "source_path" and "IN" in c.op):
                cond.append(sql_compare(strings[c.key], c.op, c.value))
            else:
                raise InvalidParameterValue(
                    f"Invalid filter on model versions: {c.key} {c.op}. Expected name, run_id (=, !=, LIKE, ILIKE, "
                    "IN, NOT IN), source_path (=, !=, LIKE, ILIKE), version_number (=, !=, <, <=, >, >=) or "
                    "tags.<key>.")
        columns = {"name": rm.c.name, "version": mv.c.version, "creation_timestamp": mv.c.creation_time,
                   "last_updated_timestamp": mv.c.last_updated_time, "run_id": mv.c.run_id,
                   "source_path": mv.c.source}
        clauses = _order_clauses(order, columns, "model versions")
        keys = {k.key for k in order}
        if "name" not in keys:
            clauses.append(rm.c.name.asc())
        if "version" not in keys:
            clauses.append(mv.c.version.desc())
        with self._read() as conn:
            if readable is not None:
                cond.append(readable_condition(conn, readable, rm.c.name))
            query = (select(mv).join(rm, rm.c.id == mv.c.rm_id).where(and_(*cond)).order_by(*clauses)
                     .limit(max_results + 1).offset(offset))
            rows, token = _page(list(conn.execute(query).all()), offset, max_results)
            rm_ids = sorted({row.rm_id for row in rows})
            names = {i: n for i, n in conn.execute(select(rm.c.id, rm.c.name).where(rm.c.id.in_(rm_ids)))} \
                if rm_ids else {}
            return PagedList(self._load_versions(conn, rows, names), token)


def _order_clauses(order: Sequence[Any], columns: dict[str, Any], what: str) -> list[Any]:
    clauses, seen = [], set()
    for key in order:
        col = columns.get(key.key)
        if key.kind != "attribute" or col is None:
            raise InvalidParameterValue(
                f"Invalid order_by key {key.key!r} for {what}: expected one of {', '.join(sorted(columns))}.")
        if key.key in seen:
            raise InvalidParameterValue(f"`order_by` contains duplicate fields: {key.key!r}.")
        seen.add(key.key)
        clauses.append(col.asc() if key.ascending else col.desc())
    return clauses
