"""The review workflow over the project API on real BCCD images: batches, queues with a honeypot, reject with tags
and a comment point, fix, approve, a consensus merge of two answers, an approved-only version and the statistics."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.serving.conftest import bearer_headers
from visionloop.core.annotations import Boxes, annotation_to_payload
from visionloop.core.ontology import remap_annotation
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.app import create_app
from visionloop.serving.projects_api.work_schemas import Tag
from visionloop.storage import NewImage, Project
from visionloop.storage.review import REJECT_TAGS
from visionloop.storage.users import Role
from visionloop.storage.versions import version_items

API = "/api/v1"


@dataclass
class Bccd:
    project: Project
    client: TestClient
    truth: dict[int, Boxes]  # image id -> ground truth boxes
    h: dict[str, dict[str, str]]  # user -> bearer headers

    def url(self, path: str) -> str:
        return f"{API}/projects/{self.project.name}/{path}"

    def get(self, who: str, path: str, **kw: object):
        return self.client.get(self.url(path), headers=self.h[who], **kw)

    def post(self, who: str, path: str, body: object):
        return self.client.post(self.url(path), headers=self.h[who], json=body)


@pytest.fixture
def bccd(project_factory, bccd_dir) -> Iterator[Bccd]:
    from visionloop.formats import get_format

    dataset = get_format("voc").load(bccd_dir)
    p: Project = project_factory("detection", name="cells")
    to_project = {i: cid for i, cid in enumerate(p.class_ids(dataset.classes).values())}
    truth = {}
    samples = [s for s in sorted(dataset.samples, key=lambda s: s.name) if isinstance(s.annotation, Boxes)
               and len(s.annotation) >= 3][:8]
    for s in samples:
        data = s.image_path.read_bytes()
        w, h = Image.open(io.BytesIO(data)).size
        [(image_id, _)] = p.add_images([NewImage(sha256=p.blobs.put(data), width=w, height=h, format="jpeg",
                                                 name=s.name)])
        truth[image_id] = remap_annotation(s.annotation, to_project).clip(w, h)[0]
    headers = {"admin": bearer_headers(p, Role.ADMIN, user="ada"), "rita": bearer_headers(p, Role.REVIEWER, user="rita"),
               "a": bearer_headers(p, Role.ANNOTATOR, user="anna"), "b": bearer_headers(p, Role.ANNOTATOR, user="ben"),
               "viewer": bearer_headers(p, Role.VIEWER, user="vera")}
    with TestClient(create_app(p.root, settings=Settings())) as client:
        yield Bccd(p, client, truth, headers)


def answer(truth: Boxes, rng: np.random.Generator, *, drop: int | None = None) -> dict[str, object]:
    """An annotator's answer: the truth with corners moved by up to 2 px, one box dropped on request."""
    keep = [i for i in range(len(truth)) if i != drop]
    xyxy = truth.xyxy[keep] + rng.uniform(-2, 2, (len(keep), 4))
    xyxy[:, 2:] = np.maximum(xyxy[:, 2:], xyxy[:, :2] + 1)
    return annotation_to_payload(Boxes(xyxy.clip(0, None), truth.class_id[keep]))


def test_assign_annotate_reject_fix_approve_honeypot_consensus_version_stats(bccd: Bccd) -> None:
    p, rng = bccd.project, np.random.default_rng(0)
    ids = sorted(bccd.truth)
    work_ids, gold_id, consensus_id = ids[:6], ids[6], ids[7]
    # a trusted person annotates the gold image; the admin marks it gold
    p.save_annotation(gold_id, bccd.truth[gold_id], base_revision=None, author="rita")
    assert bccd.client.put(bccd.url(f"work/gold/{gold_id}"), headers=bccd.h["rita"]).status_code == 403
    assert bccd.client.put(bccd.url(f"work/gold/{gold_id}"), headers=bccd.h["admin"]).status_code == 200
    body = {"name": "week-1", "annotators": ["anna", "ben"], "image_ids": work_ids, "honeypot_rate": 0.5}
    assert bccd.client.post(bccd.url("work/batches"), json=body).status_code == 401
    assert bccd.post("rita", "work/batches", body).status_code == 403
    made = bccd.post("admin", "work/batches", body)
    assert made.status_code == 201, made.text
    assert made.json()["counts"] == {"todo": 6, "submitted": 0, "approved": 0, "rejected": 0}
    assert bccd.get("viewer", "work/next").status_code == 403

    # anna works through her queue: three images of the batch, and the gold image somewhere among them
    seen, items = [], {}
    while (item := bccd.get("a", "work/next").json()["item"]) is not None:
        assert set(item) == {"item", "image", "batch", "state", "base_revision", "annotation", "review"}
        assert item["batch"] == "week-1" and item["state"] == "todo" and item["annotation"] is None
        image_id = item["image"]["id"]
        seen.append(image_id)
        items[image_id] = item["item"]
        reply = bccd.post("a", f"work/{item['item']}/submit", {
            "annotation": answer(bccd.truth[image_id], rng, drop=0 if image_id == gold_id else None),
            "base_revision": item["base_revision"]})
        assert reply.status_code == 200 and reply.json() == {"item": item["item"], "state": "submitted"}
    assert gold_id in seen and sorted(i for i in seen if i != gold_id) == work_ids[0::2]
    assert p.head(gold_id)[1] == bccd.truth[gold_id]  # her answer on the gold image changed nothing
    assert bccd.post("b", f"work/{items[work_ids[0]]}/submit", {"annotation": None}).status_code == 404

    # the reviewer sees her three images, rejects one with tags and a comment point
    queue = bccd.get("rita", "work/review", params={"limit": 2}).json()
    assert queue["total"] == 3 and len(queue["items"]) == 2 and queue["items"][0]["annotators"] == ["anna"]
    assert bccd.get("a", "work/review").status_code == 403
    bad_tag = bccd.post("rita", f"work/review/{work_ids[2]}/reject", {"reason": "x", "tags": ["blurry"]})
    assert bad_tag.status_code == 422
    rejected = bccd.post("rita", f"work/review/{work_ids[2]}/reject", {
        "reason": "a platelet is missing", "tags": ["missing_object", "loose_box"], "comment": {"point": [320, 240]}})
    assert rejected.status_code == 200 and rejected.json() == {"changed": 1}
    back = bccd.get("a", "work/next").json()["item"]
    assert back["item"] == items[work_ids[2]] and back["state"] == "rejected"
    assert back["review"]["tags"] == ["missing_object", "loose_box"]
    assert back["review"]["comment"] == {"point": [320.0, 240.0]} and back["annotation"] is not None
    detail = bccd.get("a", f"images/{work_ids[2]}").json()
    assert detail["review"]["tags"] == ["missing_object", "loose_box"]
    fixed = bccd.post("a", f"work/{back['item']}/submit", {
        "annotation": annotation_to_payload(bccd.truth[work_ids[2]]), "base_revision": back["base_revision"]})
    assert fixed.status_code == 200
    assert bccd.get("a", "work/next").json()["item"] is None
    approved = bccd.post("rita", "work/review/approve", {"ids": work_ids[0::2]})
    assert approved.json() == {"changed": 3}
    events = bccd.get("rita", f"work/{items[work_ids[2]]}/events").json()
    assert [(e["state"], e["author"]) for e in events] == [
        ("todo", "ada"), ("submitted", "anna"), ("rejected", "rita"), ("submitted", "anna"), ("approved", "rita")]

    # a consensus batch: anna and ben answer the same image independently; the merge becomes the head, approved
    made = bccd.post("admin", "work/batches", {"name": "double", "annotators": ["anna", "ben"],
                                               "image_ids": [consensus_id], "mode": "consensus", "k": 2})
    assert made.status_code == 201 and made.json()["counts"]["todo"] == 2
    for who in ("a", "b"):
        item = bccd.get(who, "work/next").json()["item"]
        if who == "b" and item["image"]["id"] != consensus_id:  # ben has week-1 work first
            while item["image"]["id"] != consensus_id:
                bccd.post("b", f"work/{item['item']}/submit", {
                    "annotation": answer(bccd.truth[item["image"]["id"]], rng), "base_revision": None})
                item = bccd.get("b", "work/next").json()["item"]
        assert bccd.post(who, f"work/{item['item']}/submit", {
            "annotation": answer(bccd.truth[consensus_id], rng)}).status_code == 200
    rev, merged = p.head(consensus_id)
    assert p.history(consensus_id)[-1].author == "consensus"
    assert len(merged) == len(bccd.truth[consensus_id])
    assert np.abs(merged.xyxy - bccd.truth[consensus_id].xyxy).max() <= 2
    assert bccd.get("rita", f"images/{consensus_id}").json()["review"]["state"] == "approved"
    both = bccd.get("rita", f"work/review/{consensus_id}/answers").json()
    assert sorted(a["annotator"] for a in both["answers"]) == ["anna", "ben"]
    assert both["merges"][0]["revision"] == rev and both["merges"][0]["agreed"] is True
    assert bccd.get("a", f"work/review/{consensus_id}/answers").status_code == 403
    assert bccd.get("rita", f"work/review/{gold_id}/answers").json() == {"answers": [], "merges": []}

    # a version of approved images only: anna's three and the merged one
    v = bccd.post("admin", "versions", {"name": "approved", "approved_only": True, "val": 0, "test": 0})
    assert v.status_code == 201, v.text
    assert sorted(it.image.id for it in version_items(p, "approved")) == sorted([*work_ids[0::2], consensus_id])

    # statistics: everyone for admins and reviewers, only one's own line for an annotator, nothing for a viewer
    stats = {s["name"]: s for s in bccd.get("rita", "annotators").json()["items"]}
    anna = stats["anna"]
    assert (anna["approved"], anna["rejected"], anna["acceptance_rate"]) == (3, 1, 0.75)
    n = len(bccd.truth[gold_id])
    assert anna["honeypots"] == 1 and anna["honeypot_score"] == pytest.approx(2 * (n - 1) / (2 * n - 1))
    assert anna["consensus_answers"] == 1 and anna["agreement"] == pytest.approx(1.0)
    assert anna["images"] == 5 and anna["objects"] > 0 and anna["days"][0]["images"] == 5
    assert stats["ben"]["honeypots"] + stats["ben"]["images"] >= 1
    honeypots = bccd.get("rita", "annotators/anna/honeypots").json()
    assert honeypots["total"] == 1 and honeypots["items"][0]["image_id"] == gold_id
    assert honeypots["items"][0]["score"]["missed"] == 1 and honeypots["items"][0]["score"]["extra"] == 0
    assert bccd.get("a", "annotators/anna/honeypots").status_code == 403
    assert bccd.get("rita", "annotators/nobody/honeypots").status_code == 404
    own = bccd.get("a", "annotators").json()["items"]
    assert [s["name"] for s in own] == ["anna"] and own[0]["approved"] == 3
    assert own[0]["honeypots"] is None and own[0]["honeypot_score"] is None  # which item was gold stays hidden
    assert bccd.get("viewer", "annotators").status_code == 403
    assert bccd.client.get(bccd.url("annotators")).status_code == 401
    batches = bccd.get("rita", "work/batches").json()
    assert batches["total"] == 2 and batches["items"][1]["counts"]["approved"] == 3
    assert batches["items"][1]["by_annotator"]["anna"] == {"todo": 0, "submitted": 0, "approved": 3, "rejected": 0}


def test_batches_by_filter_rates_and_bad_input(bccd: Bccd) -> None:
    ids = sorted(bccd.truth)
    bccd.project.save_annotation(ids[0], bccd.truth[ids[0]], base_revision=None, author="rita")
    made = bccd.post("admin", "work/batches", {"name": "fresh", "annotators": ["anna", "ben"],
                                               "filter": {"annotated": False}, "per_annotator": 2})
    assert made.status_code == 201, made.text
    batch = made.json()
    assert batch["counts"]["todo"] == 4 and batch["params"]["filter"] == {"annotated": False}
    assert batch["params"]["left_out"] == 0 and batch["params"]["images"] == 4
    first = bccd.get("a", "work/next").json()["item"]
    assert first["image"]["id"] == ids[1]  # the annotated image was not selected
    unknown = bccd.post("admin", "work/batches", {"name": "x", "annotators": ["anna"], "filter": {"class": "Dog"}})
    assert unknown.status_code == 404 and "RBC" in unknown.text
    too_many = bccd.post("admin", "work/batches", {"name": "x", "annotators": ["anna", "ben"], "mode": "consensus",
                                                   "k": 3})
    assert too_many.status_code == 422 and "consensus k" in too_many.text
    nobody = bccd.post("admin", "work/batches", {"name": "x", "annotators": ["rita"], "image_ids": [10**6]})
    assert nobody.status_code == 404
    viewer = bccd.post("admin", "work/batches", {"name": "x", "annotators": ["vera"], "image_ids": [ids[7]]})
    assert viewer.status_code == 409 and "annotator role" in viewer.text
    rate = bccd.client.put(bccd.url("work/batches/fresh/honeypot-rate"), headers=bccd.h["admin"], json={"rate": 0.3})
    assert rate.status_code == 200 and rate.json()["honeypot_rate"] == 0.3
    assert bccd.client.put(bccd.url("work/batches/fresh/honeypot-rate"), headers=bccd.h["rita"],
                           json={"rate": 0.3}).status_code == 403
    assert bccd.client.put(bccd.url("work/batches/fresh/honeypot-rate"), headers=bccd.h["admin"],
                           json={"rate": 1.5}).status_code == 422
    assert bccd.get("rita", "work/batches/nope").status_code == 404
    assert bccd.post("a", f"work/{first['item']}/submit", {"annotation": None}).status_code == 422  # nothing saved


def test_the_tags_of_the_api_are_the_library_s() -> None:
    assert set(Tag.__args__) == set(REJECT_TAGS)


def test_my_queue_reopens_items_and_hides_gold_from_annotators(bccd: Bccd) -> None:
    p, rng = bccd.project, np.random.default_rng(1)
    ids = sorted(bccd.truth)
    gold_id = ids[5]
    p.save_annotation(gold_id, bccd.truth[gold_id], base_revision=None, author="rita")
    assert bccd.client.put(bccd.url(f"work/gold/{gold_id}"), headers=bccd.h["admin"]).status_code == 200
    made = bccd.post("admin", "work/batches", {"name": "w", "annotators": ["anna"], "image_ids": ids[:2],
                                               "honeypot_rate": 1.0})
    assert made.status_code == 201, made.text
    assert bccd.client.get(bccd.url("work/mine")).status_code == 401
    assert bccd.get("viewer", "work/mine").status_code == 403
    mine = bccd.get("a", "work/mine").json()
    assert mine["counts"] == {"todo": 2, "submitted": 0, "approved": 0, "rejected": 0} and mine["rejected"] == []
    assert mine["batches"] == [{"batch": "w", "counts": mine["counts"]}]

    # the first item is the honeypot (rate 1.0): reopened by id it reads like any item, counts leave it out
    first = bccd.get("a", "work/next").json()["item"]
    assert first["image"]["id"] == gold_id and first["annotation"] is None
    assert bccd.get("a", f"work/items/{first['item']}").json() == first
    assert bccd.get("b", f"work/items/{first['item']}").status_code == 404  # another's item does not exist
    assert bccd.get("viewer", f"work/items/{first['item']}").status_code == 403
    assert bccd.client.get(bccd.url(f"work/items/{first['item']}")).status_code == 401
    assert bccd.get("a", "work/mine").json()["counts"]["todo"] == 2

    # the images API shows an annotator the gold image as never annotated (its head is the honeypot's answer)
    seen = bccd.get("a", f"images/{gold_id}").json()
    assert (seen["annotation"], seen["annotated"], seen["head_revision"], seen["review"]) == (None, False, None, None)
    listed = {i["id"]: i for i in bccd.get("a", "images").json()["items"]}
    assert listed[gold_id]["annotated"] is False and listed[gold_id]["review_state"] == "todo"
    assert "gold" not in bccd.get("a", "images").text and "honeypot" not in bccd.get("a", "images").text

    def ids_where(who: str, query: str) -> set[int]:
        return {i["id"] for i in bccd.get(who, f"images?{query}&limit=500").json()["items"]}

    # ... and so do the filters: listed with the never-annotated images, never with the annotated ones
    gold_class = bccd.get("rita", f"images/{gold_id}").json()["annotation"]["class_id"][0]  # a name or an id
    for query in ("annotated=true", f"class={gold_class}", "annotator=rita", "box_min=1"):
        assert gold_id not in ids_where("a", query) and gold_id in ids_where("rita", query), query
    assert gold_id in ids_where("a", "annotated=false") and gold_id not in ids_where("rita", "annotated=false")
    assert gold_id in ids_where("a", "review=todo")
    assert bccd.get("a", "images/count?annotated=false").json()["total"] == len(ids_where("a", "annotated=false"))
    for who in ("rita", "viewer", "admin"):  # reviewers and admins see the gold's annotation; viewers never annotate
        assert bccd.get(who, f"images/{gold_id}").json()["annotated"] is True
    assert bccd.get("a", f"images/{gold_id}/revisions").json() == []  # nor its history
    assert [r["author"] for r in bccd.get("rita", f"images/{gold_id}/revisions").json()] == ["rita"]
    stale = bccd.client.put(bccd.url(f"images/{gold_id}/annotation"), headers=bccd.h["a"], json={
        "payload": answer(bccd.truth[gold_id], rng), "base_revision": None})
    assert stale.status_code == 409 and stale.json()["head"] is None  # a save from scratch shows no gold either
    other = bccd.get("a", f"images/{ids[0]}").json()
    assert other["annotation"] is None and other["annotated"] is False  # nothing hidden: never annotated

    # submit both (the honeypot is scored, the normal item goes to review), the reviewer rejects the normal one
    for _ in range(2):
        item = bccd.get("a", "work/next").json()["item"]
        assert bccd.post("a", f"work/{item['item']}/submit", {
            "annotation": answer(bccd.truth[item["image"]["id"]], rng)}).status_code == 200
    assert bccd.get("a", "work/mine").json()["counts"] == {"todo": 1, "submitted": 1, "approved": 0, "rejected": 0}
    assert bccd.post("rita", f"work/review/{ids[0]}/reject", {"reason": "boxes are loose", "tags": ["loose_box"],
                                                              "comment": {"box": [10, 20, 110, 120]}}).status_code == 200
    mine = bccd.get("a", "work/mine").json()
    assert mine["counts"]["rejected"] == 1
    [rejected] = mine["rejected"]
    assert (rejected["image_id"], rejected["reason"], rejected["tags"], rejected["author"]) == (
        ids[0], "boxes are loose", ["loose_box"], "rita")
    reopened = bccd.get("a", f"work/items/{rejected['item']}").json()
    assert reopened["state"] == "rejected" and reopened["review"]["comment"] == {"box": [10.0, 20.0, 110.0, 120.0]}
    assert bccd.get("rita", "annotators/anna/honeypots").json()["items"][0]["image_id"] == gold_id
