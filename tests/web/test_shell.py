"""The web app's shell: its files are served (without credentials, cached sensibly), and signing in works."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.web.conftest import ADMIN_PASSWORD, PROJECT, csp_page


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_static_files_answer_without_credentials_with_cache_headers(served):
    status, headers, body = fetch(f"{served.url}/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'src="/static/js/main.js"' in body
    assert headers["cache-control"] == "no-cache" and headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]  # the pages run under it: test_every_page_works_under_the_csp
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp and "object-src 'none'" in csp
    status, headers, _ = fetch(f"{served.url}/static/js/main.js")
    assert status == 200 and "javascript" in headers["content-type"]
    assert headers["cache-control"] == "no-cache" and headers["etag"]
    again, _, _ = fetch(f"{served.url}/static/js/main.js", {"If-None-Match": headers["etag"]})
    assert again == 304
    status, headers, _ = fetch(f"{served.url}/static/vendor/ol/ol.js")
    assert status == 200 and "max-age" in headers["cache-control"]


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/js", "/static/js/", "/static/vendor/",
                                  "/static/../pyproject.toml", "/static/%2e%2e/__init__.py"])
def test_unknown_static_paths_and_folders_are_404(served, path):
    status, _, body = fetch(f"{served.url}{path}")
    assert status == 404, (path, body[:200])


def test_the_api_still_needs_credentials(served):
    status, _, _ = fetch(f"{served.url}/api/v1/projects/{PROJECT}/images")
    assert status == 401


def test_sign_in_wrong_password_then_right(new_page, served, shot):
    page = new_page()
    page.goto(f"{served.url}/")
    page.wait_for_selector("#signin-user")  # not signed in: the app goes to the sign-in page
    assert page.url.endswith("#/signin")
    page.fill("#signin-user", "admin")
    page.fill("#signin-password", "not-the-password")
    page.click("button[type=submit]")
    error = page.locator(".form-message")
    error.wait_for(state="visible")
    assert "Wrong user name or password" in error.inner_text()
    shot(page, "signin-wrong-password")
    page.fill("#signin-password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=projects-page]")
    expect(page.locator(f"[data-project={PROJECT}]")).to_be_visible()
    assert page.locator(".topbar .user-name").inner_text() == "admin"
    # a reload keeps the session (sessionStorage), signing out ends it
    page.reload()
    page.wait_for_selector("[data-testid=projects-page]")
    page.click("text=Sign out")
    page.wait_for_selector("#signin-user")
    page.goto(f"{served.url}/#/p/{PROJECT}")
    page.wait_for_selector("#signin-user")


def test_a_page_asked_for_before_signing_in_opens_after(new_page, served):
    page = new_page()
    page.goto(f"{served.url}/#/p/{PROJECT}/jobs")
    page.wait_for_selector("#signin-user")
    page.fill("#signin-user", "admin")
    page.fill("#signin-password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/#/p/{PROJECT}/jobs")


def test_too_many_failed_sign_ins_say_to_wait(new_page, served):
    page = new_page()
    page.goto(f"{served.url}/#/signin")
    # ten failures of one user name from this address (sent at once, as a guesser would), then the form
    statuses = page.evaluate("""() => Promise.all(Array.from({length: 10}, () => fetch('/api/v1/auth/token', {
        method: 'POST', body: new URLSearchParams({username: 'someone-else', password: 'wrong'})}).then(r => r.status)))""")
    assert set(statuses) <= {401, 429}
    page.fill("#signin-user", "someone-else")
    page.fill("#signin-password", "wrong")
    page.click("button[type=submit]")
    message = page.locator(".form-message")
    message.wait_for(state="visible")
    assert "Too many failed sign-ins from this computer. Wait" in message.inner_text()



def test_serve_projects_command_serves_the_web_app(bccd_project, tmp_path):
    """What ``make run`` does (through ``visionloop demo``): the command's server answers the app at ``/``."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from visionloop.cli.main import main; main()", "serve-projects", str(bccd_project),
             "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                status, _, body = fetch(f"{url}/")
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert status == 200 and b"/static/js/main.js" in body
        assert fetch(f"{url}/static/js/main.js")[0] == 200
        assert f"open {url}/ in a browser" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_projects_dir_is_where_new_projects_go(bccd_project, tmp_path):
    """``create_platform_app(..., projects_dir=...)``: POST /projects makes the project there, not beside the first."""
    import json
    import urllib.parse

    from tests.web.conftest import serve

    elsewhere = tmp_path / "new-projects"
    elsewhere.mkdir()
    with serve([bccd_project], projects_dir=elsewhere) as server:
        form = urllib.parse.urlencode({"username": "admin", "password": ADMIN_PASSWORD}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{server.url}/api/v1/auth/token", data=form)) as r:
            token = json.load(r)["access_token"]
        body = json.dumps({"name": "placed", "task": "tagging", "classes": [{"name": "blurry"}]}).encode()
        request = urllib.request.Request(f"{server.url}/api/v1/projects", data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request) as r:
            assert r.status == 201
    assert (elsewhere / "placed" / "visionloop.toml").is_file()
    assert not (bccd_project.parent / "placed").exists()


def test_every_page_works_under_the_csp(browser, served):
    """The app's pages, the editor's canvas and the charts under the Content-Security-Policy the server sends (the
    other tests bypass it to evaluate their own predicates): nothing is blocked, nothing throws."""
    with csp_page(browser, served.url) as page:
        base = f"{served.url}/#/p/{served.name}"
        for route, ready in (("", "[data-testid=class-chart]"), ("/images", "#thumb-grid .thumb img"),
                             ("/annotate/1", ".ol-viewport canvas"), ("/train", "#train-version"),
                             ("/jobs", "h1"), ("/models", "h1"), ("/import", "h1")):
            page.goto(base + route)
            page.wait_for_selector(ready, timeout=120_000)
