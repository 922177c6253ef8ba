"""The UI's account pages: login and logout, the account page (password, API tokens), the admin
pages (users, grants, roles, audit log) and "shared with" on experiment and registered-model pages.

`routes(ui)` returns the routes; the UI app (`server/ui/_app.py`) mounts them before its catch-all,
so they live under the UI's mount point and render with the UI's templates (`auth_*.html`). Pages
are plain functions run on the thread pool, like the UI's own. Every state change is a POST of a
plain HTML form carrying the session's CSRF token (checked by `csrf.CsrfMiddleware` before the
handler runs); after a change the browser is redirected (303) to a page that says what happened,
except a new token, whose secret is shown once on the answer to the POST and stored nowhere.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mltrail.errors import InvalidParameterValue, MltrailException, PermissionDenied, ResourceDoesNotExist
from mltrail.server.auth import identity_of, ratelimit, sessions
from mltrail.server.auth.authorize import Authorizer, Unauthenticated
from mltrail.server.auth.csrf import csrf_token_of, end_session, is_https
from mltrail.server.auth.entities import Identity, Role, User
from mltrail.server.auth.levels import EXPERIMENT, LEVELS, REGISTERED_MODEL, RESOURCE_TYPES, level
from mltrail.server.auth.store import AuthStore, current_actor
from mltrail.server.context import ServerContext

AUDIT_PAGE = 50
MAX_FORM_BYTES = 64 * 1024
MAX_TOKEN_DAYS = 3650
# Fixed notices a redirect may name (`?ok=...`): the page never echoes text from the URL.
NOTICES = {
    "password": "Your password was changed.",
    "revoked": "The token was revoked.",
    "created": "The user was created.",
    "deleted": "The user was deleted.",
    "updated": "Saved.",
    "role_created": "The role was created.",
    "role_deleted": "The role was deleted.",
}

Form = dict[str, str]


class Renderer(Protocol):
    """What these pages need from the UI: its server context and its templates (`UI` in ui/_ui.py)."""

    @property
    def ctx(self) -> ServerContext: ...

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response: ...

    def error_page(self, request: Request, status: int, message: str) -> Response: ...


class AuthOff(ResourceDoesNotExist):
    """An account page asked of a server that runs without --auth."""


# ---------------------------------------------------------------------- helpers
def safe_next(value: str | None, base: str = "") -> str:
    """Where to send the browser after login: a path on this site, else the home page.

    Refused (home instead): anything with a scheme or host (`https://evil`, `//evil`), backslashes
    (browsers read `/\\evil` as `//evil`), control characters, and anything not starting with `/`.
    """
    home = base + "/"
    if not value or not value.startswith("/") or value.startswith("//"):
        return home
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return home
    return value


def _auth(ui: Renderer) -> AuthStore:
    store = ui.ctx.auth
    if store is None:
        raise AuthOff("Accounts are off: this server runs without --auth, so there is nothing to sign in to.")
    return store


def _who(request: Request) -> Identity:
    identity = identity_of(request)
    if identity is None:
        raise Unauthenticated("Sign in to see this page.")
    return identity


def _admin(request: Request) -> Identity:
    identity = _who(request)
    if not identity.user.is_admin:
        raise PermissionDenied("Permission denied: only administrators may use the admin pages.")
    return identity


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _redirect(request: Request, path: str, **query: str) -> Response:
    q = {k: v for k, v in query.items() if v}
    return RedirectResponse(_base(request) + path + ("?" + urlencode(q) if q else ""), status_code=303)


def _field(form: Form, name: str, what: str | None = None) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise InvalidParameterValue(f"Missing value for '{name}': expected {what or 'a value'}, received nothing.")
    return value


def _int_field(form: Form, name: str) -> int:
    raw = _field(form, name, "a whole number")
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameterValue(f"Invalid value {raw!r} for '{name}': expected a whole number.") from None


def _new_password(form: Form, name: str = "password", confirm: str = "confirm") -> str:
    password = form.get(name, "")
    if not password:
        raise InvalidParameterValue("Missing value for 'password': expected a new password, received nothing.")
    if confirm in form and form[confirm] != password:
        raise InvalidParameterValue("The two passwords differ: type the same new password twice.")
    return password


def _notice(request: Request) -> str:
    return NOTICES.get(request.query_params.get("ok") or "", "")


def _render(ui: Renderer, request: Request, template: str, status: int = 200, **context: Any) -> Response:
    return ui.render(request, template, status=status, csrf=csrf_token_of(request.scope),
                     levels=list(LEVELS), resource_types=list(RESOURCE_TYPES), **context)


def _set_session(ui: Renderer, request: Request, response: Response, user: User) -> None:
    value = sessions.issue(_auth(ui), user)
    response.set_cookie(sessions.COOKIE, value, max_age=sessions.LIFETIME_S, path="/", httponly=True,
                        samesite="strict", secure=is_https(request.scope, ui.ctx.settings.trusted_proxies))


# ---------------------------------------------------------------------- login / logout
def login_page(ui: Renderer, request: Request, form: Form | None = None, error: str = "",
               status: int = 200) -> Response:
    _auth(ui)
    target = safe_next((form or {}).get("next") or request.query_params.get("next"), _base(request))
    if form is None and identity_of(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _render(ui, request, "auth_login.html", status=status, next=target, error=error,
                   username=(form or {}).get("username", ""))


def login(ui: Renderer, request: Request, form: Form) -> Response:
    store = _auth(ui)
    username = form.get("username", "").strip()
    password = form.get("password", "")
    try:  # the store counts failures per (user, address) and audits every attempt
        user = store.verify_password(username, password) if username else None
    except ratelimit.TooManyAttempts as e:
        page = login_page(ui, request, form, e.message, 429)
        page.headers["Retry-After"] = str(e.retry_after)
        return page
    if user is None:
        return login_page(ui, request, form, "Invalid username or password.", 401)
    response = RedirectResponse(safe_next(form.get("next"), _base(request)), status_code=303)
    _set_session(ui, request, response, user)
    return response


def logout(ui: Renderer, request: Request, form: Form) -> Response:
    identity = identity_of(request)
    if identity is not None and identity.via == "session" and ui.ctx.auth is not None:
        actor, address = current_actor()  # set by the AuthMiddleware for this request
        ui.ctx.auth.audit(actor, "logout", identity.user.username, None, address)
        end_session(request.scope)
    response = RedirectResponse(_base(request) + "/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="strict",
                           secure=is_https(request.scope, ui.ctx.settings.trusted_proxies))
    return response


# ---------------------------------------------------------------------- account
def account_page(ui: Renderer, request: Request, form: Form | None = None, error: str = "", status: int = 200,
                 secret: str | None = None) -> Response:
    store = _auth(ui)
    identity = _who(request)
    user = identity.user
    return _render(ui, request, "auth_account.html", status=status, user=user, via=identity.via,
                   tokens=store.list_tokens(user.username), roles=store.list_user_roles(user.username),
                   grants=store.list_permissions(username=user.username), error=error, secret=secret,
                   notice=_notice(request), default_permission=ui.ctx.settings.auth_default_permission,
                   now_ms=int(time.time() * 1000))


def account_action(ui: Renderer, request: Request, form: Form) -> Response:
    store = _auth(ui)
    user = _who(request).user
    op = form.get("op", "")
    if op == "password":
        if user.has_password and store.verify_password(user.username, form.get("current", "")) is None:
            raise PermissionDenied("Your current password is not the one given: the password was not changed.")
        store.update_password(user.username, _new_password(form))
        response = _redirect(request, "/account", ok="password")
        _set_session(ui, request, response, store.get_user(user.username))  # the change ended the old session
        return response
    if op == "create_token":
        name = _field(form, "name", "a name for the token")
        expires_at = None
        days_raw = form.get("expires_in_days", "").strip()
        if days_raw:
            days = _int_field(form, "expires_in_days")
            if not 1 <= days <= MAX_TOKEN_DAYS:
                raise InvalidParameterValue(
                    f"Invalid value {days} for 'expires_in_days': expected 1 to {MAX_TOKEN_DAYS} days, or empty.")
            expires_at = int(time.time() * 1000) + days * 86_400_000
        token, secret = store.create_token(user.username, name, expires_at)
        return account_page(ui, request, secret=secret)
    if op == "revoke_token":
        token_id = _int_field(form, "token_id")
        store.revoke_token(user.username, token_id)
        return _redirect(request, "/account", ok="revoked")
    raise InvalidParameterValue(f"Unknown account action {op!r}: expected password, create_token or revoke_token.")


# ---------------------------------------------------------------------- admin
def admin_page(ui: Renderer, request: Request, form: Form | None = None, error: str = "",
               status: int = 200) -> Response:
    store = _auth(ui)
    _admin(request)
    return _render(ui, request, "auth_admin.html", status=status, users=store.list_users(), roles=store.list_roles(),
                   error=error, notice=_notice(request), default_permission=ui.ctx.settings.auth_default_permission)


def admin_user_page(ui: Renderer, request: Request, form: Form | None = None, error: str = "",
                    status: int = 200) -> Response:
    store = _auth(ui)
    _admin(request)
    username = (form or {}).get("username") or request.query_params.get("username") or ""
    user = store.get_user(username)
    return _render(ui, request, "auth_admin_user.html", status=status, user=user,
                   grants=store.list_permissions(username=user.username), roles=store.list_user_roles(user.username),
                   all_roles=store.list_roles(), tokens=store.list_tokens(user.username), error=error,
                   notice=_notice(request))


def admin_users_action(ui: Renderer, request: Request, form: Form) -> Response:
    store = _auth(ui)
    me = _admin(request).user
    op = form.get("op", "")
    username = _field(form, "username", "a username")
    if op == "create":
        store.create_user(username, _new_password(form), is_admin=form.get("is_admin") == "on")
        return _redirect(request, "/admin/user", username=username, ok="created")
    if op == "delete":
        if username == me.username:
            raise InvalidParameterValue("You cannot delete your own account: another administrator must do it.")
        store.delete_user(username)
        return _redirect(request, "/admin", ok="deleted")
    if op == "set_admin":
        on = form.get("is_admin") == "on"
        if username == me.username and not on:
            raise InvalidParameterValue("You cannot take away your own admin rights: another administrator must.")
        store.update_admin(username, on)
    elif op == "set_password":
        store.update_password(username, _new_password(form))
    elif op == "grant":
        resource_type, resource_id, permission = _grant_fields(form)
        store.set_permission(username, resource_type, resource_id, permission)
    elif op == "revoke":
        resource_type, resource_id = _resource_fields(form)
        store.delete_permission(username, resource_type, resource_id)
    elif op == "assign_role":
        role_id = _int_field(form, "role_id")
        store.assign_role(username, role_id)
    elif op == "unassign_role":
        role_id = _int_field(form, "role_id")
        store.unassign_role(username, role_id)
    else:
        raise InvalidParameterValue(
            f"Unknown user action {op!r}: expected create, delete, set_admin, set_password, grant, revoke, "
            "assign_role or unassign_role.")
    return _redirect(request, "/admin/user", username=username, ok="updated")


def _resource_fields(form: Form) -> tuple[str, str]:
    resource_type = _field(form, "resource_type", f"one of {', '.join(RESOURCE_TYPES)}")
    if resource_type not in RESOURCE_TYPES:
        raise InvalidParameterValue(
            f"Invalid resource type '{resource_type}'. Valid resource types are: {RESOURCE_TYPES}")
    return resource_type, _field(form, "resource_id", "an experiment id or a registered model name")


def _grant_fields(form: Form) -> tuple[str, str, str]:
    resource_type, resource_id = _resource_fields(form)
    permission = level(_field(form, "permission", f"one of {', '.join(LEVELS)}")).name
    return resource_type, resource_id, permission


def admin_role_page(ui: Renderer, request: Request, form: Form | None = None, error: str = "",
                    status: int = 200) -> Response:
    store = _auth(ui)
    _admin(request)
    raw = (form or {}).get("role_id") or request.query_params.get("id") or ""
    try:
        role = store.get_role(int(raw))
    except ValueError:
        raise InvalidParameterValue(f"Invalid role id {raw!r}: expected a whole number.") from None
    users = [store.get_user_by_id(a.user_id) for a in store.list_role_users(role.id)]
    return _render(ui, request, "auth_admin_role.html", status=status, role=role, users=users,
                   all_users=store.list_users(), error=error, notice=_notice(request))


def _role_permission_of(store: AuthStore, role_id: int, permission_id: int) -> None:
    """Refuse a role permission id that is not one of this role's (a form posted from another role's page)."""
    role = store.get_role(role_id)
    if all(p.id != permission_id for p in role.permissions):
        raise ResourceDoesNotExist(f"Role permission with id={permission_id} not found in role {role.name!r}")


def admin_roles_action(ui: Renderer, request: Request, form: Form) -> Response:
    store = _auth(ui)
    _admin(request)
    op = form.get("op", "")
    if op == "create":
        role = store.create_role(_field(form, "name", "a role name"), description=form.get("description") or None)
        return _redirect(request, "/admin/role", id=str(role.id), ok="role_created")
    role_id = _int_field(form, "role_id")
    if op == "delete":
        store.delete_role(role_id)
        return _redirect(request, "/admin", ok="role_deleted")
    if op == "update":
        # an empty description clears it; the name must stay (the store refuses an empty or taken one)
        store.update_role(role_id, name=_field(form, "name", "a role name"), description=form.get("description", ""))
    elif op == "add_permission":
        resource_type = _field(form, "resource_type", f"one of {', '.join(RESOURCE_TYPES)}")
        pattern = _field(form, "resource_pattern", "an id, a name or a pattern such as * or prod-*")
        permission = level(_field(form, "permission", f"one of {', '.join(LEVELS)}")).name
        store.add_role_permission(role_id, resource_type, pattern, permission)
    elif op == "remove_permission":
        permission_id = _int_field(form, "role_permission_id")
        store.remove_role_permission(permission_id)
    elif op == "set_permission":
        permission_id = _int_field(form, "role_permission_id")
        permission = level(_field(form, "permission", f"one of {', '.join(LEVELS)}")).name
        _role_permission_of(store, role_id, permission_id)
        store.update_role_permission(permission_id, permission)
    elif op == "assign":
        username = _field(form, "username", "a username")
        store.assign_role(username, role_id)
    elif op == "unassign":
        username = _field(form, "username", "a username")
        store.unassign_role(username, role_id)
    else:
        raise InvalidParameterValue(
            f"Unknown role action {op!r}: expected create, update, delete, add_permission, set_permission, "
            "remove_permission, assign or unassign.")
    return _redirect(request, "/admin/role", id=str(role_id), ok="updated")


def audit_page(ui: Renderer, request: Request, form: Form | None = None, error: str = "",
               status: int = 200) -> Response:
    store = _auth(ui)
    _admin(request)
    raw = request.query_params.get("before") or ""
    before = int(raw) if raw.isdigit() else None
    events = store.list_audit(limit=AUDIT_PAGE + 1, before_id=before)
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    return _render(ui, request, "auth_audit.html", status=status, events=events, error=error, paged=before is not None,
                   next_before=events[-1].id if more and events else None)


# ---------------------------------------------------------------------- shared with
@dataclass
class Sharing:
    """Who may do what with one resource: direct grants, roles whose patterns match, and the default."""

    resource_type: str
    resource_id: str
    grants: list[Any]
    roles: list[tuple[Role, str, str, list[str]]]  # (role, pattern, permission, usernames)
    default: str
    can_manage: bool
    csrf: str | None


def _matching_roles(store: AuthStore, resource_type: str, resource_id: str) -> list[tuple[Role, str, str, list[str]]]:
    out = []
    for role in store.list_roles():
        for p in role.permissions:
            if p.resource_type == resource_type and fnmatch.fnmatchcase(resource_id, p.resource_pattern):
                users = [store.get_user_by_id(a.user_id).username for a in store.list_role_users(role.id)]
                out.append((role, p.resource_pattern, p.permission, users))
    return out


def shared_with(ctx: ServerContext, request: Request, resource_type: str, resource_id: str) -> Sharing | None:
    """The "shared with" panel of an experiment or registered-model page (None with auth off or anonymous)."""
    store = ctx.auth
    identity = identity_of(request)
    if store is None or identity is None:
        return None
    mine = Authorizer(ctx).permission(identity, resource_type, resource_id)
    if not mine.can_read:
        return None
    return Sharing(resource_type, resource_id,
                   grants=store.list_permissions(resource_type=resource_type, resource_id=resource_id),
                   roles=_matching_roles(store, resource_type, resource_id),
                   default=ctx.settings.auth_default_permission, can_manage=mine.can_manage,
                   csrf=csrf_token_of(request.scope))


def _resource_page(resource_type: str, resource_id: str) -> str:
    if resource_type == EXPERIMENT:
        return f"/experiments/{quote(resource_id, safe='')}"
    return f"/registered-models/{quote(resource_id, safe='')}"


def sharing_action(ui: Renderer, request: Request, form: Form) -> Response:
    store = _auth(ui)
    identity = _who(request)
    resource_type, resource_id = _resource_fields(form)
    mine = Authorizer(ui.ctx).permission(identity, resource_type, resource_id)
    if not mine.can_manage:
        raise PermissionDenied(f"Permission denied: sharing {resource_type} {resource_id!r} needs MANAGE; you have {mine.name}.")
    username = _field(form, "username", "a username")
    op = form.get("op", "")
    if op == "grant":
        permission = level(_field(form, "permission", f"one of {', '.join(LEVELS)}")).name
        store.set_permission(username, resource_type, resource_id, permission)
    elif op == "revoke":
        store.delete_permission(username, resource_type, resource_id)
    else:
        raise InvalidParameterValue(f"Unknown sharing action {op!r}: expected grant or revoke.")
    return RedirectResponse(_base(request) + _resource_page(resource_type, resource_id) + "?ok=shared#shared-with",
                            status_code=303)


# ---------------------------------------------------------------------- routes
Page = Callable[..., Response]
Action = Callable[[Renderer, Request, Form], Response]


def _error(ui: Renderer, request: Request, e: MltrailException) -> Response:
    if isinstance(e, Unauthenticated):
        return RedirectResponse(_base(request) + "/login?" + urlencode({"next": request.url.path}), status_code=303)
    return ui.error_page(request, e.http_status, e.message)


def _page(ui: Renderer, page: Page) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await run_in_threadpool(page, ui, request)
            return response
        except MltrailException as e:
            return _error(ui, request, e)

    endpoint.__name__ = page.__name__
    return endpoint


async def read_form(request: Request) -> Form:
    """A urlencoded form body (the only kind these pages post), one value per field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidParameterValue(f"Form body over {MAX_FORM_BYTES} bytes refused.")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def _form(ui: Renderer, action: Action, page: Page) -> Callable[[Request], Any]:
    """A POST endpoint: run the action; on a refusal show its page again with the message (and status)."""

    async def endpoint(request: Request) -> Response:
        try:
            form = await read_form(request)
        except MltrailException as e:
            return _error(ui, request, e)

        def run() -> Response:
            try:
                return action(ui, request, form)
            except (Unauthenticated, AuthOff):
                raise
            except MltrailException as e:
                return page(ui, request, form, e.message, e.http_status)

        try:
            response: Response = await run_in_threadpool(run)
            return response
        except MltrailException as e:
            return _error(ui, request, e)

    endpoint.__name__ = action.__name__
    return endpoint


def _plain_error_page(ui: Renderer, request: Request, form: Form | None = None, error: str = "",
                 status: int = 200) -> Response:
    return ui.error_page(request, status, error)


def routes(ui: Renderer) -> list[BaseRoute]:
    """The account, admin and sharing routes, for the UI app to mount before its catch-all."""
    return [
        Route("/login", _page(ui, login_page), methods=["GET"]),
        Route("/login", _form(ui, login, login_page), methods=["POST"]),
        Route("/logout", _form(ui, logout, _plain_error_page), methods=["POST"]),
        Route("/account", _page(ui, account_page), methods=["GET"]),
        Route("/account", _form(ui, account_action, account_page), methods=["POST"]),
        Route("/admin", _page(ui, admin_page), methods=["GET"]),
        Route("/admin/user", _page(ui, admin_user_page), methods=["GET"]),
        Route("/admin/users", _form(ui, admin_users_action, _users_error_page), methods=["POST"]),
        Route("/admin/role", _page(ui, admin_role_page), methods=["GET"]),
        Route("/admin/roles", _form(ui, admin_roles_action, _roles_error_page), methods=["POST"]),
        Route("/admin/audit", _page(ui, audit_page), methods=["GET"]),
        Route("/sharing", _form(ui, sharing_action, _plain_error_page), methods=["POST"]),
    ]


def _users_error_page(ui: Renderer, request: Request, form: Form | None = None, error: str = "",
                      status: int = 200) -> Response:
    """A failed user action: that user's page again (or the admin overview if the user is not there)."""
    form = form or {}
    if form.get("op") not in ("create", "delete"):
        try:
            return admin_user_page(ui, request, form, error, status)
        except ResourceDoesNotExist:
            pass
    return admin_page(ui, request, form, error, status)


def _roles_error_page(ui: Renderer, request: Request, form: Form | None = None, error: str = "",
                      status: int = 200) -> Response:
    form = form or {}
    if form.get("op") != "create" and form.get("role_id", "").isdigit():
        try:
            return admin_role_page(ui, request, form, error, status)
        except ResourceDoesNotExist:
            pass
    return admin_page(ui, request, form, error, status)


__all__ = ["EXPERIMENT", "REGISTERED_MODEL", "Renderer", "Sharing", "read_form", "routes",
           "safe_next", "shared_with"]
