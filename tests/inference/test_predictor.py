"""The runtime: outputs mapped back to original pixels, the package's thresholds (overridable per call), masks as
COCO RLE, folders with errors, and no torch needed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from tests.deploy_fixtures import bccd_jpegs
from visionloop.core.errors import ImageError, VisionloopError
from visionloop.core.package import ClassEntry, Manifest, TensorSpec, write_package
from visionloop.core.preprocess import Preprocess
from visionloop.inference import Prediction, Predictor, mask_from_json, mask_to_json

REPO = Path(__file__).resolve().parents[2]


def _const(name: str, arr: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name + "_v", TensorProto.FLOAT if arr.dtype == np.float32 else TensorProto.INT64, arr.shape, arr.ravel()))


def _fixed_detector(tmp_path: Path, pp: Preprocess, *, thresholds: dict | None = None) -> Path:
    """A hand-built ONNX 'detector' (no torch) that always answers the same boxes in model-input pixels: a cell (0.9),
    background (0.8, dropped), a platelet (0.6) and a cell (0.3)."""
    boxes = np.asarray([[10, 60, 110, 260], [0, 0, 5, 5], [30, 70, 40, 80], [50, 90, 60, 100]], np.float32)
    nodes = [
        helper.make_node("Shape", ["image"], ["shape"]),
        _const("boxes", boxes), _const("labels", np.asarray([1, 0, 2, 1], np.int64)),
        _const("scores", np.asarray([0.9, 0.8, 0.6, 0.3], np.float32)),
    ]
    graph = helper.make_graph(
        nodes, "fixed", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [3, "h", "w"])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [4, 4]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, [4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    m = Manifest(name="fixed", task="detection", classes=[ClassEntry(5, "cell"), ClassEntry(7, "platelet")],
                 preprocess=pp.to_json(),
                 output_kind="torchvision_detection", inputs=[TensorSpec("image", [3, "h", "w"], "float32")],
                 outputs=[TensorSpec(n, ["n"], "float32") for n in ("boxes", "labels", "scores")], opset=17,
                 batchable=False, label_offset=1, thresholds=thresholds or {"score": 0.5})
    return write_package(tmp_path / "fixed", manifest=m, model_bytes=model.SerializeToString())


def test_boxes_are_mapped_back_through_letterbox(tmp_path: Path, image_factory) -> None:  # noqa: ANN001
    pkg = _fixed_detector(tmp_path, Preprocess(size=(320, 320), resize="letterbox", mean=(0, 0, 0), std=(1, 1, 1)))
    path = image_factory("a.jpg", width=640, height=480)
    with Predictor(pkg, sessions=1) as pred:
        p = pred.predict(path)
    # letterbox 640x480 -> 320x240 at scale 0.5, padded 40 px on top; label 0 (background) is dropped
    assert [d.score for d in p.detections] == pytest.approx([0.9, 0.6])
    p.detections = p.detections[:1]
    d = p.detections[0]
    assert d.class_id == 5 and d.name == "cell" and d.score == pytest.approx(0.9)
    assert d.xyxy == pytest.approx((20.0, 40.0, 220.0, 440.0))
    assert p.to_annotation().xyxy.tolist() == [[20.0, 40.0, 220.0, 440.0]]


def test_package_thresholds_per_class_and_per_call_override(tmp_path: Path, image_factory) -> None:  # noqa: ANN001
    """Per-class thresholds from the manifest decide what is kept; ``score_threshold`` replaces them for one call
    (and for the whole predictor when given to the constructor); a value outside 0..1 is refused."""
    pp = Preprocess(size=(320, 320), resize="letterbox", mean=(0, 0, 0), std=(1, 1, 1))
    pkg = _fixed_detector(tmp_path, pp, thresholds={"score": 0.5, "per_class": {"5": 0.95, "7": 0.55}})
    path = image_factory("a.jpg", width=640, height=480)
    with Predictor(pkg, sessions=1) as pred:
        assert pred.class_thresholds.tolist() == [0.95, 0.55]
        assert [(d.name, d.score) for d in pred.predict(path).detections] == [("platelet", pytest.approx(0.6))]
        assert [d.score for d in pred.predict(path, score_threshold=0.25).detections] == pytest.approx([0.9, 0.6, 0.3])
        assert [d.score for d in pred.predict_batch([path], score_threshold=0.7)[0].detections] == pytest.approx([0.9])
        (_, again), = pred.predict_paths([path], score_threshold=0.0)
        assert len(again.detections) == 3
        assert len(pred.predict(path).detections) == 1  # the override lasted one call
        with pytest.raises(VisionloopError, match="score_threshold"):
            pred.predict(path, score_threshold=1.5)
    with Predictor(pkg, sessions=1, score_threshold=0.5) as pred:
        assert [d.score for d in pred.predict(path).detections] == pytest.approx([0.9, 0.6])


def test_mask_json_is_pycocotools_rle() -> None:
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    for shape in [(7, 5), (1, 1), (32, 17)]:
        m = rng.random(shape) > 0.6
        m[0, 0] = True
        data = json.loads(json.dumps(mask_to_json(m)))
        assert data["size"] == list(shape) and isinstance(data["counts"], str)
        assert np.array_equal(mask_from_json(data).decode(), m)
        coco = {"size": data["size"], "counts": data["counts"].encode()}
        assert np.array_equal(mask_utils.decode(coco).astype(bool), m)


def test_prediction_json_round_trip() -> None:
    cmap = np.zeros((6, 4), np.int32)
    cmap[2:5, 1:3] = 7
    p = Prediction(task="segmentation", width=4, height=6, class_map=cmap)
    from visionloop.inference import ClassScore

    p.scores = [ClassScore(0, "background", 0.9), ClassScore(7, "nucleus", 0.8)]
    back = Prediction.from_json(json.loads(json.dumps(p.to_json())))
    assert np.array_equal(back.class_map, cmap) and back.to_json() == p.to_json()
    assert set(p.to_json()) == {"task", "width", "height", "segments"}


def test_folder_prediction_keeps_going_past_bad_files(cell_package: Path, tmp_path: Path, cell_data) -> None:  # noqa: ANN001
    for i, (im, _) in enumerate(cell_data.val[:5]):
        im.save(tmp_path / f"{i}.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 garbage")
    from visionloop.inference import iter_images

    with Predictor(cell_package, sessions=2) as pred:
        rows = list(pred.predict_paths(iter_images(tmp_path), batch_size=4, progress=True))
        assert len(rows) == 6
        bad = [r for p, r in rows if p.name == "bad.jpg"]
        assert isinstance(bad[0], ImageError)
        good = [r for _, r in rows if not isinstance(r, ImageError)]
        assert all(0.0 <= s.score <= 1.0 for r in good for s in r.scores)
        # batch == one by one
        one = pred.predict(tmp_path / "0.jpg")
        assert one.scores[0].score == pytest.approx(rows[0][1].scores[0].score, abs=1e-6)
        with pytest.raises(ImageError):
            pred.predict(b"nope")
        arr = np.asarray(cell_data.val[0][0])
        assert pred.predict(arr).label.class_id == pred.predict(Image.fromarray(arr)).label.class_id
    assert pred._pool.empty()  # closing released the sessions
    with pytest.raises(VisionloopError, match="closed"):
        pred.predict(arr)


def test_predictor_runs_without_torch(cell_package: Path, bccd_dir: Path) -> None:
    """A subprocess where ``import torch`` (and torchvision, onnx) fail runs a prediction from the package."""
    image = bccd_jpegs(bccd_dir, 1)[0]
    code = textwrap.dedent(f"""
        import sys, json
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torchvision", "onnx", "timm", "sklearn", "scipy"):
                    raise ImportError("blocked for this test: " + name)
                return None
        sys.meta_path.insert(0, Block())
        try:
            import torch
            raise SystemExit("torch import was not blocked")
        except ImportError:
            pass
        from visionloop.inference import Predictor, load_package
        pkg = load_package({str(cell_package)!r})
        with Predictor(pkg, sessions=1) as p:
            out = p.predict({str(image)!r}).to_json()
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "onnx", "sklearn", "scipy")
                     or m.startswith(("visionloop.export", "visionloop.training", "visionloop.evaluation")))
        print(json.dumps({{"prediction": out, "heavy": bad}}))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=REPO, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert data["heavy"] == []
    assert data["prediction"]["label"]["name"] in {"RBC", "WBC", "Platelets"}
    assert data["prediction"]["width"] == 640
