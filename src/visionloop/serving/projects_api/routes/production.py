"""Images from production: what model servers send back (``visionloop serve --feedback``), listed for review.

``POST .../production`` (annotator or above: a service user with a token) takes a multipart upload, the image in the
field ``file`` and the JSON field ``sample`` (:class:`ProductionSampleIn`). The image is stored like an import (by
content: an image the project has is reused), the prediction becomes the image's suggestion (the package of the
project with the same model hash, else the served model's name) and a ``production_samples`` row records where it
came from; a ``prediction.flagged`` event is written in the same transaction. A sample sent again (same
``request_id``) answers 200 with what was stored; a new one 201. The body is capped by ``api_max_body_bytes``.

``GET .../production`` lists samples oldest first (viewer), ``POST .../production/{id}/accept`` (reviewer) makes the
prediction the image's annotation and approves it, ``POST .../production/{id}/approve`` (reviewer) approves the
annotation a reviewer corrected in the editor.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy import select

from visionloop.core.annotations import Annotation, Boxes, Instances
from visionloop.core.errors import AnnotationValidationError, ConflictError, ImageError, NotFoundError
from visionloop.core.imageio import probe
from visionloop.core.ontology import remap_annotation
from visionloop.inference.preannotate import at_package_thresholds
from visionloop.inference.results import Prediction
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AnnotatorDep, ReviewerDep
from visionloop.serving.projects_api.deployments import list_package_dirs
from visionloop.serving.projects_api.deps import MAX_ID, PageDep, ProjectDep
from visionloop.serving.projects_api.production_schemas import (
    ProductionAcceptPublic,
    ProductionAcceptRequest,
    ProductionSampleIn,
    ProductionSamplePublic,
    ProductionSamplesPublic,
)
from visionloop.storage.models import ImageRow
from visionloop.storage.production import (
    NewProductionSample,
    ProductionSample,
    add_production_sample,
    count_production_samples,
    get_production_sample,
    list_production_samples,
)
from visionloop.storage.project import NewImage, Project
from visionloop.storage.review import ReviewState, current_reviews, set_review_state
from visionloop.storage.suggestions import ModelRef, ModelSource, SuggestionRow
from visionloop.storage.tiles import TileStore, needs_pyramid

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/production", tags=["production"], responses=ERROR_RESPONSES)

SampleId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Sample id, as GET .../production lists it.")]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _invalid(what: str, detail: str) -> AnnotationValidationError:
    return AnnotationValidationError(what, expected="what `visionloop serve --feedback` sends", actual=detail)


def _parse_sample(text: str) -> ProductionSampleIn:
    try:
        return ProductionSampleIn.model_validate_json(text)
    except ValidationError as e:
        errors = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors())
        raise _invalid("the field 'sample'", errors[:500]) from None


def _check_prediction(body: ProductionSampleIn, project: Project, width: int, height: int) -> None:
    p = body.prediction
    try:
        parsed = Prediction.from_json(p)
    except (KeyError, TypeError, ValueError) as e:
        raise _invalid("sample.prediction", f"{type(e).__name__}: {e}"[:300]) from None
    if str(parsed.task) != str(project.task):
        raise _invalid("sample.prediction.task", f"{parsed.task} for a {project.task} project")
    if (parsed.width, parsed.height) != (width, height):
        raise _invalid("sample.prediction size", f"{parsed.width}x{parsed.height} for an image of {width}x{height} "
                       "pixels (predictions are in original image pixels)")


def _suggestion_ref(project: Project, body: ProductionSampleIn) -> ModelRef:
    """The suggestion's key: the project's package with the same model hash (so the editor offers it for the
    deployed model), else the served model's name."""
    if body.model_sha256:
        for d in list_package_dirs(project):
            try:
                sha = json.loads((d / "manifest.json").read_text(encoding="utf-8")).get("model_sha256")
            except (OSError, ValueError):
                continue
            if sha == body.model_sha256:
                return ModelRef(ModelSource.PACKAGE, d.name, sha)
    return ModelRef(ModelSource.PACKAGE, body.model, body.model_sha256 or body.package_version or body.model)


def _store(project: Project, body: ProductionSampleIn, data: bytes, filename: str) -> tuple[ProductionSample, bool]:
    settings = project.settings
    if len(data) > settings.max_file_bytes:
        raise ImageError(filename, f"{len(data):,} bytes exceed VISIONLOOP_MAX_FILE_BYTES")
    info = probe(data, name=filename, max_pixels=settings.max_image_pixels)
    _check_prediction(body, project, info.width, info.height)
    sha = hashlib.sha256(data).hexdigest()
    project.blobs.put(data, sha)
    if needs_pyramid(info.width, info.height):
        TileStore.of(project).ensure(sha, lambda: data, name=filename)
    model = _UNSAFE.sub("_", body.model).strip("._") or "model"
    image = NewImage(sha256=sha, width=info.width, height=info.height, format=info.format,
                     name=f"production/{model}/{body.request_id}.{info.format or 'img'}",
                     source_uri=f"production:{body.server or 'model server'}/{body.model}",
                     meta={"production": {"request_id": body.request_id, "model": body.model}})
    sample = NewProductionSample(
        request_id=body.request_id, model=body.model, prediction=body.prediction, predicted_at=body.predicted_at,
        package_version=body.package_version, model_sha256=body.model_sha256,
        samplers=[h.model_dump() for h in body.samplers], score=body.score, random_slice=body.random_slice,
        server=body.server)
    return add_production_sample(project, sample, image=image, suggestion=_suggestion_ref(project, body),
                                 thresholds=body.thresholds)


def _public(project: Project, samples: list[ProductionSample]) -> list[ProductionSamplePublic]:
    states = current_reviews(project, [s.image_id for s in samples])
    return [ProductionSamplePublic(**s.to_json(), review_state=(
        states[s.image_id].state.value if s.image_id in states else ReviewState.TODO.value)) for s in samples]


@router.post("", response_model=ProductionSamplePublic, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": ProductionSamplePublic, "description": "Sent before: what was stored."}},
             summary="A model server sends a chosen image with its prediction: stored as an image of the project "
                     "with the prediction as its suggestion")
async def add_sample(
    response: Response, project: ProjectDep, user: AnnotatorDep,
    file: Annotated[UploadFile, File(description="The image, as the model server received it.")],
    sample: Annotated[str, Form(description="JSON: request_id, model, package_version, model_sha256, samplers, "
                                            "score, random_slice, prediction, thresholds, predicted_at, server.")],
) -> ProductionSamplePublic:
    body = _parse_sample(sample)
    data = await file.read(project.settings.max_file_bytes + 1)
    stored, created = await run_in_threadpool(_store, project, body, data, file.filename or body.request_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _public(project, [stored])[0]


@router.get("", response_model=ProductionSamplesPublic,
            summary="Images from production, oldest first, filtered by sampler, model, review and random slice")
def list_samples(
    project: ProjectDep, page: PageDep,
    sampler: Annotated[str | None, Query(max_length=64, description="Chosen by this sampler.")] = None,
    model: Annotated[str | None, Query(max_length=128, description="Predicted by this served model.")] = None,
    reviewed: Annotated[bool | None, Query(description="Whether the image is approved.")] = None,
    random_slice: Annotated[bool | None, Query(description="In the random slice (or not).")] = None,
    newest_first: bool = False,
) -> ProductionSamplesPublic:
    filters: dict[str, Any] = {"sampler": sampler, "model": model, "reviewed": reviewed, "random_slice": random_slice}
    items = list_production_samples(project, **filters, offset=page.offset, limit=page.limit,
                                    newest_first=newest_first)
    return ProductionSamplesPublic(total=count_production_samples(project, **filters), items=_public(project, items))


@router.get("/{sample_id}", response_model=ProductionSamplePublic, summary="One production sample")
def get_sample(project: ProjectDep, sample_id: SampleId) -> ProductionSamplePublic:
    return _public(project, [get_production_sample(project, sample_id)])[0]


def _as_annotation(project: Project, sample: ProductionSample, thresholds: dict[str, Any]) -> Annotation | None:
    """The prediction at the package's thresholds as ground truth: classes matched by name (else id), no scores."""
    pred = at_package_thresholds(sample.prediction, thresholds)
    ann = Prediction.from_json(pred).to_annotation()
    onto = project.ontology()
    names = {c.name: c.id for c in onto.classes}

    def to_project(cid: int, name: str) -> int:
        return names.get(name, cid)

    if isinstance(ann, Boxes | Instances):
        boxes = ann if isinstance(ann, Boxes) else ann.boxes
        ids = [to_project(d["class_id"], d["name"]) for d in pred.get("detections", [])]
        plain = Boxes(boxes.xyxy, ids if ids else boxes.class_id)
        return plain if isinstance(ann, Boxes) else replace(ann, boxes=plain)
    mapping = {int(c["class_id"]): to_project(int(c["class_id"]), c["name"])
               for c in [pred.get("label") or {}, *pred.get("tags", []), *pred.get("segments", [])] if c}
    return remap_annotation(ann, mapping) if ann is not None else None


@router.post("/{sample_id}/accept", response_model=ProductionAcceptPublic,
             summary="Accept the model's prediction as it is: it becomes the image's annotation (by the reviewer) "
                     "and the image is approved")
def accept_sample(project: ProjectDep, user: ReviewerDep, sample_id: SampleId,
                  body: ProductionAcceptRequest) -> ProductionAcceptPublic:
    sample = get_production_sample(project, sample_id)
    version = sample.model_sha256 or sample.package_version or sample.model
    with project.engine.connect() as conn:
        thresholds = conn.execute(select(SuggestionRow.thresholds).where(
            SuggestionRow.image_id == sample.image_id, SuggestionRow.version == version).order_by(SuggestionRow.id.desc()).limit(1)).scalar()
        alive = conn.execute(select(ImageRow.id).where(ImageRow.id == sample.image_id,
                                                       ImageRow.deleted_at.is_(None))).scalar()
    if alive is None:
        raise NotFoundError("image", sample.image_id, hint="the sample's image was deleted from the project")
    ann = _as_annotation(project, sample, dict(thresholds or {}))
    if ann is None:
        raise _invalid("the prediction", "no label to accept; open the image in the editor and label it")
    with project.transaction() as conn:
        revision = project.save_annotation(sample.image_id, ann, base_revision=body.base_revision,
                                           author=user.name, conn=conn)
        set_review_state(project, [sample.image_id], ReviewState.APPROVED, author=user.name, conn=conn)
    return ProductionAcceptPublic(image_id=sample.image_id, revision=revision,
                                  review_state=ReviewState.APPROVED.value)


@router.post("/{sample_id}/approve", response_model=ProductionAcceptPublic,
             summary="Approve the image's annotation as it is now (corrected in the editor)")
def approve_sample(project: ProjectDep, user: ReviewerDep, sample_id: SampleId) -> ProductionAcceptPublic:
    sample = get_production_sample(project, sample_id)
    revision, _ = project.head(sample.image_id)
    if revision is None:
        raise ConflictError(f"image {sample.image_id} has no annotation yet: correct it in the editor, or accept the "
                            "model's prediction as it is (POST .../accept)")
    set_review_state(project, [sample.image_id], ReviewState.APPROVED, author=user.name)
    return ProductionAcceptPublic(image_id=sample.image_id, revision=revision, review_state=ReviewState.APPROVED.value)
