"""Label errors, outliers and findings set aside over the project API, with real credentials: candidates stored as
the finder stores them (the finder and its job have their own tests), fixed as a new revision by the reviewer
(409 with both versions when the head moved), dismissed; outliers from stored embeddings; the label-error job's
command line; the embed job queued after an import into a project with embeddings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import bearer_headers
from visionloop.core.settings import Settings
from visionloop.ingest import import_source
from visionloop.serving.jobs.kinds import CLI_MODULE, embed_after_import, get_kind
from visionloop.serving.projects_api.app import create_app
from visionloop.storage import Project
from visionloop.storage.embeddings import EmbeddingRows, EmbeddingSet
from visionloop.storage.jobs import get_job
from visionloop.storage.label_issues import NewLabelIssue, save_label_issue_run
from visionloop.storage.users import Role

API = "/api/v1"
SAMPLE = Path(__file__).parents[2] / "examples" / "bccd-sample" / "BCCD"
BACKBONE = "tf_efficientnet_lite0"


@dataclass
class Served:
    client: TestClient
    project: Project
    ids: list[int]
    classes: dict[str, int]

    def url(self, path: str) -> str:
        return f"{API}/projects/cells{path}"


def store_embeddings(project: Project, ids: list[int], odd: int) -> None:
    """Unit vectors close to one direction, and image ``odd`` pointing elsewhere (the outlier)."""
    rng = np.random.default_rng(0)
    vectors = np.tile(np.eye(8, dtype=np.float32)[0], (len(ids), 1)) + 0.05 * rng.random((len(ids), 8), np.float32)
    vectors[ids.index(odd)] = np.eye(8, dtype=np.float32)[5]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = EmbeddingSet(project.root, BACKBONE, "images")
    store.start(backbone={"name": BACKBONE}, preprocess={}, dim=8)
    store.append(vectors, EmbeddingRows.images(ids))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("label-errors-api")
    src = tmp / "src"
    for sub in ("Annotations", "JPEGImages"):
        (src / sub).mkdir(parents=True)
    for xml in sorted((SAMPLE / "Annotations").glob("*.xml"))[:6]:
        (src / "Annotations" / xml.name).write_bytes(xml.read_bytes())
        (src / "JPEGImages" / f"{xml.stem}.jpg").write_bytes((SAMPLE / "JPEGImages" / f"{xml.stem}.jpg").read_bytes())
    project = Project.create(tmp / "projects" / "cells", task="detection")
    import_source(project, src, format="voc")
    ids = [im.id for im in project.images()]
    classes = {c.name: c.id for c in project.ontology().classes}
    store_embeddings(project, ids, odd=ids[3])
    with TestClient(create_app(tmp / "projects", settings=Settings(job_threads=1))) as client:
        yield Served(client, client.app.state.projects.get("cells"), ids, classes)
    project.close()


def plant(s: Served) -> list[dict]:
    """A finder run of three candidates on the first images' head revisions; the listed candidates."""
    heads = s.project.heads(s.ids[:3])
    rbc, wbc = s.classes["RBC"], s.classes["WBC"]
    first_class = int(heads[s.ids[0]][1].class_id[0])
    other = wbc if first_class != wbc else rbc
    save_label_issue_run(s.project, [
        NewLabelIssue(image_id=s.ids[0], kind="wrong_class", score=0.95, given_class_id=first_class,
                      suggested_class_id=other, box_index=0, revision_id=heads[s.ids[0]][0]),
        NewLabelIssue(image_id=s.ids[1], kind="missing_box", score=0.8, suggested_class_id=rbc,
                      box=[10, 10, 60, 60], revision_id=heads[s.ids[1]][0]),
        NewLabelIssue(image_id=s.ids[2], kind="loose_box", score=0.6, given_class_id=rbc, suggested_class_id=rbc,
                      box_index=0, box=[1, 1, 40, 40], revision_id=heads[s.ids[2]][0]),
    ], created_by="cli", method="prune_by_noise_rate")
    r = s.client.get(s.url("/label-errors"), headers=bearer_headers(s.project, Role.REVIEWER))
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_roles_of_the_new_routes(served: Served) -> None:
    annotator = bearer_headers(served.project, Role.ANNOTATOR)
    reviewer = bearer_headers(served.project, Role.REVIEWER)
    outlier = {"kind": "outlier", "image_ids": [1]}
    for method, path, body, too_weak in (
            ("get", "/label-errors", None, annotator), ("post", "/label-errors", {}, reviewer),
            ("post", "/label-errors/1/fix", {"base_revision": 1}, annotator),
            ("post", "/label-errors/1/dismiss", {}, annotator), ("post", "/label-errors/1/reopen", {}, annotator),
            ("get", "/outliers", None, None), ("get", "/dismissals", None, None),
            ("post", "/dismissals", outlier, annotator), ("delete", "/dismissals/1", None, annotator)):
        kwargs = {"json": body} if body is not None else {}
        assert served.client.request(method, served.url(path), **kwargs).status_code == 401, path
        if too_weak is not None:
            r = served.client.request(method, served.url(path), headers=too_weak, **kwargs)
            assert r.status_code == 403, (method, path, r.text)


def test_list_fix_conflict_and_dismiss(served: Served) -> None:
    reviewer = bearer_headers(served.project, Role.REVIEWER, user="rita")
    empty = served.client.get(served.url("/label-errors"), headers=reviewer).json()
    if empty["run"] is None:  # the first test of the module to plant
        assert empty["total"] == 0 and empty["items"] == []
    items = plant(served)
    assert [i["rank"] for i in items] == [1, 2, 3] and items[0]["kind"] == "wrong_class"
    assert items[0]["given"] in ("RBC", "WBC", "Platelets") and items[0]["state"] == "open"
    wrong, missing, loose = items
    image = wrong["image_id"]
    head = served.client.get(served.url(f"/images/{image}"), headers=reviewer).json()["head_revision"]

    stale = served.client.post(served.url(f"/label-errors/{wrong['id']}/fix"), json={"base_revision": head - 1},
                               headers=reviewer)
    assert stale.status_code == 409, stale.text
    body = stale.json()
    assert body["head"]["revision"] == head and body["yours"]["base_revision"] == head - 1
    assert body["yours"]["payload"]["class_id"][0] == wrong["suggested_class_id"]

    fixed = served.client.post(served.url(f"/label-errors/{wrong['id']}/fix"), json={"base_revision": head},
                               headers=reviewer)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["revision"] == head + 1 and fixed.json()["issue"]["state"] == "fixed"
    assert fixed.json()["issue"]["state_by"] == "rita"
    revs = served.client.get(served.url(f"/images/{image}/revisions"), headers=reviewer).json()
    assert revs[-1]["author"] == "rita" and revs[-1]["payload"]["class_id"][0] == wrong["suggested_class_id"]
    again = served.client.post(served.url(f"/label-errors/{wrong['id']}/fix"), json={"base_revision": head + 1},
                               headers=reviewer)
    assert again.status_code == 409 and "edited since" in again.json()["detail"]

    dismissed = served.client.post(served.url(f"/label-errors/{loose['id']}/dismiss"), json={"note": "fine"},
                                   headers=reviewer)
    assert dismissed.status_code == 200 and dismissed.json()["state"] == "dismissed"
    listed = served.client.get(served.url("/label-errors"), params={"state": "open"}, headers=reviewer).json()
    assert [i["id"] for i in listed["items"]] == [missing["id"]]
    assert listed["counts"] == {"open": 1, "fixed": 1, "dismissed": 1} and listed["run"]["method"]
    reopened = served.client.post(served.url(f"/label-errors/{loose['id']}/reopen"), json={}, headers=reviewer)
    assert reopened.json()["state"] == "open"
    assert served.client.post(served.url("/label-errors/999999/dismiss"), json={},
                              headers=reviewer).status_code == 404
    bad = served.client.get(served.url("/label-errors"), params={"state": "gone"}, headers=reviewer)
    assert bad.status_code == 422


def test_outliers_and_dismissals(served: Served) -> None:
    viewer = bearer_headers(served.project, Role.VIEWER)
    reviewer = bearer_headers(served.project, Role.REVIEWER)
    r = served.client.get(served.url("/outliers"), params={"n": 3, "k": 2}, headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["results"][0]["id"] == served.ids[3] and body["results"][0]["name"].endswith(".jpg")
    assert len(body["results"]) == 3 and body["dismissed"] == 0
    made = served.client.post(served.url("/dismissals"), json={"kind": "outlier", "image_ids": [served.ids[3]],
                                                                "note": "a stain, fine"}, headers=reviewer)
    assert made.status_code == 201, made.text
    after = served.client.get(served.url("/outliers"), params={"n": 3, "k": 2}, headers=viewer).json()
    assert served.ids[3] not in [o["id"] for o in after["results"]] and after["dismissed"] == 1
    group = served.client.post(served.url("/dismissals"), json={"kind": "duplicates", "image_ids": served.ids[:2]},
                               headers=reviewer)
    assert group.status_code == 201 and group.json()["image_ids"] == sorted(served.ids[:2])
    listed = served.client.get(served.url("/dismissals"), params={"kind": "duplicates"}, headers=viewer).json()
    assert [d["id"] for d in listed] == [group.json()["id"]]
    one = served.client.post(served.url("/dismissals"), json={"kind": "duplicates", "image_ids": [served.ids[0]]},
                             headers=reviewer)
    assert one.status_code == 422
    assert served.client.delete(served.url(f"/dismissals/{made.json()['id']}"), headers=reviewer).status_code == 204
    back = served.client.get(served.url("/outliers"), params={"n": 1, "k": 2}, headers=viewer).json()
    assert back["results"][0]["id"] == served.ids[3]
    assert served.client.delete(served.url(f"/dismissals/{made.json()['id']}"), headers=reviewer).status_code == 404


def test_outliers_without_embeddings_say_to_run_the_embed_job(tmp_path: Path) -> None:
    Project.create(tmp_path / "bare", task="detection").close()
    with TestClient(create_app(tmp_path, settings=Settings())) as client:
        bare = client.app.state.projects.get("bare")
        r = client.get(f"{API}/projects/bare/outliers", headers=bearer_headers(bare, Role.VIEWER))
    assert r.status_code == 409 and "embed" in r.json()["detail"]


def test_the_label_error_job_runs_the_cli_and_is_queued_by_admins(served: Served) -> None:
    admin = bearer_headers(served.project, Role.ADMIN)
    both = served.client.post(served.url("/label-errors"), json={"run": "latest", "package": "p"}, headers=admin)
    assert both.status_code == 409
    r = served.client.post(served.url("/label-errors"), json={"folds": 3, "version": "v1"}, headers=admin)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "label_errors" and job["params"]["folds"] == 3 and job["created_by"] == "admin-user"
    served.client.post(served.url(f"/jobs/{job['id']}/cancel"), headers=admin)  # no version v1: it would fail
    (step,) = get_kind("label_errors").steps(served.project, get_job(served.project, job["id"]))
    assert step.module == CLI_MODULE and step.args[0] == "label-errors" and step.args[-1] == "--json"
    assert step.args[step.args.index("--folds") + 1] == "3" and step.args[step.args.index("--as") + 1] == "admin-user"
    assert step.args[step.args.index("--version") + 1] == "v1" and "--run" not in step.args


def test_an_import_into_a_project_with_embeddings_queues_the_embed_job(served: Served, tmp_path: Path) -> None:
    job = get_job(served.project, served.client.post(
        served.url("/label-errors"), json={}, headers=bearer_headers(served.project, Role.ADMIN)).json()["id"])
    assert embed_after_import(served.project, job, {"images_added": 2}) == ("embed", {"backbone": BACKBONE})
    assert embed_after_import(served.project, job, {"images_added": 0}) is None
    fresh = Project.create(tmp_path / "fresh", task="detection")
    assert embed_after_import(fresh, job, {"images_added": 2}) is None  # no embeddings: nothing to keep up to date
    fresh.close()
    served.client.post(served.url(f"/jobs/{job.id}/cancel"), headers=bearer_headers(served.project, Role.ADMIN))

    # through the platform: an import job that adds an image queues the embed job after it
    admin = bearer_headers(served.project, Role.ADMIN)
    extra = sorted((SAMPLE / "JPEGImages").glob("*.jpg"))[-1]
    started = served.client.post(served.url("/imports"), files=[("files", (extra.name, extra.read_bytes(),
                                                                            "image/jpeg"))], headers=admin)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 300
    while (done := served.client.get(served.url(f"/jobs/{started.json()['id']}"), headers=admin).json())[
            "state"] not in ("done", "failed", "cancelled", "interrupted"):
        assert time.monotonic() < deadline, done
        time.sleep(0.2)
    assert done["state"] == "done" and done["result"]["images_added"] == 1, done
    follow = served.client.get(served.url(f"/jobs/{done['result']['follow_up_job']}"), headers=admin).json()
    assert follow["kind"] == "embed" and follow["params"] == {"backbone": BACKBONE}
    served.client.post(served.url(f"/jobs/{follow['id']}/cancel"), headers=admin)  # the backbone has its own tests


def test_more_like_this_leaves_out_images_deleted_since_the_embeddings(served: Served) -> None:
    admin = bearer_headers(served.project, Role.ADMIN)
    gone = served.ids[5]
    deleted = served.client.post(served.url("/images/bulk"), json={"ids": [gone], "action": "delete"}, headers=admin)
    assert deleted.status_code == 200 and deleted.json()["changed"] == 1
    r = served.client.get(served.url(f"/images/{served.ids[4]}/similar"), params={"k": 4}, headers=admin)
    assert r.status_code == 200, r.text
    found = [h["id"] for h in r.json()["results"]]
    assert sorted(found) == sorted(served.ids[:4]) and all(h["name"] for h in r.json()["results"])


@pytest.mark.slow  # the finder embeds every box with the backbone and cross-validates: a minute or so on a CPU
def test_the_label_error_job_finds_candidates_the_page_lists(served: Served) -> None:
    admin = bearer_headers(served.project, Role.ADMIN)
    started = served.client.post(served.url("/label-errors"), json={"folds": 3}, headers=admin)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 600
    while (job := served.client.get(served.url(f"/jobs/{started.json()['id']}"), headers=admin).json())[
            "state"] not in ("done", "failed", "cancelled", "interrupted"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["state"] == "done", job
    assert job["progress"]["fraction"] == 1.0 and job["progress"]["message"]
    listed = served.client.get(served.url("/label-errors"), headers=admin).json()
    assert listed["run"]["id"] == job["result"]["run"]["id"] and listed["run"]["created_by"] == "admin-user"
    assert listed["run"]["params"]["folds"] == 3 and listed["total"] == job["result"]["total"]
    assert [i["rank"] for i in listed["items"]] == list(range(1, len(listed["items"]) + 1))
