"""Suggestions (pre-annotation) kept per image and model: replaced on a re-run, gone with their image, and the table
made by migration 0006 on a project at 0005."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from visionloop.core.errors import NotFoundError
from visionloop.storage import NewImage, Project
from visionloop.storage.db import MIGRATIONS, make_engine
from visionloop.storage.image_admin import delete_images
from visionloop.storage.suggestions import (
    ModelRef,
    ModelSource,
    NewSuggestion,
    count_suggestions,
    delete_suggestions,
    get_suggestion,
    list_suggestions,
    save_suggestions,
    suggested_image_ids,
)


def add(project: Project, n: int) -> list[int]:
    return [project.add_images([NewImage(sha256=project.blobs.put(bytes([i]) * 8), width=8, height=8,
                                         format="jpeg", name=f"{i}.jpg")])[0][0] for i in range(n)]


def pred(score: float) -> dict:
    return {"task": "detection", "width": 8, "height": 8,
            "detections": [{"xyxy": [1, 1, 5, 5], "class_id": 0, "name": "cell", "score": score}]}


def test_saved_replaced_listed_and_deleted_with_the_image(project_factory) -> None:
    p: Project = project_factory("detection")
    ids = add(p, 3)
    v1 = ModelRef(ModelSource.PACKAGE, "cells", "sha-1")
    assert save_suggestions(p, v1, [NewSuggestion(i, pred(0.5)) for i in ids], thresholds={"score": 0.4}) == 3
    assert suggested_image_ids(p, v1) == set(ids)
    s = get_suggestion(p, ids[0], v1)
    assert s.payload == pred(0.5) and s.thresholds == {"score": 0.4} and s.ref == v1
    assert s.created_at.tzinfo is not None and s.to_json()["model"] == "cells"

    v2 = ModelRef(ModelSource.PACKAGE, "cells", "sha-2")  # exported again under the same name
    assert suggested_image_ids(p, v2) == set()  # a resumed run predicts them again
    save_suggestions(p, v2, [NewSuggestion(ids[0], pred(0.9))])
    assert count_suggestions(p, v1) == 3  # one row per image and model: replaced, not added
    assert get_suggestion(p, ids[0], v1).payload == pred(0.9)
    assert get_suggestion(p, ids[0], v2, version="sha-2").ref.version == "sha-2"
    with pytest.raises(NotFoundError, match="suggestion"):
        get_suggestion(p, ids[1], v2, version="sha-2")

    run = ModelRef(ModelSource.RUN, "cells", "sha-1")  # same name, other source: its own rows
    assert save_suggestions(p, run, [NewSuggestion(ids[1], pred(0.3))]) == 1
    assert [x.image_id for x in list_suggestions(p, v1)] == ids
    assert [x.image_id for x in list_suggestions(p, (ModelSource.RUN, "cells"))] == [ids[1]]
    assert [x.image_id for x in list_suggestions(p, v1, image_ids=[ids[2]])] == [ids[2]]

    delete_images(p, [ids[1]])  # in no version: removed, its suggestions with it
    assert count_suggestions(p, v1) == 2 and count_suggestions(p, run) == 0
    assert save_suggestions(p, v1, [NewSuggestion(ids[1], pred(0.5))]) == 0  # a deleted image is skipped
    assert delete_suggestions(p, v1) == 2 and count_suggestions(p, v1) == 0


def test_migration_0006_upgrades_a_0005_project_and_back(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    (root / "visionloop.toml").write_text('name = "old"\ntask = "detection"\n', encoding="utf-8")
    engine = make_engine(f"sqlite:///{root / 'db.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    assert not inspect(engine).has_table("suggestions")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    assert {i["name"] for i in inspect(engine).get_indexes("suggestions")} >= {"ix_suggestions_model_image",
                                                                               "ix_suggestions_image_id"}
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    assert not inspect(engine).has_table("suggestions")
    engine.dispose()
