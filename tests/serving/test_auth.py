"""Authentication and roles on the project API: every route is walked, so a route added without auth fails here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import HTTPException
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright
from starlette.routing import Mount

from tests.serving.conftest import bearer_headers
from tests.serving.test_project_api import CHROMIUM, CHROMIUM_ARGS
from visionloop.core.annotations import Boxes
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.app import create_app
from visionloop.serving.projects_api.auth import PUBLIC_PATHS, SESSION_COOKIE, SIGN_IN_PATH
from visionloop.serving.projects_api.server import ServerThread
from visionloop.serving.projects_api.sign_in_limits import SignInLimits
from visionloop.storage import NewImage, Project
from visionloop.storage.models import utcnow
from visionloop.storage.users import AuthenticationError, Role, add_user, issue_token, revoke_token, verify_token
from visionloop.storage.versions import create_version

API = "/api/v1"
PASSWORD = "alice's long password"


@dataclass
class Served:
    client: TestClient
    a: Project
    b: Project
    image_id: int


@pytest.fixture
def served(project_factory, image_factory, tmp_path: Path) -> Iterator[Served]:
    """Two projects served from one folder; ``a`` has an annotated image and a version."""
    a: Project = project_factory("detection", name="a")
    b: Project = project_factory("detection", name="b")
    data = image_factory("x.jpg", width=64, height=48).read_bytes()
    [(image_id, _)] = a.add_images([NewImage(sha256=a.blobs.put(data), width=64, height=48, format="jpeg",
                                             name="x.jpg")])
    cls = a.class_ids(["cell"])["cell"]
    a.save_annotation(image_id, Boxes([[1, 1, 9, 9]], [cls]), base_revision=None, author="import")
    create_version(a, name="v1")
    with TestClient(create_app(tmp_path, settings=Settings())) as client:
        yield Served(client, a, b, image_id)


def required_role(route: RouteContext) -> Role | None:
    """The strongest role any dependency of the route asks for (``require_role`` and ``signed_in`` carry it)."""
    found: list[Role] = []
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        role = getattr(dep.call, "required_role", None)
        if role is not None:
            found.append(role)
        stack.extend(dep.dependencies)
    return max(found, key=lambda r: r.rank) if found else None


def fill(path: str, served: Served) -> str:
    values = {"project": served.a.name, "image_id": str(served.image_id), "name": "v1"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


WEAKER = {Role.ANNOTATOR: Role.VIEWER, Role.REVIEWER: Role.ANNOTATOR, Role.ADMIN: Role.REVIEWER}
BODY = {"base_revision": 1, "payload": {"type": "boxes", "xyxy": [], "class_id": []}}


def walk_every_route(served: Served) -> tuple[dict[tuple[str, str], Role], set[tuple[str, str]]]:
    """Call every route of the app without, with wrong and with too weak credentials, then with the role it needs.

    Returns (method, path) -> role needed, and the public (method, path) pairs.
    """
    client, checked, public = served.client, [], set()
    other_project = bearer_headers(served.b, Role.ADMIN)
    admin_secret = bearer_headers(served.a, Role.ADMIN)["Authorization"].removeprefix("Bearer ")
    cookie_only = {"Cookie": f"{SESSION_COOKIE}={admin_secret}"}
    # iter_route_contexts flattens included routers, with the dependencies each router adds to its routes
    for route in iter_route_contexts(client.app.routes):
        if isinstance(route.original_route, Mount):
            assert route.path == "/docs-assets", f"a mounted app at {route.path} escapes the auth walk"
            continue
        if not isinstance(route.original_route, APIRoute):  # FastAPI's own pages: the docs and the schema
            assert route.path in PUBLIC_PATHS, f"{route.path} is neither an API route nor a docs page"
            public.update((m, route.path) for m in route.methods - {"HEAD"})
            continue
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            if route.path in PUBLIC_PATHS and (route.path, method) != (SIGN_IN_PATH, "DELETE"):
                public.add((method, route.path))
                continue
            role = required_role(route)
            assert role is not None, f"{method} {route.path} has no auth dependency (require_role or signed_in)"
            url, kw = fill(route.path, served), ({"json": BODY} if method in {"PUT", "POST"} else {})

            bare = client.request(method, url, **kw)
            assert bare.status_code == 401, (method, url, bare.text)
            assert bare.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer" in bare.json()["detail"]
            wrong = client.request(method, url, headers={"Authorization": "Bearer vl_not-a-token"}, **kw)
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer", (method, url)
            basic = client.request(method, url, headers={"Authorization": "Basic YWRtaW46YWRtaW4="}, **kw)
            assert basic.status_code == 401, (method, url)
            if "{project}" in route.path:  # a token of another project is nobody here
                assert client.request(method, url, headers=other_project, **kw).status_code == 401, (method, url)
            if role in WEAKER:
                weak = client.request(method, url, headers=bearer_headers(served.a, WEAKER[role]), **kw)
                assert weak.status_code == 403, (method, url, weak.text)
                assert f"needs the {role.value} role" in weak.json()["detail"]
            by_cookie = client.request(method, url, headers=cookie_only, **kw)
            if method == "GET":  # the session cookie of a browser reads
                assert by_cookie.status_code not in {401, 403}, (method, url, by_cookie.text)
            else:  # and never writes: a form of another site cannot use it
                assert by_cookie.status_code == 401, (method, url, by_cookie.text)
            allowed = client.request(method, url, headers=bearer_headers(served.a, role), **kw)
            assert allowed.status_code not in {401, 403}, (method, url, allowed.status_code, allowed.text)
            checked.append((method, route.path, role))
    return {(m, p): r for m, p, r in checked}, public


def test_every_route_needs_credentials_and_the_right_role(served: Served) -> None:
    roles, public = walk_every_route(served)
    assert public == {("GET", "/health"), ("POST", SIGN_IN_PATH), ("GET", "/docs"), ("GET", "/redoc"),
                      ("GET", "/openapi.json"), ("GET", "/docs/oauth2-redirect")}
    assert roles[("PUT", f"{API}/projects/{{project}}/images/{{image_id}}/annotation")] is Role.ANNOTATOR
    assert roles[("GET", f"{API}/projects/{{project}}/users")] is Role.ADMIN
    assert roles[("GET", f"{API}/projects/{{project}}/images")] is Role.VIEWER
    assert roles[("GET", f"{API}/session")] is Role.VIEWER
    assert roles[("GET", f"{API}/formats")] is Role.VIEWER
    assert roles[("POST", f"{API}/projects")] is Role.ADMIN  # admin of at least one served project
    assert roles[("GET", f"{API}/projects/{{project}}/images/count")] is Role.VIEWER
    assert roles[("POST", f"{API}/projects/{{project}}/images/bulk")] is Role.REVIEWER  # split, delete: admin inside
    for method, path in (("POST", "classes"), ("PATCH", "classes/{class_id}"), ("POST", "versions"),
                         ("POST", "users"), ("PATCH", "users/{name}"), ("DELETE", "users/{name}")):
        assert roles[(method, f"{API}/projects/{{project}}/{path}")] is Role.ADMIN, (method, path)
    assert len(roles) >= 14, roles


def test_a_route_added_without_auth_fails_the_walk(served: Served) -> None:
    def leak(project: str) -> dict[str, str]:
        return {"project": project}

    served.client.app.add_api_route(f"{API}/projects/{{project}}/leak", leak, methods=["GET"])
    assert served.client.get(f"{API}/projects/{served.a.name}/leak").status_code == 200  # it does leak
    with pytest.raises(AssertionError, match="GET /api/v1/projects/{project}/leak has no auth dependency"):
        walk_every_route(served)


def test_revision_author_is_the_signed_in_user(served: Served) -> None:
    add_user(served.a, "alice", role="annotator")
    headers = {"Authorization": f"Bearer {issue_token(served.a, 'alice').secret}"}
    url = f"{API}/projects/{served.a.name}/images/{served.image_id}"
    body = {"base_revision": 1, "payload": {"type": "boxes", "xyxy": [[2, 2, 8, 8]], "class_id": [1]},
            "author": "mallory"}
    r = served.client.put(f"{url}/annotation", json=body, headers=headers)
    assert r.status_code == 200, r.text
    history = served.client.get(f"{url}/revisions", headers=headers).json()
    assert [h["author"] for h in history] == ["import", "alice"]
    schema = served.client.get("/openapi.json").json()
    assert "author" not in schema["components"]["schemas"]["AnnotationSave"]["properties"]


def test_revoked_and_expired_tokens_are_401(served: Served) -> None:
    add_user(served.a, "alice", role="viewer")
    made = issue_token(served.a, "alice", name="laptop")
    headers = {"Authorization": f"Bearer {made.secret}"}
    url = f"{API}/projects/{served.a.name}/stats"
    assert served.client.get(url, headers=headers).status_code == 200
    revoke_token(served.a, made.token.id)
    r = served.client.get(url, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert served.client.get(f"{API}/projects", headers=headers).status_code == 401

    soon = issue_token(served.a, "alice", name="sign-in", expires_at=utcnow() + timedelta(milliseconds=1))
    with pytest.raises(AuthenticationError, match="expired"):
        verify_token(served.a, soon.secret, now=utcnow() + timedelta(seconds=1))
    assert served.client.get(url, headers={"Authorization": f"Bearer {soon.secret}"}).status_code == 401


def test_sign_in_covers_the_projects_where_the_password_holds(served: Served) -> None:
    add_user(served.a, "alice", role="annotator", password=PASSWORD)
    add_user(served.b, "alice", role="viewer", password=PASSWORD)
    wrong = served.client.post(SIGN_IN_PATH, data={"username": "alice", "password": "not her password"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert served.client.post(SIGN_IN_PATH, data={"username": "nobody", "password": PASSWORD}).status_code == 401

    signed = served.client.post(SIGN_IN_PATH, data={"username": "alice", "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("vl_")
    assert {(p["project"], p["role"]) for p in body["projects"]} == {(served.a.name, "annotator"),
                                                                     (served.b.name, "viewer")}
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert {p["name"] for p in served.client.get(f"{API}/projects", headers=headers).json()} == {
        served.a.name, served.b.name}
    me = served.client.get(f"{API}/projects/{served.b.name}/me", headers=headers).json()
    assert me == {"name": "alice", "role": "viewer", "project": served.b.name}

    assert served.client.delete(SIGN_IN_PATH, headers=headers).status_code == 204
    assert served.client.get(f"{API}/projects", headers=headers).status_code == 401


def test_projects_list_shows_only_where_the_token_holds(served: Served) -> None:
    only_b = bearer_headers(served.b, Role.VIEWER)
    listed = served.client.get(f"{API}/projects", headers=only_b).json()
    assert [p["name"] for p in listed] == [served.b.name]
    unknown = served.client.get(f"{API}/projects/nope/stats", headers=only_b)
    assert unknown.status_code == 404 and unknown.json()["choices"] == [served.b.name]
    stranger = served.client.get(f"{API}/projects/nope/stats")
    assert stranger.status_code == 401 and served.a.name not in stranger.text
    assert served.client.get(f"{API}/projects").status_code == 401
    assert served.client.get("/health").status_code == 200


def test_openapi_offers_sign_in_and_tokens(served: Served) -> None:
    schema = served.client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == SIGN_IN_PATH
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    stats = schema["paths"][f"{API}/projects/{{project}}/stats"]["get"]
    assert stats["security"] and {"401", "403"} <= set(stats["responses"])


def test_failed_sign_ins_are_limited(served: Served) -> None:
    add_user(served.a, "alice", role="viewer", password=PASSWORD)
    served.client.app.state.sign_in_limits = SignInLimits(per_user=2, per_client=50)
    for _ in range(2):
        assert served.client.post(SIGN_IN_PATH, data={"username": "alice", "password": "guess"}).status_code == 401
    blocked = served.client.post(SIGN_IN_PATH, data={"username": "alice", "password": PASSWORD})
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["retry-after"]) <= 600, blocked.text
    assert "too many failed sign-ins" in blocked.json()["detail"]
    # another user from the same address is not blocked by alice's count
    add_user(served.a, "bob", role="viewer", password=PASSWORD)
    assert served.client.post(SIGN_IN_PATH, data={"username": "bob", "password": PASSWORD}).status_code == 200


def test_sign_in_limits_window_and_address() -> None:
    now = [1000.0]
    limits = SignInLimits(window_s=60, per_user=3, per_client=5, max_keys=100, clock=lambda: now[0])
    for _ in range(3):
        limits.check("10.0.0.1", "Alice")
        limits.failed("10.0.0.1", "Alice")
    with pytest.raises(HTTPException) as blocked:
        limits.check("10.0.0.1", "alice")  # user names count case-insensitively
    assert blocked.value.status_code == 429 and blocked.value.headers == {"Retry-After": "60"}
    limits.check("10.0.0.2", "alice")  # another address is not locked out
    now[0] += 30
    limits.failed("10.0.0.1", "bob")
    limits.failed("10.0.0.1", "carol")
    with pytest.raises(HTTPException):  # five failures from one address, whatever the names
        limits.check("10.0.0.1", "dave")
    now[0] += 31  # alice's three failures left the window; bob's and carol's remain
    limits.check("10.0.0.1", "alice")
    limits.check("10.0.0.1", "dave")
    small = SignInLimits(max_keys=4, clock=lambda: now[0])
    for i in range(10):
        small.failed(f"10.0.1.{i}", "x")
    assert len(small._failures) <= 4


def test_swagger_ui_signs_in_with_a_password_in_a_browser(served: Served) -> None:
    """The docs' Authorize button runs the OAuth2 password flow against the sign-in; calls then carry the token."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    add_user(served.a, "alice", role="viewer", password=PASSWORD)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            with ServerThread(served.a.root.parent, settings=Settings()) as server:
                page = browser.new_page()
                page.goto(f"{server.url}/docs")
                page.click("button.authorize")
                page.fill("#oauth_username", "alice")
                page.fill("#oauth_password", PASSWORD)
                dialog = page.locator(".modal-ux-content")
                dialog.locator(".auth-btn-wrapper button.authorize").first.click()
                dialog.get_by_text("Authorized").wait_for(timeout=20_000)
                dialog.locator(".auth-btn-wrapper button.btn-done").first.click()
                op = page.locator("#operations-projects-list_projects_api_v1_projects_get")
                op.locator(".opblock-summary").click()
                op.locator("button.try-out__btn").click()
                op.locator("button.execute").click()
                status = op.locator(".live-responses-table tbody .response-col_status").first
                status.wait_for(timeout=20_000)
                assert status.inner_text().strip() == "200"
                body = op.locator(".live-responses-table .response-col_description pre").first.inner_text()
                assert [p["name"] for p in json.loads(body)] == [served.a.name]  # alice is nobody in b
        finally:
            browser.close()
