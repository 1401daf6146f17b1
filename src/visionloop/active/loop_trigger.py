"""When the loop runs a cycle, and against whom: the champion (the model in production) and the count of new
reviewed annotations since the version it was trained on.

The champion is the run of the package deployed in the project (``PROJECT/deployment.json``), or a run named by
hand when nothing is deployed yet. A cycle starts when at least ``min_new`` images have an annotation the champion's
version does not hold (a new image, or a corrected one), counting only approved images by default; or when it is
forced (a person, a drift alert, a schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select

from visionloop.core.errors import ConflictError
from visionloop.core.package import load_package
from visionloop.storage.deployment import deployed_package_dir, read_deployment
from visionloop.storage.models import AnnotationRow, ImageRow, VersionItemRow, VersionRow
from visionloop.storage.review import ReviewState, state_filter
from visionloop.storage.runs import load_config, resolve_run

__all__ = ["Champion", "TriggerCheck", "check_trigger", "count_new_annotations", "find_champion"]


@dataclass(frozen=True)
class Champion:
    """The model to beat: its run, the version it trained on, and the deployed package (None: not deployed)."""

    run_id: str
    version: str
    package: str | None


@dataclass(frozen=True)
class TriggerCheck:
    """Whether a cycle runs (``due``), why, and the count of new annotations."""

    due: bool
    trigger: str
    new_annotations: int
    reason: str


def find_champion(project: Any, *, run: str | None = None) -> Champion:
    """The deployed package's run, or ``run`` when given; ConflictError says what to do when there is neither."""
    package = None
    if run is None:
        path = deployed_package_dir(project.root)
        if path is None:
            raise ConflictError("the loop needs a champion, the model in production, and nothing is deployed in this "
                                "project: deploy a package (POST .../deployment, or the Models page), or name the "
                                "champion run (visionloop loop PROJECT --champion RUN)")
        manifest = load_package(path, verify=False).manifest
        if not manifest.run_id:
            raise ConflictError(f"the deployed package {path.name!r} names no training run, so its recipe and data "
                                "are unknown; deploy a package exported from a run of this project, or name the "
                                "champion run (--champion RUN)")
        run, package = manifest.run_id, (read_deployment(project.root) or {}).get("package")
    rid = resolve_run(project, run)
    cfg = load_config(project, rid)
    return Champion(run_id=rid, version=str(cfg.version["name"]), package=package)


def count_new_annotations(project: Any, version: str, *, approved_only: bool = True) -> int:
    """Images (not deleted) whose current annotation ``version`` does not hold: new images and corrected ones
    (approved ones only when ``approved_only``)."""
    with project.engine.connect() as conn:
        vid = conn.execute(select(VersionRow.id).where(VersionRow.name == version)).scalar_one()
        frozen = VersionItemRow.__table__.alias("frozen")
        q = (select(func.count()).select_from(AnnotationRow)
             .join(ImageRow, ImageRow.id == AnnotationRow.image_id)
             .outerjoin(frozen, and_(frozen.c.image_id == AnnotationRow.image_id, frozen.c.version_id == vid))
             .where(ImageRow.deleted_at.is_(None), AnnotationRow.head_revision_id.is_not(None))
             .where((frozen.c.revision_id.is_(None)) | (frozen.c.revision_id != AnnotationRow.head_revision_id)))
        if approved_only:
            q = q.where(state_filter(ReviewState.APPROVED))
        return int(conn.execute(q).scalar_one())


def check_trigger(project: Any, champion: Champion, *, min_new: int, force: bool = False, trigger: str | None = None,
                  approved_only: bool = True) -> TriggerCheck:
    """Is a cycle due? ``force`` (with ``trigger`` ``manual``, ``drift`` or ``schedule``) runs one whatever the count."""
    new = count_new_annotations(project, champion.version, approved_only=approved_only)
    what = "approved annotations" if approved_only else "annotations"
    if force:
        kind = trigger or "manual"
        return TriggerCheck(True, kind, new, f"{kind}: {new} new {what} since version {champion.version}")
    if new >= min_new:
        return TriggerCheck(True, trigger or "count", new,
                            f"{new} new {what} since version {champion.version} (at least {min_new})")
    return TriggerCheck(False, trigger or "count", new,
                        f"{new} new {what} since version {champion.version}, fewer than {min_new}: nothing to do "
                        "(lower --min-new, or --force)")
