"""Detection/segmentation datasets: the same geometry for image, boxes and masks; ontology-driven policy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from visionloop.core.annotations import RLE, Boxes, Instances, SemanticMask
from visionloop.core.ontology import ClassDef, Ontology
from visionloop.core.records import ImageRecord
from visionloop.data.augment import AugmentPolicy
from visionloop.data.detection import (
    DetectionDataset,
    SemanticDataset,
    build_transforms,
    detection_collate,
    label_map,
)

ONTO = Ontology((ClassDef(id=7, name="cell"), ClassDef(id=3, name="dot"), ClassDef(id=9, name="old", active=False)))


@dataclass
class Item:
    image: ImageRecord
    annotation: object
    split: str = "train"


def _item(tmp_path: Path, name: str, boxes: list[list[float]], ids: list[int], *, masks: bool = False) -> Item:
    """A black 120x90 image with a white filled rectangle per box (so geometry can be read back from pixels)."""
    arr = np.zeros((90, 120, 3), np.uint8)
    segs = []
    for x1, y1, x2, y2 in boxes:
        arr[int(y1):int(y2), int(x1):int(x2)] = 255
        m = np.zeros((90, 120), bool)
        m[int(y1):int(y2), int(x1):int(x2)] = True
        segs.append(RLE.encode(m))
    path = tmp_path / f"{name}.png"
    Image.fromarray(arr).save(path)
    rec = ImageRecord(id=1, sha256=hashlib.sha256(str(path).encode()).hexdigest(), width=120, height=90,
                      format="PNG", name=name)
    _PATHS[rec.sha256] = path
    b = Boxes(np.asarray(boxes, float).reshape(-1, 4), np.asarray(ids))
    return Item(rec, Instances(b, segs) if masks else b)


_PATHS: dict[str, Path] = {}


def test_label_map_follows_active_order() -> None:
    assert label_map(ONTO) == {7: 1, 3: 2}


def test_ground_truth_drops_inactive_and_zero_size(tmp_path: Path) -> None:
    it = _item(tmp_path, "a", [[10, 10, 40, 40], [50, 50, 50, 60], [60, 10, 90, 30]], [7, 3, 9])
    ds = DetectionDataset([it], ontology=ONTO, image_source=_PATHS.__getitem__)
    gt = ds.ground_truth(0)
    assert gt.class_id.tolist() == [1] and gt.xyxy.tolist() == [[10, 10, 40, 40]]
    img, tgt = ds[0]
    assert img.dtype == torch.float32 and img.shape == (3, 90, 120) and float(img.max()) == 1.0
    assert tgt["labels"].tolist() == [1] and tgt["boxes"].tolist() == [[10, 10, 40, 40]]


def _white_bbox(img: torch.Tensor) -> list[float]:
    ys, xs = np.nonzero(img[0].numpy() > 0.5)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_geometry_is_the_same_for_image_boxes_and_masks(tmp_path: Path) -> None:
    it = _item(tmp_path, "b", [[20, 15, 60, 45]], [7], masks=True)
    policy = AugmentPolicy(hflip=True, vflip=True, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, scale_jitter=(0.8, 1.2))
    ds = DetectionDataset([it], ontology=ONTO, image_source=_PATHS.__getitem__,
                          transforms=build_transforms(policy, train=True), masks=True)
    seen = set()
    for seed in range(24):
        torch.manual_seed(seed)
        img, tgt = ds[0]
        box = tgt["boxes"][0].tolist()
        seen.add(tuple(round(v) for v in box))
        assert np.allclose(_white_bbox(img), box, atol=2.5), (seed, box)
        m = tgt["masks"][0].numpy().astype(bool)
        ys, xs = np.nonzero(m)
        assert np.allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], box, atol=2.5)
    assert len(seen) > 4  # the augmentation really moved things


def test_boxes_that_leave_the_image_are_dropped_with_their_masks(tmp_path: Path) -> None:
    it = _item(tmp_path, "c", [[0, 0, 8, 8], [50, 35, 70, 55]], [7, 3], masks=True)
    policy = AugmentPolicy(hflip=False, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, scale_jitter=(2.0, 2.0))
    ds = DetectionDataset([it], ontology=ONTO, image_source=_PATHS.__getitem__,
                          transforms=build_transforms(policy, train=True), masks=True)
    counts = set()
    for seed in range(12):
        torch.manual_seed(seed)
        img, tgt = ds[0]
        n = len(tgt["boxes"])
        counts.add(n)
        assert len(tgt["labels"]) == n == len(tgt["masks"])
        b = tgt["boxes"]
        if n:
            assert (b[:, 0] >= 0).all() and (b[:, 2] <= 120).all() and (b[:, 3] <= 90).all()
            assert ((b[:, 2:] - b[:, :2]) >= 2).all()
    assert counts == {1, 2}  # zoomed 2x, the corner box leaves the image; unzoomed, both stay


@pytest.mark.parametrize(("flag", "absent"), [("orientation_sensitive", (v2.RandomHorizontalFlip, v2.RandomVerticalFlip)),
                                              ("colour_sensitive", (v2.RandomPhotometricDistort,))])
def test_policy_follows_ontology_flags(flag: str, absent: tuple[type, ...]) -> None:
    onto = Ontology((ClassDef(id=1, name="left_hand", **{flag: True}), ClassDef(id=2, name="x")))
    policy = AugmentPolicy.from_ontology(onto, vflip=True)
    assert policy.reasons and "left_hand" in policy.reasons[0]
    ops = build_transforms(policy, train=True).transforms
    assert not any(isinstance(o, absent) for o in ops)
    free = build_transforms(AugmentPolicy.from_ontology(Ontology((ClassDef(id=1, name="x"),)), vflip=True), train=True)
    assert any(isinstance(o, absent) for o in free.transforms)
    assert AugmentPolicy.from_ontology(onto).to_json()["reasons"] == list(policy.reasons)


def test_semantic_dataset_maps_classes_and_keeps_unlabelled(tmp_path: Path) -> None:
    it = _item(tmp_path, "d", [[10, 10, 30, 30]], [7])
    mask = np.zeros((90, 120), np.int32)
    mask[10:30, 10:30] = 3
    mask[0:5] = 255
    it = Item(it.image, SemanticMask(mask))
    onto = Ontology((ClassDef(id=0, name="background"), ClassDef(id=3, name="dot")))
    ds = SemanticDataset([it], ontology=onto, image_source=_PATHS.__getitem__)
    _, tgt = ds[0]
    m = tgt["mask"].numpy()
    assert set(np.unique(m)) == {0, 1, 255} and (m[0:5] == 255).all() and (m[10:30, 10:30] == 1).all()


def test_collate_keeps_lists(tmp_path: Path) -> None:
    it = _item(tmp_path, "e", [[10, 10, 40, 40]], [7])
    ds = DetectionDataset([it, it], ontology=ONTO, image_source=_PATHS.__getitem__)
    images, targets = detection_collate([ds[0], ds[1]])
    assert len(images) == len(targets) == 2 and targets[1]["labels"].tolist() == [1]


def test_semantic_background_is_implicit_when_no_class_has_id_0(tmp_path: Path) -> None:
    it = _item(tmp_path, "f", [[10, 10, 30, 30]], [7])
    mask = np.zeros((90, 120), np.int32)
    mask[10:30, 10:30] = 7
    ds = SemanticDataset([Item(it.image, SemanticMask(mask))], ontology=ONTO, image_source=_PATHS.__getitem__)
    assert ds.classes == [(0, "background"), (7, "cell"), (3, "dot")]
    img, tgt = ds[0]
    m = tgt["mask"].numpy()
    assert (m[10:30, 10:30] == 1).all() and (m[50:, 50:] == 0).all()
    assert float(img.min()) < 0  # normalised for torchvision's segmenters



def test_semantic_classes_use_a_background_class_as_model_class_zero() -> None:
    from visionloop.core.ontology import ClassDef, Ontology
    from visionloop.data.detection import semantic_classes

    implicit = Ontology((ClassDef(id=1, name="nucleus"),))
    assert semantic_classes(implicit) == ({0: 0, 1: 1}, [(0, "background"), (1, "nucleus")])
    # a mask export that names index 0 "background" (then imported as class 1): one background, not two
    named = Ontology((ClassDef(id=1, name="background"), ClassDef(id=2, name="nucleus")))
    assert semantic_classes(named) == ({0: 0, 1: 0, 2: 1}, [(1, "background"), (2, "nucleus")])
    with_zero = Ontology((ClassDef(id=0, name="sky"), ClassDef(id=1, name="road")))
    assert semantic_classes(with_zero) == ({0: 0, 1: 1}, [(0, "sky"), (1, "road")])
