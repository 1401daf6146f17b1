"""Label-error candidates in the store: a finder run, its ranked candidates, their states and the log of changes;
and migration 0007 on a project made at 0006."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from tests.storage.old_projects import database, migrating, old_project
from visionloop.core.errors import AnnotationValidationError, NotFoundError
from visionloop.storage import NewImage, Project
from visionloop.storage.image_admin import delete_images
from visionloop.storage.label_issues import (
    IssueKind,
    IssueState,
    LabelIssueEventRow,
    NewLabelIssue,
    get_label_issue_run,
    label_issue_history,
    list_label_issue_runs,
    list_label_issues,
    save_label_issue_run,
    set_label_issue_state,
)


def add(project: Project, n: int) -> list[int]:
    return [project.add_images([NewImage(sha256=project.blobs.put(bytes([i]) * 8), width=8, height=8,
                                         format="jpeg", name=f"{i}.jpg")])[0][0] for i in range(n)]


def candidates(ids: list[int], rbc: int, wbc: int) -> list[NewLabelIssue]:
    return [
        NewLabelIssue(image_id=ids[0], kind="wrong_class", score=0.97, given_class_id=rbc, suggested_class_id=wbc,
                      box_index=3, revision_id=11, details={"self_confidence": 0.03}),
        NewLabelIssue(image_id=ids[1], kind=IssueKind.MISSING_BOX, score=0.9, suggested_class_id=rbc,
                      box=(1, 2, 30, 40)),
        NewLabelIssue(image_id=ids[0], kind="loose_box", score=0.4, given_class_id=wbc, suggested_class_id=wbc,
                      box_index=0, box=[0, 0, 10, 10]),
    ]


def test_a_run_its_ranked_candidates_and_their_states(tmp_path: Path, db_url: str | None) -> None:
    p = Project.create(tmp_path / "p", task="detection", db_url=db_url)
    try:
        ids = add(p, 2)
        rbc, wbc = p.add_class("RBC").id, p.add_class("WBC").id
        run = save_label_issue_run(p, candidates(ids, rbc, wbc), created_by="ann", method="both", version="v1",
                                   source="run-7", params={"folds": 5}, summary={"examples": 40})
        assert (run.method, run.version, run.source, run.created_by) == ("both", "v1", "run-7", "ann")
        assert run.summary == {"candidates": 3, "examples": 40} and run.params == {"folds": 5}
        assert run.created_at.tzinfo is not None
        page = list_label_issues(p)
        assert page.total == 3 and [i.rank for i in page.items] == [1, 2, 3]
        first = page.items[0]
        assert (first.kind, first.given, first.suggested, first.box_index, first.revision_id) == (
            IssueKind.WRONG_CLASS, "RBC", "WBC", 3, 11)
        assert first.image_name == "0.jpg" and first.details == {"self_confidence": 0.03}
        assert first.state is IssueState.OPEN and first.state_by is None
        assert page.items[1].box == [1.0, 2.0, 30.0, 40.0] and page.items[1].given is None
        assert first.to_json()["given"] == "RBC"

        # one click fixes, another dismisses; the same state again changes nothing
        assert set_label_issue_state(p, [first.id], "fixed", author="rita") == 1
        assert set_label_issue_state(p, [first.id, page.items[2].id], IssueState.DISMISSED, author="bob",
                                     note=" a cell at the border ") == 2
        assert set_label_issue_state(p, [first.id], "dismissed", author="bob") == 0
        history = label_issue_history(p, first.id)
        assert [(e.state, e.author, e.note) for e in history] == [
            (IssueState.FIXED, "rita", None), (IssueState.DISMISSED, "bob", "a cell at the border")]
        assert history[0].created_at.tzinfo is not None

        assert [i.rank for i in list_label_issues(p, states=["open"]).items] == [2]
        dismissed = list_label_issues(p, states=["dismissed"])
        assert [i.rank for i in dismissed.items] == [1, 3] and dismissed.items[0].state_by == "bob"
        assert dismissed.items[0].state_at is not None
        assert [i.kind for i in list_label_issues(p, kinds=["missing_box", "loose_box"]).items] == [
            IssueKind.MISSING_BOX, IssueKind.LOOSE_BOX]
        paged = list_label_issues(p, offset=1, limit=1)
        assert paged.total == 3 and [i.rank for i in paged.items] == [2]

        # a newer run is the default list; the older one stays readable by id
        newer = save_label_issue_run(p, candidates(ids, rbc, wbc)[1:], created_by="ann", method="prune_by_noise_rate")
        assert list_label_issues(p).items[0].run_id == newer.id
        assert list_label_issues(p, run_id=run.id).total == 3
        assert [r.id for r in list_label_issue_runs(p)] == [newer.id, run.id]
        assert get_label_issue_run(p).id == newer.id
    finally:
        p.close()


def test_bad_input_writes_nothing(project_factory) -> None:
    p: Project = project_factory("detection")
    ids = add(p, 1)
    with pytest.raises(NotFoundError, match="label-error run"):
        list_label_issues(p)
    with pytest.raises(NotFoundError, match="image"):
        save_label_issue_run(p, [NewLabelIssue(image_id=999, kind="wrong_label", score=0.5)], created_by="a",
                             method="both")
    with pytest.raises(NotFoundError, match="label issue kind"):
        save_label_issue_run(p, [NewLabelIssue(image_id=ids[0], kind="typo", score=0.5)], created_by="a",
                             method="both")
    with pytest.raises(AnnotationValidationError, match="score"):
        save_label_issue_run(p, [NewLabelIssue(image_id=ids[0], kind="wrong_label", score=1.5)], created_by="a",
                             method="both")
    with pytest.raises(AnnotationValidationError, match="box"):
        save_label_issue_run(p, [NewLabelIssue(image_id=ids[0], kind="missing_box", score=0.5, box=(1, 2))],
                             created_by="a", method="both")
    assert list_label_issue_runs(p) == []
    run = save_label_issue_run(p, [NewLabelIssue(image_id=ids[0], kind="wrong_label", score=0.5)], created_by="a",
                               method="both")
    issue = list_label_issues(p, run_id=run.id).items[0]
    with pytest.raises(NotFoundError, match="label issue state"):
        set_label_issue_state(p, [issue.id], "done", author="a")
    with pytest.raises(NotFoundError, match="label issue"):
        set_label_issue_state(p, [issue.id, 12345], "fixed", author="a")
    with pytest.raises(AnnotationValidationError, match="note"):
        set_label_issue_state(p, [issue.id], "fixed", author="a", note="x" * 5000)
    with pytest.raises(AnnotationValidationError, match="limit"):
        list_label_issues(p, limit=0)
    assert list_label_issues(p).items[0].state is IssueState.OPEN
    with p.engine.connect() as c:
        assert c.execute(select(LabelIssueEventRow.id)).all() == []
    delete_images(p, ids)  # the image goes, its candidates with it
    assert list_label_issues(p, run_id=run.id).total == 0


def test_migration_0007_upgrades_a_0006_project_and_back(tmp_path: Path) -> None:
    root = tmp_path / "old"
    with old_project(root, "0006"):
        pass
    with database(root) as engine:
        assert not inspect(engine).has_table("label_issues")
    with Project.open(root) as project:
        assert {"label_issue_runs", "label_issues", "label_issue_events"} <= set(
            inspect(project.engine).get_table_names())
        ids = add(project, 1)
        save_label_issue_run(project, [NewLabelIssue(image_id=ids[0], kind="wrong_tag", score=0.2)],
                             created_by="a", method="both")
        assert list_label_issues(project).total == 1
    with migrating(root, "0006", down=True) as conn:
        assert not inspect(conn).has_table("label_issues") and not inspect(conn).has_table("label_issue_runs")
