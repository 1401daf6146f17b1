"""``GET /projects/{project}/annotators``: per-annotator statistics (:mod:`visionloop.storage.annotator_stats`).

Admins and reviewers see everyone; an annotator sees only their own line, without the honeypot figures (a count
that grows after one submit and not after another would tell them which item was gold); viewers none.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AnnotatorDep, ReviewerDep
from visionloop.serving.projects_api.deps import PageDep, ProjectDep
from visionloop.serving.projects_api.work_schemas import AnnotatorPublic, AnnotatorsPublic, HoneypotAnswersPublic
from visionloop.storage.annotator_stats import DEFAULT_GAP_CAP_S, annotator_stats
from visionloop.storage.users import Role, get_user
from visionloop.storage.work import honeypot_answers

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/annotators", tags=["annotators"], responses=ERROR_RESPONSES)


@router.get("", response_model=AnnotatorsPublic,
            summary="Speed, acceptance, honeypot score, agreement and per-day series of each annotator")
def list_annotators(
    user: AnnotatorDep, project: ProjectDep,
    gap_cap_s: Annotated[float, Query(gt=0, le=86400, description=(
        "Longest gap between two saves that still counts as work (seconds)."))] = DEFAULT_GAP_CAP_S,
) -> AnnotatorsPublic:
    trusted = user.role.allows(Role.REVIEWER)
    stats = [s.to_json() for s in annotator_stats(project, names=None if trusted else [user.name],
                                                    gap_cap_s=gap_cap_s)]
    if not trusted:
        for s in stats:
            s["honeypots"] = s["honeypot_score"] = None
            for day in s["days"]:
                day["honeypot_score"] = None
    return AnnotatorsPublic(gap_cap_s=gap_cap_s, items=[AnnotatorPublic(**s) for s in stats])


@router.get("/{name}/honeypots", response_model=HoneypotAnswersPublic,
            summary="An annotator's honeypot answers with their scores, newest first (reviewers)")
def list_honeypot_answers(user: ReviewerDep, project: ProjectDep, name: str, page: PageDep) -> HoneypotAnswersPublic:
    get_user(project, name)
    total, items = honeypot_answers(project, name, offset=page.offset, limit=page.limit)
    return HoneypotAnswersPublic(total=total, offset=page.offset, limit=page.limit, items=items)
