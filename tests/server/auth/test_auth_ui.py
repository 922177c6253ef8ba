"""The UI's accounts over real HTTP: login and its cookie, CSRF refusals, safe redirects, logout,
the account page's tokens, the admin pages, and "shared with" on experiment pages.

One server for the module (uvicorn in a thread, SQLite in a temporary directory, `--auth`, the UI
on), its admin made at start-up from `MLTRAIL_ADMIN_PASSWORD`; each test signs in its own
`requests.Session`, as a browser would, and posts the pages' own forms.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
import requests
from auth_support import ADMIN, auth_app
from server_fixture import ServerThread, close_stores, server_settings

from mltrail.server.auth.csrf import cross_site_reason, is_https
from mltrail.server.auth.ui import safe_next

PASSWORD = "user-password-0123"
_names = itertools.count()
META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Any:
    tmp = tmp_path_factory.mktemp("auth-ui")
    app = auth_app(server_settings(tmp, auth=True, ui=True, trusted_proxies=["127.0.0.1"]))
    srv = ServerThread(app).start()
    srv.auth = app.state.ctx.auth  # type: ignore[attr-defined]
    yield srv
    close_stores(srv.uri)
    srv.stop()


def new_user(server: Any, admin: bool = False) -> str:
    name = f"user{next(_names)}"
    server.auth.create_user(name, PASSWORD, is_admin=admin)
    return name


class Browser:
    """A requests.Session that signs in through the login form and posts forms with the page's token."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.s = requests.Session()

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.s.get(self.uri + path, timeout=30, **kw)

    def post(self, path: str, data: dict[str, str], **kw: Any) -> requests.Response:
        kw.setdefault("headers", {}).setdefault("Sec-Fetch-Site", "same-origin")
        return self.s.post(self.uri + path, data=data, timeout=30, **kw)

    def login(self, username: str, password: str = PASSWORD, next_: str = "/") -> requests.Response:
        return self.post("/login", {"username": username, "password": password, "next": next_},
                         allow_redirects=False)

    def token(self, path: str = "/account") -> str:
        m = META.search(self.get(path).text)
        assert m, "the page carries no csrf-token meta tag"
        return m.group(1)

    def form(self, path: str, data: dict[str, str], **kw: Any) -> requests.Response:
        return self.post(path, {**data, "csrf_token": self.token()}, **kw)


def signed_in(server: Any, username: str) -> Browser:
    b = Browser(server.uri)
    assert b.login(username, ADMIN[1] if username == ADMIN[0] else PASSWORD).status_code == 303
    return b


def _set_cookie(resp: requests.Response) -> str:
    return resp.headers.get("set-cookie", "")


# ---------------------------------------------------------------------- pure checks
@pytest.mark.parametrize("value,expected", [
    ("/experiments/1?x=1", "/experiments/1?x=1"),
    ("/", "/"),
    ("//evil.example/x", "/"),
    ("https://evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("\\\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("experiments/1", "/"),
    ("/a\r\nSet-Cookie: x=1", "/"),
    ("", "/"),
    (None, "/"),
])
def test_safe_next(value, expected):
    assert safe_next(value) == expected


def _scope(headers: dict[str, str], client: str = "10.0.0.5", scheme: str = "http") -> dict[str, Any]:
    return {"type": "http", "scheme": scheme, "client": (client, 1234),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}


def test_https_is_the_scheme_or_a_trusted_proxys_word():
    assert is_https(_scope({}, scheme="https"), [])
    assert not is_https(_scope({"X-Forwarded-Proto": "https"}), [])  # anyone may send the header
    assert is_https(_scope({"X-Forwarded-Proto": "https"}, client="10.0.0.5"), ["10.0.0.0/8"])
    assert not is_https(_scope({"X-Forwarded-Proto": "http"}, client="10.0.0.5"), ["10.0.0.0/8"])


def test_cross_site_reasons():
    own = {"Host": "team.example:5000"}
    assert cross_site_reason(_scope(own), []) is None  # a script: no browser headers
    assert cross_site_reason(_scope({**own, "Sec-Fetch-Site": "same-origin", "Origin": "http://team.example:5000"}),
                             []) is None
    assert "cross-site" in (cross_site_reason(_scope({**own, "Sec-Fetch-Site": "cross-site"}), []) or "")
    assert "same-site" in (cross_site_reason(_scope({**own, "Sec-Fetch-Site": "same-site"}), []) or "")
    assert "evil" in (cross_site_reason(_scope({**own, "Origin": "https://evil.example"}), []) or "")
    assert cross_site_reason(_scope({**own, "Origin": "null"}), []) is not None
    # behind a trusted proxy the browser's host is X-Forwarded-Host
    proxied = {"Host": "backend:5000", "X-Forwarded-Host": "team.example", "Origin": "https://team.example"}
    assert cross_site_reason(_scope(proxied), ["10.0.0.5"]) is None
    assert cross_site_reason(_scope(proxied), []) is not None


# ---------------------------------------------------------------------- login
def test_login_page_and_wrong_password(server):
    b = Browser(server.uri)
    page = b.get("/login?next=/models")
    assert page.status_code == 200 and 'id="login-form"' in page.text and 'value="/models"' in page.text
    name = new_user(server)
    bad = b.login(name, "not-the-password-00")
    assert bad.status_code == 401 and "Invalid username or password." in bad.text
    assert "mltrail_session" not in _set_cookie(bad)
    unknown = b.login("nobody-here", "whatever-password-1")
    assert unknown.status_code == 401 and "Invalid username or password." in unknown.text


def test_session_cookie_flags(server):
    name = new_user(server)
    resp = Browser(server.uri).login(name, next_="/models")
    assert resp.status_code == 303 and resp.headers["location"] == "/models"
    cookie = _set_cookie(resp)
    assert cookie.startswith("mltrail_session=")
    flags = [f.strip().lower() for f in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain http from a client
    behind_tls = Browser(server.uri).post("/login", {"username": name, "password": PASSWORD},
                                          headers={"X-Forwarded-Proto": "https"}, allow_redirects=False)
    assert "secure" in [f.strip().lower() for f in _set_cookie(behind_tls).split(";")]


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(server, target):
    resp = Browser(server.uri).login(new_user(server), next_=target)
    assert resp.status_code == 303 and resp.headers["location"] == "/"


def test_anonymous_pages_go_to_login(server):
    resp = requests.get(server.uri + "/account", allow_redirects=False, timeout=30)
    assert resp.status_code in (302, 303) and resp.headers["location"].startswith("/login?next=")


def test_cross_site_login_form_is_refused(server):
    name = new_user(server)
    resp = Browser(server.uri).post("/login", {"username": name, "password": PASSWORD},
                                    headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
                                    allow_redirects=False)
    assert resp.status_code == 403 and "cross-site" in resp.json()["message"]
    assert "mltrail_session" not in _set_cookie(resp)


# ---------------------------------------------------------------------- CSRF
def test_csrf_refusals(server):
    b = signed_in(server, new_user(server))
    token = b.token()
    create = {"op": "create_token", "name": "ci"}
    missing = b.post("/account", create)
    assert missing.status_code == 403 and "CSRF token missing" in missing.json()["message"]
    wrong = b.post("/account", {**create, "csrf_token": "x" * len(token)})
    assert wrong.status_code == 403 and "mismatch" in wrong.json()["message"]
    cross = b.post("/account", {**create, "csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403 and "cross-site" in cross.json()["message"]
    # a form another site makes the browser post: its Origin, no Sec-Fetch-Site (older browsers)
    foreign = b.s.post(server.uri + "/account", data={**create, "csrf_token": token}, timeout=30,
                       headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "evil.example" in foreign.json()["message"]
    assert b.get("/account").text.count('data-token-id="') == 0  # none of them made a token
    ok = b.post("/account", {**create, "csrf_token": token})
    assert ok.status_code == 200 and 'id="token-secret"' in ok.text


def test_csrf_on_the_rest_api_through_the_cookie(server):
    b = signed_in(server, new_user(server))
    path = "/ajax-api/2.0/mlflow/experiments/create"
    body = {"name": f"csrf-exp-{next(_names)}"}
    refused = b.s.post(server.uri + path, json=body, timeout=30)
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    ok = b.s.post(server.uri + path, json=body, headers={"X-CSRF-Token": b.token()}, timeout=30)
    assert ok.status_code == 200, ok.text
    # an Authorization header needs no CSRF token: a browser never adds one on its own
    basic = requests.post(server.uri + path, json={"name": body["name"] + "-basic"}, auth=ADMIN, timeout=30)
    assert basic.status_code == 200, basic.text


# ---------------------------------------------------------------------- logout, account
def test_logout_ends_the_session(server):
    b = signed_in(server, new_user(server))
    assert b.get("/account").status_code == 200
    cookie = b.s.cookies.get("mltrail_session")
    missing = b.post("/logout", {})
    assert missing.status_code == 403  # a logout is a state change: CSRF-checked like the rest
    out = b.form("/logout", {}, allow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert "mltrail_session=" in _set_cookie(out) and "max-age=0" in _set_cookie(out).lower()
    assert b.s.cookies.get("mltrail_session") is None
    after = b.get("/account", allow_redirects=False)
    assert after.status_code in (302, 303) and after.headers["location"].startswith("/login")
    # the old cookie value, replayed, no longer signs anyone in
    replay = requests.get(server.uri + "/account", cookies={"mltrail_session": cookie}, allow_redirects=False,
                          timeout=30)
    assert replay.status_code in (302, 303, 401)


def test_token_secret_is_shown_once_and_works(server):
    name = new_user(server)
    b = signed_in(server, name)
    made = b.form("/account", {"op": "create_token", "name": "laptop", "expires_in_days": "30"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    secret = re.search(r'<pre id="token-secret">([^<]+)</pre>', made.text)
    assert secret and secret.group(1).startswith("mlt_")
    again = b.get("/account").text
    assert secret.group(1) not in again and "laptop" in again
    api = requests.get(server.uri + "/api/2.0/mlflow/users/current", timeout=30,
                       headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert api.status_code == 200 and api.json()["user"]["username"] == name
    token_id = re.search(r'data-token-id="(\d+)"', again)
    assert token_id
    b.form("/account", {"op": "revoke_token", "token_id": token_id.group(1)})
    gone = requests.get(server.uri + "/api/2.0/mlflow/users/current", timeout=30,
                        headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert gone.status_code == 401


def test_bad_token_expiry_is_explained(server):
    b = signed_in(server, new_user(server))
    resp = b.form("/account", {"op": "create_token", "name": "x", "expires_in_days": "soon"})
    assert resp.status_code == 400 and "expected a whole number" in resp.text and 'id="token-secret"' not in resp.text


def test_change_password(server):
    name = new_user(server)
    b = signed_in(server, name)
    wrong = b.form("/account", {"op": "password", "current": "not-it-at-all-0", "password": "new-password-0123",
                                "confirm": "new-password-0123"})
    assert wrong.status_code == 403 and "current password" in wrong.text
    ok = b.form("/account", {"op": "password", "current": PASSWORD, "password": "new-password-0123",
                             "confirm": "new-password-0123"})
    assert ok.status_code == 200 and "Your password was changed." in ok.text  # still signed in (a new cookie)
    assert Browser(server.uri).login(name).status_code == 401
    assert Browser(server.uri).login(name, "new-password-0123").status_code == 303


# ---------------------------------------------------------------------- admin
@pytest.mark.parametrize("path", ["/admin", "/admin/audit", f"/admin/user?username={ADMIN[0]}"])
def test_admin_pages_refuse_non_admins(server, path):
    b = signed_in(server, new_user(server))
    assert b.get(path).status_code == 403
    assert 'id="admin-link"' not in b.get("/account").text


def test_admin_actions_refuse_non_admins(server):
    victim = new_user(server)
    b = signed_in(server, new_user(server))
    resp = b.form("/admin/users", {"op": "set_admin", "username": victim, "is_admin": "on"})
    assert resp.status_code == 403
    assert not server.auth.get_user(victim).is_admin


def test_admin_manages_users_grants_roles_and_reads_the_audit_log(server):
    b = signed_in(server, ADMIN[0])
    home = b.get("/account").text
    assert 'id="admin-link"' in home and 'id="logout"' in home
    name = f"made{next(_names)}"
    made = b.form("/admin/users", {"op": "create", "username": name, "password": PASSWORD})
    assert made.status_code == 200 and "The user was created." in made.text
    dup = b.form("/admin/users", {"op": "create", "username": name, "password": PASSWORD})
    assert dup.status_code == 400 and name in dup.text
    granted = b.form("/admin/users", {"op": "grant", "username": name, "resource_type": "experiment",
                                      "resource_id": "0", "permission": "EDIT"})
    assert granted.status_code == 200
    assert server.auth.get_permission(name, "experiment", "0").permission == "EDIT"
    bad_level = b.form("/admin/users", {"op": "grant", "username": name, "resource_type": "experiment",
                                        "resource_id": "0", "permission": "OWNER"})
    assert bad_level.status_code == 400 and "Invalid permission" in bad_level.text
    role_page = b.form("/admin/roles", {"op": "create", "name": f"readers{next(_names)}"})
    role_id = re.search(r'name="role_id" value="(\d+)"', role_page.text)
    assert role_page.status_code == 200 and role_id
    b.form("/admin/roles", {"op": "add_permission", "role_id": role_id.group(1), "resource_type": "registered_model",
                            "resource_pattern": "prod-*", "permission": "READ"})
    b.form("/admin/roles", {"op": "assign", "role_id": role_id.group(1), "username": name})
    assert [r.id for r in server.auth.list_user_roles(name)] == [int(role_id.group(1))]
    user_page = b.get(f"/admin/user?username={name}").text
    assert "EDIT" in user_page and "readers" in user_page
    b.form("/admin/users", {"op": "set_admin", "username": name, "is_admin": "on"})
    assert server.auth.get_user(name).is_admin
    b.form("/admin/users", {"op": "delete", "username": name})
    assert name not in [u.username for u in server.auth.list_users()]
    audit = b.get("/admin/audit")
    ids = [int(x) for x in re.findall(r'data-audit-id="(\d+)"', audit.text)]
    assert ids == sorted(ids, reverse=True) and len(ids) == 50  # newest first, one page
    older = re.search(r'id="older" href="([^"]+)"', audit.text)
    assert older
    page2 = [int(x) for x in re.findall(r'data-audit-id="(\d+)"', b.get(older.group(1).replace("&amp;", "&")).text)]
    assert page2 and max(page2) < min(ids)
    actions = re.findall(r"<td>([a-z_]+)</td>", audit.text)
    assert "user_delete" in actions and "grant" in actions


def test_admin_edits_a_role_and_changes_a_permission_level(server):
    b = signed_in(server, ADMIN[0])
    name = f"editors{next(_names)}"
    role = server.auth.create_role(name, description="first words")
    perm = server.auth.add_role_permission(role.id, "experiment", "team-*", "READ")
    other = server.auth.create_role(f"others{next(_names)}")
    page = b.get(f"/admin/role?id={role.id}").text
    assert 'id="role-edit"' in page and 'value="first words"' in page
    assert f'data-role-permission-id="{perm.id}"' in page
    renamed = b.form("/admin/roles", {"op": "update", "role_id": str(role.id), "name": name + "-x",
                                      "description": "what editors may do"})
    assert renamed.status_code == 200 and "Saved." in renamed.text and "what editors may do" in renamed.text
    got = server.auth.get_role(role.id)
    assert (got.name, got.description) == (name + "-x", "what editors may do")
    # a name another role has, or none, is refused on the role's page, and nothing changes
    taken = b.form("/admin/roles", {"op": "update", "role_id": str(role.id), "name": other.name, "description": ""})
    assert taken.status_code == 400 and f"Role with name={other.name} already exists" in taken.text
    empty = b.form("/admin/roles", {"op": "update", "role_id": str(role.id), "name": " ", "description": ""})
    assert empty.status_code == 400 and "Missing value for &#39;name&#39;" in empty.text
    assert server.auth.get_role(role.id).name == name + "-x"
    cleared = b.form("/admin/roles", {"op": "update", "role_id": str(role.id), "name": name + "-x", "description": ""})
    assert cleared.status_code == 200 and server.auth.get_role(role.id).description == ""
    # the level of one of its permissions
    changed = b.form("/admin/roles", {"op": "set_permission", "role_id": str(role.id),
                                      "role_permission_id": str(perm.id), "permission": "EDIT"})
    assert changed.status_code == 200 and "Saved." in changed.text
    assert [p.permission for p in server.auth.get_role(role.id).permissions] == ["EDIT"]
    assert re.search(r'<option value="EDIT" selected>EDIT</option>', changed.text)
    bad = b.form("/admin/roles", {"op": "set_permission", "role_id": str(role.id),
                                  "role_permission_id": str(perm.id), "permission": "OWNER"})
    assert bad.status_code == 400 and "Invalid permission" in bad.text
    # a permission of another role, posted from this role's page, is not this role's to change
    stray = b.form("/admin/roles", {"op": "set_permission", "role_id": str(other.id),
                                    "role_permission_id": str(perm.id), "permission": "MANAGE"})
    assert stray.status_code == 404 and f"Role permission with id={perm.id} not found" in stray.text
    assert [p.permission for p in server.auth.get_role(role.id).permissions] == ["EDIT"]
    actions = re.findall(r"<td>([a-z_]+)</td>", b.get("/admin/audit").text)
    assert "role_update" in actions and "role_grant" in actions


def test_role_edits_need_a_csrf_token_and_an_admin(server):
    role = server.auth.create_role(f"guarded{next(_names)}")
    perm = server.auth.add_role_permission(role.id, "experiment", "*", "READ")
    admin = signed_in(server, ADMIN[0])
    update = {"op": "update", "role_id": str(role.id), "name": "hijacked", "description": ""}
    level_ = {"op": "set_permission", "role_id": str(role.id), "role_permission_id": str(perm.id),
              "permission": "MANAGE"}
    for data in (update, level_):
        assert admin.post("/admin/roles", data).status_code == 403  # no token
        cross = admin.post("/admin/roles", {**data, "csrf_token": admin.token()},
                           headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403 and "cross-site" in cross.json()["message"]
    user = signed_in(server, new_user(server))
    assert user.form("/admin/roles", update).status_code == 403
    assert user.form("/admin/roles", level_).status_code == 403
    got = server.auth.get_role(role.id)
    assert got.name == role.name and [p.permission for p in got.permissions] == ["READ"]


def test_admin_cannot_remove_themself(server):
    b = signed_in(server, ADMIN[0])
    resp = b.form("/admin/users", {"op": "set_admin", "username": ADMIN[0]})
    assert resp.status_code == 400 and "your own admin rights" in resp.text
    assert server.auth.get_user(ADMIN[0]).is_admin


# ---------------------------------------------------------------------- shared with
def test_shared_with_on_the_experiment_page(server):
    owner, reader = new_user(server), new_user(server)
    created = requests.post(server.uri + "/api/2.0/mlflow/experiments/create", auth=(owner, PASSWORD), timeout=30,
                            json={"name": f"shared-{next(_names)}"})
    exp_id = created.json()["experiment_id"]
    rb = signed_in(server, reader)
    assert rb.get(f"/experiments/{exp_id}").status_code in (403, 404)
    ob = signed_in(server, owner)
    page = ob.get(f"/experiments/{exp_id}").text
    assert 'id="shared-with"' in page and 'id="share-form"' in page and owner in page  # the creator's MANAGE
    assert 'id="default-permission">NO_PERMISSIONS<' in page
    shared = ob.form("/sharing", {"op": "grant", "resource_type": "experiment", "resource_id": exp_id,
                                  "username": reader, "permission": "READ"})
    assert shared.status_code == 200 and f'data-username="{reader}"' in shared.text
    seen = rb.get(f"/experiments/{exp_id}")
    assert seen.status_code == 200 and 'id="shared-with"' in seen.text and 'id="share-form"' not in seen.text
    refused = rb.form("/sharing", {"op": "grant", "resource_type": "experiment", "resource_id": exp_id,
                                   "username": reader, "permission": "MANAGE"})
    assert refused.status_code == 403 and "needs MANAGE" in refused.text
    assert server.auth.get_permission(reader, "experiment", exp_id).permission == "READ"
    ob.form("/sharing", {"op": "revoke", "resource_type": "experiment", "resource_id": exp_id, "username": reader})
    assert rb.get(f"/experiments/{exp_id}").status_code in (403, 404)


def test_shared_with_on_the_registered_model_page(server):
    owner, other = new_user(server), new_user(server)
    name = f"model-{next(_names)}"
    made = requests.post(server.uri + "/api/2.0/mlflow/registered-models/create", auth=(owner, PASSWORD), timeout=30,
                         json={"name": name})
    assert made.status_code == 200, made.text
    ob = signed_in(server, owner)
    shared = ob.form("/sharing", {"op": "grant", "resource_type": "registered_model", "resource_id": name,
                                  "username": other, "permission": "EDIT"})
    assert shared.status_code == 200 and shared.url.endswith(f"/registered-models/{name}?ok=shared#shared-with")
    assert f'data-username="{other}"' in shared.text and "Sharing updated." in shared.text
    assert server.auth.get_permission(other, "registered_model", name).permission == "EDIT"
    page = signed_in(server, other).get(f"/registered-models/{name}").text
    assert 'id="shared-with"' in page and 'id="share-form"' not in page  # EDIT may see, not share


def test_anonymous_header_offers_login(server):
    page = requests.get(server.uri + "/login", timeout=30).text
    assert 'id="login-link"' in page and 'id="signed-in"' not in page and 'name="csrf-token"' not in page


def test_under_a_static_prefix_the_login_round_trip_stays_under_it(tmp_path):
    """`--static-prefix /mlflow --auth`: a page asks for login at /mlflow/login with next=/mlflow/...
    (the prefix once), and signing in sends the browser back there."""
    app = auth_app(server_settings(tmp_path, auth=True, ui=True, static_prefix="/mlflow"))
    srv = ServerThread(app).start()
    try:
        b = Browser(srv.uri)
        first = b.get("/mlflow/models", allow_redirects=False)
        assert first.status_code == 302
        assert first.headers["location"] == "/mlflow/login?next=%2Fmlflow%2Fmodels"
        assert 'action="/mlflow/login"' in b.get("/mlflow/login").text
        signed = b.post("/mlflow/login", {"username": ADMIN[0], "password": ADMIN[1], "next": "/mlflow/models"},
                        allow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == "/mlflow/models"
        assert b.get("/mlflow/models").status_code == 200
    finally:
        close_stores(srv.uri)
        srv.stop()
