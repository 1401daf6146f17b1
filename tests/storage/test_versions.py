import io
import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image_bytes
from visionloop.core import Boxes, Label, Tags
from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError
from visionloop.ingest.importer import import_source
from visionloop.storage import NewImage
from visionloop.storage.splits import (
    SPLITS,
    GroupItem,
    assign_groups,
    connected_groups,
    near_duplicate_pairs,
    source_split,
)
from visionloop.storage.versions import (
    MissingSourceSplitError,
    create_version,
    get_version,
    list_versions,
    version_items,
)


def add(project, data, *, name, **kw):
    sha = project.blobs.put(data)
    im = Image.open(io.BytesIO(data))
    [(image_id, _)] = project.add_images([NewImage(sha256=sha, width=im.width, height=im.height,
                                                   format=im.format.lower(), name=name, **kw)])
    return image_id


def reencode(data, *, quality=None, size=None):
    im = Image.open(io.BytesIO(data)).convert("RGB")
    if size:
        im = im.resize(size, Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality or 90)
    return buf.getvalue()


def classification_project(project_factory, counts, *, seed0=0):
    """Classification project with ``counts[name]`` distinct images per class; returns project, {image: class}."""
    p = project_factory("classification")
    ids = p.class_ids(list(counts))
    truth = {}
    seed = seed0
    for name, n in counts.items():
        for _ in range(n):
            iid = add(p, make_image_bytes(64, 48, seed=seed), name=f"{seed}.jpg")
            p.save_annotation(iid, Label(ids[name]), base_revision=None, author="t")
            truth[iid] = name
            seed += 1
    return p, truth


def splits_of(project, name):
    return {it.image.id: it.split for it in version_items(project, name)}


def test_deterministic_for_a_seed_and_different_across_seeds(project_factory):
    p, _ = classification_project(project_factory, {"a": 30, "b": 20, "c": 10})
    v1 = create_version(p, seed=3)
    v2 = create_version(p, seed=3)
    v3 = create_version(p, seed=4)
    assert (v1.name, v2.name, v3.name) == ("v1", "v2", "v3")
    assert v1.hash == v2.hash and len(v1.hash) == 64
    assert splits_of(p, "v1") == splits_of(p, "v2")
    assert splits_of(p, "v1") != splits_of(p, "v3")
    assert v1.hash != v3.hash
    assert v1.summary["splits"] == {"train": 42, "val": 9, "test": 9}
    assert v1.summary["images"] == 60
    assert abs(v1.summary["fractions"]["train"] - 0.7) < 0.02
    assert sum(v1.summary["classes"]["a"].values()) == 30
    assert [v.name for v in list_versions(p)] == ["v1", "v2", "v3"]
    assert get_version(p, "v3").params["seed"] == 4


def test_version_is_immutable_after_later_edits(project_factory):
    p, truth = classification_project(project_factory, {"a": 6, "b": 6})
    v = create_version(p, name="frozen")
    image_id = next(iter(truth))
    old = p.head(image_id)[1]
    other = p.ontology().by_name("b" if truth[image_id] == "a" else "a").id
    p.save_annotation(image_id, Label(other), base_revision=1, author="later")
    assert p.head(image_id)[1] == Label(other)
    items = {it.image.id: it for it in version_items(p, "frozen")}
    assert items[image_id].annotation == old
    assert get_version(p, "frozen").hash == v.hash
    with pytest.raises(ConflictError, match="exists already"):
        create_version(p, name="frozen")
    v2 = create_version(p)  # the new head goes into the next version, with a different hash
    assert v2.name == "v1" and v2.hash != v.hash
    assert {it.image.id: it.annotation for it in version_items(p, "v1")}[image_id] == Label(other)


def test_not_found_lists_known_versions_and_split_filter(project_factory):
    p, _ = classification_project(project_factory, {"a": 5, "b": 5})
    create_version(p, name="alpha")
    with pytest.raises(NotFoundError, match="alpha"):
        get_version(p, "beta")
    test_items = version_items(p, "alpha", split="test")
    assert test_items and all(it.split == "test" for it in test_items)
    with pytest.raises(NotFoundError):
        version_items(p, "alpha", split="holdout")


def test_near_duplicates_share_a_split(project_factory):
    p = project_factory("classification")
    cid = p.class_ids(["x"])["x"]
    families = []
    for s in range(12):
        base = make_image_bytes(160, 120, seed=100 + s)
        copies = [base, reencode(base, quality=40), reencode(base, size=(150, 112))]
        fam = [add(p, data, name=f"{s}-{k}.jpg") for k, data in enumerate(copies)]
        for i in fam:
            p.save_annotation(i, Label(cid), base_revision=None, author="t")
        families.append(fam)
    for seed in range(3):
        v = create_version(p, seed=seed)
        sp = splits_of(p, v.name)
        assert all(len({sp[i] for i in fam}) == 1 for fam in families)
        assert len(set(sp.values())) == 3  # the families still spread over all splits
        assert v.summary["groups"] == 12 and v.summary["largest_group"] == 3
    assert all(im.phash for im in p.images())  # computed once and stored
    # with near-duplicate grouping off, the copies are independent
    v = create_version(p, seed=0, phash_distance=-1)
    assert v.summary["groups"] == 36


def test_video_frames_and_source_groups_share_a_split(project_factory):
    p = project_factory("detection")
    cid = p.class_ids(["car"])["car"]
    seed = 0
    members = defaultdict(list)
    for video in range(6):
        for frame in range(5):
            i = add(p, make_image_bytes(64, 48, seed=seed), name=f"v{video}/{frame}.jpg",
                    video_id=f"video-{video}", frame_index=frame, timestamp=frame / 25)
            members[f"video-{video}"].append(i)
            seed += 1
    for group in range(6):
        for k in range(3):
            i = add(p, make_image_bytes(64, 48, seed=seed), name=f"g{group}/{k}.jpg", meta={"group": f"patient{group}"})
            members[f"patient{group}"].append(i)
            seed += 1
    for ids in members.values():
        for i in ids:
            p.save_annotation(i, Boxes(np.array([[1, 1, 9, 9]]), np.array([cid])), base_revision=None, author="t")
    for seed in range(3):
        v = create_version(p, seed=seed, phash_distance=-1)
        sp = splits_of(p, v.name)
        assert all(len({sp[i] for i in ids}) == 1 for ids in members.values())
        assert v.summary["groups"] == 12


def test_stratification_keeps_every_class_in_every_split(project_factory):
    p, truth = classification_project(project_factory, {"common": 60, "mid": 15, "rare": 4, "rarest": 3})
    for seed in range(4):
        v = create_version(p, seed=seed, phash_distance=-1)
        for name in ("common", "mid", "rare", "rarest"):
            per = v.summary["classes"][name]
            assert all(per[s] >= 1 for s in ("train", "val", "test")), (seed, name, per)
        common = v.summary["classes"]["common"]
        assert abs(common["train"] - 42) <= 2 and abs(common["val"] - 9) <= 2


def test_stratification_tagging_by_rare_tags(project_factory):
    p = project_factory("tagging")
    ids = p.class_ids(["sky", "tree", "owl"])
    owl_images = []
    for s in range(40):
        tags = {ids["sky"]} | ({ids["tree"]} if s % 2 else set()) | ({ids["owl"]} if s % 10 == 0 else set())
        i = add(p, make_image_bytes(64, 48, seed=s), name=f"{s}.jpg")
        p.save_annotation(i, Tags(frozenset(tags)), base_revision=None, author="t")
        if ids["owl"] in tags:
            owl_images.append(i)
    v = create_version(p, phash_distance=-1)
    sp = splits_of(p, v.name)
    assert {sp[i] for i in owl_images} == {"train", "val", "test"}
    assert v.summary["splits"] == {"train": 28, "val": 6, "test": 6}


def test_split_hint_is_honoured_when_every_member_has_one(project_factory):
    p = project_factory("classification")
    cid = p.class_ids(["x"])["x"]
    hinted = {}
    for s in range(20):
        hint = ("train", "val", "test")[s % 3]
        i = add(p, make_image_bytes(64, 48, seed=s), name=f"{s}.jpg", meta={"split_hint": hint})
        p.save_annotation(i, Label(cid), base_revision=None, author="t")
        hinted[i] = hint
    v = create_version(p, seed=5, phash_distance=-1)
    assert splits_of(p, v.name) == hinted
    assert v.summary["hinted_groups"] == 20


def test_unannotated_images_and_empty_projects(project_factory):
    p = project_factory("detection")
    with pytest.raises(ConflictError, match="nothing to put"):
        create_version(p)
    cid = p.class_ids(["car"])["car"]
    a = add(p, make_image_bytes(seed=1), name="a.jpg")
    b = add(p, make_image_bytes(seed=2), name="b.jpg")
    c = add(p, make_image_bytes(seed=3), name="c.jpg")
    p.save_annotation(a, Boxes(np.array([[1, 1, 5, 5]]), np.array([cid])), base_revision=None, author="t")
    p.save_annotation(b, Boxes.empty(), base_revision=None, author="t")  # annotated: nothing there
    v = create_version(p)
    assert {it.image.id for it in version_items(p, v.name)} == {a, b}
    v2 = create_version(p, include_unannotated=True)
    items = {it.image.id: it for it in version_items(p, v2.name)}
    assert set(items) == {a, b, c} and items[c].annotation is None and items[c].revision_id is None
    assert v2.summary["unannotated"] == 1
    with pytest.raises(AnnotationValidationError, match="sum to 1"):
        create_version(p, fractions=(0.5, 0.2, 0.2))


def test_near_duplicate_pairs_match_brute_force_and_scale():
    rng = np.random.default_rng(0)
    hashes = [int(x) for x in rng.integers(0, 2**63, size=2000, dtype=np.int64)]
    for k in range(0, 400, 4):  # plant near copies (0..4 bits flipped) and exact copies
        v = hashes[k]
        for bit in rng.choice(64, size=int(rng.integers(0, 5)), replace=False):
            v ^= 1 << int(bit)
        hashes[k + 1] = v
        hashes[k + 2] = hashes[k]

    arr = np.asarray(hashes, dtype=np.uint64)
    brute = [(i, j) for i in range(len(arr)) for j in (i + 1 + np.flatnonzero(np.bitwise_count(arr[i + 1:] ^ arr[i]) <= 4))]
    pairs = near_duplicate_pairs(hashes, 4)
    assert all(a < b for a, b in pairs)
    assert connected_groups(len(hashes), pairs) == connected_groups(len(hashes), brute)
    # 100k hashes (an O(n**2) scan would take minutes): the planted near copies are found, nothing else
    big = [int(x) for x in rng.integers(0, 2**63, size=100_000, dtype=np.int64)]
    planted = set()
    for k in range(0, 1000, 10):
        big[k + 1] = big[k] ^ (1 << int(k % 63)) ^ (1 << int((k + 7) % 63))
        planted.add((k, k + 1))
    assert set(near_duplicate_pairs(big, 4)) == planted


def test_connected_groups_join_transitively_and_keep_singletons():
    assert connected_groups(6, [(4, 1), (1, 3), (5, 5)]) == [[0], [1, 3, 4], [2], [5]]
    assert connected_groups(3, []) == [[0], [1], [2]]
    assert connected_groups(0, []) == []


def test_assign_groups_respects_fractions_with_big_groups():
    sizes_in = [1 + (i % 7 == 0) * 9 for i in range(200)]
    groups = [GroupItem(key=i, size=n, classes={"c": n, "d": 1} if i % 5 == 0 else {"c": n})
              for i, n in enumerate(sizes_in)]
    placed = assign_groups(groups, (0.7, 0.15, 0.15), seed=0)
    sizes = defaultdict(int)
    for g in groups:
        sizes[placed[g.key]] += g.size
    total = sum(sizes.values())
    assert abs(sizes["train"] / total - 0.7) < 0.03
    assert abs(sizes["val"] / total - 0.15) < 0.03
    assert placed == assign_groups(groups, (0.7, 0.15, 0.15), seed=0)
    only_train = assign_groups(groups, (1.0, 0.0, 0.0), seed=0)
    assert set(only_train.values()) == {"train"}


# ---- source splits --------------------------------------------------------------------------------------------


def test_source_split_names():
    assert [source_split(s) for s in ("train", "Training", "trainval", "val2017", "valid", "validation", "dev")] == \
        ["train", "train", "train", "val", "val", "val", "val"]
    assert [source_split(s) for s in ("test", "testing", "default", "batch1", "", None)] == \
        ["test", "test", None, None, None, None]


def test_source_splits_are_kept_and_leaks_reported_not_moved(project_factory):
    p = project_factory("classification")
    cid = p.class_ids(["a"])["a"]
    subsets = ["train"] * 6 + ["val2017"] * 3 + ["testing"] * 2 + ["trainval"]
    ids = {}
    for k, subset in enumerate(subsets):
        iid = add(p, make_image_bytes(64, 48, seed=k), name=f"{k}.jpg", meta={"subset": subset})
        p.save_annotation(iid, Label(cid), base_revision=None, author="t")
        ids[iid] = source_split(subset)
    twin = add(p, reencode(make_image_bytes(64, 48, seed=0), quality=60), name="twin.jpg", meta={"subset": "test"})
    p.save_annotation(twin, Label(cid), base_revision=None, author="t")
    ids[twin] = "test"

    random_v = create_version(p, name="random")
    assert random_v.summary["leaks"]["groups"] == 0  # random splits keep near-duplicates together
    v = create_version(p, name="source", splits="source")
    assert splits_of(p, "source") == ids  # the near-duplicate of 0.jpg stays in test, as the source has it
    assert v.splits == {"train": 7, "val": 3, "test": 3}
    assert v.params["splits"] == "source" and v.params["fractions"] is None
    assert v.summary["split_source"] == "source"
    assert v.summary["leaks"] == {"groups": 1, "images": 2, "same_image": 0,
                                  "examples": [["0.jpg (train)", "twin.jpg (test)"]]}


def test_source_splits_refuse_images_without_one(project_factory):
    p = project_factory("classification")
    cid = p.class_ids(["a"])["a"]
    for k, meta in enumerate([{"subset": "train"}, {"subset": "val"}, {}, {"subset": "default"}, {}]):
        iid = add(p, make_image_bytes(64, 48, seed=k), name=f"{k}.jpg", meta=meta)
        p.save_annotation(iid, Label(cid), base_revision=None, author="t")
    with pytest.raises(MissingSourceSplitError, match="3 of 5 images have no source split") as e:
        create_version(p, splits="source")
    assert e.value.subsets == {"": 2, "default": 1} and e.value.examples == ["2.jpg", "3.jpg", "4.jpg"]
    assert list_versions(p) == []  # nothing half-written
    with pytest.raises(NotFoundError, match="random, source"):
        create_version(p, splits="official")


def test_source_splits_of_class_folders_through_import(project_factory, image_factory, tmp_path):
    for k, (subset, cls) in enumerate([("train", "cat"), ("train", "dog"), ("train", "cat"), ("val", "dog"),
                                       ("val", "cat"), ("test", "dog")]):
        image_factory(f"src/{subset}/{cls}/{k}.jpg", seed=k)
    p = project_factory("classification")
    import_source(p, tmp_path / "src")
    v = create_version(p, splits="source", phash_distance=-1)
    assert v.splits == {"train": 3, "val": 2, "test": 1}
    assert {it.image.name.split("/")[-1]: it.split for it in version_items(p, v.name)}["5.jpg"] == "test"


def test_source_splits_of_real_voc_and_coco(project_factory, bccd_dir, formats_dir):
    """BCCD's ImageSets/Main lists 205 train, 87 val and 72 test images; one near-duplicate pair crosses val/train."""
    p = project_factory("detection")
    import_source(p, bccd_dir / "BCCD")
    v = create_version(p, splits="source")
    assert v.splits == {"train": 205, "val": 87, "test": 72}
    lists = {s: (bccd_dir / "BCCD" / "ImageSets" / "Main" / f"{s}.txt").read_text().split() for s in SPLITS}
    got = {it.image.name.removesuffix(".jpg"): it.split for it in version_items(p, v.name)}
    assert got == {name: s for s, names in lists.items() for name in names}
    leaks = v.summary["leaks"]  # reported; the source's assignment is kept (checked above)
    assert any("BloodImage_00037.jpg (val)" in g and "BloodImage_00038.jpg (train)" in g for g in leaks["examples"])

    c = project_factory("detection", name="coco")
    import_source(c, formats_dir / "coco_dataset" / "coco_instances")  # annotations/instances_{train,val}.json
    cv = create_version(c, splits="source", phash_distance=-1)
    assert {it.image.name: it.split for it in version_items(c, cv.name)} == {"a.jpg": "train", "b.jpg": "val"}


def test_version_create_cli_splits_source(image_factory, tmp_path):
    from typer.testing import CliRunner

    from visionloop.cli.main import app

    for k, subset in enumerate(["train", "train", "val", "test"]):
        image_factory(f"src/{subset}/cat/{k}.jpg", seed=k)
    (tmp_path / "src/val/cat/copy.jpg").write_bytes(reencode(make_image_bytes(seed=0), quality=60))  # train/cat/0.jpg
    image_factory("loose/cat/9.jpg", seed=9)
    runner, proj = CliRunner(), str(tmp_path / "p")
    assert runner.invoke(app, ["init", proj, "--task", "classification"]).exit_code == 0
    assert runner.invoke(app, ["import", proj, str(tmp_path / "src")]).exit_code == 0
    out = runner.invoke(app, ["version", "create", proj, "--splits", "source", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["splits"] == {"train": 2, "val": 2, "test": 1}
    assert "1 groups of near-duplicate or related images (2 images) straddle the source's splits" in out.stderr
    assert runner.invoke(app, ["import", proj, str(tmp_path / "loose")]).exit_code == 0
    out = runner.invoke(app, ["version", "create", proj, "--splits", "source"])
    assert out.exit_code == 1 and "1 of 6 images have no source split" in out.stderr
    out = runner.invoke(app, ["version", "create", proj, "--json"])  # random stays the default
    assert out.exit_code == 0 and json.loads(out.stdout)["params"]["splits"] == "random"
