"""Creating projects and editing classes through the project API (admins), with the library doing the work."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import bearer_headers
from visionloop.core.annotations import Label
from visionloop.core.ontology import class_keys
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.app import create_app
from visionloop.serving.projects_api.auth import SIGN_IN_PATH
from visionloop.serving.projects_api.server import ServerThread
from visionloop.storage import NewImage, Project
from visionloop.storage.class_settings import update_class
from visionloop.storage.ontology_ops import list_ontology_ops
from visionloop.storage.users import Role, add_user, get_user

API = "/api/v1"
PASSWORD = "a long enough password"


@dataclass
class Server:
    client: TestClient
    a: Project
    root: Path


@pytest.fixture
def server(project_factory, tmp_path: Path) -> Iterator[Server]:
    a: Project = project_factory("classification", name="a")
    add_user(a, "alice", role="admin", password=PASSWORD)
    add_user(a, "victor", role="reviewer", password=PASSWORD)
    with TestClient(create_app(a.root, settings=Settings())) as client:
        yield Server(client, a, tmp_path)


def sign_in(client: TestClient, user: str = "alice") -> dict[str, str]:
    r = client.post(SIGN_IN_PATH, data={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


NEW = {"name": "blood-cells", "task": "detection", "classes": [
    {"name": "rbc", "colour": "#FF0000", "key": "r", "orientation_sensitive": False, "colour_sensitive": True},
    {"name": "wbc"},
]}


def test_an_admin_creates_a_project_and_is_its_admin_with_the_same_password(server: Server) -> None:
    headers = sign_in(server.client)
    r = server.client.post(f"{API}/projects", json=NEW, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "blood-cells", "task": "detection", "images": 0}
    assert (server.root / "blood-cells" / "visionloop.toml").is_file()  # beside the first served project

    # served at once, the same bearer holds there, and the creator is its admin
    session = server.client.get(f"{API}/session", headers=headers).json()
    assert {p["name"]: p["role"] for p in session["projects"]} == {server.a.name: "admin", "blood-cells": "admin"}
    classes = server.client.get(f"{API}/projects/blood-cells/classes", headers=headers).json()
    assert [(c["name"], c["colour"], c["key"], c["colour_sensitive"]) for c in classes] == [
        ("rbc", "#ff0000", "r", True), ("wbc", classes[1]["colour"], "2", False)]
    assert classes[1]["colour"].startswith("#") and len(classes[1]["colour"]) == 7
    thumbs = server.client.get(f"{API}/projects/blood-cells/images", headers=headers)
    assert thumbs.status_code == 200 and thumbs.json()["total"] == 0
    # a later sign-in with the same password covers the new project too
    again = server.client.post(SIGN_IN_PATH, data={"username": "alice", "password": PASSWORD}).json()
    assert {p["project"] for p in again["projects"]} == {server.a.name, "blood-cells"}
    with Project.open(server.root / "blood-cells") as made:
        assert get_user(made, "alice").role is Role.ADMIN and made.task.value == "detection"


@pytest.mark.parametrize("name", ["../x", "a/b", "", "x" * 65, ".hidden", "a b", "a\\b", "..", "é"])
def test_project_names_that_are_unsafe_are_refused(server: Server, name: str) -> None:
    r = server.client.post(f"{API}/projects", json={**NEW, "name": name}, headers=bearer_headers(server.a))
    assert r.status_code == 422, (name, r.text)
    assert sorted(p.name for p in server.root.iterdir()) == ["a-0"]  # nothing made anywhere


def test_taken_names_and_bad_classes_are_refused_and_leave_nothing(server: Server) -> None:
    admin = bearer_headers(server.a)
    assert server.client.post(f"{API}/projects", json={**NEW, "name": server.a.name}, headers=admin).status_code == 409
    (server.root / "stray").mkdir()
    r = server.client.post(f"{API}/projects", json={**NEW, "name": "stray"}, headers=admin)
    assert r.status_code == 409 and "folder" in r.json()["detail"]
    bad_colour = {**NEW, "classes": [{"name": "x", "colour": "red"}]}
    assert server.client.post(f"{API}/projects", json=bad_colour, headers=admin).status_code == 422
    same_key = {**NEW, "classes": [{"name": "x", "key": "q"}, {"name": "y", "key": "q"}]}
    r = server.client.post(f"{API}/projects", json=same_key, headers=admin)
    assert r.status_code == 409 and "keys repeat" in r.json()["detail"]
    assert sorted(p.name for p in server.root.iterdir()) == ["a-0", "stray"]
    assert server.client.post(f"{API}/projects", json=NEW, headers=admin).status_code == 201
    assert server.client.post(f"{API}/projects", json=NEW, headers=admin).status_code == 409


def test_only_an_admin_of_some_project_creates_one(server: Server) -> None:
    r = server.client.post(f"{API}/projects", json=NEW, headers=sign_in(server.client, "victor"))
    assert r.status_code == 403 and "admin role in at least one project" in r.json()["detail"]


def test_projects_dir_setting_chooses_the_folder(project_factory, tmp_path: Path) -> None:
    a: Project = project_factory("detection", name="a")
    elsewhere = tmp_path / "made" / "here"
    with TestClient(create_app(a.root, settings=Settings(projects_dir=str(elsewhere)))) as client:
        r = client.post(f"{API}/projects", json={"name": "p2", "task": "tagging"}, headers=bearer_headers(a))
    assert r.status_code == 201, r.text
    assert (elsewhere / "p2" / "visionloop.toml").is_file()


# ---- classes ----------------------------------------------------------------------------------------------------


def test_add_and_edit_classes(server: Server) -> None:
    url = f"{API}/projects/{server.a.name}/classes"
    admin = bearer_headers(server.a, user="root")
    cat = server.client.post(url, json={"name": "cat"}, headers=admin)
    assert cat.status_code == 201 and cat.json()["key"] == "1"
    dog = server.client.post(url, json={"name": "dog", "key": "d", "colour": "#00aa00"}, headers=admin).json()
    assert (dog["key"], dog["colour"]) == ("d", "#00aa00")
    cid = cat.json()["id"]
    changed = server.client.patch(f"{url}/{cid}", json={"name": "kitten", "colour": "#123456", "key": "k",
                                                         "orientation_sensitive": True}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("name", "colour", "key", "orientation_sensitive")} == {
        "name": "kitten", "colour": "#123456", "key": "k", "orientation_sensitive": True}
    assert [op.kind for op in list_ontology_ops(server.a)] == ["rename"]  # recorded, by the signed-in admin
    assert list_ontology_ops(server.a)[0].author == "root"

    taken = server.client.patch(f"{url}/{cid}", json={"key": "d"}, headers=admin)
    assert taken.status_code == 409 and "dog" in taken.json()["detail"]
    assert server.client.patch(f"{url}/{cid}", json={"key": "ab"}, headers=admin).status_code == 422
    assert server.client.patch(f"{url}/{cid}", json={"colour": "blue"}, headers=admin).status_code == 422
    assert server.client.patch(f"{url}/{cid}", json={"name": "dog"}, headers=admin).status_code == 409
    assert server.client.patch(f"{url}/999", json={"key": "z"}, headers=admin).status_code == 404
    assert server.client.patch(f"{url}/{cid}", json={"key": ""}, headers=admin).json()["key"] == "1"

    # retiring a class in use is refused (merge it instead); an unused one retires and comes back
    sha = server.a.blobs.put(b"not decoded here")
    [(image_id, _)] = server.a.add_images([NewImage(sha256=sha, width=8, height=8, format="jpeg", name="i.jpg")])
    server.a.save_annotation(image_id, Label(cid), base_revision=None, author="t")
    used = server.client.patch(f"{url}/{cid}", json={"active": False}, headers=admin)
    assert used.status_code == 409 and "merge" in used.json()["detail"]
    retired = server.client.patch(f"{url}/{dog['id']}", json={"active": False}, headers=admin).json()
    assert retired["active"] is False and retired["key"] is None
    assert server.client.patch(f"{url}/{dog['id']}", json={"key": "x"}, headers=admin).status_code == 409
    assert server.client.patch(f"{url}/{dog['id']}", json={"active": True}, headers=admin).json()["active"] is True

    for role in (Role.VIEWER, Role.REVIEWER):
        assert server.client.post(url, json={"name": "x"}, headers=bearer_headers(server.a, role)).status_code == 403


def test_default_keys_follow_class_order_and_skip_taken_digits(project_factory) -> None:
    p: Project = project_factory("classification")
    ids = p.class_ids([f"c{i}" for i in range(12)])
    keys = class_keys(p.ontology())
    assert [keys[ids[f"c{i}"]] for i in range(12)] == [*"1234567890", None, None]
    update_class(p, ids["c11"], author="t", key="3")
    keys = class_keys(p.ontology())
    assert keys[ids["c11"]] == "3" and keys[ids["c2"]] is None and keys[ids["c0"]] == "1"


# ---- users ------------------------------------------------------------------------------------------------------


def test_admins_manage_users(server: Server) -> None:
    url = f"{API}/projects/{server.a.name}/users"
    admin = sign_in(server.client)
    made = server.client.post(url, json={"name": "ann", "role": "annotator", "password": "ann's password"},
                              headers=admin)
    assert made.status_code == 201 and made.json()["role"] == "annotator" and made.json()["has_password"] is True
    assert server.client.post(SIGN_IN_PATH, data={"username": "ann", "password": "ann's password"}).status_code == 200
    script = server.client.post(url, json={"name": "ci-bot", "role": "viewer"}, headers=admin).json()
    assert script["has_password"] is False
    assert server.client.post(url, json={"name": "ann", "role": "viewer"}, headers=admin).status_code == 409
    assert server.client.post(url, json={"name": "../x", "role": "viewer"}, headers=admin).status_code == 422
    assert server.client.post(url, json={"name": "bo", "role": "viewer", "password": "short"},
                              headers=admin).status_code == 422
    assert server.client.post(url, json={"name": "bo", "role": "owner"}, headers=admin).status_code == 422

    changed = server.client.patch(f"{url}/ann", json={"role": "reviewer", "password": "a new password!"},
                                  headers=admin)
    assert changed.status_code == 200 and changed.json()["role"] == "reviewer"
    assert server.client.post(SIGN_IN_PATH, data={"username": "ann", "password": "ann's password"}).status_code == 401
    assert server.client.post(SIGN_IN_PATH, data={"username": "ann", "password": "a new password!"}).status_code == 200
    assert server.client.patch(f"{url}/nobody", json={"role": "viewer"}, headers=admin).status_code == 404

    # the last admin stays: not demoted, not removed, and nothing else changed by the refused request
    last = server.client.patch(f"{url}/alice", json={"role": "viewer", "password": "never applied"}, headers=admin)
    assert last.status_code == 409 and "last admin" in last.json()["detail"]
    assert server.client.post(SIGN_IN_PATH, data={"username": "alice", "password": PASSWORD}).status_code == 200
    assert server.client.delete(f"{url}/alice", headers=admin).status_code == 409
    assert server.client.delete(f"{url}/ci-bot", headers=admin).status_code == 204
    assert [u["name"] for u in server.client.get(url, headers=admin).json()] == ["alice", "ann", "victor"]
    for method, path in (("post", url), ("patch", f"{url}/ann"), ("delete", f"{url}/ann"), ("get", url)):
        kw = {"json": {"name": "x", "role": "viewer"}} if method != "delete" and method != "get" else {}
        r = getattr(server.client, method)(path, headers=sign_in(server.client, "victor"), **kw)
        assert r.status_code == 403, (method, path)


def test_racing_creations_of_one_name_make_one_project(project_factory, tmp_path: Path) -> None:
    """Over real HTTP, several requests at once for the same new name: one 201, the others 409, one folder."""
    a: Project = project_factory("detection", name="a")
    headers = bearer_headers(a)
    with ServerThread(a.root, settings=Settings()) as server, ThreadPoolExecutor(max_workers=4) as pool:
        def create(_: int) -> int:
            return httpx.post(f"{server.url}{API}/projects", json={"name": "same", "task": "detection"},
                              headers=headers, timeout=60).status_code

        codes = sorted(pool.map(create, range(4)))
        listed = httpx.get(f"{server.url}{API}/projects", headers=headers, timeout=60).json()
    assert codes == [201, 409, 409, 409]
    assert sorted(p["name"] for p in listed) == sorted([a.name, "same"])
    assert sorted(p.name for p in tmp_path.iterdir() if (p / "visionloop.toml").is_file()) == ["a-0", "same"]
