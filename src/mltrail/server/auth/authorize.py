"""Authorization: the check that runs before every route's handler when the server runs with `--auth`.

`guard_routes` wraps every route of the app (Mounts included) with its rule from `rules.RULES`.
The wrapper answers anonymous callers of a non-public route (401 with `WWW-Authenticate`, or a
redirect to the login page for a UI page) and checks PUBLIC / AUTHENTICATED / ADMIN itself.
Resource rules need the request's fields: a raw or UI route is checked in the wrapper (path and
query parameters); a JSON route gets a `Gate` in its scope, which `_http.json_endpoint` runs once
the body is parsed (`Gate.check`), and again after the handler (`Gate.after`: MANAGE for the
creator, grants moved on a rename). Without `--auth` nothing is wrapped: a request costs nothing.

Effective permission: admin -> MANAGE; else the user's direct grant; else the best of their
roles' matching patterns; else the server's default. Searches ask `Gate.readable` for a
`Readable` constraint that the store applies in its query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from mltrail.errors import UNAUTHENTICATED, MltrailException, PermissionDenied, ResourceDoesNotExist
from mltrail.server._http import GATE_KEY, Call, error_response, internal_error, is_json_endpoint
from mltrail.server.auth.entities import Identity, User
from mltrail.server.auth.levels import MANAGE, PRIORITY, Level, level
from mltrail.server.auth.locate import LOCATORS, CallFields, Fields, RequestFields, Target
from mltrail.server.auth.rules import (
    ADMIN,
    AUTHENTICATED,
    DROP_GRANTS,
    EXPERIMENT,
    GRANT_CREATOR,
    MOVE_GRANTS,
    PUBLIC,
    REGISTERED_MODEL,
    SELF_OR_ADMIN,
    Rule,
    rule_for,
)
from mltrail.server.context import ServerContext
from mltrail.store.readable import Readable

if TYPE_CHECKING:
    from mltrail.server.auth.store import AuthStore

DENIED = "Permission denied"  # MLflow's words
NOT_SIGNED_IN = ("You are not authenticated. Sign in with a username and password (basic auth) or send a "
                 "token (Authorization: Bearer <token>).")
LOGIN_PATH = "/login"
_CAPABILITY: dict[str, Callable[[Level], bool]] = {
    "READ": lambda lv: lv.can_read, "USE": lambda lv: lv.can_use, "EDIT": lambda lv: lv.can_update,
    "MANAGE": lambda lv: lv.can_manage,
}


class Unauthenticated(MltrailException):
    """A non-public route called without credentials."""

    error_code = UNAUTHENTICATED


def permits(held: Level, needed: str) -> bool:
    """Whether `held` allows what the level called `needed` allows (READ, USE, EDIT, MANAGE)."""
    return _CAPABILITY[needed](held)


class Authorizer:
    """Effective permissions of one server's callers, from its AuthStore and default permission."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.default = level(ctx.settings.auth_default_permission)

    @property
    def auth(self) -> AuthStore:
        if self.ctx.auth is None:  # create_app builds the AuthStore whenever settings.auth is on
            raise MltrailException("This server has no account store: it runs without --auth.")
        return self.ctx.auth

    def permission(self, identity: Identity, resource_type: str, resource_id: str) -> Level:
        """The caller's effective level on one resource."""
        return self.user_permission(identity.user, resource_type, resource_id)

    def user_permission(self, user: User, resource_type: str, resource_id: str) -> Level:
        """A user's effective level on one resource: admin, direct grant, best role pattern, default."""
        if user.is_admin:
            return MANAGE
        grants = self.auth.grants_for(user.id)
        direct = grants.direct.get((resource_type, resource_id))
        if direct is not None:
            return level(direct)
        matched = [p for rt, pattern, p in grants.patterns if rt == resource_type and fnmatchcase(resource_id, pattern)]
        if matched:
            return level(max(matched, key=lambda n: PRIORITY.get(n, 0)))
        return self.default

    def readable(self, identity: Identity, resource_type: str) -> Readable | None:
        """What the caller may read of one resource type, for a search (None: everything, an admin)."""
        if identity.user.is_admin:
            return None
        grants = self.auth.grants_for(identity.user.id)
        granted: set[str] = set()
        refused: set[str] = set()
        for (rt, rid), name in grants.direct.items():
            if rt == resource_type:
                (granted if level(name).can_read else refused).add(rid)
        patterns = tuple((pattern, level(name).can_read) for rt, pattern, name in grants.patterns
                         if rt == resource_type)
        return Readable(frozenset(granted), frozenset(refused), patterns, self.default.can_read)

    def gate(self, rule: Rule, identity: Identity | None) -> Gate:
        """The gate for one request: raises Unauthenticated / PermissionDenied where the rule alone decides."""
        if rule == PUBLIC or rule.kind == PUBLIC.kind:
            return Gate(self, rule, identity)
        if identity is None:
            raise Unauthenticated(NOT_SIGNED_IN)
        if rule.kind == ADMIN.kind and not identity.user.is_admin:
            raise PermissionDenied(DENIED)
        return Gate(self, rule, identity)

    def check_targets(self, rule: Rule, identity: Identity, targets: list[Target]) -> None:
        for target in targets:
            held = self.permission(identity, target.resource_type, target.resource_id)
            if permits(held, target.level or rule.level):
                continue
            if target.missing and not held.can_read:  # by name: refused exactly as a missing one
                raise ResourceDoesNotExist(target.missing)
            raise PermissionDenied(DENIED)


@dataclass
class Gate:
    """One request's authorization: its rule and its caller (None on a public route)."""

    authorizer: Authorizer
    rule: Rule
    identity: Identity | None

    def check_fields(self, fields: Fields) -> None:
        """The part of the rule that needs the request's fields: its resources, or SELF_OR_ADMIN's username."""
        rule, identity = self.rule, self.identity
        if identity is None or identity.user.is_admin:
            return
        if rule.kind == SELF_OR_ADMIN.kind:
            username = fields.one("username")
            if username is not None and username != identity.user.username:
                raise PermissionDenied(DENIED)
        elif rule.is_resource:
            targets = LOCATORS[rule.locate](fields, self.authorizer.ctx.store)
            self.authorizer.check_targets(rule, identity, targets)

    def check(self, call: Call) -> None:
        """A JSON route's check, once its body is parsed (runs on the thread pool)."""
        self.check_fields(CallFields(call.data, call.path_params, call.items))

    def after(self, call: Call, result: Any) -> None:
        """What the rule asks for once the handler succeeded: MANAGE for the creator, grants moved or dropped."""
        after, identity, auth = self.rule.after, self.identity, self.authorizer.auth
        if not after or identity is None or not isinstance(result, dict):
            return
        if after == GRANT_CREATOR:
            if result.get("experiment_id") is not None:
                auth.set_permission(identity.user.username, EXPERIMENT, str(result["experiment_id"]), MANAGE.name)
            model = result.get("registered_model")
            if isinstance(model, dict) and model.get("name"):
                auth.set_permission(identity.user.username, REGISTERED_MODEL, str(model["name"]), MANAGE.name)
        elif after == MOVE_GRANTS:
            model = result.get("registered_model")
            old = call.data.get("name")
            if isinstance(model, dict) and model.get("name") and old and old != model["name"]:
                auth.rename_resource(REGISTERED_MODEL, str(old), str(model["name"]))
        elif after == DROP_GRANTS and call.data.get("name"):
            auth.forget_resource(REGISTERED_MODEL, str(call.data["name"]))

    def readable(self, resource_type: str) -> Readable | None:
        """The search constraint for this caller (None: no constraint)."""
        if self.identity is None:
            return Readable()  # a public route that searches shows nothing to an anonymous caller
        return self.authorizer.readable(self.identity, resource_type)


def effective_permission(ctx: ServerContext, user: User, resource_type: str, resource_id: str) -> Level:
    """A user's effective level on one resource of this server (admin, grant, role pattern, default)."""
    return Authorizer(ctx).user_permission(user, resource_type, resource_id)


def readable_of(request: Request, resource_type: str) -> Readable | None:
    """What the caller of this request may read of one resource type (None when auth is off, or an admin)."""
    gate = request.scope.get(GATE_KEY)
    return gate.readable(resource_type) if isinstance(gate, Gate) else None


def _identity(scope: dict[str, Any]) -> Identity | None:
    state = scope.get("state")
    found = state.get("identity") if isinstance(state, dict) else None
    return found if isinstance(found, Identity) else None


def _ui_error(scope: dict[str, Any], status: int, message: str) -> Response:
    """An error page from the UI's templates when the route belongs to the UI app."""
    app = scope.get("app")
    ui = getattr(getattr(app, "state", None), "ui", None)
    if ui is not None:
        response: Response = ui.error_page(Request(scope), status, message)
        return response
    return HTMLResponse(f"<h1>{status}</h1><p>{message}</p>", status_code=status)


class GuardedRoute:
    """A route's ASGI app behind its rules (one per method)."""

    def __init__(self, app: Any, authorizer: Authorizer, rules: dict[str, Rule], json_route: bool,
                 page: bool) -> None:
        self.app = app
        self.authorizer = authorizer
        self.rules = rules
        self.json_route = json_route
        self.page = page

    def _refusal(self, scope: dict[str, Any], exc: MltrailException) -> Response:
        if isinstance(exc, Unauthenticated):
            if self.page:
                root, path = scope.get("root_path", ""), scope.get("path", "")
                if not path.startswith(root):  # Starlette keeps the mount's prefix in "path" (0.35+)
                    path = root + path
                query = scope.get("query_string", b"").decode("latin-1")
                target = path + ("?" + query if query else "")
                return RedirectResponse(f"{scope.get('root_path', '')}{LOGIN_PATH}?next={quote(target, safe='')}",
                                        status_code=302)
            response = error_response(exc)
            response.headers["WWW-Authenticate"] = 'Basic realm="mltrail"'
            return response
        if self.page:
            return _ui_error(scope, exc.http_status, exc.message)
        return error_response(exc)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method = scope.get("method", "GET")
        rule = self.rules.get("GET" if method == "HEAD" else method)
        try:
            if rule is None:  # fail closed: a method without a rule is refused
                raise PermissionDenied(f"{DENIED}: no authorization rule for {method} {scope.get('path')}.")
            gate = self.authorizer.gate(rule, _identity(scope))
            scope[GATE_KEY] = gate
            if not self.json_route and gate.identity is not None and (rule.is_resource
                                                                       or rule.kind == SELF_OR_ADMIN.kind):
                fields = RequestFields(scope.get("path_params") or {}, Request(scope).query_params)
                await run_in_threadpool(gate.check_fields, fields)
        except MltrailException as e:
            await self._refusal(scope, e)(scope, receive, send)
            return
        except Exception as e:  # noqa: BLE001 - a failed check (lost database) is the one error shape
            await internal_error(e)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _methods(route: Route) -> list[str]:
    return sorted(m for m in (route.methods or {"GET"}) if m != "HEAD") or ["GET"]


def guard_routes(routes: list[BaseRoute], ctx: ServerContext, prefix: str = "", in_ui: bool = False,
                 authorizer: Authorizer | None = None) -> None:
    """Put every route (Mounts' routes included) behind its rules, in place."""
    authorizer = authorizer or Authorizer(ctx)
    for route in routes:
        if isinstance(route, Mount):
            guard_routes(list(route.routes), ctx, prefix + route.path, True, authorizer)
        elif isinstance(route, Route):
            path = prefix + route.path
            rules = {m: r for m in _methods(route) if (r := rule_for(m, path)) is not None}
            page = in_ui and not route.path.startswith("/ui/")
            guarded = GuardedRoute(route.app, authorizer, rules, is_json_endpoint(route.endpoint), page)
            route.app = guarded  # type: ignore[assignment]  # an ASGI app, as Route.app is


__all__ = ["AUTHENTICATED", "Authorizer", "Gate", "GuardedRoute", "Unauthenticated", "effective_permission",
           "guard_routes", "permits", "readable_of"]
