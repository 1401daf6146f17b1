"""Detection training end to end on a tiny synthetic project: run files, exact resume, evaluation, report, predict."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import visionloop.training.detection as td
from visionloop.core.annotations import RLE, Boxes, Instances
from visionloop.export.api import run_predictor
from visionloop.storage import NewImage
from visionloop.storage.versions import create_version

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}


def _add(project, arr: np.ndarray, name: str) -> int:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    sha = project.blobs.put(buf.getvalue())
    [(iid, _)] = project.add_images([NewImage(sha256=sha, width=arr.shape[1], height=arr.shape[0], format="png",
                                              name=name)])
    return iid


def _synthetic(project, *, n: int = 12, masks: bool = False) -> None:
    ids = project.class_ids(list(COLOURS))
    rng = np.random.default_rng(0)
    for k in range(n):
        arr = rng.integers(90, 140, (96, 128, 3)).astype(np.uint8)
        boxes, cls, segs = [], [], []
        for j, name in enumerate(COLOURS):
            if k % 3 == 2 and j == 1:
                continue
            s = int(rng.integers(18, 30))
            x, y = int(rng.integers(0, 128 - s)), int(rng.integers(0, 96 - s))
            if boxes and x < boxes[0][2] and boxes[0][0] < x + s:
                x = (x + 64) % (128 - s)
            arr[y:y + s, x:x + s] = COLOURS[name]
            boxes.append([x, y, x + s, y + s])
            cls.append(ids[name])
            m = np.zeros((96, 128), bool)
            m[y:y + s, x:x + s] = True
            segs.append(RLE.encode(m))
        iid = _add(project, arr, f"{k}.png")
        b = Boxes(np.asarray(boxes, float), np.asarray(cls))
        project.save_annotation(iid, Instances(b, segs) if masks else b, base_revision=None, author="t")
    create_version(project, name="v1", fractions=(0.5, 0.25, 0.25), phash_distance=-1)


HP = dict(epochs=2, batch_size=2, eval_size=96, train_sizes=(80, 96), max_size=128, warmup_steps=2)


def test_train_evaluate_report_predict(project_factory, tmp_path) -> None:
    from visionloop.evaluation.detection_run import evaluate_run
    from visionloop.models.runs import load_run
    from visionloop.storage.runs import read_metrics

    p = project_factory("detection")
    _synthetic(p)
    r = td.train_detection(p, version="v1", hparams=td.DetectionHParams(**HP), progress=False)
    records = read_metrics(r.run_dir)
    assert [x["epoch"] for x in records] == [1, 2] and all("val_map" in x for x in records)
    cfg = json.loads((r.run_dir / "config.json").read_text())
    assert cfg["model"]["name"] == "fasterrcnn_mobilenet_v2_fpn" and cfg["extra"]["kind"] == "detection"
    assert cfg["classes"] == [{"id": 1, "name": "red"}, {"id": 2, "name": "blue"}]
    assert cfg["augmentation"]["hflip"] is True
    model, _ = load_run(p, r.run_id)
    assert not model.training

    res = evaluate_run(p, r.run_id, split="test")
    for key in ("map", "map50", "map75", "per_class", "bbox", "confusion", "thresholds", "per_image", "image_jaccard"):
        assert key in res
    assert set(res["per_class"]) == {"red", "blue"}
    assert len(res["confusion"]["matrix"]) == 3  # 2 classes + background
    html = (r.run_dir / "report.html").read_text()
    assert "Precision-recall" in html or "precision" in html
    assert html.count("data:image/jpeg;base64") >= res["images"]  # every test image drawn with its TP/FP/FN
    assert (r.run_dir / "coco_gt.json").exists() and (r.run_dir / "coco_results_bbox.json").exists()

    img = tmp_path / "x.png"
    Image.fromarray(np.full((96, 128, 3), 120, np.uint8)).save(img)
    with run_predictor(p, r.run_id) as pred:
        out = pred.predict(img, score_threshold=0.0)
    assert (out.width, out.height) == (128, 96) and isinstance(out.detections, list)
    for d in out.detections:
        assert d.name in COLOURS and len(d.xyxy) == 4


def test_resume_after_a_crash_reaches_the_same_weights(project_factory, monkeypatch) -> None:
    p = project_factory("detection")
    _synthetic(p, n=8)
    torch.set_num_threads(1)
    full = td.train_detection(p, version="v1", hparams=td.DetectionHParams(**HP), progress=False)

    calls = {"n": 0}
    real = td._det_loss

    def crashing(model, batch):
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 1 has 2 batches: crash in the middle of epoch 2
            raise KeyboardInterrupt
        return real(model, batch)

    monkeypatch.setattr(td, "_det_loss", crashing)
    with pytest.raises(KeyboardInterrupt):
        td.train_detection(p, version="v1", hparams=td.DetectionHParams(**HP), progress=False)
    monkeypatch.setattr(td, "_det_loss", real)
    from visionloop.storage.runs import list_runs

    crashed = list_runs(p)[-1]
    resumed = td.train_detection(p, version="v1", resume=crashed, progress=False)
    a = torch.load(full.run_dir / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(resumed.run_dir / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_instance_segmentation_trains_and_reports_mask_map(project_factory) -> None:
    from visionloop.evaluation.detection_run import evaluate_run

    p = project_factory("segmentation")
    _synthetic(p, n=8, masks=True)
    r = td.train_detection(p, version="v1", hparams=td.DetectionHParams(**{**HP, "epochs": 1}), progress=False)
    res = evaluate_run(p, r.run_id, split="test")
    assert "segm" in res and "bbox" in res and 0.0 <= res["map"] <= 1.0
    assert "image_jaccard" in res
    assert json.loads((r.run_dir / "config.json").read_text())["model"]["name"] == "maskrcnn_mobilenet_v2_fpn"


def test_semantic_segmentation_trains_and_reports_miou(project_factory) -> None:
    from visionloop.core.annotations import SemanticMask
    from visionloop.evaluation.detection_run import evaluate_run

    p = project_factory("segmentation")
    ids = p.class_ids(list(COLOURS))
    rng = np.random.default_rng(1)
    for k in range(8):
        arr = rng.integers(90, 140, (64, 64, 3)).astype(np.uint8)
        mask = np.zeros((64, 64), np.int32)
        for j, name in enumerate(COLOURS):
            y = int(rng.integers(0, 30))
            arr[y:y + 20, 32 * j:32 * j + 20] = COLOURS[name]
            mask[y:y + 20, 32 * j:32 * j + 20] = ids[name]
        iid = _add(p, arr, f"{k}.png")
        p.save_annotation(iid, SemanticMask(mask), base_revision=None, author="t")
    create_version(p, name="v1", fractions=(0.5, 0.25, 0.25), phash_distance=-1)
    r = td.train_detection(p, version="v1", hparams=td.DetectionHParams(epochs=1, eval_size=64, batch_size=2),
                           progress=False)
    cfg = json.loads((r.run_dir / "config.json").read_text())
    assert cfg["extra"]["kind"] == "semantic" and [c["name"] for c in cfg["classes"]] == ["background", "red", "blue"]
    res = evaluate_run(p, r.run_id, split="test")
    assert 0.0 <= res["miou"] <= 1.0 and set(res["per_class"]) == {"background", "red", "blue"}
    assert "image_jaccard" in res


def _item(w: int, h: int, side: float, n: int = 3, cls: int = 1):
    from types import SimpleNamespace

    boxes = Boxes(np.array([[0, 0, side, side * 2]] * n, float), np.full(n, cls))
    return SimpleNamespace(annotation=boxes, image=SimpleNamespace(width=w, height=h))


def test_auto_sizes_shrink_large_objects_keep_mixed_ones_and_upscale_small_ones() -> None:
    hp = td.DetectionHParams()
    # 640x480 photos of 90 px cells: every object stays >= 24 px at 256, 3.5x fewer pixels than the native 480
    size, train, why = td._auto_sizes([_item(640, 480, 90)] * 5, hp)
    assert (size, train) == (256, (224, 256, 288, 320, 352)) and "lowered from 480" in why
    # a rare class of 30 px objects (one in ten): its median object stays 24 px (30 * 384 / 480)
    size, _, why = td._auto_sizes([_item(640, 480, 90, n=18), _item(640, 480, 30, n=2, cls=2)], hp,
                                  names={1: "cell", 2: "platelet"})
    assert size == 384 and "the median platelet object" in why
    # without classes (semantic regions): 95% of the objects stay 24 px
    fractions = np.array([90 / 480] * 18 + [30 / 480] * 2)
    assert td._auto_sizes([_item(640, 480, 90)], hp, fractions=fractions)[0] == 384
    # the median object is 20 px: raised until it is 24 (20 * 576 / 480)
    assert td._auto_sizes([_item(640, 480, 20)] * 5, hp)[0] == 576
    # nuclei of 10 px in 256 px images: raised until the median object is 24 px (10 * 640 / 256 = 25)
    size, train, why = td._auto_sizes([_item(256, 256, 10)] * 5, hp)
    assert size == 640 and min(train) >= 0.8 * 640 and max(train) == 640 + 96 and "raised from 256" in why
    # the ceiling holds for tiny objects; an explicit size always wins
    assert td._auto_sizes([_item(256, 256, 2)], hp)[0] == 800
    explicit = td._auto_sizes([_item(256, 256, 10)], td.DetectionHParams(eval_size=320))
    assert (explicit[0], explicit[2]) == (320, "set by the user")


def test_auto_epochs_grow_for_small_datasets_within_bounds() -> None:
    assert td.auto_epochs(81)[0] == 12  # the sample: about 1,000 images seen
    assert td.auto_epochs(28)[0] == 24 and td.auto_epochs(0)[0] == 24  # the ceiling
    assert td.auto_epochs(256)[0] == 6 and td.auto_epochs(100_000)[0] == 6  # the floor
    assert "81 training images" in td.auto_epochs(81)[1]


def test_roi_budget_follows_the_crowd_and_reaches_the_model() -> None:
    """Few objects per image: 128 RoIs and 300 proposals (the box head's dense layers dominate the FLOPs); crowded
    images keep torchvision's 512 and get more proposals; both land in the model's options."""
    def boxes(n: int) -> Boxes:
        return Boxes(xyxy=np.tile([[0, 0, 10, 10]], (n, 1)).astype(np.float32), class_id=np.zeros(n, np.int64))

    assert td.auto_roi_budget([boxes(n) for n in (3, 14, 25)], 100)[:2] == (128, 300)  # BCCD-like
    samples, proposals, reason = td.auto_roi_budget([boxes(n) for n in (20, 150, 179)], 300)  # DSB2018-like
    assert (samples, proposals) == (512, 900) and "99th percentile" in reason
    assert td.auto_roi_budget([boxes(60)], 100)[0] == 256
    assert td.auto_roi_budget([], 100)[:2] == (128, 300)
    hp = td.DetectionHParams(roi_samples=128, test_proposals=300)
    spec = td._model_spec("fasterrcnn_mobilenet_v2_fpn", "detection", 3, hp, 320, (288, 320))
    assert spec["kwargs"]["box_batch_size_per_image"] == 128 and spec["kwargs"]["rpn_post_nms_top_n_test"] == 300
    model = td._build(spec, pretrained="none", weights=None)
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 128 and model.rpn._post_nms_top_n["testing"] == 300


def test_classification_only_options_and_wrong_kind_models_are_refused(project_factory) -> None:
    """`train --strategy` used to be ignored for detection: refused like the other classification-only options;
    a classifier or a semantic segmenter named for a box version is refused before anything trains."""
    from visionloop.core.errors import ConflictError
    from visionloop.training import train

    p = project_factory("detection")
    with pytest.raises(ConflictError, match="--strategy linear only applies to classification"):
        train(p, version="v1", strategy="linear")
    with pytest.raises(ConflictError, match="threshold_mode only apply"):
        train(p, version="v1", threshold_mode="f1")
    _synthetic(p, n=8)
    for name, kind in [("resnet18", "classifier"), ("deeplabv3_mobilenet_v2", "semantic")]:
        with pytest.raises(ConflictError, match=f"{name} is a {kind} model but this version needs a detection"):
            td.train_detection(p, version="v1", model=name, hparams=td.DetectionHParams(**HP), progress=False)
