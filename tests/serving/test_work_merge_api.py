"""Accepting a consensus merge over the project API (POST .../work/review/{image}/accept-merge): two annotators'
disagreeing answers of a real BCCD image are merged and sent to review; the reviewer edits the head, then accepts the
merge: the merged annotation is the head again (a revision by the reviewer) and the image is approved. Roles, an image
without a merge and an image no longer waiting for review are refused."""

from __future__ import annotations

import numpy as np

from tests.serving.test_work_api import Bccd, answer, bccd  # noqa: F401
from visionloop.core.annotations import Boxes


def next_of(b: Bccd, who: str, image_id: int) -> dict:
    item = b.get(who, "work/next").json()["item"]
    assert item is not None and item["image"]["id"] == image_id, item
    return item


def test_accept_merge_restores_the_merge_edited_since_and_approves(bccd: Bccd) -> None:  # noqa: F811
    p, rng = bccd.project, np.random.default_rng(1)
    consensus_id, normal_id = sorted(bccd.truth)[:2]
    assert bccd.post("admin", "work/batches", {"name": "c", "annotators": ["anna", "ben"], "image_ids": [consensus_id],
                                               "mode": "consensus", "k": 2,
                                               "agreement_threshold": 1.0}).status_code == 201
    for who, drop in (("a", None), ("b", 0)):  # ben leaves a box out: they disagree
        item = next_of(bccd, who, consensus_id)
        assert bccd.post(who, f"work/{item['item']}/submit",
                         {"annotation": answer(bccd.truth[consensus_id], rng, drop=drop)}).status_code == 200
    merged_at, merged = p.head(consensus_id)
    assert p.history(consensus_id)[-1].author == "consensus"
    assert bccd.get("rita", f"images/{consensus_id}").json()["review"]["state"] == "submitted"
    assert bccd.get("rita", f"work/review/{consensus_id}/answers").json()["merges"][-1]["revision"] == merged_at

    edited = Boxes(merged.xyxy[1:], merged.class_id[1:])  # the reviewer edits it in the editor, then changes their mind
    assert p.save_annotation(consensus_id, edited, base_revision=merged_at, author="rita") == merged_at + 1

    [waiting] = bccd.get("rita", "work/review").json()["items"]
    items = waiting["items"]
    path = bccd.url(f"work/review/{consensus_id}/accept-merge")
    assert bccd.client.post(path).status_code == 401
    assert bccd.post("a", f"work/review/{consensus_id}/accept-merge", {}).status_code == 403
    accepted = bccd.post("rita", f"work/review/{consensus_id}/accept-merge", {})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"changed": 1, "revision": merged_at + 2}
    head, annotation = p.head(consensus_id)
    assert head == merged_at + 2 and p.history(consensus_id)[-1].author == "rita"
    assert np.array_equal(annotation.xyxy, merged.xyxy) and np.array_equal(annotation.class_id, merged.class_id)
    detail = bccd.get("rita", f"images/{consensus_id}").json()
    assert detail["review_state"] == "approved" and detail["review"]["author"] == "rita"
    events = [bccd.get("rita", f"work/{i}/events").json()[-1] for i in items]
    assert len(events) == 2 and all(e["state"] == "approved" and e["author"] == "rita" for e in events)
    again = bccd.post("rita", f"work/review/{consensus_id}/accept-merge", {})
    assert again.status_code == 409 and "not waiting for review" in again.text

    # an image without a merge: approve it instead; an unknown image: 404
    assert bccd.post("admin", "work/batches", {"name": "n", "annotators": ["anna"],
                                               "image_ids": [normal_id]}).status_code == 201
    item = next_of(bccd, "a", normal_id)
    assert bccd.post("a", f"work/{item['item']}/submit",
                     {"annotation": answer(bccd.truth[normal_id], rng)}).status_code == 200
    plain = bccd.post("rita", f"work/review/{normal_id}/accept-merge", {})
    assert plain.status_code == 409 and "no consensus merge" in plain.text
    assert bccd.get("rita", f"images/{normal_id}").json()["review_state"] == "submitted"  # nothing changed
    assert bccd.post("rita", "work/review/999999/accept-merge", {}).status_code == 404
