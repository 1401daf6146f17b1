import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image_bytes
from visionloop.core import RLE, Boxes, Instances, Label, SemanticMask, Tags
from visionloop.core.errors import ConflictError
from visionloop.core.imageio import decode_array
from visionloop.quality import derive_project
from visionloop.quality.derive import boxes_from_semantic, crop_region
from visionloop.storage import NewImage, Project
from visionloop.storage.versions import create_version, version_items


def add(project, data, name, **kw):
    sha = project.blobs.put(data)
    im = Image.open(io.BytesIO(data))
    [(image_id, _)] = project.add_images([NewImage(sha256=sha, width=im.width, height=im.height,
                                                   format=im.format.lower(), name=name, **kw)])
    return image_id


@pytest.fixture
def det_project(project_factory):
    """Detection project: 8 images (200x150) with 0-3 boxes of cat/dog, one box touching the border, one tiny box."""
    p = project_factory("detection")
    ids = p.class_ids(["cat", "dog"])
    p.set_class_flags("dog", orientation_sensitive=True)
    rng = np.random.default_rng(1)
    n_boxes = 0
    for s in range(8):
        iid = add(p, make_image_bytes(200, 150, seed=s, fmt="PNG" if s % 2 else "JPEG"), f"dir/img{s}.png")
        k = s % 4
        xy = rng.uniform(0, 120, size=(k, 2))
        wh = rng.uniform(10, 60, size=(k, 2))
        xyxy = np.c_[xy, np.minimum(xy + wh, [200, 150])]
        cls = rng.choice([ids["cat"], ids["dog"]], size=k)
        if s == 3:
            xyxy[0] = [170.5, 120.2, 200, 150]  # touches the corner: the margin is clipped
            xyxy[1] = [5, 5, 7, 20]  # narrower than min_size=4: no crop
        p.save_annotation(iid, Boxes(xyxy, cls), base_revision=None, author="t")
        n_boxes += k
    return p, n_boxes


def test_crops_one_per_box_with_source_pixels_and_group(det_project, tmp_path):
    p, n_boxes = det_project
    create_version(p, name="v1", phash_distance=-1)
    rep = derive_project(p, "v1", to="crops", out=tmp_path / "crops", margin=0.1, min_size=4)
    assert rep.objects == n_boxes - 1 and rep.skipped == {"too_small": 1}
    parents = {it.image.sha256: it for it in version_items(p, "v1")}
    onto = p.ontology()
    with Project.open(tmp_path / "crops") as c:
        assert c.task.value == "classification"
        assert c.ontology().names == ["cat", "dog"]
        assert c.ontology().by_name("dog").orientation_sensitive
        assert c.count_images() == n_boxes - 1
        cdefs = c.ontology()
        for im in c.images():
            parent = parents[im.meta["parent_sha256"]]
            assert im.meta["group"] == parent.image.sha256
            assert im.meta["parent_image_id"] == parent.image.id
            assert im.meta["split_hint"] == parent.split
            assert im.format == "png"
            box = parent.annotation.xyxy[im.meta["box_index"]]
            np.testing.assert_allclose(im.meta["box_xyxy"], box, atol=1e-3)
            x1, y1, x2, y2 = im.meta["crop_xyxy"]
            assert (x1, y1, x2, y2) == crop_region(box, margin=0.1, width=200, height=150)
            assert x1 <= box[0] and y1 <= box[1] and x2 >= box[2] and y2 >= box[3]
            assert (x2 - x1, y2 - y1) == (im.width, im.height)
            crop = decode_array(c.blobs.read(im.sha256))
            source = decode_array(p.blobs.read(parent.image.sha256))
            np.testing.assert_array_equal(crop, source[y1:y2, x1:x2])
            label = c.head(im.id)[1]
            parent_class = int(parent.annotation.class_id[im.meta["box_index"]])
            assert cdefs.by_id(label.class_id).name == onto.by_id(parent_class).name


def test_crop_region_margin_and_clipping():
    assert crop_region([10, 20, 30, 60], margin=0.1, width=100, height=100) == (8, 16, 32, 64)
    assert crop_region([90, 90, 100, 100], margin=0.5, width=100, height=100) == (85, 85, 100, 100)
    assert crop_region([10.4, 10.6, 20.2, 20.5], margin=0.0, width=100, height=100) == (10, 10, 21, 21)


def test_derived_version_keeps_source_split_and_crops_together(det_project, tmp_path):
    p, _ = det_project
    create_version(p, name="v1", seed=2, phash_distance=-1)
    derive_project(p, "v1", to="crops", out=tmp_path / "crops")
    source_split = {it.image.sha256: it.split for it in version_items(p, "v1")}
    with Project.open(tmp_path / "crops") as c:
        v = create_version(c, seed=99)
        items = version_items(c, v.name)
        assert items
        for it in items:
            assert it.split == source_split[it.image.meta["parent_sha256"]]
        assert v.summary["hinted_groups"] == v.summary["groups"]


def test_segmentation_instances_to_detection_boxes_equal_mask_extents(project_factory, tmp_path):
    p = project_factory("segmentation")
    cid = p.class_ids(["nucleus"])["nucleus"]
    iid = add(p, make_image_bytes(80, 60, seed=5), "n.jpg")
    masks = []
    m1 = np.zeros((60, 80), bool)
    m1[10:20, 5:30] = True
    m1[25, 40] = True  # a stray pixel of the same instance widens its box
    m2 = np.zeros((60, 80), bool)
    m2[40:59, 60:80] = True
    masks = [m1, m2]
    inst = Instances(Boxes(np.array([[0, 0, 1, 1], [0, 0, 1, 1]]), np.array([cid, cid]), track_id=np.array([7, 8])),
                     [RLE.encode(m) for m in masks] + [])
    polygon = Instances(Boxes(np.array([[0, 0, 1, 1]]), np.array([cid])), [[[2.5, 3, 12, 3, 12, 9.5]]])
    p.save_annotation(iid, inst, base_revision=None, author="t")
    iid2 = add(p, make_image_bytes(80, 60, seed=6), "m.jpg")
    p.save_annotation(iid2, polygon, base_revision=None, author="t")
    create_version(p, name="v1", phash_distance=-1)
    rep = derive_project(p, "v1", to="detection", out=tmp_path / "det")
    assert (rep.images, rep.annotations, rep.objects) == (2, 2, 3)
    with Project.open(tmp_path / "det") as d:
        new_cid = d.ontology().by_name("nucleus").id
        by_name = {im.name: im for im in d.images()}
        boxes = d.head(by_name["n.jpg"].id)[1]
        for box, m in zip(boxes.xyxy, masks, strict=True):
            ys, xs = np.nonzero(m)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert boxes.class_id.tolist() == [new_cid, new_cid]
        assert boxes.track_id.tolist() == [7, 8]
        assert d.head(by_name["m.jpg"].id)[1].xyxy.tolist() == [[2.5, 3, 12, 9.5]]
        assert by_name["n.jpg"].meta["split_hint"] in {"train", "val", "test"}
        assert d.stats()["classes"] == {"nucleus": 3}


def test_semantic_mask_components_to_boxes(project_factory, tmp_path):
    p = project_factory("segmentation")
    ids = p.class_ids(["cell", "debris"])
    m = np.zeros((50, 70), np.int32)  # 0 = background, not a class of the ontology
    m[2:12, 3:20] = ids["cell"]
    m[30:45, 50:66] = ids["cell"]
    m[12:14, 20:22] = ids["cell"]  # touches the first region diagonally: same component
    m[20:30, 30:40] = ids["debris"]
    m[48:50, 0:2] = ids["debris"]  # 2x2 speckle < min_size
    boxes, dropped = boxes_from_semantic(SemanticMask(m), class_ids=list(ids.values()), min_size=4)
    got = sorted(zip(boxes.class_id.tolist(), boxes.xyxy.tolist(), strict=True))
    assert got == sorted([(ids["cell"], [3, 2, 22, 14]), (ids["cell"], [50, 30, 66, 45]),
                          (ids["debris"], [30, 20, 40, 30])])
    assert dropped == 1
    iid = add(p, make_image_bytes(70, 50, seed=1), "s.png")
    p.save_annotation(iid, SemanticMask(m), base_revision=None, author="t")
    create_version(p, name="v1", phash_distance=-1)
    rep = derive_project(p, "v1", to="detection", out=tmp_path / "det", min_size=4)
    assert rep.objects == 3 and rep.skipped == {"too_small": 1}
    rep = derive_project(p, "v1", to="tagging", out=tmp_path / "tags")
    with Project.open(tmp_path / "tags") as t:
        assert t.stats()["classes"] == {"cell": 1, "debris": 1}  # background 0 is not a tag


def test_detection_to_tagging(det_project, tmp_path):
    p, _ = det_project
    create_version(p, name="v1", phash_distance=-1)
    rep = derive_project(p, "v1", to="tagging", out=tmp_path / "tags")
    src = {it.image.sha256: it for it in version_items(p, "v1")}
    with Project.open(tmp_path / "tags") as t:
        assert t.task.value == "tagging" and rep.images == 8 == t.count_images()
        onto, tonto = p.ontology(), t.ontology()
        for im in t.images():
            tags = t.head(im.id)[1]
            assert isinstance(tags, Tags)
            want = {onto.by_id(c).name for c in src[im.sha256].annotation.class_id.tolist()}
            assert {tonto.by_id(c).name for c in tags.class_ids} == want
            assert t.blobs.read(im.sha256) == p.blobs.read(im.sha256)


def test_refuses_wrong_direction_and_non_empty_output(det_project, tmp_path, project_factory):
    p, _ = det_project
    create_version(p, name="v1", phash_distance=-1)
    with pytest.raises(ConflictError, match="cannot derive detection"):
        derive_project(p, "v1", to="detection", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ConflictError, match="not empty"):
        derive_project(p, "v1", to="tagging", out=tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError):
        derive_project(p, "v1", to="polygons", out=tmp_path / "y")
    c = project_factory("classification")
    cid = c.class_ids(["a"])["a"]
    i = add(c, make_image_bytes(seed=1), "a.jpg")
    c.save_annotation(i, Label(cid), base_revision=None, author="t")
    create_version(c, name="v1", phash_distance=-1)
    with pytest.raises(ConflictError, match="crops comes from"):
        derive_project(c, "v1", to="crops", out=tmp_path / "z")


@pytest.mark.slow
@pytest.mark.ci
def test_bccd_crops_count_equals_boxes(bccd_dir, tmp_path):
    from visionloop.core.ontology import remap_annotation
    from visionloop.formats import get_format

    dataset = get_format("voc").load(bccd_dir)
    p = Project.create(tmp_path / "bccd", task="detection")
    try:
        ids = p.class_ids(dataset.classes)
        to_project = {i: ids[name] for i, name in enumerate(dataset.classes)}
        n_boxes = 0
        for sample in dataset.samples[:120]:  # a third of BCCD: ~1,600 crops, each cut, encoded and versioned
            if sample.image_path is None or sample.annotation is None:
                continue
            data = Path(sample.image_path).read_bytes()
            iid = add(p, data, sample.name)
            boxes, _ = remap_annotation(sample.annotation, to_project).clip(*Image.open(io.BytesIO(data)).size)
            p.save_annotation(iid, boxes, base_revision=None, author="t")
            n_boxes += int(((boxes.xyxy[:, 2] - boxes.xyxy[:, 0] >= 4) & (boxes.xyxy[:, 3] - boxes.xyxy[:, 1] >= 4)).sum())
        v = create_version(p, name="v1")
        assert v.summary["images"] == 120
        rep = derive_project(p, "v1", to="crops", out=tmp_path / "crops")
        assert rep.objects + rep.skipped.get("duplicate_crop", 0) == n_boxes
        with Project.open(tmp_path / "crops") as c:
            cv = create_version(c)
            assert cv.summary["hinted_groups"] == cv.summary["groups"]
            by_parent = {}
            for it in version_items(c, cv.name):
                by_parent.setdefault(it.image.meta["parent_sha256"], set()).add(it.split)
            assert all(len(s) == 1 for s in by_parent.values())
    finally:
        p.close()
