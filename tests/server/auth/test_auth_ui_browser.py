"""Accounts in Debian's Chromium through Playwright: sign in, see only the experiments shared with
you, make an API token and use it with the REST API, sign out; a form that a page of another
origin posts to the server is refused.

One server for the module (`--auth`, the UI on, SQLite in a temporary directory) and a second
tiny HTTP server on another port playing the other site. Skipped when /usr/bin/chromium is
missing, unless MLTRAIL_REQUIRE_CHROMIUM=1.
"""

from __future__ import annotations

import http.server
import threading
from typing import Any

import pytest
import requests
from auth_support import ADMIN, auth_app
from browser_support import TIMEOUT_MS
from server_fixture import ServerThread, close_stores, server_settings

pytestmark = pytest.mark.browser

ALICE = ("alice", "alice-password-0123")


@pytest.fixture(scope="module")
def site(tmp_path_factory, browser) -> Any:
    tmp = tmp_path_factory.mktemp("auth-ui-browser")
    app = auth_app(server_settings(tmp, auth=True, ui=True))
    srv = ServerThread(app).start()
    auth = app.state.ctx.auth
    auth.create_user(*ALICE)
    ids = {}
    for name in ("shared-with-alice", "kept-from-alice"):
        resp = requests.post(srv.uri + "/api/2.0/mlflow/experiments/create", json={"name": name}, auth=ADMIN,
                             timeout=30)
        ids[name] = resp.json()["experiment_id"]
    auth.set_permission(ALICE[0], "experiment", ids["shared-with-alice"], "READ")
    srv.auth = auth  # type: ignore[attr-defined]
    srv.ids = ids  # type: ignore[attr-defined]
    yield srv
    close_stores(srv.uri)
    srv.stop()


@pytest.fixture
def page(browser, site):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert errors == [], errors


def _sign_in(pg: Any, uri: str, user: tuple[str, str] = ALICE) -> None:
    pg.goto(uri + "/")
    pg.wait_for_url("**/login?next=*")
    pg.fill("#username", user[0])
    pg.fill("#password", user[1])
    pg.click("#login-submit")
    pg.wait_for_selector("#signed-in")


def test_sign_in_see_only_shared_make_a_token_sign_out(page, site):
    _sign_in(page, site.uri)
    assert page.url == site.uri + "/"
    assert page.inner_text("#account-link") == ALICE[0]
    assert page.locator("#admin-link").count() == 0
    names = page.locator("#experiments tbody a").all_inner_texts()
    assert "shared-with-alice" in names and "kept-from-alice" not in names
    assert "kept-from-alice" not in page.content()

    page.click("#account-link")
    page.fill("#token-name", "from-the-browser")
    page.click("#create-token")
    secret = page.inner_text("#token-secret").strip()
    assert secret.startswith("mlt_")
    found = requests.post(site.uri + "/api/2.0/mlflow/experiments/search", json={"max_results": 100}, timeout=30,
                          headers={"Authorization": f"Bearer {secret}"})
    assert found.status_code == 200, found.text
    assert [e["name"] for e in found.json()["experiments"]] == ["shared-with-alice"]
    page.reload()
    assert secret not in page.content()  # shown once

    page.click("#logout")
    page.wait_for_url("**/login")
    assert page.locator("#signed-in").count() == 0
    page.goto(site.uri + "/account")
    page.wait_for_url("**/login?next=*")


class _OtherSite(http.server.BaseHTTPRequestHandler):
    """A page of another origin holding a form that posts to the tracking server."""

    target = ""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = (f'<!doctype html><form id="evil" method="post" action="{self.target}/account">'
                '<input type="hidden" name="op" value="create_token"><input type="hidden" name="name" value="stolen">'
                '<button id="go" type="submit">win a prize</button></form>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_form_posted_from_another_origin_is_refused(page, site):
    _sign_in(page, site.uri)
    handler = type("Handler", (_OtherSite,), {"target": site.uri})
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        # another port of 127.0.0.1: another origin of the same site, so the Strict cookie IS sent;
        # the CSRF check must refuse it on its own
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        with page.expect_response(lambda r: r.url == site.uri + "/account" and r.request.method == "POST") as info:
            page.click("#go")
        assert info.value.status == 403
        assert "Permission denied" in page.content()
        # and from another site (localhost vs 127.0.0.1) the browser does not even send the cookie
        page.goto(f"http://localhost:{other.server_address[1]}/")
        with page.expect_response(lambda r: r.url.startswith(site.uri + "/account")
                                  and r.request.method == "POST") as info:
            page.click("#go")
        # anonymous there: the page rule sends it to the login page (or the cross-site check refuses it)
        assert info.value.status in (302, 303, 403)
        if info.value.status != 403:
            assert "/login" in info.value.headers["location"]
    finally:
        other.shutdown()
        other.server_close()
    assert [t.name for t in site.auth.list_tokens(ALICE[0])].count("stolen") == 0
