"""Samplers of production traffic: each rule on small predictions of every task, rate caps on an injected clock,
config files with clear errors, and real predictions of BCCD cells (a trained classifier) and images (a detector)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy_fixtures import cell_classifier, cell_data, cell_package, detector_package  # noqa: F401
from visionloop.active.samplers import (
    FeedbackSampler,
    SamplingConfigError,
    Thresholds,
    box_iou,
    load_sampling_config,
)


def cls_pred(*scores: tuple[str, float]) -> dict[str, Any]:
    ranked = sorted(scores, key=lambda s: -s[1])
    items = [{"class_id": i, "name": n, "score": s} for i, (n, s) in enumerate(ranked)]
    return {"task": "classification", "width": 10, "height": 10, "label": items[0], "scores": items}


def det_pred(*boxes: tuple[str, float, list[float]]) -> dict[str, Any]:
    ids = {"RBC": 1, "WBC": 2, "Platelets": 3}
    return {"task": "detection", "width": 100, "height": 100,
            "detections": [{"xyxy": xyxy, "class_id": ids[n], "name": n, "score": s} for n, s, xyxy in boxes]}


def sampler(*samplers: dict[str, Any], seed: int = 0, **kw: Any) -> FeedbackSampler:
    return FeedbackSampler(load_sampling_config({"samplers": list(samplers), "seed": seed}), **kw)


def test_low_confidence_and_margin_on_classification() -> None:
    s = sampler({"kind": "low_confidence", "max_score": 0.6}, {"kind": "margin", "max_margin": 0.2})
    assert s.choose(cls_pred(("RBC", 0.9), ("WBC", 0.1))) is None
    sel = s.choose(cls_pred(("RBC", 0.5), ("WBC", 0.4), ("Platelets", 0.1)))
    assert sel is not None and sel.names == ["low_confidence", "margin"]
    assert sel.hits[0].score == pytest.approx(0.5) and sel.hits[1].score == pytest.approx(0.9)
    assert sel.score == pytest.approx(0.9) and not sel.random_slice
    assert "RBC 0.5 vs WBC 0.4" in sel.hits[1].why
    only_margin = s.choose(cls_pred(("RBC", 0.65), ("WBC", 0.5)))
    assert only_margin is not None and only_margin.names == ["margin"]


def test_low_confidence_over_boxes_tags_and_segments() -> None:
    s = sampler({"kind": "low_confidence", "max_score": 0.5})
    assert s.choose(det_pred()) is None  # nothing predicted: nothing unsure
    sel = s.choose(det_pred(("RBC", 0.9, [0, 0, 10, 10]), ("WBC", 0.3, [20, 20, 40, 40])))
    assert sel is not None and sel.hits[0].why == "WBC scores 0.3 < 0.5"
    tags = {"task": "tagging", "width": 5, "height": 5, "tags": [{"class_id": 0, "name": "a", "score": 0.45}],
            "scores": [{"class_id": 0, "name": "a", "score": 0.45}, {"class_id": 1, "name": "b", "score": 0.01}]}
    assert s.choose(tags) is not None
    seg = {"task": "segmentation", "width": 5, "height": 5,
           "segments": [{"class_id": 1, "name": "road", "score": 0.8, "mask": {"size": [5, 5], "counts": "0"}}]}
    assert s.choose(seg) is None


def test_near_threshold_uses_the_package_per_class_thresholds() -> None:
    th = Thresholds.from_manifest({"score": 0.5, "per_class": {"2": 0.8}}, task="detection")
    s = sampler({"kind": "near_threshold", "band": 0.05}, thresholds=th)
    assert s.choose(det_pred(("RBC", 0.7, [0, 0, 5, 5]), ("WBC", 0.95, [0, 0, 5, 5]))) is None
    sel = s.choose(det_pred(("RBC", 0.7, [0, 0, 5, 5]), ("WBC", 0.82, [0, 0, 5, 5])))
    assert sel is not None and sel.hits[0].why == "WBC scores 0.82, threshold 0.8"
    assert sel.hits[0].score == pytest.approx(1 - 0.02 / 0.05)
    assert s.choose(det_pred(("RBC", 0.52, [0, 0, 5, 5]))) is not None  # the default for other classes
    assert s.choose(cls_pred(("RBC", 0.5), ("WBC", 0.5))) is None  # no per-class threshold in classification
    tagging = Thresholds.from_manifest({"default": 0.3, "per_class": {}}, task="tagging")
    tag_pred = {"task": "tagging", "width": 5, "height": 5, "tags": [],
                "scores": [{"class_id": 0, "name": "a", "score": 0.28}]}
    assert s.choose(tag_pred, thresholds=tagging) is not None  # a tag just under its threshold counts too


def test_classes_of_interest_and_count() -> None:
    s = sampler({"kind": "classes", "classes": ["Platelets"], "min_score": 0.3},
                {"kind": "count", "max_count": 2, "classes": ["RBC"]})
    assert s.choose(det_pred(("Platelets", 0.2, [0, 0, 5, 5]), ("RBC", 0.9, [0, 0, 5, 5]))) is None
    sel = s.choose(det_pred(("Platelets", 0.4, [0, 0, 5, 5])))
    assert sel is not None and sel.names == ["classes"] and sel.hits[0].why == "class of interest: Platelets"
    many = det_pred(*[("RBC", 0.9, [i, i, i + 5, i + 5]) for i in range(4)], ("WBC", 0.9, [0, 0, 9, 9]))
    sel = s.choose(many)
    assert sel is not None and sel.names == ["count"] and sel.hits[0].why == "4 detections of RBC > 2"
    assert sel.hits[0].score == pytest.approx(0.5)


def test_disagreement_between_two_models() -> None:
    s = sampler({"kind": "disagreement", "iou": 0.5})
    a = det_pred(("RBC", 0.9, [0, 0, 10, 10]), ("WBC", 0.9, [50, 50, 80, 80]))
    assert s.choose(a) is None  # no second model: no opinion
    shifted = det_pred(("RBC", 0.8, [1, 1, 11, 11]), ("WBC", 0.7, [51, 50, 81, 80]))
    assert s.choose(a, other=shifted) is None  # same objects, a little apart
    other = det_pred(("RBC", 0.8, [1, 1, 11, 11]), ("RBC", 0.7, [50, 50, 80, 80]))
    sel = s.choose(a, other=other, other_model="challenger")
    assert sel is not None and sel.hits[0].why == "2 of 2 + 2 boxes unmatched at IoU 0.5 (vs challenger)"
    assert sel.hits[0].score == pytest.approx(0.5)
    assert s.choose(cls_pred(("RBC", 0.9), ("WBC", 0.1)), other=cls_pred(("WBC", 0.6), ("RBC", 0.4))) is not None
    assert s.choose(cls_pred(("RBC", 0.9), ("WBC", 0.1)), other=cls_pred(("RBC", 0.6), ("WBC", 0.4))) is None
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0


def test_random_slice_is_independent_of_the_prediction_and_seeded() -> None:
    cfg = ({"kind": "random", "rate": 0.1}, {"kind": "low_confidence", "max_score": 0.5})
    a, b = sampler(*cfg, seed=3), sampler(*cfg, seed=3)
    sure, unsure = cls_pred(("RBC", 0.99), ("WBC", 0.01)), cls_pred(("RBC", 0.4), ("WBC", 0.35))
    picks_a = [a.choose(sure if i % 2 else unsure) for i in range(2000)]
    picks_b = [b.choose(sure) for _ in range(2000)]
    slice_a = [i for i, p in enumerate(picks_a) if p is not None and p.random_slice]
    slice_b = [i for i, p in enumerate(picks_b) if p is not None and p.random_slice]
    assert slice_a == slice_b  # the same draws whatever the model said
    assert 150 < len(slice_a) < 250
    assert {i % 2 for i in slice_a} == {0, 1}
    both = next(p for i, p in enumerate(picks_a) if i % 2 == 0 and p is not None and p.random_slice)
    assert both.names == ["random", "low_confidence"]
    assert a.counts()["chosen"] == {"random": len(slice_a), "low_confidence": 1000}


def test_rate_caps_slide_with_the_clock() -> None:
    now = [0.0]
    s = sampler({"kind": "classes", "classes": ["RBC"], "per_minute": 2, "per_hour": 3},
                {"kind": "random", "rate": 1.0, "per_minute": 0, "name": "never"}, clock=lambda: now[0])
    p = cls_pred(("RBC", 0.9), ("WBC", 0.1))
    got = []
    for t in (0, 10, 20, 59, 61, 62, 3000, 3601, 3661):
        now[0] = float(t)
        got.append(s.choose(p) is not None)
    # per minute: 0 and 10 fill it; 20 and 59 wait; 61 (0 left the minute) passes and fills the hour's 3;
    # 62 and 3000 wait for the hour; 3601 (0 left the hour) passes; 3661 (10 left too) passes
    assert got == [True, True, False, False, True, False, False, True, True]
    assert s.counts() == {"seen": 9, "chosen": {"classes": 5, "never": 0}, "capped": {"classes": 4, "never": 9}}


def test_config_files_json_and_toml_with_clear_errors(tmp_path: Path) -> None:
    j = tmp_path / "s.json"
    j.write_text(json.dumps({"samplers": [{"kind": "random", "rate": 0.05, "per_day": 500}], "seed": 1}))
    assert load_sampling_config(j).samplers[0].per_day == 500
    t = tmp_path / "s.toml"
    t.write_text('[[samplers]]\nkind = "low_confidence"\nmax_score = 0.4\nper_hour = 60\n\n'
                 '[[samplers]]\nkind = "classes"\nclasses = ["WBC"]\nname = "wbc"\n')
    cfg = load_sampling_config(t)
    assert [s.label for s in cfg.samplers] == ["low_confidence", "wbc"]
    bad = tmp_path / "bad.json"
    cases = {
        '{"samplers": [{"kind": "lowconf"}]}': "sampler kinds: low_confidence",
        '{"samplers": [{"kind": "random", "rate": 2}]}': "samplers.0.random.rate",
        '{"samplers": [{"kind": "random", "rate": 0.1, "per_hour": -1}]}': "per_hour",
        '{"samplers": [{"kind": "random", "rate": 0.1}, {"kind": "random", "rate": 0.2}]}': "give each a 'name'",
        '{"samplers": []}': "samplers",
        '{"samplers": [{"kind": "count"}]}': "max_count",
        '{"samplers": [{"kind": "random", "rate": 0.1, "typo": 1}]}': "typo",
        '{"samplers": [': "not valid JSON",
    }
    for text, expected in cases.items():
        bad.write_text(text)
        with pytest.raises(SamplingConfigError, match="bad.json") as e:
            load_sampling_config(bad)
        assert expected in str(e.value), (text, str(e.value))
    with pytest.raises(SamplingConfigError, match="cannot read"):
        load_sampling_config(tmp_path / "missing.toml")


def test_real_bccd_cell_predictions(cell_package: Path, cell_data) -> None:  # noqa: ANN001, F811
    """A trained BCCD cell classifier on held-out crops: each sampler picks exactly what its rule says."""
    from visionloop.inference import Predictor

    predictor = Predictor(cell_package, sessions=1)
    preds = [predictor.predict(im).to_json() for im, _ in cell_data.val[:80]]
    s = sampler({"kind": "margin", "max_margin": 0.3}, {"kind": "classes", "classes": ["WBC"]},
                {"kind": "random", "rate": 0.25})
    chosen = [s.choose(p) for p in preds]

    def margin(p: dict[str, Any]) -> float:
        top = sorted((c["score"] for c in p["scores"]), reverse=True)
        return top[0] - (top[1] if len(top) > 1 else 0.0)

    by_margin = [i for i, p in enumerate(preds) if margin(p) < 0.3]
    assert [i for i, c in enumerate(chosen) if c and "margin" in c.names] == by_margin
    wbc = [i for i, p in enumerate(preds) if p["label"]["name"] == "WBC"]
    assert 0 < len(wbc) < len(preds)
    assert [i for i, c in enumerate(chosen) if c and "classes" in c.names] == wbc
    assert 5 < sum(1 for c in chosen if c and c.random_slice) < 40
    # the unsure crops are a minority the samplers single out from the confident bulk
    assert 0 < len(by_margin) < len(preds) // 2


def test_real_bccd_detector_predictions(detector_package: Path, bccd_dir: Path) -> None:  # noqa: F811
    """Detections on BCCD images (Faster R-CNN, random weights, so scores sit low): count and two-model
    disagreement (the package at its thresholds against itself at a higher floor) on real boxes."""
    from PIL import Image

    from tests.deploy_fixtures import bccd_jpegs
    from visionloop.inference import Predictor

    predictor = Predictor(detector_package, sessions=1)
    images = [Image.open(f).convert("RGB") for f in bccd_jpegs(bccd_dir, 3)]
    preds = [predictor.predict(im).to_json() for im in images]
    n = [len(p["detections"]) for p in preds]
    assert max(n) > 0
    s = sampler({"kind": "count", "max_count": max(n) - 1}, {"kind": "disagreement"})
    for p, k in zip(preds, n, strict=True):
        sel = s.choose(p, other=p)
        assert (sel is not None) == (k > max(n) - 1)
        assert sel is None or sel.names == ["count"]  # a model agrees with itself
    top = preds[n.index(max(n))]
    strict = {**top, "detections": top["detections"][: len(top["detections"]) // 2]}  # best first: a higher floor
    sel = s.choose(top, other=strict)
    dropped = len(top["detections"]) - len(strict["detections"])
    assert sel is not None and "disagreement" in sel.names
    assert sel.hits[-1].why.startswith(f"{dropped} of ")
