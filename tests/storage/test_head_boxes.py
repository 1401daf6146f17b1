"""The per-box rows of head annotations (``head_boxes``): kept in step by every save, filled by migration 0009 for
a project made before it, and gone with the migration's downgrade."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select

from visionloop.core.annotations import Boxes, Label, Tags
from visionloop.storage import NewImage, Project
from visionloop.storage.head_boxes import HeadBoxRow, box_measures

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "visionloop" / "storage" / "migrations"


def _rows(project: Project) -> dict[tuple[int, int], tuple[float, float]]:
    with project.engine.connect() as c:
        return {(r.annotation_id, r.idx): (r.size, r.aspect) for r in c.execute(select(HeadBoxRow))}


def _images(project: Project, n: int) -> list[int]:
    return [i for i, _ in project.add_images([NewImage(sha256=project.blobs.put(bytes([k]) * 8), width=200, height=100,
                                                       format="jpeg", name=f"{k}.jpg") for k in range(n)])]


def test_box_measures() -> None:
    assert box_measures([10, 10, 50, 20]) == (20.0, 4.0)  # 40 x 10: area 400, as a square 20 px
    assert box_measures([0, 0, 5, 0]) == (0.0, math.inf)  # flat
    assert box_measures([3, 3, 3, 3]) == (0.0, 1.0)  # a point


def test_every_save_keeps_the_rows_of_the_head(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p", task="detection") as p:
        cid = p.class_ids(["cell"])["cell"]
        a, b = _images(p, 2)
        p.save_annotation(a, Boxes(np.array([[0, 0, 40, 10], [0, 0, 30, 30]], float), np.array([cid, cid])),
                          author="ann", base_revision=None)
        assert _rows(p) == {(a, 0): (20.0, 4.0), (a, 1): (30.0, 1.0)}
        p.save_annotation(a, Boxes(np.array([[0, 0, 10, 40]], float), np.array([cid])), author="ann", base_revision=1)
        assert _rows(p) == {(a, 0): (20.0, 0.25)}  # the old head's boxes are gone
        with p.transaction() as conn:  # the import's bulk path
            p.save_new_annotations([(b, Boxes(np.array([[10, 10, 30, 20]], float), np.array([cid])))],
                                   author="import", conn=conn)
        assert _rows(p)[(b, 0)] == box_measures([10, 10, 30, 20])
        p.save_annotation(a, Boxes(np.zeros((0, 4)), np.zeros(0, int)), author="ann", base_revision=2)
        assert set(_rows(p)) == {(b, 0)}


def test_labels_and_tags_have_no_boxes(tmp_path: Path) -> None:
    with Project.create(tmp_path / "c", task="classification") as p:
        cid = p.class_ids(["cat"])["cat"]
        [i] = _images(p, 1)
        p.save_annotation(i, Label(cid), author="ann", base_revision=None)
        assert _rows(p) == {}
    with Project.create(tmp_path / "t", task="tagging") as p:
        cid = p.class_ids(["cat"])["cat"]
        [i] = _images(p, 1)
        p.save_annotation(i, Tags([cid]), author="ann", base_revision=None)
        assert _rows(p) == {}


def test_migration_0009_fills_the_rows_of_an_older_project_and_goes_back(tmp_path: Path, db_url: str | None) -> None:
    with Project.create(tmp_path / "p", task="detection", db_url=db_url) as p:
        cid = p.class_ids(["cell"])["cell"]
        ids = _images(p, 3)
        for k, i in enumerate(ids[:2]):
            p.save_annotation(i, Boxes(np.array([[0, 0, 10 + k, 20], [5, 5, 9, 7]], float), np.array([cid, cid])),
                              author="ann", base_revision=None)
        p.save_annotation(ids[0], Boxes(np.array([[0, 0, 64, 16]], float), np.array([cid])), author="ann",
                          base_revision=1)
        saved = _rows(p)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with p.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0008")
        assert not inspect(p.engine).has_table("head_boxes")
    assert len(saved) == 3
    with Project.open(tmp_path / "p") as p:  # opening upgrades to the head: the rows come from the head revisions
        assert _rows(p) == saved


def test_health_leaves_out_the_boxes_of_deleted_images(tmp_path: Path) -> None:
    from visionloop.storage.health import dataset_health
    from visionloop.storage.image_admin import delete_images
    from visionloop.storage.versions import create_version

    with Project.create(tmp_path / "p", task="detection") as p:
        cid = p.class_ids(["cell"])["cell"]
        ids = _images(p, 3)
        for k, i in enumerate(ids):  # boxes of 10, 40 and 100 px
            side = (10, 40, 100)[k]
            p.save_annotation(i, Boxes(np.array([[0, 0, side, side], [0, 0, side, side / 2]], float),
                                       np.array([cid, cid])), author="ann", base_revision=None)
        create_version(p, name="v1")  # a version holds the images: deleting keeps their rows, marked deleted
        delete_images(p, [ids[1]])
        h = dataset_health(p)
        assert h.boxes == 4 and h.images == 2
        sizes = {b["min"]: b["count"] for b in h.box_sizes if b["count"]}
        assert sizes == {0: 1, 8: 1, 64: 1, 96: 1}  # 10x5 is 7.1 px, 10x10 10 px, 100x50 70.7 px, 100x100 100 px
        assert {b["min"]: b["count"] for b in h.box_aspects if b["count"]} == {1: 2, 2: 2}
        [extra] = [i for i, _ in p.add_images([NewImage(sha256=p.blobs.put(b"new" * 4), width=200, height=100,
                                                        format="jpeg", name="new.jpg")])]
        p.save_annotation(extra, Boxes(np.array([[0, 0, 20, 20]], float), np.array([cid])), author="ann",
                          base_revision=None)
        delete_images(p, [extra])  # in no version: its rows go (cascade)
        assert extra not in {k[0] for k in _rows(p)} and dataset_health(p).boxes == 4
