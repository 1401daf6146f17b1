import os
import threading

import pytest
from sqlalchemy import text

from tests.conftest import make_image_bytes
from visionloop.core import Boxes, Label, StaleRevisionError
from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError
from visionloop.storage import BlobStore, NewImage, Project


def add_image(project, seed=0, name=None):
    data = make_image_bytes(seed=seed)
    sha = project.blobs.put(data)
    [(image_id, _)] = project.add_images([NewImage(sha256=sha, width=64, height=48, format="jpeg",
                                                   name=name or f"{seed}.jpg")])
    return image_id


def test_create_open_and_refuse_double_create(tmp_path):
    p = Project.create(tmp_path / "p", task="classification", name="cells")
    p.close()
    with Project.open(tmp_path / "p") as q:
        assert (q.name, q.task.value) == ("cells", "classification")
        with q.engine.connect() as c:
            assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    with pytest.raises(ConflictError):
        Project.create(tmp_path / "p", task="detection")
    with pytest.raises(NotFoundError, match="visionloop init"):
        Project.open(tmp_path / "nope")


def test_revisions_append_and_stale_save_is_refused(project_factory):
    p = project_factory("detection")
    ids = p.class_ids(["RBC", "WBC"])
    img = add_image(p)
    assert p.save_annotation(img, Boxes([[0, 0, 5, 5]], [ids["RBC"]]), base_revision=None, author="ann") == 1
    assert p.save_annotation(img, Boxes([[0, 0, 6, 6]], [ids["RBC"]]), base_revision=1, author="bob") == 2
    with pytest.raises(StaleRevisionError) as e:
        p.save_annotation(img, Boxes([[0, 0, 7, 7]], [ids["WBC"]]), base_revision=1, author="ann")
    assert (e.value.base_revision, e.value.head_revision) == (1, 2)
    assert "revision 1" in str(e.value) and "revision 2" in str(e.value)
    hist = p.history(img)
    assert [(r.revision, r.author) for r in hist] == [(1, "ann"), (2, "bob")]
    assert hist[0].annotation == Boxes([[0, 0, 5, 5]], [ids["RBC"]])
    assert p.head(img)[0] == 2
    # saving the same payload again is a no-op
    assert p.save_annotation(img, Boxes([[0, 0, 6, 6]], [ids["RBC"]]), base_revision=2, author="x") == 2
    assert len(p.history(img)) == 2


def test_concurrent_edits_of_one_annotation_lose_nothing(project_factory):
    p = project_factory("classification")
    ids = p.class_ids(["a", "b"])
    img = add_image(p)
    p.save_annotation(img, Label(ids["a"]), base_revision=None, author="seed")
    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(8)
    changes = {0, 1, 3, 5, 7}  # these save "b" over the head "a"; the others save "a" again (a no-op or stale)

    def edit(i: int) -> None:
        barrier.wait()
        try:
            p.save_annotation(img, Label(ids["b"] if i in changes else ids["a"]), base_revision=1, author=f"user{i}")
            outcomes[i] = "saved"
        except StaleRevisionError:
            outcomes[i] = "stale"

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every edit based on revision 1 that changes the label races: exactly one wins, the other four are told
    winners = [i for i in changes if outcomes[i] == "saved"]
    assert len(winners) == 1 and all(outcomes[i] == "stale" for i in changes - set(winners)), outcomes
    history = p.history(img)
    assert [(r.revision, r.author) for r in history] == [(1, "seed"), (2, f"user{winners[0]}")]
    assert p.head(img)[1] == Label(ids["b"])


def test_annotation_checked_against_task_and_classes(project_factory):
    p = project_factory("classification")
    img = add_image(p)
    with pytest.raises(AnnotationValidationError, match="Label"):
        p.save_annotation(img, Boxes([[0, 0, 1, 1]], [1]), base_revision=None, author="x")
    with pytest.raises(AnnotationValidationError, match="active classes"):
        p.save_annotation(img, Label(99), base_revision=None, author="x")


def test_add_images_is_idempotent_and_stats_count_heads(project_factory):
    p = project_factory("detection")
    ids = p.class_ids(["RBC", "WBC"])
    a = add_image(p, seed=1)
    assert add_image(p, seed=1) == a
    b = add_image(p, seed=2)
    p.save_annotation(a, Boxes([[0, 0, 1, 1]] * 3, [ids["RBC"]] * 3), base_revision=None, author="x")
    p.save_annotation(b, Boxes([[0, 0, 1, 1]] * 2, [ids["RBC"], ids["WBC"]]), base_revision=None, author="x")
    p.save_annotation(a, Boxes([[0, 0, 1, 1]], [ids["WBC"]]), base_revision=1, author="x")
    s = p.stats()
    assert (s["images"], s["annotated_images"], s["annotations"]) == (2, 2, 3)
    assert s["classes"] == {"RBC": 1, "WBC": 2}


def test_blob_store_is_content_addressed_on_any_fsspec_url(tmp_path):
    for url in (str(tmp_path / "blobs"), "memory://visionloop-test/blobs"):
        store = BlobStore(url)
        sha = store.put(b"hello")
        assert store.put(b"hello") == sha and store.exists(sha)
        assert store.read(sha) == b"hello"
    assert not list((tmp_path / "blobs").rglob(".tmp-*"))


@pytest.mark.postgres
def test_postgres_store(tmp_path):
    url = os.environ.get("VISIONLOOP_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL server: set VISIONLOOP_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@127.0.0.1/db "
                    "(.ci/run starts one when it can install it)")
    from sqlalchemy import create_engine

    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    eng.dispose()
    p = Project.create(tmp_path / "pg", task="detection", db_url=url)
    try:
        ids = p.class_ids(["RBC"])
        img = add_image(p)
        p.save_annotation(img, Boxes([[0, 0, 5, 5]], [ids["RBC"]]), base_revision=None, author="a")
        with pytest.raises(StaleRevisionError):
            p.save_annotation(img, Boxes([[0, 0, 6, 6]], [ids["RBC"]]), base_revision=None, author="b")
        assert p.stats()["classes"] == {"RBC": 1}
    finally:
        p.close()


def test_identical_video_frames_stay_distinct_frames_sharing_one_blob(project_factory):
    p = project_factory("detection")
    sha = p.blobs.put(make_image_bytes(seed=9))
    frames = [NewImage(sha256=sha, width=64, height=48, format="jpeg", name=f"f{i}.jpg", video_id="cam1",
                       frame_index=i, timestamp=i / 25) for i in range(3)]
    results = p.add_images(frames)
    assert [created for _, created in results] == [True, True, True]
    assert len({image_id for image_id, _ in results}) == 3
    assert [created for _, created in p.add_images(frames)] == [False, False, False]
    still = NewImage(sha256=sha, width=64, height=48, format="jpeg", name="still.jpg")
    assert p.add_images([still, still]) [0][1] is True and p.add_images([still])[0][1] is False
    assert p.count_images() == 4
    assert [im.frame_index for im in p.images()][:3] == [0, 1, 2]


def test_save_annotation_validates_against_the_image(project_factory):
    import numpy as np
    from pycocotools import mask as coco_mask

    from visionloop.core import RLE, Instances, annotation_from_payload

    p = project_factory("segmentation")
    ids = p.class_ids(["cell"])
    img = add_image(p)  # 64 x 48
    box = Boxes([[1, 1, 10, 10]], [ids["cell"]])
    with pytest.raises(AnnotationValidationError, match="class ids"):
        p.save_annotation(img, Instances(Boxes([[1, 1, 10, 10]], [10**9]), [RLE.encode(np.ones((48, 64)))]),
                          base_revision=None, author="a")
    runs = coco_mask.frPyObjects({"size": [100000, 100000], "counts": [4 * 10**9, 0, 4 * 10**9, 0, 2 * 10**9]},
                                 100000, 100000)
    with pytest.raises(AnnotationValidationError, match=r"RLE size.*\[48, 64\]"):
        p.save_annotation(img, Instances(box, [RLE((100000, 100000), runs["counts"].decode())]),
                          base_revision=None, author="a")
    for xyxy in ([[0, 0, 1e308, 10]], [[70, 1, 80, 10]]):
        with pytest.raises(AnnotationValidationError, match="inside the 64x48 image"):
            p.save_annotation(img, Instances(Boxes(xyxy, [ids["cell"]]), [[[1, 1, 5, 1, 5, 5]]]),
                              base_revision=None, author="a")
    with pytest.raises(AnnotationValidationError):
        annotation_from_payload({"type": "instances", "xyxy": [[1, 1, 2, 2]], "class_id": [ids["cell"]],
                                 "segmentations": [{"rle": {"size": [48, 64], "counts": "garbage!"}}]})
    with pytest.raises(NotFoundError):
        p.save_annotation(img + 999, Instances(box, [[[1, 1, 5, 1, 5, 5]]]), base_revision=None, author="a")
    assert p.head(img) == (None, None)  # nothing was written by the refused saves
    # a tiny overshoot (a drag past the border) is clipped and saved
    assert p.save_annotation(img, Instances(Boxes([[1, 1, 64.4, 48.2]], [ids["cell"]]), [[[1, 1, 64.4, 1, 64, 48]]]),
                             base_revision=None, author="a") == 1
    saved = p.head(img)[1]
    assert saved.boxes.xyxy.tolist() == [[1, 1, 64, 48]] and saved.segmentations[0] == [[1, 1, 64, 1, 64, 48]]
