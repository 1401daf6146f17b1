"""``create_version(base=...)``: the frozen test set of the retrain-and-compare loop grows only by the random slice."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import insert, update

from tests.synthetic import COLOURS, _add, _png, make_project
from visionloop.core import Label
from visionloop.core.errors import ConflictError, NotFoundError
from visionloop.storage.models import ImageRow
from visionloop.storage.production import ProductionSampleRow
from visionloop.storage.review import ReviewState, set_review_state
from visionloop.storage.versions import create_version, version_items


def _new_images(project, n, *, start, seed=1):
    rng = np.random.default_rng(seed)
    cid = project.class_ids(["c0", "c1", "c2"])
    ids = []
    for j in range(n):
        k = j % 3
        arr = np.clip(np.array(COLOURS[k]) + rng.integers(-60, 60, size=(40, 40, 3)), 0, 255)
        image_id = _add(project, _png(arr), f"new-{start + j}.png")
        project.save_annotation(image_id, Label(cid[f"c{k}"]), base_revision=None, author="annotator")
        ids.append(image_id)
    return ids


def _random_slice(project, image_ids):
    now = datetime.now(UTC)
    with project.transaction() as conn:
        conn.execute(insert(ProductionSampleRow), [
            {"request_id": f"r{i}", "image_id": i, "model": "m", "samplers": ["random"], "random_slice": True,
             "prediction": {}, "predicted_at": now} for i in image_ids])


def _splits(project, name):
    return {it.image.id: it.split for it in version_items(project, name)}


def test_base_keeps_every_split_and_new_images_never_reach_test(tmp_path):
    p = make_project(tmp_path / "p", task="classification", n_per_class=10)
    v1 = _splits(p, "v1")
    chosen = _new_images(p, 30, start=0)
    for seed in (0, 1, 2):
        info = create_version(p, name=f"b{seed}", base="v1", seed=seed, phash_distance=-1)
        got = _splits(p, f"b{seed}")
        assert {i: got[i] for i in v1} == v1
        assert all(got[i] in ("train", "val") for i in chosen)
        assert {got[i] for i in chosen} == {"train", "val"}
        assert info.summary["base"] == {"version": "v1", "kept": len(v1), "new": 30, "held_out": 0, "new_test": 0}
        assert info.params["base"] == "v1"
    # without a base, the same images are split anew and some new ones land in test
    plain = _splits(p, create_version(p, name="plain", phash_distance=-1).name)
    assert any(plain[i] == "test" for i in chosen)


def test_random_slice_images_may_go_to_test_in_the_usual_proportion(tmp_path):
    p = make_project(tmp_path / "p", task="classification", n_per_class=10)
    randoms = _new_images(p, 60, start=0, seed=2)
    _random_slice(p, randoms)
    chosen = _new_images(p, 30, start=100, seed=3)
    info = create_version(p, name="v2", base="v1", phash_distance=-1)
    got = _splits(p, "v2")
    tests = sum(got[i] == "test" for i in randoms)
    assert 6 <= tests <= 12  # 15% of 60 is 9
    assert info.summary["base"]["new_test"] == tests
    assert all(got[i] != "test" for i in chosen)


def test_new_near_duplicate_of_a_test_image_is_held_out_not_trained_on(tmp_path):
    p = make_project(tmp_path / "p", task="classification", n_per_class=10)
    v1 = version_items(p, "v1")
    test_item = next(it for it in v1 if it.split == "test")
    train_item = next(it for it in v1 if it.split == "train")
    cid = p.class_ids(["c0"])["c0"]
    ids = []
    for group in ("g-test", "g-train"):
        image_id = _add(p, _png(np.full((40, 40, 3), 7 + len(ids), np.uint8)), f"copy-{group}.png", meta={"group": group})
        p.save_annotation(image_id, Label(cid), base_revision=None, author="a")
        ids.append(image_id)
    # the base images join the meta groups of the copies (as crops of one parent image would)
    with p.transaction() as conn:
        conn.execute(update(ImageRow).where(ImageRow.id == test_item.image.id).values(meta={"group": "g-test"}))
        conn.execute(update(ImageRow).where(ImageRow.id == train_item.image.id).values(meta={"group": "g-train"}))
    info = create_version(p, name="v2", base="v1", phash_distance=-1)
    got = _splits(p, "v2")
    assert ids[0] not in got  # would leak into train, or grow test by a chosen image
    assert got[ids[1]] == "train"
    assert info.summary["base"]["held_out"] == 1
    _random_slice(p, [ids[0]])
    assert _splits(p, create_version(p, name="v3", base="v1", phash_distance=-1).name)[ids[0]] == "test"


def test_approved_only_filters_new_images_and_keeps_the_base(tmp_path):
    p = make_project(tmp_path / "p", task="classification", n_per_class=10)
    new = _new_images(p, 12, start=0)
    set_review_state(p, new[:5], ReviewState.APPROVED, author="reviewer")
    create_version(p, name="v2", base="v1", approved_only=True, phash_distance=-1)
    got = _splits(p, "v2")
    assert set(got) == set(_splits(p, "v1")) | set(new[:5])


def test_base_errors_say_what_to_do(tmp_path):
    p = make_project(tmp_path / "p", task="classification", n_per_class=4)
    with pytest.raises(NotFoundError, match="v1"):
        create_version(p, name="v2", base="nope")
    with pytest.raises(ConflictError, match="drop splits=source"):
        create_version(p, name="v2", base="v1", splits="source")


def test_a_split_hint_of_test_does_not_bring_a_new_image_into_test(tmp_path):
    p = make_project(tmp_path / "p", task="classification", n_per_class=6)
    cid = p.class_ids(["c1"])["c1"]
    ids = []
    for j in range(6):
        image_id = _add(p, _png(np.full((40, 40, 3), 30 * j, np.uint8)), f"hinted-{j}.png", meta={"split_hint": "test"})
        p.save_annotation(image_id, Label(cid), base_revision=None, author="a")
        ids.append(image_id)
    got = _splits(p, create_version(p, name="v2", base="v1", phash_distance=-1).name)
    assert all(got[i] != "test" for i in ids)
    plain = _splits(p, create_version(p, name="v3", phash_distance=-1).name)
    assert all(plain[i] == "test" for i in ids)
