"""Embeddings of real BCCD smears through a project: search, copies, duplicates, incremental updates, crops."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from visionloop.core.annotations import Boxes
from visionloop.ingest import import_source
from visionloop.models.embed import Embedder, crop_box, embed_project, load_embedder
from visionloop.quality.duplicates import project_duplicates
from visionloop.quality.similarity import similar_images, stored_index
from visionloop.storage import NewImage, Project
from visionloop.storage.embeddings import EmbeddingSet, EmbeddingsMissingError
from visionloop.storage.image_admin import delete_images

NAMES = [f"BloodImage_0000{i}" for i in range(8)]  # no two of these are the same field


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder()


def _voc(bccd_dir: Path, names: list[str], out: Path) -> Path:
    (out / "JPEGImages").mkdir(parents=True)
    (out / "Annotations").mkdir()
    src = bccd_dir / "BCCD"
    for n in names:
        if (src / "JPEGImages" / f"{n}.jpg").is_file():
            shutil.copy(src / "JPEGImages" / f"{n}.jpg", out / "JPEGImages")
            shutil.copy(src / "Annotations" / f"{n}.xml", out / "Annotations")
    return out


@pytest.fixture
def smears(bccd_dir: Path, tmp_path: Path) -> Iterator[Project]:
    p = Project.create(tmp_path / "p", task="detection")
    import_source(p, _voc(bccd_dir, NAMES, tmp_path / "voc"))
    yield p
    p.close()


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _import_files(p: Project, files: dict[str, bytes], tmp: Path) -> None:
    tmp.mkdir()
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    import_source(p, tmp, format="images")


@pytest.mark.slow
@pytest.mark.ci
def test_copies_are_found_and_grouped_and_only_new_images_are_embedded(smears: Project, embedder: Embedder,
                                                                       tmp_path: Path) -> None:
    p = smears
    first = embed_project(p, embedder)
    n = p.count_images()
    assert first.embedded == n >= 6 and first.dropped == 0 and first.dim == 1280
    store = EmbeddingSet(p.root, embedder.key)
    vectors = np.asarray(store.vectors())
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    index, rows = stored_index(store)
    ids, scores = index.search(vectors, 1)
    assert ids[:, 0].tolist() == rows.image_id.tolist()  # each image's nearest neighbour is itself
    assert scores[:, 0] == pytest.approx(1.0, abs=1e-4)

    by_name = {im.name: im for im in p.images()}
    a, b = by_name[f"{NAMES[1]}.jpg"], by_name[f"{NAMES[4]}.jpg"]
    im_a = Image.open(io.BytesIO(p.image_bytes(a.id))).convert("RGB")
    im_b = Image.open(io.BytesIO(p.image_bytes(b.id))).convert("RGB")
    w, h = im_b.size
    _import_files(p, {
        "a-small.jpg": _jpeg(im_a.resize((w // 2, h // 2)), quality=70),  # re-encoded and resized
        "b-edited.jpg": _jpeg(ImageEnhance.Brightness(im_b.crop((19, 14, w - 19, h - 14))).enhance(1.15)),
    }, tmp_path / "copies")
    second = embed_project(p, embedder)
    assert (second.embedded, second.count) == (2, n + 2)  # only the new imports

    copies = {im.name: im.id for im in p.images()}
    like_a = similar_images(p, embedder.key, a.id, k=3)
    assert like_a["results"][0]["id"] == copies["a-small.jpg"]  # 0.93: JPEG quality 70 at half size costs detail
    assert like_a["results"][0]["score"] > like_a["results"][1]["score"]
    like_b = similar_images(p, embedder.key, b.id, k=3)
    assert like_b["results"][0]["id"] == copies["b-edited.jpg"]
    assert all(r["id"] not in (a.id, b.id) for r in like_a["results"] + like_b["results"])

    dups = project_duplicates(p, embedder.key)
    assert sorted(g["ids"] for g in dups["near"]) == sorted([[a.id, copies["a-small.jpg"]],
                                                             [b.id, copies["b-edited.jpg"]]])
    assert dups["exact"] == []

    # two frames of a video with the bytes of image a: exact duplicates of it
    p.add_images([NewImage(sha256=a.sha256, width=a.width, height=a.height, format="JPEG", name=f"f{i}.jpg",
                           video_id="clip", frame_index=i) for i in range(2)])
    delete_images(p, [copies["b-edited.jpg"]])
    third = embed_project(p, embedder)
    assert (third.embedded, third.dropped, third.count) == (2, 1, n + 3)
    dups = project_duplicates(p, embedder.key)
    frames = sorted(i for name, i in ((im.name, im.id) for im in p.images()) if name.startswith("f"))
    assert [g["ids"] for g in dups["exact"]] == [sorted([a.id, *frames])]
    assert [a.id, copies["a-small.jpg"], *frames] == sorted(dups["near"][0]["ids"])


def test_a_search_before_any_embedding_says_to_embed(smears: Project) -> None:
    with pytest.raises(EmbeddingsMissingError, match="visionloop embed"):
        similar_images(smears, "tf_efficientnet_lite0", smears.images()[0].id)


@pytest.mark.slow
def test_crops_follow_the_head_annotation(bccd_dir: Path, tmp_path: Path, embedder: Embedder) -> None:
    with Project.create(tmp_path / "p", task="detection") as p:
        import_source(p, _voc(bccd_dir, NAMES[:2], tmp_path / "voc"))
        heads = p.heads()
        boxes = sum(len(ann.xyxy) for _, ann in heads.values())
        report = embed_project(p, embedder, kind="crops")
        assert report.embedded == report.count == boxes
        rows = EmbeddingSet(p.root, embedder.key, "crops").rows()
        first = min(heads)
        rev, ann = heads[first]
        assert rows.to_json(0)["image_id"] == first and rows.stamp[0] == rev
        np.testing.assert_allclose(rows.xyxy[rows.image_id == first], ann.xyxy, atol=0.01)
        assert embed_project(p, embedder, kind="crops").embedded == 0
        head = p.head(first)[0]
        p.save_annotation(first, Boxes(xyxy=ann.xyxy[:3], class_id=ann.class_id[:3]), base_revision=head,
                          author="test")
        again = embed_project(p, embedder, kind="crops")
        assert (again.embedded, again.dropped, again.count) == (3, len(ann.xyxy), boxes - len(ann.xyxy) + 3)


def test_a_crop_keeps_some_context_inside_the_image() -> None:
    im = Image.new("RGB", (100, 80))
    assert crop_box(im, (10, 10, 30, 50)).size == (24, 48)
    assert crop_box(im, (0, 0, 100, 80)).size == (100, 80)
    assert crop_box(im, (99.5, 79.5, 100, 80)).size == (1, 1)


@pytest.mark.slow
def test_a_runs_own_backbone_embeds_the_project(synthetic_project) -> None:  # noqa: ANN001
    from visionloop.models.runs import load_run
    from visionloop.training.classify import ClassifyParams, train_classifier

    p = synthetic_project("classification", n_per_class=6)
    run = train_classifier(p, version="v1", params=ClassifyParams(model="mobilenet_v2", strategy="linear",
                                                                  image_size=64), progress=False, log=lambda s: None)
    emb = load_embedder(f"run:{run.run_id}", project=p, image_size=64)
    assert emb.key == f"run-{run.run_id}" and emb.backbone["run"] == run.run_id and emb.dim == 1280
    report = embed_project(p, emb)
    assert report.count == p.count_images() == 18
    model, _ = load_run(p, run.run_id)
    first = p.images()[0]
    im = Image.open(io.BytesIO(p.image_bytes(first.id))).convert("RGB")
    import torch

    with torch.no_grad():
        want = model.backbone(torch.from_numpy(emb.preprocess(im))[None])[0].numpy()
    got = np.asarray(EmbeddingSet(p.root, emb.key).vectors())[0]
    np.testing.assert_allclose(got, want / np.linalg.norm(want), atol=1e-4)
