"""The model registry as the UI sees it, when this installation has one.

The registry may live on the tracking store itself or only on `Client`; either way the UI asks
with MLflow's method names and shows registry pages only when they exist.
"""

from __future__ import annotations

from typing import Any

_METHODS = ("search_registered_models", "get_registered_model")


def registry(ctx: Any) -> Any | None:
    """An object with MLflow's registry methods over this server's store, or None."""
    store = ctx.store
    if all(hasattr(store, m) for m in _METHODS):
        return store
    try:
        from mltrail.client import Client
    except ImportError:  # pragma: no cover
        return None
    if not all(hasattr(Client, m) for m in _METHODS):
        return None

    class _ServerClient(Client):
        """A Client reading through the server's own store (same process, same database)."""

        @property
        def store(self) -> Any:
            return store

    return _ServerClient(ctx.settings.backend_store_uri or "")


def search_models(reg: Any, max_results: int = 100, page_token: str | None = None) -> tuple[list[Any], str | None]:
    kwargs: dict[str, Any] = {"max_results": max_results}
    if page_token:
        kwargs["page_token"] = page_token
    page = reg.search_registered_models(**kwargs)
    return list(page), getattr(page, "token", None)


def versions_of(reg: Any, name: str) -> list[Any]:
    """Every version of a registered model, newest first."""
    if hasattr(reg, "search_model_versions"):
        quoted = name.replace("'", "\\'")
        found = list(reg.search_model_versions(f"name = '{quoted}'"))
    else:
        found = list(getattr(reg.get_registered_model(name), "latest_versions", None) or [])
    return sorted(found, key=lambda v: _int(getattr(v, "version", 0)), reverse=True)


def aliases_of(model: Any) -> dict[str, str]:
    """alias -> version, whatever shape the entity keeps them in (dict or list of pairs)."""
    raw = getattr(model, "aliases", None) or {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out = {}
    for a in raw:
        alias = getattr(a, "alias", None) or (a.get("alias") if isinstance(a, dict) else None)
        version = getattr(a, "version", None) or (a.get("version") if isinstance(a, dict) else None)
        if alias is not None:
            out[str(alias)] = str(version)
    return out


def version_aliases(aliases: dict[str, str], version: Any) -> list[str]:
    return sorted(a for a, v in aliases.items() if str(v) == str(version))


def tags_of(entity: Any) -> dict[str, str]:
    raw = getattr(entity, "tags", None) or {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {str(getattr(t, "key", "")): str(getattr(t, "value", "")) for t in raw}


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0
