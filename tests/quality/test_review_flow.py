"""The review workflow on a real project store: batches, queues with honeypots, submit, review, consensus, stats."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from tests.conftest import fresh_postgres_database
from visionloop.core.annotations import Boxes
from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError, StaleRevisionError
from visionloop.quality.review_flow import submit_item
from visionloop.storage import NewImage, Project
from visionloop.storage.annotator_stats import annotator_stats
from visionloop.storage.gold import gold_annotations, mark_gold, unmark_gold
from visionloop.storage.models import RevisionRow
from visionloop.storage.review import current_reviews, review_history
from visionloop.storage.users import add_user
from visionloop.storage.versions import create_version, version_items
from visionloop.storage.work import (
    approve_images,
    create_batch,
    get_batch,
    item_events,
    list_batches,
    next_item,
    reject_image,
    review_queue,
    set_honeypot_rate,
)
from visionloop.storage.work_rows import AnswerRow


def add(project: Project, n: int) -> list[int]:
    return [project.add_images([NewImage(sha256=project.blobs.put(bytes([i]) * 8), width=100, height=100,
                                         format="jpeg", name=f"{i}.jpg")])[0][0] for i in range(n)]


@pytest.fixture(params=["sqlite", "postgres"])
def team(request, tmp_path: Path) -> Iterator[tuple[Project, list[int], int]]:
    """A detection project with one class, 8 images and users; on SQLite, and on a fresh PostgreSQL database of
    ``VISIONLOOP_TEST_POSTGRES_URL``'s server when it is set."""
    def make(db_url: str | None) -> Iterator[tuple[Project, list[int], int]]:
        p = Project.create(tmp_path / "p", task="detection", db_url=db_url)
        try:
            cid = p.class_ids(["cell"])["cell"]
            for name, role in (("ann", "annotator"), ("bob", "annotator"), ("rita", "reviewer"), ("vic", "viewer")):
                add_user(p, name, role=role)
            yield p, add(p, 8), cid
        finally:
            p.close()

    if request.param == "sqlite":
        yield from make(None)
        return
    base = os.environ.get("VISIONLOOP_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("no PostgreSQL server: set VISIONLOOP_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@127.0.0.1/db")
    with fresh_postgres_database(base, prefix="vl_work") as url:
        yield from make(url)


def box(cid: int, x: float = 10) -> Boxes:
    return Boxes([[x, 10, x + 20, 30]], [cid])


def test_batch_round_robin_and_bad_input(team) -> None:
    p, ids, _ = team
    b = create_batch(p, name="b1", annotators=["ann", "bob"], created_by="admin", image_ids=ids[:5])
    assert b.counts["todo"] == 5 and b.params["annotators"] == ["ann", "bob"]
    with pytest.raises(ConflictError, match="exists"):
        create_batch(p, name="b1", annotators=["ann"], created_by="admin", image_ids=ids[5:])
    with pytest.raises(ConflictError, match="open work"):
        create_batch(p, name="b2", annotators=["ann"], created_by="admin", image_ids=ids[:1])
    with pytest.raises(ConflictError, match="cannot annotate"):
        create_batch(p, name="b2", annotators=["vic"], created_by="admin", image_ids=ids[5:])
    with pytest.raises(NotFoundError):
        create_batch(p, name="b2", annotators=["nobody"], created_by="admin", image_ids=ids[5:])
    with pytest.raises(AnnotationValidationError, match="consensus k"):
        create_batch(p, name="b2", annotators=["ann", "bob"], created_by="admin", mode="consensus", k=3)
    # by filter (every image not in open work), 1 per annotator
    b2 = create_batch(p, name="b2", annotators=["ann", "bob"], created_by="admin", where=(), per_annotator=1)
    assert b2.params["images"] == 2 and b2.params["left_out"] == 5
    total, batches = list_batches(p)
    assert total == 2 and [x.name for x in batches] == ["b2", "b1"]
    assert get_batch(p, "b1").id == b.id
    # ann gets images 0, 2, 4 of b1 in order, then b2's first image
    order = []
    while (item := next_item(p, "ann")) is not None:
        order.append(item.image_id)
        submit_item(p, item.id, annotator="ann", annotation=box(p.class_ids(["cell"])["cell"]),
                    base_revision=item.base_revision)
    assert order == [ids[0], ids[2], ids[4], ids[5]]


def test_reject_comes_back_first_then_approve_and_version(team) -> None:
    p, ids, cid = team
    create_batch(p, name="b", annotators=["ann"], created_by="admin", image_ids=ids[:3])
    first = next_item(p, "ann")
    assert first is not None and first.annotation is None and first.base_revision is None
    with pytest.raises(NotFoundError):  # another's item does not exist for bob
        submit_item(p, first.id, annotator="bob", annotation=box(cid))
    submit_item(p, first.id, annotator="ann", annotation=box(cid), base_revision=None)
    with pytest.raises(ConflictError, match="submitted"):
        submit_item(p, first.id, annotator="ann", annotation=box(cid))
    second = next_item(p, "ann")
    assert second.image_id == ids[1]
    total, queue = review_queue(p)
    assert total == 1 and queue[0]["image_id"] == ids[0] and queue[0]["annotators"] == ["ann"]
    with pytest.raises(ConflictError, match="not waiting"):
        approve_images(p, [ids[1]], author="rita")
    with pytest.raises(NotFoundError, match="review tag"):
        reject_image(p, ids[0], author="rita", reason="x", tags=["blurry"])
    with pytest.raises(AnnotationValidationError, match="inside"):
        reject_image(p, ids[0], author="rita", reason="x", comment={"point": [150, 5]})
    reject_image(p, ids[0], author="rita", reason="box too loose", tags=["loose_box", "missing_object"],
                 comment={"point": [12, 20]})
    back = next_item(p, "ann")
    assert back.id == first.id and back.state == "rejected" and back.base_revision == 1
    assert back.review["tags"] == ["loose_box", "missing_object"] and back.review["comment"] == {"point": [12.0, 20.0]}
    with pytest.raises(StaleRevisionError):
        submit_item(p, back.id, annotator="ann", annotation=box(cid, 12), base_revision=None)
    submit_item(p, back.id, annotator="ann", annotation=box(cid, 12), base_revision=1)
    approve_images(p, [ids[0]], author="rita")
    assert [e["state"] for e in item_events(p, first.id)] == ["todo", "submitted", "rejected", "submitted",
                                                               "approved"]
    assert [(e.state.value, e.author) for e in review_history(p, ids[0])] == [
        ("submitted", "ann"), ("rejected", "rita"), ("submitted", "ann"), ("approved", "rita")]
    v = create_version(p, name="ok", approved_only=True, fractions=(1.0, 0.0, 0.0))
    assert [it.image.id for it in version_items(p, v.name)] == [ids[0]]
    stats = {s.name: s for s in annotator_stats(p)}
    assert (stats["ann"].approved, stats["ann"].rejected, stats["ann"].acceptance_rate) == (1, 1, 0.5)


def test_honeypots_are_scored_and_kept_apart(team) -> None:
    p, ids, cid = team
    p.save_annotation(ids[7], Boxes([[10, 10, 30, 30], [50, 50, 70, 70]], [cid, cid]), base_revision=None,
                      author="rita")
    with pytest.raises(ConflictError, match="no annotation"):
        mark_gold(p, ids[6], author="rita")
    mark_gold(p, ids[7], author="rita")
    head_before = p.head(ids[7])
    with pytest.raises(ConflictError, match="gold"):
        create_batch(p, name="g", annotators=["ann"], created_by="admin", image_ids=[ids[7]])
    create_batch(p, name="b", annotators=["ann", "bob"], created_by="admin", image_ids=ids[:6], honeypot_rate=1.0,
                 seed=3)
    item = next_item(p, "ann")
    assert item.image_id == ids[7] and item.annotation is None and item.base_revision is None  # looks like work
    assert next_item(p, "ann").id == item.id  # asked again: the same item
    assert set(item.to_json()) == set(next_item(p, "bob").to_json())
    # one of two boxes found: F1 2/3
    assert submit_item(p, item.id, annotator="ann", annotation=Boxes([[11, 10, 31, 30]], [cid])) == {
        "item": item.id, "state": "submitted"}
    assert p.head(ids[7]) == head_before and gold_annotations(p)[ids[7]].annotation == head_before[1]
    with p.engine.connect() as c:
        score = c.execute(select(AnswerRow.score)).scalar_one()
    assert score["f1"] == pytest.approx(2 / 3) and score["recall"] == 0.5
    assert next_item(p, "ann").image_id == ids[0]  # the only gold image is answered: real work
    assert current_reviews(p, [ids[7]]) == {}  # a honeypot never goes to review
    stats = {s.name: s for s in annotator_stats(p)}
    assert stats["ann"].honeypots == 1 and stats["ann"].honeypot_score == pytest.approx(2 / 3)
    create_batch(p, name="r", annotators=["rita"], created_by="admin", image_ids=[ids[6]], honeypot_rate=1.0)
    assert next_item(p, "rita").image_id == ids[6]  # she set the gold: she is not tested on it
    set_honeypot_rate(p, "b", 0.0)
    assert get_batch(p, "b").honeypot_rate == 0.0 and get_batch(p, "b").counts["submitted"] == 0
    assert unmark_gold(p, ids[7], author="rita") and gold_annotations(p) == {}


def test_honeypot_draw_is_deterministic_and_follows_the_rate(project_factory) -> None:
    def served(rate: float, seed: int) -> list[bool]:
        p = project_factory("detection")
        cid = p.class_ids(["cell"])["cell"]
        add_user(p, "ann", role="annotator")
        ids = add(p, 40)
        for g in ids[30:]:
            p.save_annotation(g, box(cid), base_revision=None, author="admin")
            mark_gold(p, g, author="admin")
        create_batch(p, name="b", annotators=["ann"], created_by="admin", image_ids=ids[:30], honeypot_rate=rate,
                     seed=seed)
        out = []
        while (item := next_item(p, "ann")) is not None:
            out.append(item.image_id in ids[30:])
            submit_item(p, item.id, annotator="ann", annotation=box(cid), base_revision=item.base_revision)
        p.close()
        return out

    a = served(0.25, 1)
    assert a == served(0.25, 1) and a != served(0.25, 2)
    assert sum(a) == a.count(True) and 3 <= sum(a) <= 10 and len(a) == 30 + sum(a)
    assert sum(served(0.0, 1)) == 0


def test_consensus_merge_agreed_and_disputed(team) -> None:
    p, ids, cid = team
    create_batch(p, name="c", annotators=["ann", "bob"], created_by="admin", image_ids=ids[:2], mode="consensus",
                 k=2, agreement_threshold=0.9)
    answers = {"ann": [box(cid, 10), box(cid, 10)], "bob": [box(cid, 11), box(cid, 60)]}
    for who in ("ann", "bob"):
        for k in range(2):
            item = next_item(p, who)
            assert item.image_id == ids[k] and item.annotation is None
            submit_item(p, item.id, annotator=who, annotation=answers[who][k])
            if who == "ann":
                assert p.head(ids[k]) == (None, None)  # one answer in: nothing merged yet
    # image 0: the boxes agree (IoU 19/21): merged, head by "consensus", approved
    head, ann = p.head(ids[0])
    np.testing.assert_allclose(ann.xyxy, [[10.5, 10, 30.5, 30]])
    assert current_reviews(p, [ids[0]])[ids[0]].state.value == "approved"
    # image 1: no overlap, agreement 0: sent to review, with the merge (both boxes, k=2 keeps >= 1 vote)
    assert current_reviews(p, [ids[1]])[ids[1]].state.value == "submitted"
    total, queue = review_queue(p)
    assert total == 1 and queue[0]["consensus"] and queue[0]["agreement"] == 0.0
    assert len(p.head(ids[1])[1]) == 2
    with p.engine.connect() as c:
        authors = set(c.execute(select(RevisionRow.author)).scalars())
    assert authors == {"consensus"}
    stats = {s.name: s for s in annotator_stats(p)}
    assert stats["ann"].consensus_answers == 2 and stats["ann"].agreement == pytest.approx(0.5)


def test_stats_time_per_image_with_a_gap_cap(team) -> None:
    p, ids, cid = team
    for i in range(4):
        p.save_annotation(ids[i], box(cid), base_revision=None, author="ann")
    with p.transaction() as c:  # saves at 0 s, 60 s, 150 s, then 2 hours later
        t0 = c.execute(select(RevisionRow.created_at)).scalars().first()
        for i, dt in enumerate((0, 60, 150, 7350)):
            c.execute(update(RevisionRow).where(RevisionRow.annotation_id == ids[i])
                      .values(created_at=t0 + timedelta(seconds=dt)))
    s = {x.name: x for x in annotator_stats(p)}["ann"]  # 60 s on the second image, 90 s on the third
    assert s.images == 4 and s.objects == 4
    assert s.hours == pytest.approx(150 / 3600)  # the 2-hour gap starts a new session
    assert s.median_seconds_per_image == 75 and s.images_per_hour == pytest.approx(4 / (150 / 3600))
    assert sum(d["images"] for d in s.days) == 4
