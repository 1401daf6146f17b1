"""Label-error routes: start the finder (a job), list its ranked candidates, fix one (its suggestion becomes a new
revision of the image's annotation, by the signed-in reviewer) or dismiss it.

The finder (``visionloop label-errors``: cross-validated probabilities on cached backbone features, ranked by
confident learning) runs as the ``label_errors`` job; each run stores its candidates, and the list shows the newest
run's unless another is asked for. A fix is conflict-safe like an annotation save: the body names the head revision
the reviewer saw, and a head that moved since answers 409 with both versions (``head`` and ``yours``, the fix applied
to the new head); a head edited since the finder ran answers 409 too (the box indexes may point elsewhere).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from visionloop.core.errors import ConflictError, NotFoundError, StaleRevisionError
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep, ReviewerDep
from visionloop.serving.projects_api.deps import MAX_ID, ProjectDep
from visionloop.serving.projects_api.image_queries import head_revision
from visionloop.serving.projects_api.job_schemas import JobPublic
from visionloop.serving.projects_api.label_error_schemas import (
    DismissRequest,
    FixedPublic,
    FixRequest,
    LabelErrorsPublic,
    LabelErrorsRequest,
    LabelIssuePublic,
)
from visionloop.serving.projects_api.routes.jobs import JobQueueDep, job_public
from visionloop.serving.projects_api.schemas import RevisionPublic, SaveConflictPublic, YoursPublic
from visionloop.storage.label_issues import (
    MAX_PAGE,
    IssueKind,
    IssueState,
    fix_label_issue,
    fixed_payload,
    get_label_issue,
    get_label_issue_run,
    list_label_issues,
    set_label_issue_state,
)

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/label-errors", tags=["label errors"], responses=ERROR_RESPONSES)

IssueId = Annotated[int, Path(ge=1, le=MAX_ID, description="Candidate id, as the list gives it.")]


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Queue the label-error finder (cross-validation on cached features, confident learning)")
def start_label_errors(body: LabelErrorsRequest, project: ProjectDep, user: AdminDep,
                       queue: JobQueueDep) -> JobPublic:
    if body.run and body.package:
        raise ConflictError("give run or package, not both")
    params = body.model_dump(exclude_none=True)
    return job_public(queue.submit(project, kind="label_errors", params=params, created_by=user.name))


@router.get("", response_model=LabelErrorsPublic, summary="A finder run's candidates, likeliest error first")
def list_label_errors(
    user: ReviewerDep, project: ProjectDep,
    run: Annotated[int | None, Query(ge=1, le=MAX_ID, description="A finder run (default: the newest).")] = None,
    state: Annotated[list[IssueState] | None, Query(description="Only candidates in these states.")] = None,
    kind: Annotated[list[IssueKind] | None, Query(description="Only candidates of these kinds.")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    try:
        found = get_label_issue_run(project, run)
    except NotFoundError:
        if run is not None:
            raise
        return {"run": None, "total": 0, "counts": {s.value: 0 for s in IssueState}, "offset": offset,
                "limit": limit, "items": []}
    page = list_label_issues(project, run_id=found.id, states=state, kinds=kind, offset=offset, limit=limit)
    counts = {s.value: list_label_issues(project, run_id=found.id, states=[s], limit=1).total for s in IssueState}
    return {"run": found.to_json(), "total": page.total, "counts": counts, "offset": offset, "limit": limit,
            "items": [i.to_json() for i in page.items]}


@router.post("/{issue_id}/fix", response_model=FixedPublic,
             responses={409: {"model": SaveConflictPublic, "description": "The head moved since base_revision "
                              "(both versions in the answer), or the image was edited since the finder ran."}},
             summary="Apply the candidate's suggestion as a new revision by you, and mark it fixed")
def fix(user: ReviewerDep, project: ProjectDep, issue_id: IssueId, body: FixRequest) -> Any:
    try:
        issue, revision = fix_label_issue(project, issue_id, base_revision=body.base_revision, author=user.name,
                                          note=body.note)
    except StaleRevisionError as e:
        head = head_revision(project, e.image_id)
        mine = fixed_payload(head.payload, get_label_issue(project, issue_id)) if head is not None else {}
        conflict = SaveConflictPublic(
            detail=str(e), base_revision=e.base_revision, head_revision=e.head_revision,
            head=RevisionPublic(revision=head.revision, author=head.author, created_at=head.created_at,
                                payload=head.payload) if head is not None else None,
            yours=YoursPublic(base_revision=body.base_revision, payload=mine))
        return JSONResponse(jsonable_encoder(conflict), status_code=status.HTTP_409_CONFLICT)
    return {"issue": issue.to_json(), "revision": revision}


def _set(project: Any, issue_id: int, state: IssueState, author: str, note: str | None) -> dict[str, Any]:
    set_label_issue_state(project, [issue_id], state, author=author, note=note)
    return get_label_issue(project, issue_id).to_json()


@router.post("/{issue_id}/dismiss", response_model=LabelIssuePublic,
             summary="Dismiss the candidate: the label is right (recorded with who and when)")
def dismiss(user: ReviewerDep, project: ProjectDep, issue_id: IssueId, body: DismissRequest) -> dict[str, Any]:
    return _set(project, issue_id, IssueState.DISMISSED, user.name, body.note)


@router.post("/{issue_id}/reopen", response_model=LabelIssuePublic,
             summary="Open the candidate again (undo a dismissal; a fix's revision stays)")
def reopen(user: ReviewerDep, project: ProjectDep, issue_id: IssueId, body: DismissRequest) -> dict[str, Any]:
    return _set(project, issue_id, IssueState.OPEN, user.name, body.note)
