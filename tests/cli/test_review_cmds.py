"""`visionloop review PROJECT ...` and `visionloop annotators PROJECT`: batches, queue, reject, approve, gold."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from visionloop.cli.main import app
from visionloop.core.annotations import Boxes
from visionloop.quality.review_flow import submit_item
from visionloop.storage import NewImage, Project
from visionloop.storage.users import add_user
from visionloop.storage.work import next_item

runner = CliRunner()


def run(*args: str, ok: bool = True):
    result = runner.invoke(app, list(args))
    assert (result.exit_code == 0) is ok, result.output
    return result


def test_batch_queue_reject_approve_gold_stats(tmp_path: Path) -> None:
    path = tmp_path / "p"
    with Project.create(path, task="detection") as p:
        cid = p.class_ids(["cell"])["cell"]
        add_user(p, "anna", role="annotator")
        ids = [p.add_images([NewImage(sha256=p.blobs.put(bytes([i]) * 8), width=50, height=40, format="jpeg",
                                      name=f"{i}.jpg")])[0][0] for i in range(4)]
        p.save_annotation(ids[3], Boxes([[1, 1, 9, 9]], [cid]), base_revision=None, author="rita")
    proj = str(path)
    gold = json.loads(run("review", proj, "gold", str(ids[3]), "--as", "rita", "--json").stdout)
    assert gold["image_id"] == ids[3] and gold["author"] == "rita"
    assert [g["image_id"] for g in json.loads(run("review", proj, "gold", "--json").stdout)] == [ids[3]]
    batch = json.loads(run("review", proj, "batch", "create", "--name", "b1", "-a", "anna", "--unannotated",
                           "--per-annotator", "2", "--json").stdout)
    assert batch["counts"]["todo"] == 2 and batch["params"]["filter"] == {"annotated": False}
    assert "exists" in run("review", proj, "batch", "create", "--name", "b1", "-a", "anna", ok=False).output
    with Project.open(path) as p:
        for _ in range(2):
            item = next_item(p, "anna")
            submit_item(p, item.id, annotator="anna", annotation=Boxes([[2, 2, 8, 8]], [cid]))
    queue = json.loads(run("review", proj, "queue", "--json").stdout)
    assert queue["total"] == 2 and [i["image_id"] for i in queue["items"]] == ids[:2]
    bad = run("review", proj, "reject", str(ids[0]), "--reason", "x", "--tag", "ugly", ok=False)
    assert "review tag 'ugly' not found" in bad.output
    rejected = run("review", proj, "reject", str(ids[0]), "--reason", "loose", "--tag", "loose_box", "--point", "5",
                   "6", "--as", "rita", "--json")
    assert json.loads(rejected.stdout) == {"changed": 1}
    assert json.loads(run("review", proj, "approve", str(ids[1]), "--as", "rita", "--json").stdout) == {"changed": 1}
    assert json.loads(run("review", proj, "batch", "honeypot-rate", "b1", "0.2", "--json").stdout)[
        "honeypot_rate"] == 0.2
    listed = json.loads(run("review", proj, "batch", "list", "--json").stdout)
    assert listed[0]["counts"] == {"todo": 0, "submitted": 0, "approved": 1, "rejected": 1}
    stats = json.loads(run("annotators", proj, "--json").stdout)
    anna = next(s for s in stats if s["name"] == "anna")
    assert (anna["approved"], anna["rejected"], anna["acceptance_rate"], anna["images"]) == (1, 1, 0.5, 2)
    version = json.loads(run("version", "create", proj, "--approved-only", "--val", "0", "--test", "0",
                             "--json").stdout)
    assert version["summary"]["images"] == 1
    assert "annotators" in run("annotators", proj).output.lower()
