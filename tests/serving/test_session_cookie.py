"""Browser credentials: the session cookie signing in sets counts for GET and HEAD only; ``GET /session``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from visionloop.core.annotations import Boxes
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.app import create_app
from visionloop.serving.projects_api.auth import SESSION_COOKIE, SIGN_IN_PATH
from visionloop.storage import NewImage, Project
from visionloop.storage.users import add_user

API = "/api/v1"
PASSWORD = "a long enough password"


@dataclass
class Site:
    a: Project
    b: Project
    image_id: int
    app: object
    folder: Path


@pytest.fixture
def site(project_factory, image_factory, tmp_path: Path) -> Site:
    a: Project = project_factory("detection", name="a")
    b: Project = project_factory("classification", name="b")
    data = image_factory("x.jpg", width=64, height=48).read_bytes()
    [(image_id, _)] = a.add_images([NewImage(sha256=a.blobs.put(data), width=64, height=48, format="jpeg",
                                             name="x.jpg")])
    a.save_annotation(image_id, Boxes([[1, 1, 9, 9]], [a.class_ids(["cell"])["cell"]]), base_revision=None,
                      author="import")
    add_user(a, "alice", role="annotator", password=PASSWORD)
    add_user(b, "alice", role="viewer", password=PASSWORD)
    return Site(a, b, image_id, create_app(tmp_path, settings=Settings()), tmp_path)


@pytest.fixture
def browser(site: Site) -> Iterator[TestClient]:
    with TestClient(site.app) as client:  # keeps cookies between requests, as a browser does
        yield client


def sign_in(client: TestClient) -> str:
    r = client.post(SIGN_IN_PATH, data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_sign_in_sets_a_strict_http_only_cookie_holding_the_token(site: Site, browser: TestClient) -> None:
    r = browser.post(SIGN_IN_PATH, data={"username": "alice", "password": PASSWORD})
    header = r.headers["set-cookie"]
    assert header.startswith(f"{SESSION_COOKIE}={r.json()['access_token']};")
    attrs = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
    assert {"httponly", "path", "max-age"} <= attrs and "secure" not in attrs
    assert "samesite=strict" in header.lower() and "path=/;" in header.lower() + ";"
    with TestClient(create_app(site.folder, settings=Settings()), base_url="https://testserver") as tls:
        secure = tls.post(SIGN_IN_PATH, data={"username": "alice", "password": PASSWORD}).headers["set-cookie"]
    assert "secure" in secure.lower()


def test_cookie_reads_images_but_never_writes(site: Site, browser: TestClient) -> None:
    token = sign_in(browser)
    image = f"{API}/projects/{site.a.name}/images/{site.image_id}"
    for url in (image, f"{image}/file", f"{image}/thumbnail"):
        assert browser.get(url).status_code == 200, url

    body = {"base_revision": 1, "payload": {"type": "boxes", "xyxy": [], "class_id": []}}
    refused = browser.put(f"{image}/annotation", json=body)
    assert refused.status_code == 401
    assert "counts for GET and HEAD only" in refused.json()["detail"]
    assert site.a.head(site.image_id)[0] == 1  # nothing written
    saved = browser.put(f"{image}/annotation", json=body, headers={"Authorization": f"Bearer {token}"})
    assert saved.status_code == 200 and saved.json()["revision"] == 2
    assert browser.delete(SIGN_IN_PATH).status_code == 401  # signing out is a write too


def test_session_lists_projects_roles_and_tasks(site: Site, browser: TestClient) -> None:
    assert browser.get(f"{API}/session").status_code == 401
    token = sign_in(browser)
    expected = {"user": "alice", "projects": [
        {"name": site.a.name, "role": "annotator", "task": "detection"},
        {"name": site.b.name, "role": "viewer", "task": "classification"}]}
    assert browser.get(f"{API}/session").json() == expected  # by the cookie
    browser.cookies.clear()  # by the bearer, no cookie
    assert browser.get(f"{API}/session", headers={"Authorization": f"Bearer {token}"}).json() == expected


def test_sign_out_clears_the_cookie_and_revokes_the_token(site: Site, browser: TestClient) -> None:
    token = sign_in(browser)
    thumb = f"{API}/projects/{site.a.name}/images/{site.image_id}/thumbnail"
    assert browser.get(thumb).status_code == 200
    out = browser.delete(SIGN_IN_PATH, headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 204
    cleared = out.headers["set-cookie"].lower()
    assert cleared.startswith(f"{SESSION_COOKIE}=") and ("max-age=0" in cleared or "expires=" in cleared)
    assert SESSION_COOKIE not in browser.cookies
    assert browser.get(thumb).status_code == 401
    # the old cookie sent by hand is refused too: the token is revoked
    browser.cookies.set(SESSION_COOKIE, token)
    assert browser.get(thumb).status_code == 401



def test_formats_lists_what_import_and_export_take(browser: TestClient) -> None:
    from visionloop.formats import FORMATS, get_format

    assert browser.get(f"{API}/formats").status_code == 401  # signed in first
    token = sign_in(browser)
    r = browser.get(f"{API}/formats", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    got = {f["name"]: f for f in r.json()}
    assert list(got) == list(FORMATS)
    assert got["voc"] == {"name": "voc", "title": "Pascal VOC XML", "tasks": ["detection"]}
    for name, f in got.items():  # the tasks are the format module's own
        assert f["tasks"] == sorted(t.value for t in get_format(name).TASKS) and f["title"], f
