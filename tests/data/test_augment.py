from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from visionloop.core.ontology import ClassDef, Ontology
from visionloop.core.preprocess import Preprocess
from visionloop.data import AugmentPolicy, eval_transform, train_transform


def _onto(**flags):
    return Ontology((ClassDef(id=1, name="left", **flags), ClassDef(id=2, name="right")))


def test_policy_follows_ontology_flags():
    plain = AugmentPolicy.from_ontology(_onto())
    assert plain.hflip and plain.saturation > 0 and plain.grayscale > 0 and not plain.reasons
    orient = AugmentPolicy.from_ontology(_onto(orientation_sensitive=True), vflip=True)
    assert not orient.hflip and not orient.vflip and orient.rotation == 0 and orient.saturation > 0
    assert any("left" in r and "flip" in r for r in orient.reasons)
    colour = AugmentPolicy.from_ontology(_onto(colour_sensitive=True))
    assert colour.hflip and colour.saturation == 0 and colour.hue == 0 and colour.grayscale == 0
    assert any("colour" in line for line in colour.describe())
    assert AugmentPolicy.from_json(colour.to_json()) == colour


def test_train_transform_obeys_policy_and_ends_in_preprocess_geometry():
    pre = Preprocess(size=(48, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    policy = AugmentPolicy.from_ontology(_onto(orientation_sensitive=True, colour_sensitive=True))
    tf = train_transform(policy, pre)
    kinds = {type(t) for t in tf.transforms}
    assert v2.RandomHorizontalFlip not in kinds and v2.RandomGrayscale not in kinds
    assert v2.RandomRotation not in kinds and v2.RandomResizedCrop in kinds  # turning a "left" changes it too
    jitter = next(t for t in tf.transforms if isinstance(t, v2.ColorJitter))
    assert jitter.saturation is None and jitter.hue is None
    rot = next(t for t in train_transform(AugmentPolicy(), pre).transforms if isinstance(t, v2.RandomRotation))
    assert list(rot.degrees) == [-10.0, 10.0]
    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 80, 3), dtype=np.uint8))
    x = tf(im)
    assert x.shape == (3, 48, 64) and x.dtype == torch.float32
    assert float(x.min()) >= -1.01 and float(x.max()) <= 1.01  # normalised with mean=std=0.5


def test_default_policy_flips_and_greys():
    tf = train_transform(AugmentPolicy(), Preprocess(size=(32, 32)))
    kinds = {type(t) for t in tf.transforms}
    assert {v2.RandomHorizontalFlip, v2.RandomGrayscale, v2.ColorJitter} <= kinds


def test_eval_transform_equals_shared_preprocess():
    pre = Preprocess(size=(40, 40), resize="shorter_crop")
    im = Image.fromarray(np.random.default_rng(1).integers(0, 255, (70, 90, 3), dtype=np.uint8))
    tf = eval_transform(pre)
    assert np.array_equal(tf(im).numpy(), pre(im))
    geom, _ = pre.geometry(im)
    assert np.array_equal(tf(np.asarray(geom)).numpy(), pre(im))  # what the eval cache stores


def test_one_policy_and_one_flip_rule_for_classification_and_detection():
    """Classification and detection read the same AugmentPolicy: an orientation-sensitive class turns off every
    flip in both, a colour-sensitive one every hue/saturation change in both; older detection configs still read."""
    from visionloop.data.detection import build_transforms

    policy = AugmentPolicy.from_ontology(_onto(orientation_sensitive=True, colour_sensitive=True), vflip=True)
    flips = (v2.RandomHorizontalFlip, v2.RandomVerticalFlip, v2.RandomRotation)
    cls_ops = train_transform(policy, Preprocess(size=(32, 32))).transforms
    det_ops = build_transforms(policy, train=True).transforms
    assert not any(isinstance(t, flips) for t in [*cls_ops, *det_ops])
    assert not any(isinstance(t, v2.RandomPhotometricDistort | v2.RandomGrayscale) for t in [*cls_ops, *det_ops])
    free = AugmentPolicy.from_ontology(_onto(), vflip=True)
    det_free = build_transforms(free, train=True).transforms
    assert {v2.RandomHorizontalFlip, v2.RandomVerticalFlip, v2.RandomPhotometricDistort} <= {type(t) for t in det_free}
    legacy = {"horizontal_flip": False, "vertical_flip": False, "photometric": False, "scale_jitter": [0.75, 1.25],
              "crop": True, "reasons": ["no flips: left orientation-sensitive"]}
    old = AugmentPolicy.from_json(legacy)
    assert not old.hflip and not old.colour_changes and old.scale_jitter == (0.75, 1.25) and old.reasons
