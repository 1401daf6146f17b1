"""Acting on a selection of images: review states (reviewers), preferred splits and deletion (admins)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import bearer_headers
from visionloop.core.annotations import Boxes
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.app import create_app
from visionloop.storage import NewImage, Project
from visionloop.storage.image_admin import MAX_BULK
from visionloop.storage.review import review_history
from visionloop.storage.users import Role
from visionloop.storage.versions import create_version, get_version, version_items

API = "/api/v1"


@pytest.fixture
def project(project_factory, image_factory) -> Project:
    """Six annotated images (ids 1-6) with distinct blobs, except 5 and 6 which share one."""
    p: Project = project_factory("detection", name="bulk")
    cat = p.class_ids(["cat"])["cat"]
    base = image_factory("x.jpg", width=64, height=48).read_bytes()
    blobs = [p.blobs.put(base + bytes([i])) for i in range(5)] + [p.blobs.put(base + bytes([4]))]
    for i, sha in enumerate(blobs):
        [(image_id, _)] = p.add_images([NewImage(sha256=sha, width=64, height=48, format="jpeg", name=f"i{i}.jpg",
                                                 video_id="clip" if i >= 4 else None,
                                                 frame_index=i if i >= 4 else None)])
        p.save_annotation(image_id, Boxes([[1, 1, 9, 9]], [cat]), base_revision=None, author="alice")
    return p


@pytest.fixture
def client(project: Project) -> Iterator[TestClient]:
    with TestClient(create_app(project.root, settings=Settings())) as c:
        yield c


def bulk(client: TestClient, project: Project, role: Role = Role.ADMIN, **body: object):
    return client.post(f"{API}/projects/{project.name}/images/bulk", json=body,
                       headers=bearer_headers(project, role))


def test_reviewers_send_to_review_and_decide(client: TestClient, project: Project) -> None:
    r = bulk(client, project, Role.REVIEWER, ids=[1, 2, 2, 3], action="review", value="submitted")
    assert r.status_code == 200 and r.json() == {"action": "review", "images": 3, "changed": 3,
                                                 "kept_for_versions": None, "blobs_removed": None}
    again = bulk(client, project, Role.REVIEWER, ids=[1, 2, 3], action="review", value="submitted")
    assert again.json()["changed"] == 0  # no duplicate rows for the same state
    no_reason = bulk(client, project, Role.REVIEWER, ids=[1], action="review", value="rejected")
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    assert bulk(client, project, Role.REVIEWER, ids=[1], action="review", value="rejected",
                reason="missed a cat").json()["changed"] == 1
    log = review_history(project, 1)
    assert [(e.state.value, e.author, e.reason) for e in log] == [
        ("submitted", "reviewer-user", None), ("rejected", "reviewer-user", "missed a cat")]
    assert bulk(client, project, Role.ANNOTATOR, ids=[1], action="review", value="approved").status_code == 403
    unknown = bulk(client, project, Role.REVIEWER, ids=[1, 99], action="review", value="approved")
    assert unknown.status_code == 404 and review_history(project, 1)[-1].state.value == "rejected"  # all or nothing
    assert bulk(client, project, Role.REVIEWER, ids=[1], action="review", value="maybe").status_code == 404
    assert bulk(client, project, Role.REVIEWER, ids=[1], action="review").status_code == 422


def test_split_and_delete_are_for_admins(client: TestClient, project: Project) -> None:
    for action in ("split", "delete"):
        r = bulk(client, project, Role.REVIEWER, ids=[1], action=action, value="val")
        assert r.status_code == 403 and f"{action} needs the admin role" in r.json()["detail"]
    too_many = bulk(client, project, ids=list(range(1, MAX_BULK + 2)), action="delete")
    assert too_many.status_code == 422
    assert bulk(client, project, ids=[], action="delete").status_code == 422


def test_preferred_split_is_honoured_by_the_next_version(client: TestClient, project: Project) -> None:
    r = bulk(client, project, ids=[1, 2, 3, 4, 5, 6], action="split", value="test")
    assert r.json()["changed"] == 6
    assert bulk(client, project, ids=[1], action="split", value="test").json()["changed"] == 0
    made = client.post(f"{API}/projects/{project.name}/versions", json={"name": "v1", "seed": 3},
                       headers=bearer_headers(project))
    assert made.status_code == 201, made.text
    assert {it.split for it in version_items(project, "v1")} == {"test"}
    assert bulk(client, project, ids=[1, 2], action="split", value=None).json()["changed"] == 2
    assert "split_hint" not in project.image(1).meta and project.image(3).meta["split_hint"] == "test"
    assert bulk(client, project, ids=[1], action="split", value="holdout").status_code == 404


def test_delete_keeps_what_versions_hold(client: TestClient, project: Project) -> None:
    create_version(project, name="v1", phash_distance=-1)
    v1 = get_version(project, "v1")
    later = project.blobs.put(b"later")
    [(extra, _)] = project.add_images([NewImage(sha256=later, width=8, height=8, format="jpeg", name="later.jpg")])
    shared = project.image(5).sha256
    r = bulk(client, project, ids=[2, extra], action="delete")
    assert r.status_code == 200, r.text
    assert r.json() == {"action": "delete", "images": 2, "changed": 2, "kept_for_versions": 1, "blobs_removed": 1}
    assert not project.blobs.exists(later)  # no version held it, no image uses it
    # gone from the project: list, count, stats, detail, annotation saves, new versions
    listed = client.get(f"{API}/projects/{project.name}/images", headers=bearer_headers(project)).json()
    assert [i["id"] for i in listed["items"]] == [1, 3, 4, 5, 6] and listed["total"] == 5
    assert project.stats()["images"] == 5 and project.stats()["annotated_images"] == 5
    assert project.stats()["classes"] == {"cat": 5}
    assert client.get(f"{API}/projects/{project.name}/images/2", headers=bearer_headers(project)).status_code == 404
    save = client.put(f"{API}/projects/{project.name}/images/2/annotation", headers=bearer_headers(project),
                      json={"base_revision": 1, "payload": {"type": "boxes", "xyxy": [], "class_id": []}})
    assert save.status_code == 404
    assert 2 not in {it.image.id for it in version_items(project, create_version(project, name="v2").name)}
    # the version that holds it is unchanged, its blob readable
    assert get_version(project, "v1").hash == v1.hash
    held = next(it for it in version_items(project, "v1") if it.image.id == 2)
    assert project.blobs.read(held.image.sha256) and held.annotation is not None

    # a blob two images share stays while one of them is left
    assert bulk(client, project, ids=[6], action="delete").json()["blobs_removed"] == 0
    assert project.blobs.exists(shared)
    assert bulk(client, project, ids=[2], action="delete").status_code == 404  # deleted already

    # importing the same bytes again brings the image back, with its history
    [(back, created)] = project.add_images([NewImage(sha256=held.image.sha256, width=64, height=48, format="jpeg",
                                                     name="again.jpg")])
    assert (back, created) == (2, True)
    assert project.head(2)[0] == 1 and project.stats()["images"] == 5


def test_versions_from_the_api_approved_only_with_warnings(client: TestClient, project: Project) -> None:
    url = f"{API}/projects/{project.name}/versions"
    none_yet = client.post(url, json={"approved_only": True}, headers=bearer_headers(project))
    assert none_yet.status_code == 409 and "approve" in none_yet.json()["detail"]
    bulk(client, project, Role.REVIEWER, ids=[1, 2, 3], action="review", value="approved")
    made = client.post(url, json={"approved_only": True, "seed": 1}, headers=bearer_headers(project, user="root"))
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["name"] == "v1" and body["summary"]["images"] == 3
    assert body["params"]["approved_only"] is True and body["params"]["author"] == "root"
    assert any("no instance in" in w or "has no image" in w for w in body["warnings"]), body["warnings"]
    assert {it.image.id for it in version_items(project, "v1")} == {1, 2, 3}
    assert client.post(url, json={"name": "v1"}, headers=bearer_headers(project)).status_code == 409
    assert client.post(url, json={}, headers=bearer_headers(project, Role.REVIEWER)).status_code == 403
