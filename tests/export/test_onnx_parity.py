"""The ONNX model answers like the PyTorch model on real BCCD images, for every task.

Tolerances: classification/tagging probabilities within 1e-4 (float32 kernels differ in summation order);
detections matched box by box (same class, IoU >= 0.99, score within 1e-3) for every PyTorch box scoring at least
0.02 above the package threshold (boxes right at the threshold may flip either way); semantic class maps agree on
>= 99.9% of pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.deploy_fixtures import CELL_CLASSES, bccd_jpegs, mobilenet_v2_imagenet
from visionloop.core.imageio import decode
from visionloop.core.package import load_package
from visionloop.core.preprocess import Preprocess
from visionloop.evaluation.detection import box_iou
from visionloop.export.onnx_export import export_model
from visionloop.inference import Predictor

PROB_TOL = 1e-4


def _probs_table(preds, n: int) -> np.ndarray:  # noqa: ANN001
    out = np.zeros((len(preds), n))
    for i, p in enumerate(preds):
        for s in p.scores:
            out[i, s.class_id] = s.score
    return out


def test_classifier_matches_torch_on_bccd(bccd_dir: Path, tmp_path: Path) -> None:
    model = mobilenet_v2_imagenet()
    pp = Preprocess(size=(224, 224), resize="shorter_crop")
    files = bccd_jpegs(bccd_dir, 8)
    pkg = export_model(model, task="classification", classes=[f"c{i}" for i in range(1000)], preprocess=pp,
                       out=tmp_path / "mnv2")
    with Predictor(pkg, sessions=2, top_k=1000) as pred:
        got = _probs_table(pred.predict_batch(files), 1000)
    x = torch.from_numpy(np.stack([pp(decode(f)) for f in files]))
    with torch.no_grad():
        ref = torch.softmax(model(x), 1).numpy()
    diff = float(np.abs(got - ref).max())
    print(f"classifier max abs diff {diff:.2e}")
    assert diff < PROB_TOL
    assert (got.argmax(1) == ref.argmax(1)).all()


def test_tagging_matches_torch(cell_classifier, cell_data, tmp_path: Path) -> None:  # noqa: ANN001
    model, pp = cell_classifier
    pkg = export_model(model, task="tagging", classes=CELL_CLASSES, preprocess=pp, out=tmp_path / "tags",
                       thresholds={"default": 0.5})
    ims = [im for im, _ in cell_data.val[:24]]
    with Predictor(pkg, sessions=1) as pred:
        preds = pred.predict_batch(ims)
    got = _probs_table(preds, 3)
    with torch.no_grad():
        ref = torch.sigmoid(model(torch.from_numpy(np.stack([pp(im) for im in ims])))).numpy()
    assert float(np.abs(got - ref).max()) < PROB_TOL
    for p, r in zip(preds, ref, strict=True):
        assert {t.class_id for t in p.tags} == set(np.flatnonzero(r >= 0.5).tolist())


def _match_boxes(ref: dict[str, torch.Tensor], dets, thr: float) -> tuple[int, float]:  # noqa: ANN001
    """Every torch box above thr + 0.02 has an ONNX twin; returns (matched, worst score difference)."""
    ob = np.asarray([d.xyxy for d in dets]).reshape(-1, 4)
    ol = np.asarray([d.class_id for d in dets])
    os_ = np.asarray([d.score for d in dets])
    keep = ref["scores"].numpy() >= thr + 0.02
    tb, tl, ts = ref["boxes"].numpy()[keep], ref["labels"].numpy()[keep] - 1, ref["scores"].numpy()[keep]
    worst = 0.0
    for b, lab, s in zip(tb, tl, ts, strict=True):
        cand = np.flatnonzero(ol == lab)
        assert len(cand), f"no ONNX box of class {lab}"
        ious = box_iou(b[None], ob[cand])[0]
        j = cand[int(np.argmax(ious))]
        assert ious.max() >= 0.99, f"torch box {b} best IoU {ious.max():.4f}"
        worst = max(worst, abs(float(os_[j]) - float(s)))
        assert abs(float(os_[j]) - float(s)) < 1e-3
    return int(keep.sum()), worst


def test_detector_matches_torch_box_by_box(bccd_dir: Path, tmp_path: Path) -> None:
    from visionloop.models.detection import fasterrcnn_mobilenet_v2_fpn

    torch.manual_seed(0)
    model = fasterrcnn_mobilenet_v2_fpn(num_classes=4, pretrained="imagenet", min_size=320, max_size=480,
                                        box_detections_per_img=30).eval()
    thr = 0.1
    pkg = export_model(model, task="detection", classes=CELL_CLASSES, out=tmp_path / "det", thresholds={"score": thr})
    files = bccd_jpegs(bccd_dir, 3, start=10)
    total = 0
    with Predictor(pkg, sessions=1) as pred:
        for f in files:
            p = pred.predict(f)
            x = torch.from_numpy(np.asarray(decode(f), dtype=np.float32) / 255.0).permute(2, 0, 1)
            with torch.no_grad():
                ref = model([x])[0]
            n, worst = _match_boxes(ref, p.detections, thr)
            total += n
            print(f"detector: {n} boxes matched, worst score diff {worst:.2e}")
    assert total >= 10  # the comparison covered real boxes


def test_semantic_segmentation_matches_torch(bccd_dir: Path, tmp_path: Path) -> None:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                      num_classes=3).eval()
    pp = Preprocess(size=(160, 224), resize="stretch")
    pkg = export_model(model, task="segmentation", classes=["bg", "cell", "nucleus"], preprocess=pp,
                       out=tmp_path / "sem")
    f = bccd_jpegs(bccd_dir, 1)[0]
    with Predictor(pkg, sessions=1) as pred:
        p = pred.predict(f)
    assert p.class_map is not None and p.class_map.shape == (480, 640)
    with torch.no_grad():
        ref_small = model(torch.from_numpy(pp(decode(f)))[None])["out"].argmax(1)[0].numpy()
    # compare on the model grid: sample the original-size map at the centres of model pixels
    ys = ((np.arange(160) + 0.5) * 480 / 160).astype(int)
    xs = ((np.arange(224) + 0.5) * 640 / 224).astype(int)
    agree = float(np.mean(p.class_map[np.ix_(ys, xs)] == ref_small))
    assert agree >= 0.999
    js = p.to_json()
    assert {s["class_id"] for s in js["segments"]} == set(np.unique(p.class_map).tolist())


class _Edges(torch.nn.Module):
    """A semantic "segmenter" whose answer changes when its input is mirrored (a random 7x7 convolution)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 7, padding=3, bias=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.conv(x - x.mean((2, 3), keepdim=True)) * 20}


def test_semantic_test_time_flips_are_inside_the_graph(bccd_dir: Path, tmp_path: Path) -> None:
    from visionloop.inference.torch_predictor import TorchPredictor
    from visionloop.models.predict import semantic_probs

    torch.manual_seed(0)
    model = _Edges().eval()
    pp = Preprocess(size=(96, 128), resize="stretch", extra={"tta_flips": ["h", "v"]})
    pkg = export_model(model, task="segmentation", classes=["bg", "cell", "nucleus"], preprocess=pp,
                       out=tmp_path / "sem")
    f = bccd_jpegs(bccd_dir, 1)[0]
    with Predictor(pkg, sessions=1) as pred:
        onnx_map = pred.predict(f).class_map
    with TorchPredictor(model, load_package(pkg)) as pred:
        torch_map = pred.predict(f).class_map
    x = torch.from_numpy(pp(decode(f)))[None]
    with torch.no_grad():
        flipped = semantic_probs(model, x, ("h", "v")).argmax(1)[0].numpy()
        plain = model(x)["out"].argmax(1)[0].numpy()
    ys = ((np.arange(96) + 0.5) * 480 / 96).astype(int)
    xs = ((np.arange(128) + 0.5) * 640 / 128).astype(int)
    assert float(np.mean(flipped == plain)) < 0.9  # the flips matter for this model
    for got in (onnx_map, torch_map):  # the package and the torch predictor both average the flips
        assert float(np.mean(got[np.ix_(ys, xs)] == flipped)) >= 0.999


@pytest.mark.slow
def test_mask_rcnn_matches_torch(bccd_dir: Path, tmp_path: Path) -> None:
    from visionloop.models.detection import maskrcnn_mobilenet_v2_fpn

    torch.manual_seed(0)
    model = maskrcnn_mobilenet_v2_fpn(num_classes=4, pretrained="imagenet", min_size=320, max_size=480,
                                      box_detections_per_img=20).eval()
    pkg = export_model(model, task="segmentation", classes=CELL_CLASSES, out=tmp_path / "mask",
                       thresholds={"score": 0.1})
    f = bccd_jpegs(bccd_dir, 1, start=5)[0]
    with Predictor(pkg, sessions=1) as pred:
        p = pred.predict(f)
    x = torch.from_numpy(np.asarray(decode(f), dtype=np.float32) / 255.0).permute(2, 0, 1)
    with torch.no_grad():
        ref = model([x])[0]
    n, _ = _match_boxes(ref, p.detections, 0.1)
    assert n >= 1
    d = p.detections[0]
    j = int(np.argmax(box_iou(np.asarray([d.xyxy]), ref["boxes"].numpy())[0]))
    ref_mask = ref["masks"][j, 0].numpy() >= 0.5
    got = d.mask.decode()
    inter, union = (got & ref_mask).sum(), (got | ref_mask).sum()
    assert union == 0 or inter / union > 0.98
