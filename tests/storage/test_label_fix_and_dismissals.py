"""Applying a label-error candidate's suggestion as a new revision (conflict-safe), and findings set aside
(duplicate groups, outliers) with migration 0008."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect

from tests.storage.old_projects import database, migrating, old_project
from visionloop.core.annotations import Boxes, Label
from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError, StaleRevisionError
from visionloop.storage import NewImage, Project
from visionloop.storage.dismissals import dismiss, dismissed_keys, finding_key, list_dismissals, undo_dismissal
from visionloop.storage.label_issues import (
    IssueState,
    NewLabelIssue,
    fix_label_issue,
    fixed_payload,
    get_label_issue,
    label_issue_history,
    list_label_issues,
    save_label_issue_run,
)


def add(project: Project, n: int, size: int = 64) -> list[int]:
    return [project.add_images([NewImage(sha256=project.blobs.put(bytes([i]) * 8), width=size, height=size,
                                         format="jpeg", name=f"{i}.jpg")])[0][0] for i in range(n)]


def test_fix_applies_each_kind_as_a_new_revision_and_refuses_a_stale_head(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p", task="detection")
    ids = add(p, 3)
    rbc, wbc = p.add_class("RBC").id, p.add_class("WBC").id
    two = Boxes(np.array([[1, 1, 20, 20], [30, 30, 50, 50]], np.float64), np.array([rbc, rbc]))
    for i in ids:
        p.save_annotation(i, two, base_revision=None, author="ann")
    heads = p.heads()
    run = save_label_issue_run(p, [
        NewLabelIssue(image_id=ids[0], kind="wrong_class", score=0.9, given_class_id=rbc, suggested_class_id=wbc,
                      box_index=1, revision_id=heads[ids[0]][0]),
        NewLabelIssue(image_id=ids[1], kind="missing_box", score=0.8, suggested_class_id=wbc, box=[5, 40, 25, 60],
                      revision_id=heads[ids[1]][0]),
        NewLabelIssue(image_id=ids[2], kind="loose_box", score=0.7, given_class_id=rbc, suggested_class_id=rbc,
                      box_index=0, box=[2, 2, 18, 18], revision_id=heads[ids[2]][0]),
    ], created_by="cli", method="both")
    wrong, missing, loose = list_label_issues(p, run_id=run.id).items

    with pytest.raises(StaleRevisionError):  # the person saw no annotation: the head is revision 1
        fix_label_issue(p, wrong.id, base_revision=None, author="rita")
    assert get_label_issue(p, wrong.id).state is IssueState.OPEN and p.head(ids[0])[0] == 1
    fixed, revision = fix_label_issue(p, wrong.id, base_revision=1, author="rita", note="a neutrophil")
    assert revision == 2 and fixed.state is IssueState.FIXED and fixed.state_by == "rita"
    assert p.head(ids[0])[1].class_id.tolist() == [rbc, wbc]
    assert [r.author for r in p.history(ids[0])][-1] == "rita"
    assert [(e.state, e.note) for e in label_issue_history(p, wrong.id)] == [(IssueState.FIXED, "a neutrophil")]
    with pytest.raises(ConflictError, match="edited since"):  # the candidate's revision is no longer the head
        fix_label_issue(p, wrong.id, base_revision=2, author="rita")

    fix_label_issue(p, missing.id, base_revision=1, author="rita")
    head = p.head(ids[1])[1]
    assert len(head) == 3 and head.xyxy[2].tolist() == [5, 40, 25, 60] and head.class_id[2] == wbc
    fix_label_issue(p, loose.id, base_revision=1, author="rita")
    assert p.head(ids[2])[1].xyxy.tolist() == [[2, 2, 18, 18], [30, 30, 50, 50]]
    assert list_label_issues(p, run_id=run.id, states=["open"]).total == 0
    with pytest.raises(NotFoundError):
        fix_label_issue(p, 999, base_revision=1, author="rita")


def test_fixed_payload_for_labels_tags_and_what_needs_a_drawing(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p", task="classification")
    ids = add(p, 1)
    a, b = p.add_class("a").id, p.add_class("b").id
    p.save_annotation(ids[0], Label(a), base_revision=None, author="ann")
    run = save_label_issue_run(p, [
        NewLabelIssue(image_id=ids[0], kind="wrong_label", score=0.9, given_class_id=a, suggested_class_id=b),
        NewLabelIssue(image_id=ids[0], kind="wrong_tag", score=0.5, given_class_id=a),
        NewLabelIssue(image_id=ids[0], kind="missing_box", score=0.5, suggested_class_id=a, box=[0, 0, 4, 4]),
    ], created_by="cli", method="both")
    label, tag, box = list_label_issues(p, run_id=run.id).items
    assert fixed_payload({"type": "label", "class_id": a}, label) == {"type": "label", "class_id": b}
    assert fixed_payload({"type": "tags", "class_ids": [a, b]}, tag) == {"type": "tags", "class_ids": [b]}
    with pytest.raises(ConflictError, match="mask must be drawn"):
        fixed_payload({"type": "instances", "xyxy": [], "class_id": [], "segmentations": []}, box)
    assert fix_label_issue(p, label.id, base_revision=1, author="x")[1] == 2
    assert p.head(ids[0])[1] == Label(b)


def test_dismissals_of_duplicate_groups_and_outliers(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p", task="detection")
    ids = add(p, 3)
    group = dismiss(p, "duplicates", [ids[1], ids[0]], author="rita", note=" two smears ")
    assert group.image_ids == sorted(ids[:2]) and group.note == "two smears" and group.author == "rita"
    assert dismiss(p, "duplicates", ids[:2], author="bob").id == group.id  # stored once
    outlier = dismiss(p, "outlier", [ids[2]], author="bob")
    assert dismissed_keys(p, "duplicates") == {finding_key(ids[:2])}
    assert [d.id for d in list_dismissals(p)] == [outlier.id, group.id]
    assert [d.id for d in list_dismissals(p, "outlier")] == [outlier.id]
    with pytest.raises(AnnotationValidationError):
        dismiss(p, "duplicates", [ids[0]], author="x")  # a group has two images or more
    with pytest.raises(AnnotationValidationError):
        dismiss(p, "outlier", ids[:2], author="x")
    with pytest.raises(NotFoundError):
        dismiss(p, "outlier", [999], author="x")
    with pytest.raises(NotFoundError):
        dismiss(p, "unusual", [ids[0]], author="x")
    undo_dismissal(p, group.id)
    assert dismissed_keys(p, "duplicates") == set()
    with pytest.raises(NotFoundError):
        undo_dismissal(p, group.id)


def test_migration_0008_upgrades_a_0007_project_and_back(tmp_path: Path) -> None:
    root = tmp_path / "old"
    with old_project(root, "0007"):
        pass
    with database(root) as engine:
        assert not inspect(engine).has_table("dismissals")
    with Project.open(root) as project:
        ids = add(project, 1)
        assert dismiss(project, "outlier", ids, author="a").image_ids == ids
    with migrating(root, "0007", down=True) as conn:
        assert not inspect(conn).has_table("dismissals")
