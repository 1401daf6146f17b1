"""Real-data projects for the loop tests: BCCD cell crops with a small approved seed and more labels to come.

:func:`bccd_crops_loop_project` imports the first ``n`` BCCD images (boxes), splits them (a large test share, so the
comparison has enough test crops), derives a classification project of the cell crops (each crop keeps its parent's
split as ``split_hint`` and its parent as ``group``), and approves the *seed*: every val and test crop and the crops of
the first ``seed_train_images`` training images. The other training crops are labelled but not yet approved: approving
them is the new reviewed work a loop cycle picks up.
"""

from __future__ import annotations

from pathlib import Path

from visionloop.storage import Project
from visionloop.storage.review import ReviewState, set_review_state
from visionloop.storage.versions import create_version, version_items


def bccd_crops_loop_project(bccd_dir: Path, out: Path, *, n: int = 40, seed_train_images: int = 2,
                            fractions: tuple[float, float, float] = (0.6, 0.1, 0.3)) -> tuple[Path, list[int]]:
    """``(crops project path, image ids still to approve)``; the crops project has version ``v1`` = the seed."""
    from tests.web.conftest import bccd_subset
    from visionloop.ingest import import_source
    from visionloop.quality.derive import derive_project

    source = bccd_subset(bccd_dir, out / "source", n)
    with Project.create(out / "det", task="detection") as det:
        import_source(det, source, format="voc", progress=False)
        create_version(det, name="v1", fractions=fractions, seed=0)
        derive_project(det, "v1", to="crops", out=out / "crops")
    with Project.open(out / "crops") as p:
        items = version_items(p, create_version(p, name="all", phash_distance=-1).name)
        parents = sorted({it.image.meta["group"] for it in items if it.image.meta["split_hint"] == "train"})
        seed_parents = set(parents[:seed_train_images])
        seed = [it.image.id for it in items
                if it.image.meta["split_hint"] != "train" or it.image.meta["group"] in seed_parents]
        rest = [it.image.id for it in items if it.image.id not in set(seed)]
        set_review_state(p, seed, ReviewState.APPROVED, author="reviewer")
        create_version(p, name="v1", approved_only=True, phash_distance=-1)
    return out / "crops", rest
