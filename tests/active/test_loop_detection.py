"""The loop on BCCD detection (slow): a detector trained on a small approved seed is the champion; more approved
images start a cycle whose challenger is trained with the same recipe and compared on the frozen test set (mAP50,
paired bootstrap re-accumulated from pycocotools' per-image matching)."""

from __future__ import annotations

import pytest

from tests.web.conftest import bccd_subset
from visionloop.active.loop import loop_options, run_cycle
from visionloop.active.loop_promote import package_and_deploy
from visionloop.evaluation.detection_run import evaluate_run
from visionloop.ingest import import_source
from visionloop.storage import Project
from visionloop.storage.deployment import read_deployment
from visionloop.storage.review import ReviewState, set_review_state
from visionloop.storage.versions import create_version, version_items
from visionloop.training.api import train


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_bccd_detection_cycle_compares_on_the_frozen_test_set(bccd_dir, tmp_path) -> None:  # noqa: ANN001
    with Project.create(tmp_path / "cells", task="detection") as p:
        import_source(p, bccd_subset(bccd_dir, tmp_path / "voc", 48), format="voc")
        ids = [im.id for im in p.images()]
        seed, later = ids[:24], ids[24:]  # the seed: a few training images, most of it the test set
        set_review_state(p, seed, ReviewState.APPROVED, author="reviewer")
        create_version(p, name="v1", approved_only=True, fractions=(0.25, 0.1, 0.65))
        champion = train(p, version="v1", epochs=4, image_size=256, progress=False).run_id
        package_and_deploy(p, champion, by="admin")

        set_review_state(p, later, ReviewState.APPROVED, author="reviewer")
        c = run_cycle(p, loop_options(p, min_new=10, resamples=500)).cycle
        assert c.metric == "map50" and c.champion_run == champion and c.challenger_run
        v1 = {it.image.id: it.split for it in version_items(p, "v1")}
        v2 = {it.image.id: it.split for it in version_items(p, c.version)}
        assert {i: v2[i] for i in v1} == v1 and sum(s == "test" for s in v2.values()) == sum(
            s == "test" for s in v1.values())
        # the champion on the frozen test split measures what `visionloop evaluate` measured on its own version
        assert c.champion_value == pytest.approx(evaluate_run(p, champion, split="test", report=False)["map50"],
                                                 abs=1e-9)
        assert c.ci_low <= c.challenger_value - c.champion_value <= c.ci_high
        assert set(c.details["per_class"]) == {"WBC", "RBC", "Platelets"}
        assert (c.state == "promoted") == (c.ci_low > 0)
        # measured on 2 loaded cores (275 s): champion mAP50 0.036 (6 train images), challenger 0.346 (25), 95% CI
        # [+0.226, +0.412] over 16 test images, promoted
        assert c.challenger_value > c.champion_value + 0.1
        assert read_deployment(p.root)["package"] == (c.challenger_run if c.state == "promoted" else champion)
        trained = {v: sum(s == "train" for s in splits.values()) for v, splits in (("v1", v1), ("v2", v2))}
        print(f"BCCD detection cycle: champion mAP50 {c.champion_value:.4f} ({trained['v1']} train images), "
              f"challenger {c.challenger_value:.4f} ({trained['v2']} train images), 95% CI [{c.ci_low:+.4f}, "
              f"{c.ci_high:+.4f}] over {c.details['images']} test images: {c.state}")
