"""Every route of the tracking server has an authorization rule, and every rule names a route.

The app is built as `mltrail server --auth` builds it (with the UI, and once more with each
optional feature switched on, so routes that only exist behind an option are enumerated too);
its routes are walked, Mounts included, and each (method, path) must have a rule in
`mltrail.server.auth.rules.RULES`. A rule whose route no app variant declares fails as well.
"""

from __future__ import annotations

import dataclasses

import pytest
from server_fixture import server_settings
from starlette.routing import BaseRoute, Mount, Route

from mltrail.server.app import create_app
from mltrail.server.auth import rules
from mltrail.server.auth.authorize import GuardedRoute
from mltrail.server.settings import ServerSettings

ADMIN = ("admin", "admin-password-0123")


def _walk(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, str, Route]]:
    out: list[tuple[str, str, Route]] = []
    for route in routes:
        if isinstance(route, Mount):
            out += _walk(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    out.append((method, prefix + route.path, route))
        else:  # a WebSocketRoute or anything else would escape the rule table
            raise AssertionError(f"route {route!r} is of a kind the rule table does not cover")
    return out


STATIC_PREFIX = "/under"


def _variants(tmp_path) -> list[dict]:
    """The base app (auth + UI), the app without UI, one app per optional boolean feature, the
    Prometheus exporter (a directory), and the app under a static prefix."""
    base = {"auth": True, "ui": True}
    out = [base, {**base, "ui": False}, {**base, "static_prefix": STATIC_PREFIX}]
    defaults = ServerSettings()
    for f in dataclasses.fields(ServerSettings):
        if f.name not in base and getattr(defaults, f.name) is False:
            out.append({**base, f.name: True})
    if hasattr(defaults, "expose_prometheus"):
        out.append({**base, "expose_prometheus": str(tmp_path / "prometheus")})
    return out


def _app_routes(overrides: dict, app) -> list[tuple[str, str, Route]]:
    """The app's routes, with paths as the rule table names them (without the static prefix)."""
    found = _walk(list(app.routes))
    prefix = overrides.get("static_prefix")
    if prefix:
        assert all(p.startswith(prefix) for _, p, _ in found)
        found = [(m, p[len(prefix):] or "/", r) for m, p, r in found]
    return found


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    built = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLTRAIL_ADMIN_USERNAME", ADMIN[0])
        mp.setenv("MLTRAIL_ADMIN_PASSWORD", ADMIN[1])
        for i, overrides in enumerate(_variants(tmp_path_factory.mktemp("prometheus"))):
            tmp = tmp_path_factory.mktemp(f"rules-{i}")
            try:
                built.append((overrides, create_app(server_settings(tmp, **overrides))))
            except Exception as e:  # noqa: BLE001 - an option that needs more settings cannot be built alone
                if overrides in ({"auth": True, "ui": True}, {"auth": True, "ui": False}):
                    raise
                print(f"skipped variant {overrides}: {e}")
    return built


def test_every_route_has_a_rule(apps):
    missing = []
    for overrides, app in apps:
        for method, path, _ in _app_routes(overrides, app):
            if rules.rule_for(method, path) is None:
                missing.append(f"{method} {path} (app {overrides})")
    assert not missing, "routes without an authorization rule:\n" + "\n".join(sorted(set(missing)))


def test_every_route_is_guarded_with_auth_on(apps):
    unguarded = [f"{m} {p}" for overrides, app in apps for m, p, route in _app_routes(overrides, app)
                 if not isinstance(route.app, GuardedRoute)]
    assert not unguarded, "routes not behind their rule:\n" + "\n".join(sorted(set(unguarded)))


def test_every_rule_names_a_route(apps):
    declared = {f"{m} {p}" for overrides, app in apps for m, p, _ in _app_routes(overrides, app)}
    stale = sorted(set(rules.RULES) - declared)
    assert not stale, "rules naming no route of any app variant:\n" + "\n".join(stale)


def test_resource_rules_name_known_locators():
    from mltrail.server.auth.locate import LOCATORS

    unknown = [f"{k}: {r.locate}" for k, r in rules.RULES.items() if r.is_resource and r.locate not in LOCATORS]
    assert not unknown, "resource rules with an unknown locator:\n" + "\n".join(unknown)


def test_without_auth_no_route_is_wrapped(tmp_path):
    app = create_app(server_settings(tmp_path, ui=True))
    assert not any(isinstance(route.app, GuardedRoute) for _, _, route in _walk(list(app.routes)))
