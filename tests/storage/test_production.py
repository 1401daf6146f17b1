"""Production samples in storage, on SQLite and PostgreSQL: stored with their image, suggestion and event in one
transaction, once per request_id, listed with filters (a sampler's whole name only, ``_`` and ``%`` taken
literally), the reviewed filter following the image's review state."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import make_image_bytes
from visionloop.core.errors import NotFoundError
from visionloop.storage import NewImage, Project
from visionloop.storage.events import EventKind, EventRow
from visionloop.storage.production import (
    NewProductionSample,
    add_production_sample,
    count_production_samples,
    get_production_sample,
    list_production_samples,
)
from visionloop.storage.review import set_review_state
from visionloop.storage.suggestions import ModelRef, ModelSource, list_suggestions


def image_of(p: Project, seed: int) -> NewImage:
    data = make_image_bytes(32, 24, seed=seed)
    sha = hashlib.sha256(data).hexdigest()
    p.blobs.put(data, sha)
    return NewImage(sha256=sha, width=32, height=24, format="jpeg", name=f"production/m/{seed}.jpeg")


def sample(request_id: str, *samplers: str, model: str = "m", random_slice: bool = False) -> NewProductionSample:
    return NewProductionSample(
        request_id=request_id, model=model, predicted_at=datetime(2026, 1, 2, tzinfo=UTC),
        prediction={"task": "detection", "width": 32, "height": 24, "detections": []}, package_version="abc",
        model_sha256="ab" * 32, samplers=[{"name": s, "score": 0.5, "why": "test"} for s in samplers],
        score=0.5, random_slice=random_slice)


def test_samples_stored_once_and_listed_with_filters(tmp_path: Path, db_url: str | None) -> None:
    with Project.create(tmp_path / "p", task="detection", db_url=db_url) as p:
        ref = ModelRef(ModelSource.PACKAGE, "m", "ab" * 32)
        first, created = add_production_sample(p, sample("r1", "low_confidence"), image=image_of(p, 1), suggestion=ref,
                                               thresholds={"score": 0.3})
        assert created and first.sampler_names == ["low_confidence"]
        again, created = add_production_sample(p, sample("r1", "low_confidence"), image=image_of(p, 1),
                                               suggestion=ref)
        assert not created and again == first
        add_production_sample(p, sample("r2", "lowXconfidence", "random", random_slice=True), image=image_of(p, 2))
        add_production_sample(p, sample("r3", "100%", model="other"), image=image_of(p, 3))
        assert count_production_samples(p) == 3 and p.count_images() == 3
        assert get_production_sample(p, first.id) == first and first.predicted_at.tzinfo is not None

        def ids(**kw: object) -> list[str]:
            return [s.request_id for s in list_production_samples(p, **kw)]

        assert ids() == ["r1", "r2", "r3"] and ids(newest_first=True, limit=2) == ["r3", "r2"]
        assert ids(sampler="low_confidence") == ["r1"]  # '_' is no wildcard
        assert ids(sampler="random") == ["r2"] and ids(sampler="100%") == ["r3"] and ids(sampler="100") == []
        assert ids(model="other") == ["r3"] and ids(random_slice=True) == ["r2"]
        set_review_state(p, [first.image_id], "approved", author="rita")
        assert ids(reviewed=True) == ["r1"] and ids(reviewed=False) == ["r2", "r3"]
        assert count_production_samples(p, reviewed=False, sampler="random") == 1
        [s] = list_suggestions(p, ref)
        assert s.image_id == first.image_id and s.thresholds == {"score": 0.3}
        with p.engine.connect() as conn:
            flagged = conn.execute(select(func.count()).select_from(EventRow)
                                   .where(EventRow.kind == EventKind.PREDICTION_FLAGGED.value)).scalar_one()
        assert flagged == 3
        with pytest.raises(NotFoundError, match="production sample"):
            get_production_sample(p, 999)


def test_concurrent_sends_of_one_image_store_each_request_once(tmp_path: Path, db_url: str | None) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with Project.create(tmp_path / "p", task="detection", db_url=db_url) as p:
        ref = ModelRef(ModelSource.PACKAGE, "m", "ab" * 32)
        image = image_of(p, 7)

        def send(i: int) -> tuple[str, bool]:
            stored, created = add_production_sample(p, sample(f"r{i % 3}", "random"), image=image, suggestion=ref)
            return stored.request_id, created

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, range(24)))
        assert sorted(r for r, created in results if created) == ["r0", "r1", "r2"]
        assert count_production_samples(p) == 3 and p.count_images() == 1
        assert len(list_suggestions(p, ref)) == 1
