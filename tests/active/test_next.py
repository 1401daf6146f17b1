"""``rank_unlabelled``: the pool it ranks, each strategy's order on a model whose doubt is known, diversity, the
cold start, missing embeddings; and on real BCCD cell crops with a real classifier and real embeddings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.active.colour_project import colour_package, colour_project
from visionloop.active.acquisition import entropy
from visionloop.active.next import deployed_package, rank_unlabelled, unlabelled_image_ids
from visionloop.core.annotations import Label
from visionloop.core.errors import AnnotationValidationError, NotFoundError
from visionloop.inference import Predictor
from visionloop.storage.embeddings import EmbeddingsMissingError
from visionloop.storage.gold import mark_gold
from visionloop.storage.users import add_user
from visionloop.storage.work import create_batch

LOOKS = ["red", "grey", "yellow", "pinkish", "green", "blue", "grey", "grey", "yellow", "red"]


def _names(result) -> list[str]:  # noqa: ANN001
    return [r.name.split("-", 1)[1].removesuffix(".png") for r in result.results]


def test_predictions_carry_every_class_probability(tmp_path: Path) -> None:
    pkg = colour_package(tmp_path / "pkg")
    with Predictor(pkg, sessions=1, top_k=1) as pred:
        p = pred.predict(np.full((20, 20, 3), 128, np.uint8))
    assert len(p.scores) == 1 and p.probs is not None and p.probs.shape == (3,)
    assert p.probs.sum() == pytest.approx(1.0, abs=1e-5) and np.allclose(p.probs, 1 / 3, atol=1e-3)
    assert "probs" not in p.to_json()


def test_pool_leaves_out_labelled_gold_and_open_work(tmp_path: Path) -> None:
    with colour_project(tmp_path / "p", LOOKS, labelled={0: "red", 1: "red"}) as p:
        ids = [im.id for im in p.images()]
        assert unlabelled_image_ids(p) == ids[2:]
        mark_gold(p, ids[0], author="alice")
        add_user(p, "ann", role="annotator")
        create_batch(p, name="b", annotators=["ann"], created_by="alice", image_ids=[ids[3], ids[2]])
        assert unlabelled_image_ids(p) == ids[4:]
        out = rank_unlabelled(p, n=10, strategy="entropy", diversity="none")
        assert out.pool == 6 and {r.id for r in out.results} == set(ids[4:])


def test_uncertainty_orders_follow_the_model(tmp_path: Path) -> None:
    with colour_project(tmp_path / "p", LOOKS) as p:
        ent = rank_unlabelled(p, n=10, strategy="entropy", diversity="none")
        assert ent.model == {"source": "deployed", "name": "colour"} and not ent.cold_start
        assert _names(ent)[:6] == ["grey"] * 3 + ["yellow"] * 2 + ["pinkish"]
        assert set(_names(ent)[6:]) == {"red", "green", "blue"}
        assert [r.score for r in ent.results] == sorted((r.score for r in ent.results), reverse=True)
        assert ent.results[0].score == pytest.approx(1.0, abs=1e-3) and "entropy 1.000" in ent.results[0].reason
        lc = rank_unlabelled(p, n=4, strategy="least_confidence", diversity="none")
        assert _names(lc) == ["grey"] * 3 + ["yellow"]
        assert lc.results[3].score == pytest.approx(0.75, abs=1e-3)
        margin = rank_unlabelled(p, n=5, strategy="margin", diversity="none")
        assert set(_names(margin)) == {"grey", "yellow"}  # no margin between the two best classes in either
        auto = rank_unlabelled(p, n=3, diversity="none")
        assert auto.strategy == "entropy" and _names(auto) == ["grey"] * 3


def test_kcenter_takes_one_of_near_copies(tmp_path: Path) -> None:
    with colour_project(tmp_path / "p", LOOKS) as p:
        plain = rank_unlabelled(p, n=3, strategy="entropy", diversity="none")
        assert _names(plain) == ["grey"] * 3
        diverse = rank_unlabelled(p, n=3, strategy="entropy", diversity="kcenter", factor=2)
        assert diverse.diversity == "kcenter" and diverse.backbone == "tf_efficientnet_lite0"
        names = _names(diverse)
        assert names[0] == "grey" and set(names) == {"grey", "yellow", "pinkish"}  # among the 6 most uncertain
        assert "k-center among the 6 most uncertain" in diverse.results[1].reason
        wide = _names(rank_unlabelled(p, n=3, strategy="entropy", diversity="kcenter"))  # 15: the whole pool
        assert wide[0] == "grey" and len(set(wide)) == 3


def test_cluster_takes_the_middle_of_each_uncertain_look(tmp_path: Path) -> None:
    with colour_project(tmp_path / "p", LOOKS) as p:
        out = rank_unlabelled(p, n=3, strategy="entropy", factor=2)  # cluster: the default
        assert out.diversity == "cluster" and out.backbone == "tf_efficientnet_lite0"
        names = _names(out)  # the three greys are one cluster, the most uncertain one: it comes first
        assert names[0] == "grey" and set(names) == {"grey", "yellow", "pinkish"}, names
        assert "the middle of a cluster of 3 among the 6 most uncertain" in out.results[0].reason


def test_kcenter_measures_from_labelled_images(tmp_path: Path) -> None:
    with colour_project(tmp_path / "p", ["grey", *LOOKS], labelled={0: "red"}) as p:
        out = rank_unlabelled(p, n=3, strategy="entropy", diversity="kcenter", factor=2)
        names = _names(out)  # the most uncertain first, then none of its copies
        assert names[0] == "grey" and set(names[1:]) == {"yellow", "pinkish"}
        assert "0.00" in out.results[0].reason.split("k-center")[1]  # a copy of it is labelled: near one  # a grey image is labelled: its copies are covered


def test_cold_start_without_a_model_is_typiclust_and_says_so(tmp_path: Path) -> None:
    with colour_project(tmp_path / "p", LOOKS, deploy=False) as p:
        assert deployed_package(p) is None
        out = rank_unlabelled(p, n=6, strategy="entropy")
        assert out.strategy == "typiclust" and out.cold_start and out.model is None
        assert any("cold start" in note for note in out.notes)
        names = _names(out)  # one of each look, the largest clusters first
        assert names[0] == "grey" and set(names[1:3]) == {"yellow", "red"} and set(names) == set(LOOKS)
        assert "most typical image of cluster" in out.results[0].reason
        assert rank_unlabelled(p, n=3).strategy == "typiclust"


def test_random_is_seeded(tmp_path: Path) -> None:
    with colour_project(tmp_path / "p", LOOKS, embed=False, deploy=False) as p:
        a = rank_unlabelled(p, n=4, strategy="random", seed=3)
        assert [r.id for r in a.results] == [r.id for r in rank_unlabelled(p, n=4, strategy="random", seed=3).results]
        assert len({r.id for r in a.results}) == 4 and a.results[0].reason.startswith("random")


def test_missing_embeddings_and_bad_arguments_say_what_to_do(tmp_path: Path) -> None:
    with colour_project(tmp_path / "p", LOOKS, embed=False) as p:
        with pytest.raises(EmbeddingsMissingError, match="visionloop embed"):
            rank_unlabelled(p, n=2, strategy="entropy")
        assert _names(rank_unlabelled(p, n=2, strategy="entropy", diversity="none")) == ["grey", "grey"]
        with pytest.raises(EmbeddingsMissingError, match="--strategy random"):
            rank_unlabelled(p, n=2, strategy="typiclust")
        with pytest.raises(NotFoundError, match="least_confidence"):
            rank_unlabelled(p, n=2, strategy="bald")
        with pytest.raises(NotFoundError, match="cluster, kcenter, none"):
            rank_unlabelled(p, n=2, diversity="dpp")
        with pytest.raises(AnnotationValidationError, match="1..10000"):
            rank_unlabelled(p, n=0)
        with pytest.raises(NotFoundError, match="package 'nope' not found; known: colour"):
            rank_unlabelled(p, n=2, package="nope", diversity="none")


def test_a_named_package_and_a_bounded_pool(tmp_path: Path) -> None:
    with colour_project(tmp_path / "p", LOOKS, deploy=False) as p:
        colour_package(Path(p.root) / "packages" / "other")
        out = rank_unlabelled(p, n=2, package="other", diversity="none", max_pool=4, seed=1)
        assert out.model == {"source": "package", "name": "other"} and out.pool == 10 and out.considered == 4
        assert any("random sample of 4 of the 10" in note for note in out.notes)
        # a deployed package that was removed: no model, the cold start
        (Path(p.root) / "deployment.json").write_text(json.dumps({"package": "gone"}))
        assert deployed_package(p) is None and rank_unlabelled(p, n=1).cold_start


@pytest.mark.slow
def test_real_bccd_crops_uncertain_first_and_diverse(cell_package: Path, cell_data, tmp_path: Path) -> None:  # noqa: ANN001
    """BCCD cell crops, a real cell classifier (deployed) and real EfficientNet-Lite0 embeddings: the chosen images
    are the uncertain ones, and with k-center no two are copies of one another."""
    import io

    from visionloop.core.imageio import probe
    from visionloop.models.embed import embed_project, load_embedder
    from visionloop.storage import NewImage, Project

    crops = cell_data.val[:40]
    with Project.create(tmp_path / "cells", task="classification") as p:
        ids = p.class_ids(["RBC", "WBC", "Platelets"])
        for i, (im, _) in enumerate(crops):
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            info = probe(buf.getvalue())
            p.add_images([NewImage(sha256=p.blobs.put(buf.getvalue()), width=info.width, height=info.height,
                                   format=info.format, name=f"crop-{i}.png", meta={})])
        images = p.images()
        for im, (_, cls) in list(zip(images, crops, strict=True))[:8]:
            p.save_annotation(im.id, Label(ids[["RBC", "WBC", "Platelets"][cls]]), base_revision=None, author="a")
        shutil.copytree(cell_package, Path(p.root) / "packages" / "cells") if cell_package.is_dir() else None
        embed_project(p, load_embedder("tf_efficientnet_lite0", project=p), kind="images")
        out = rank_unlabelled(p, n=4, strategy="entropy", diversity="kcenter", package=cell_package, factor=3)
        with Predictor(cell_package, sessions=1) as pred:
            probs = np.stack([pred.predict(p.image_bytes(im.id)).probs for im in images[8:]])
    ent = dict(zip([im.id for im in images[8:]], entropy(probs), strict=True))
    chosen = [r.id for r in out.results]
    assert len(chosen) == 4 and not set(chosen) & {im.id for im in images[:8]}
    assert out.considered == 32 and out.model["source"] == "package"
    for r in out.results:
        assert r.score == pytest.approx(ent[r.id], abs=1e-4)
    top12 = sorted(ent.values(), reverse=True)[:12]
    assert all(ent[i] >= top12[-1] for i in chosen)  # all from the 3 x 4 most uncertain
    assert out.results[0].score == pytest.approx(max(ent.values()), abs=1e-4)


def test_a_detector_ranks_images_by_box_uncertainty(tmp_path: Path) -> None:
    """One box per image scored by brightness: grey 0.5 (most doubtful), dark 0.2, black none (an empty image
    scores 0.5), white 1.0 (sure); found down to the 0.05 floor though the package's threshold is 0.5."""
    from tests.active.colour_project import brightness_detector
    from visionloop.core.imageio import probe
    from visionloop.storage import NewImage, Project

    levels = {"white": 255, "grey": 128, "black": 0, "dark": 51}
    with Project.create(tmp_path / "det", task="detection") as p:
        for name, v in levels.items():
            data = _png_of(v)
            info = probe(data)
            p.add_images([NewImage(sha256=p.blobs.put(data), width=info.width, height=info.height,
                                   format=info.format, name=f"{name}.png", meta={})])
        pkg = brightness_detector(tmp_path / "pkg")
        ent = rank_unlabelled(p, n=4, strategy="entropy", diversity="none", package=pkg)
        assert [r.name for r in ent.results] == ["grey.png", "dark.png", "black.png", "white.png"]
        assert [r.score for r in ent.results] == pytest.approx([1.0, 0.722, 0.5, 0.0], abs=0.01)
        assert "no box at all" in ent.results[2].reason and "1 boxes" in ent.results[0].reason
        margin = rank_unlabelled(p, n=4, strategy="margin", diversity="none", package=pkg)
        assert [r.score for r in margin.results] == pytest.approx([1.0, 0.5, 0.4, 0.0], abs=0.01)  # 1 - |2s - 1|


def _png_of(value: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (value, value, value)).save(buf, format="PNG")
    return buf.getvalue()
