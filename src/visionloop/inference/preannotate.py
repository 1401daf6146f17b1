"""Pre-annotation: a model package predicts the project's images in batches and its predictions are kept as
suggestions (:mod:`visionloop.storage.suggestions`) that the editor offers to accept.

Boxes are kept down to a low score floor (:data:`SUGGESTION_FLOOR`, or the package's own threshold when lower) so the
editor's threshold slider can go below the package's threshold; :func:`package_thresholds` records the package's
thresholds with them and :func:`at_package_thresholds` gives back exactly what the package answers on its own (the
``GET .../predictions`` fast path). A run is resumable: images the same model (same hash) suggested for are skipped,
and every batch is stored as soon as it is predicted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, select

from visionloop.core.errors import ImageError, NotFoundError
from visionloop.inference.predictor import DEFAULT_SCORE_THRESHOLD, Predictor
from visionloop.storage.models import AnnotationRow, ImageRow
from visionloop.storage.project import Project
from visionloop.storage.suggestions import (
    ModelRef,
    ModelSource,
    NewSuggestion,
    Suggestion,
    get_suggestion,
    save_suggestions,
    suggested_image_ids,
)

__all__ = ["DETECTION_OUTPUTS", "SUGGESTION_FLOOR", "PreannotateReport", "at_package_thresholds", "candidate_ids",
           "current_suggestion", "package_ref", "package_thresholds", "preannotate"]

SUGGESTION_FLOOR = 0.05
"""Lowest score of a suggested box kept (torchvision detectors drop boxes under 0.05 themselves)."""
DETECTION_OUTPUTS = frozenset({"torchvision_detection", "torchvision_instance_segmentation"})


def package_ref(predictor: Predictor, *, source: ModelSource = ModelSource.PACKAGE, name: str | None = None,
                ) -> ModelRef:
    """The suggestions' key of a loaded package: its name (or ``name``: a run id) and its model hash."""
    m = predictor.manifest
    return ModelRef(source, name or m.name, m.model_sha256 or m.name)


def package_thresholds(predictor: Predictor) -> dict[str, Any]:
    """``{"score": the package's threshold, "per_class": {class id: threshold}}`` (JSON keys are strings)."""
    m = predictor.manifest
    key, default = ("default", DEFAULT_SCORE_THRESHOLD["tagging"]) if m.task == "tagging" else (
        "score", DEFAULT_SCORE_THRESHOLD["detection"])
    return {"score": float((m.thresholds or {}).get(key, default)),
            "per_class": {str(c.id): round(float(t), 6) for c, t in zip(predictor.classes,
                                                                        predictor.class_thresholds, strict=True)}}


def at_package_thresholds(payload: dict[str, Any], thresholds: dict[str, Any]) -> dict[str, Any]:
    """A stored prediction with only the boxes the package itself keeps (its per-class thresholds)."""
    if "detections" not in payload:
        return payload
    per_class = thresholds.get("per_class") or {}
    score = float(thresholds.get("score", 0.0))
    kept = [d for d in payload["detections"] if d["score"] >= float(per_class.get(str(d["class_id"]), score))]
    return {**payload, "detections": kept}


def current_suggestion(project: Project, predictor: Predictor, name: str, image_id: int) -> Suggestion | None:
    """The stored suggestion of package ``name`` (loaded in ``predictor``) for an image, made by this very model
    (same hash); None when there is none."""
    ref = package_ref(predictor, name=name)
    try:
        return get_suggestion(project, image_id, ref, version=ref.version)
    except NotFoundError:
        return None


def candidate_ids(project: Project, *, only_unlabelled: bool) -> list[int]:
    """Image ids to pre-annotate, in order: every image, or those without an annotation."""
    q = select(ImageRow.id).where(ImageRow.deleted_at.is_(None)).order_by(ImageRow.id)
    if only_unlabelled:
        q = q.where(~exists().where(AnnotationRow.image_id == ImageRow.id,
                                    AnnotationRow.head_revision_id.is_not(None)))
    with project.engine.connect() as conn:
        return list(conn.execute(q).scalars())


@dataclass
class PreannotateReport:
    model: ModelRef
    candidates: int = 0
    skipped: int = 0
    predicted: int = 0
    stored: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self.model.to_json(), "candidates": self.candidates, "skipped": self.skipped,
                "predicted": self.predicted, "stored": self.stored, "failed": self.failed}


def preannotate(
    project: Project, predictor: Predictor, ref: ModelRef, *, only_unlabelled: bool = True, limit: int | None = None,
    batch_size: int = 8, on_progress: Callable[[int, int], None] | None = None,
) -> PreannotateReport:
    """Predict the candidate images not yet suggested by ``ref`` (at most ``limit``) and store the suggestions.

    ``on_progress(done, total)`` after each batch. Unreadable images are reported in ``failed`` and the rest goes on.
    """
    report = PreannotateReport(model=ref)
    ids = candidate_ids(project, only_unlabelled=only_unlabelled)
    report.candidates = len(ids)
    done_before = suggested_image_ids(project, ref)
    todo = [i for i in ids if i not in done_before]
    report.skipped = len(ids) - len(todo)
    if limit is not None:
        todo = todo[: max(0, limit)]
    floor = None
    if predictor.manifest.output_kind in DETECTION_OUTPUTS:
        floor = min(SUGGESTION_FLOOR, float(predictor.class_thresholds.min()) if len(predictor.classes) else 1.0)
    thresholds = package_thresholds(predictor)
    step = max(1, batch_size)
    for start in range(0, len(todo), step):
        records = project.images(ids=todo[start:start + step])
        data = [project.blobs.read(r.sha256) for r in records]
        results = predictor.predict_batch(data, return_errors=True, score_threshold=floor)
        batch = []
        for rec, res in zip(records, results, strict=True):
            if isinstance(res, ImageError):
                report.failed.append({"image_id": rec.id, "name": rec.name, "reason": res.reason})
            else:
                batch.append(NewSuggestion(rec.id, res.to_json()))
        report.predicted += len(batch)
        report.stored += save_suggestions(project, ref, batch, thresholds=thresholds)
        if on_progress is not None:
            on_progress(min(len(todo), start + step), len(todo))
    return report
