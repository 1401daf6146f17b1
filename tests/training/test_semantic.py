"""Semantic-segmentation training pieces: object sizes from class maps, CE + Dice loss, validation metric keys."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from visionloop.core.annotations import Boxes, SemanticMask
from visionloop.training.semantic import semantic_loss, semantic_object_fractions, semantic_val_metrics


def _item(mask: np.ndarray, *, width: int | None = None, height: int | None = None) -> SimpleNamespace:
    h, w = mask.shape
    return SimpleNamespace(annotation=SemanticMask(mask), image=SimpleNamespace(width=width or w, height=height or h))


def test_object_fractions_are_connected_regions_of_foreground_classes() -> None:
    mask = np.zeros((100, 200), np.int32)  # value 0: background (model class 0)
    mask[10:20, 10:40] = 7  # a 10 x 30 region -> shorter side 10
    mask[50:80, 100:106] = 7  # 30 x 6 -> 6
    mask[60:64, 150:190] = 9  # another class, 4 x 40 -> 4
    mask[0:50, 190:200] = 255  # unlabelled, not an object
    mask[90:100, 0:10] = 3  # a class the model does not know: not an object
    labels = {0: 0, 7: 1, 9: 2}
    got = semantic_object_fractions([_item(mask)], labels)
    assert sorted(got.tolist()) == [4 / 100, 6 / 100, 10 / 100]  # fractions of the image's shorter side (100)
    # a background class with another id (a mask class named "background") is not an object either
    assert sorted(semantic_object_fractions([_item(mask)], {7: 0, 9: 1}).tolist()) == [4 / 100]
    # touching regions are one object; diagonal neighbours are two (4-connectivity)
    touch = np.zeros((64, 64), np.int32)
    touch[0:8, 0:8] = touch[0:8, 8:16] = 1
    touch[8:12, 16:20] = 1
    assert sorted(semantic_object_fractions([_item(touch)], {0: 0, 1: 1}).tolist()) == [4 / 64, 8 / 64]
    # other annotations are skipped
    assert semantic_object_fractions([SimpleNamespace(annotation=Boxes.empty(), image=None)], labels).size == 0


def test_loss_is_cross_entropy_plus_dice_and_ignores_unlabelled() -> None:
    torch.manual_seed(0)
    y = torch.zeros(2, 16, 16, dtype=torch.long)
    y[:, 4:8, 4:8] = 1
    perfect = (torch.nn.functional.one_hot(y, 2).permute(0, 3, 1, 2).float() - 0.5) * 40

    def model(logits: torch.Tensor, aux: bool = False):
        return lambda x: {"out": logits, **({"aux": logits} if aux else {})}

    batch = (list(torch.rand(2, 3, 16, 16)), [{"mask": m} for m in y])
    loss, logs = semantic_loss(model(perfect), batch)
    assert set(logs) == {"loss_ce", "loss_dice"} and float(loss) < 1e-3
    wrong = -perfect
    loss_wrong, logs = semantic_loss(model(wrong), batch)
    assert logs["loss_dice"] > 0.9 and logs["loss_ce"] > 10
    # pixels marked 255 do not count: a wrong prediction there costs nothing
    y_ign = y.clone()
    y_ign[:, :, 12:] = 255
    mixed = perfect.clone()
    mixed[:, :, :, 12:] = wrong[:, :, :, 12:]
    loss_ign, _ = semantic_loss(model(mixed), (batch[0], [{"mask": m} for m in y_ign]))
    assert float(loss_ign) < 1e-3
    loss_aux, logs = semantic_loss(model(wrong, aux=True), batch)
    assert float(loss_aux) == pytest.approx(float(loss_wrong) + 0.5 * logs["loss_aux"], rel=1e-5)


def test_validation_keys_name_what_they_hold() -> None:
    metrics = {"miou": 0.6, "pixel_accuracy": 0.9,
               "per_class": {"background": {"iou": 0.9}, "nucleus": {"iou": 0.3}, "absent": {"iou": None}}}
    assert semantic_val_metrics(metrics) == {"val_miou": 0.6, "val_pixel_accuracy": 0.9,
                                             "val_iou/background": 0.9, "val_iou/nucleus": 0.3}


def test_semantic_defaults_fill_only_what_the_user_left_alone() -> None:
    from visionloop.training.detection import DetectionHParams
    from visionloop.training.semantic import SEMANTIC_HPARAMS, semantic_hparams

    hp = semantic_hparams(DetectionHParams())
    assert {k: getattr(hp, k) for k in SEMANTIC_HPARAMS} == SEMANTIC_HPARAMS
    assert hp.optimizer == "adamw" and hp.crop_size > 0
    mine = semantic_hparams(DetectionHParams(epochs=2, batch_size=3, crop_size=128))
    assert (mine.epochs, mine.batch_size, mine.crop_size, mine.optimizer) == (2, 3, 128, "adamw")
    # --lr 0.02 (a step lr; the CLI stores it per image at the detector batch size 2): still 0.02 a step at batch 4
    cli = DetectionHParams(lr=0.02 / 2)
    assert semantic_hparams(cli).lr * semantic_hparams(cli).batch_size == pytest.approx(0.02)
    # a value equal to the detector default counts when the user gave it (the CLI says so): --batch-size 2
    from visionloop.training.api import _detection_options

    hp, _ = _detection_options({"batch_size": 2, "lr": 0.004})
    assert (semantic_hparams(hp).batch_size, semantic_hparams(hp).lr * 2) == (2, pytest.approx(0.004))
    assert semantic_hparams(_detection_options({})[0]).batch_size == SEMANTIC_HPARAMS["batch_size"]


def test_object_size_rule_sizes_semantic_inputs_from_regions() -> None:
    import visionloop.training.detection as td
    from visionloop.training.semantic import SEMANTIC_MIN_OBJECT_PX

    mask = np.zeros((256, 256), np.int32)
    for k in range(8):  # nuclei of 10 px in 256 px images, as in DSB2018
        mask[20 * k: 20 * k + 10, 30: 40] = 1
    items = [_item(mask)] * 4
    fractions = semantic_object_fractions(items, {0: 0, 1: 1})
    size, _, _ = td._auto_sizes(items, td.DetectionHParams(), fractions=fractions, min_object_px=SEMANTIC_MIN_OBJECT_PX)
    assert SEMANTIC_MIN_OBJECT_PX == 16 and size == 416  # 16 px / (10 / 256) = 410 -> the next multiple of 32
    # without the regions (boxes only), a class map has no objects and the image size alone decides
    assert td._auto_sizes(items, td.DetectionHParams())[0] == 256


def test_semantic_run_defaults_and_validation_keys(project_factory) -> None:
    """A semantic run trains the U-Net with the semantic recipe, logs ``val_miou`` and per-class IoU (no ``val_map``)
    and keeps the epoch with the best validation mIoU."""
    import json

    import visionloop.training.detection as td
    from tests.training.test_detection_train import COLOURS, _add
    from visionloop.storage.runs import read_metrics
    from visionloop.storage.versions import create_version

    p = project_factory("segmentation")
    ids = p.class_ids(list(COLOURS))
    rng = np.random.default_rng(2)
    for k in range(8):
        arr = rng.integers(90, 140, (64, 64, 3)).astype(np.uint8)
        mask = np.zeros((64, 64), np.int32)
        for j, name in enumerate(COLOURS):
            y = int(rng.integers(0, 40))
            arr[y:y + 16, 32 * j:32 * j + 16] = COLOURS[name]
            mask[y:y + 16, 32 * j:32 * j + 16] = ids[name]
        p.save_annotation(_add(p, arr, f"{k}.png"), SemanticMask(mask), base_revision=None, author="t")
    create_version(p, name="v1", fractions=(0.5, 0.25, 0.25), phash_distance=-1)
    r = td.train_detection(p, version="v1", hparams=td.DetectionHParams(epochs=2, eval_size=64, batch_size=2),
                           progress=False)
    cfg = json.loads((r.run_dir / "config.json").read_text())
    assert cfg["model"]["name"] == "unet_mobilenet_v2" and cfg["hparams"]["optimizer"] == "adamw"
    records = read_metrics(r.run_dir)
    assert len(records) == 2
    for rec in records:
        assert {"val_miou", "val_pixel_accuracy", "val_iou/background", "val_iou/red", "val_iou/blue"} <= set(rec)
        assert "val_map" not in rec
    best = max(records, key=lambda x: x["val_miou"])
    assert r.metrics["val_miou"] == best["val_miou"] and r.metrics["best_epoch"] == best["epoch"]


def test_semantic_epochs_aim_at_a_number_of_steps() -> None:
    from visionloop.training.semantic import SEMANTIC_STEPS, semantic_epochs

    epochs, why = semantic_epochs(84, 4)  # DSB2018's training split: 21 steps an epoch
    assert epochs == 36 and epochs * 21 >= SEMANTIC_STEPS and "21 steps" in why
    assert semantic_epochs(85, 4)[0] == 35  # 22 steps an epoch
    assert semantic_epochs(10_000, 4)[0] == 12  # a large set: the fewest
    assert semantic_epochs(8, 4)[0] == 48  # a tiny one: the most
