"""Drift checks over a real SQLite project: reference from the package's version, production samples in a window,
the stored report and the drift.alert event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.active.drift_fixtures import (
    THUMBS,
    add_samples,
    darken_and_blur,
    reference_project,
    tiny_classifier_package,
)
from tests.conftest import make_image_bytes
from visionloop.active.drift_check import DriftOptions, check_drift, loop_on_drift, parse_window, production_samples
from visionloop.core.errors import AnnotationValidationError, ConflictError
from visionloop.storage.drift import get_drift_report, latest_drift_report, list_drift_reports
from visionloop.storage.embeddings import EmbeddingsMissingError
from visionloop.storage.events import EventKind, EventRow

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
OPTIONS = DriftOptions(backbone=THUMBS, compute_embeddings=False, permutations=200)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_classifier_package(tmp_path_factory.mktemp("pkg") / "tiny")


def _fresh(n: int, start: int = 1000) -> list[bytes]:
    return [make_image_bytes(64, 48, seed=start + i) for i in range(n)]


def _events(project) -> list[EventRow]:  # noqa: ANN001
    with project.engine.connect() as conn:
        return list(conn.execute(select(EventRow).where(EventRow.kind == EventKind.DRIFT_ALERT.value)).all())


def test_same_distribution_raises_no_alert(project_factory, package: Path) -> None:  # noqa: ANN001
    p = reference_project(project_factory)
    add_samples(p, package, _fresh(40), at=NOW - timedelta(hours=1))
    report = check_drift(p, package, options=OPTIONS, now=NOW)
    assert report.alert is False and report.details["alerts"] == [] and not _events(p)
    assert (report.n_production, report.n_reference, report.reference, report.model) == (40, 42, "v1", "tiny")
    assert report.mmd_p > 0.01 and report.confidence_p > 0.01 and report.psi < 0.2
    assert set(report.image_stats) == {"size", "brightness", "blur"}
    assert report.image_stats["brightness"]["p"] > 0.01
    assert report.details["confidence_split"] == "val" and report.details["classes"]["names"] == ["bright", "dark"]
    assert report.window_end == NOW and report.window_start == NOW - timedelta(hours=24)
    assert latest_drift_report(p) == report == get_drift_report(p, report.id)
    assert any((Path(p.root) / "drift").glob("predictions-*.json"))  # the reference's predictions are kept


def test_darkened_and_blurred_production_alerts_and_emits_an_event(project_factory, package: Path) -> None:  # noqa: ANN001
    p = reference_project(project_factory)
    add_samples(p, package, [darken_and_blur(b) for b in _fresh(40)], at=NOW - timedelta(hours=1))
    report = check_drift(p, package, options=OPTIONS, now=NOW)
    assert report.alert is True
    assert {"mmd", "confidence", "classes", "brightness", "blur"} <= set(report.details["alerts"])
    assert report.mmd_p < 0.01 and report.confidence_p < 0.01 and report.psi > 0.2
    b = report.image_stats["brightness"]
    assert b["production_mean"] < b["reference_mean"] / 2 and b["psi"] > 0.2
    assert report.details["loop_requested"] is False
    [event] = _events(p)
    assert event.payload["report"] == report.id and event.payload["project"] == p.name
    assert "brightness" in event.payload["alerts"] and event.payload["mmd_p"] == report.mmd_p
    assert event.payload["links"]["reports"] == f"/api/v1/projects/{p.name}/drift"
    again = check_drift(p, package, options=DriftOptions(**{**OPTIONS.__dict__, "start_loop": True}), now=NOW)
    assert again.details["loop_requested"] is True and len(_events(p)) == 2
    assert [r.id for r in list_drift_reports(p)] == [again.id, report.id]


def test_window_and_random_slice_choose_the_samples(project_factory, package: Path) -> None:  # noqa: ANN001
    p = reference_project(project_factory)
    dark = [darken_and_blur(b) for b in _fresh(30)]
    add_samples(p, package, dark[:25], at=NOW - timedelta(days=3), prefix="old")  # outside a 24 h window
    add_samples(p, package, dark[25:], at=NOW - timedelta(hours=2), random_slice=False, prefix="flagged")
    add_samples(p, package, _fresh(25), at=NOW - timedelta(hours=2), prefix="recent")
    report = check_drift(p, package, options=OPTIONS, now=NOW)
    assert report.n_production == 25 and report.details["samples_in_window"] == 25 and not report.alert
    wider = check_drift(p, package, options=DriftOptions(**{**OPTIONS.__dict__, "window": parse_window("7d"),
                                                            "random_only": False}), now=NOW)
    assert wider.n_production == 55 and wider.details["random_only"] is False and wider.alert


def test_samples_of_another_model_are_left_out_of_confidences_and_classes(project_factory,  # noqa: ANN001
                                                                         package: Path) -> None:
    p = reference_project(project_factory)
    add_samples(p, package, _fresh(25), at=NOW - timedelta(hours=1))
    add_samples(p, package, _fresh(10, start=3000), at=NOW - timedelta(hours=1), prefix="other",
                model_sha256="0" * 64)
    report = check_drift(p, package, options=OPTIONS, now=NOW)
    assert report.n_production == 35 and report.details["other_model_samples"] == 10
    assert report.details["confidence"]["n_production"] == 25 and sum(report.details["classes"]["production"]) == 25
    assert report.image_stats["brightness"]["n_production"] == 35 and report.details["mmd"]["n_y"] == 35


def test_production_samples_are_counted_once_per_image_and_subsampled(project_factory,  # noqa: ANN001
                                                                       package: Path) -> None:
    p = reference_project(project_factory, n=20)
    images = _fresh(30)
    first = add_samples(p, package, images, at=NOW - timedelta(hours=2), embed=False)
    again = add_samples(p, package, images[:5], at=NOW - timedelta(hours=1), prefix="again", embed=False)
    assert again == first[:5]  # the same images, sent twice
    window = {"start": NOW - timedelta(hours=3), "end": NOW}
    every, total = production_samples(p, **window)
    assert total == 30 and [s.image_id for s in every] == first
    some, total = production_samples(p, **window, max_samples=10, seed=1)
    assert total == 30 and len(some) == 10 and some == production_samples(p, **window, max_samples=10, seed=1)[0]
    assert production_samples(p, **window, random_only=True)[1] == 30
    assert production_samples(p, start=NOW - timedelta(minutes=90), end=NOW)[1] == 5


def test_too_few_samples_are_reported_without_testing(project_factory, package: Path) -> None:  # noqa: ANN001
    p = reference_project(project_factory)
    add_samples(p, package, [darken_and_blur(b) for b in _fresh(5)], at=NOW - timedelta(hours=1))
    report = check_drift(p, package, options=OPTIONS, now=NOW)
    assert report.n_production == 5 and report.alert is False and report.mmd is None and report.psi is None
    assert "at least 20" in report.details["note"] and report.image_stats == {}


def test_missing_embeddings_say_how_to_compute_them(project_factory, package: Path) -> None:  # noqa: ANN001
    p = reference_project(project_factory)
    add_samples(p, package, _fresh(25), at=NOW - timedelta(hours=1), embed=False)
    with pytest.raises(EmbeddingsMissingError, match="visionloop embed"):
        check_drift(p, package, options=OPTIONS, now=NOW)
    assert list_drift_reports(p) == []


def test_a_package_from_elsewhere_needs_a_reference(project_factory, tmp_path: Path) -> None:  # noqa: ANN001
    p = reference_project(project_factory, n=30)
    foreign = tiny_classifier_package(tmp_path / "foreign", version="v9")
    with pytest.raises(ConflictError, match="--reference"):
        check_drift(p, foreign, options=OPTIONS, now=NOW)
    report = check_drift(p, foreign, options=DriftOptions(**{**OPTIONS.__dict__, "reference": "v1"}), now=NOW)
    assert report.reference == "v1" and report.n_production == 0


def test_options_are_checked() -> None:
    with pytest.raises(AnnotationValidationError, match="min_production"):
        DriftOptions(min_production=50, max_samples=30)
    with pytest.raises(AnnotationValidationError, match="ks or ad"):
        DriftOptions(confidence_test="t")


def test_parse_window() -> None:
    assert parse_window("24h") == timedelta(hours=24)
    assert parse_window("30m") == timedelta(minutes=30)
    assert parse_window("1.5d") == timedelta(hours=36)
    assert parse_window("2w") == timedelta(days=14)
    for bad in ("", "24", "h", "0h", "400d", "-1h"):
        with pytest.raises(AnnotationValidationError, match="drift window"):
            parse_window(bad)


def test_loop_on_drift_reads_the_project_settings(project_factory) -> None:  # noqa: ANN001
    p = project_factory("classification")
    assert loop_on_drift(p) is False
    toml = Path(p.root) / "visionloop.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n[loop]\non_drift = true\n", encoding="utf-8")
    assert loop_on_drift(p) is True
