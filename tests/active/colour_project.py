"""A classification project whose model's doubt is known in advance, for the active-learning tests.

The package is a hand-built ONNX graph (no torch): the softmax of 12 x the mean of each colour channel, over the
classes red, green and blue. A pure red image is a sure "red"; a grey one is a uniform guess (the most uncertain);
a yellow one is torn between red and green (no margin). Embeddings are written directly: images of one ``look`` get
the same vector, so diversity has near-copies to collapse.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper
from PIL import Image

from visionloop.core.annotations import Label
from visionloop.core.imageio import probe
from visionloop.core.package import ClassEntry, Manifest, TensorSpec, write_package
from visionloop.core.preprocess import Preprocess
from visionloop.storage import NewImage, Project
from visionloop.storage.embeddings import EmbeddingRows, EmbeddingSet

CLASSES = ["red", "green", "blue"]
LOOKS = {  # colour, embedding direction
    "red": ((250, 5, 5), 0), "green": ((5, 250, 5), 1), "blue": ((5, 5, 250), 2),
    "grey": ((128, 128, 128), 3), "yellow": ((250, 250, 5), 4), "pinkish": ((250, 120, 120), 5),
}
BACKBONE = "tf_efficientnet_lite0"


def colour_package(out: Path) -> Path:
    """The colour classifier as a model package (batchable, input (N, 3, 32, 32) in 0..1)."""
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[2, 3], keepdims=0),
        helper.make_node("Constant", [], ["k"], value=helper.make_tensor("k_v", TensorProto.FLOAT, [], [12.0])),
        helper.make_node("Mul", ["mean", "k"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(nodes, "colour", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                              ["n", 3, 32, 32])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    pp = Preprocess(size=(32, 32), resize="stretch", mean=(0, 0, 0), std=(1, 1, 1))
    m = Manifest(name="colour", task="classification", classes=[ClassEntry(i + 1, c) for i, c in enumerate(CLASSES)],
                 preprocess=pp.to_json(), output_kind="class_probs",
                 inputs=[TensorSpec("image", ["n", 3, 32, 32], "float32")],
                 outputs=[TensorSpec("probs", ["n", 3], "float32")], opset=13, batchable=True)
    return write_package(out, manifest=m, model_bytes=model.SerializeToString())


def _png(colour: tuple[int, int, int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour) + rng.integers(-3, 4, size=(24, 24, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def colour_project(root: Path, looks: list[str], *, labelled: dict[int, str] | None = None,
                   embed: bool = True, deploy: bool = True) -> Project:
    """A project with one image per entry of ``looks`` (named ``<i>-<look>.png``, ids 1..N in order), the images
    at the positions of ``labelled`` annotated with that class, embeddings of every image, and the colour package
    deployed (``PROJECT/packages/colour``, ``deployment.json``)."""
    p = Project.create(root, task="classification")
    ids = p.class_ids(CLASSES)
    for i, look in enumerate(looks):
        data = _png(LOOKS[look][0], i)
        info = probe(data)
        p.add_images([NewImage(sha256=p.blobs.put(data), width=info.width, height=info.height, format=info.format,
                               name=f"{i}-{look}.png", meta={})])
    images = p.images()
    for pos, cls in (labelled or {}).items():
        p.save_annotation(images[pos].id, Label(ids[cls]), base_revision=None, author="alice")
    if embed:
        rng = np.random.default_rng(0)
        vectors = np.zeros((len(images), 8), np.float32)
        for i, look in enumerate(looks):
            vectors[i, LOOKS[look][1]] = 1.0
            vectors[i] += rng.normal(scale=1e-3, size=8).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store = EmbeddingSet(p.root, BACKBONE, "images")
        store.start(backbone={"name": "test"}, preprocess={}, dim=8)
        store.append(vectors, EmbeddingRows.images([im.id for im in images]))
    if deploy:
        colour_package(Path(p.root) / "packages" / "colour")
        (Path(p.root) / "deployment.json").write_text(json.dumps({"package": "colour", "deployed_at":
                                                                  "2026-01-01T00:00:00+00:00", "deployed_by": "x"}))
    return p


def brightness_detector(out: Path) -> Path:
    """A detection package (hand-built ONNX) that finds one box whose score is the image's mean brightness in 0..1:
    a mid-grey image gets a box at 0.5 (the most doubtful), a white one a sure box, a black one no box at all."""
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], axes=[0, 1, 2], keepdims=0),
        helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("shape_v", TensorProto.INT64, [1], [1])),
        helper.make_node("Reshape", ["m", "shape"], ["scores"]),
        helper.make_node("Constant", [], ["boxes"], value=helper.make_tensor(
            "boxes_v", TensorProto.FLOAT, [1, 4], [2.0, 2.0, 12.0, 12.0])),
        helper.make_node("Constant", [], ["labels"], value=helper.make_tensor("labels_v", TensorProto.INT64, [1], [1])),
    ]
    graph = helper.make_graph(
        nodes, "brightness", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [3, "h", "w"])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    pp = Preprocess(size=(32, 32), resize="stretch", mean=(0, 0, 0), std=(1, 1, 1))
    m = Manifest(name="brightness", task="detection", classes=[ClassEntry(1, "thing")], preprocess=pp.to_json(),
                 output_kind="torchvision_detection", inputs=[TensorSpec("image", [3, "h", "w"], "float32")],
                 outputs=[TensorSpec(n, ["n"], "float32") for n in ("boxes", "labels", "scores")], opset=13,
                 batchable=False, label_offset=1, thresholds={"score": 0.5})
    return write_package(out, manifest=m, model_bytes=model.SerializeToString())
