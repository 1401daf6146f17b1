from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _roundtrip import assert_same_dataset
from PIL import Image

from visionloop.core.annotations import Boxes, Instances, SemanticMask
from visionloop.core.errors import FormatError
from visionloop.core.task import Task
from visionloop.formats import detect_format, semantic_masks
from visionloop.formats.base import FormatDataset, Sample

CSS = "common_semantic_segmentation_dataset"


@pytest.mark.parametrize(("rel", "expected"), [
    (f"{CSS}/dataset", {"0001.png": [3, 3, 5, 3, 3], "0002.png": [1, 1, 1, 4, 4]}),
    (f"{CSS}/non_standard_dataset", {"image_0001.png": [3, 3, 5, 3, 3], "image_0002.png": [1, 1, 5, 7, 7]}),
    ("kaggle_dataset/image_mask_with_labelmap", {"001.png": [1, 2, 0, 2, 1], "002.png": [0, 0, 2, 0, 1],
                                                  "003.png": [2, 1, 0, 0, 0]}),
    ("camvid_dataset", {"test/0001TP_008550.png": [1, 1, 18, 22, 22], "train/0001TP_006690.png": [3, 3, 18, 3, 3]}),
])
def test_real_samples_roundtrip(formats_dir: Path, tmp_path: Path, rel: str, expected: dict) -> None:
    src = formats_dir / rel
    assert detect_format(src)[0] == "semantic_masks"
    ds = semantic_masks.load(src)
    assert ds.task == Task.SEGMENTATION and ds.problems == []
    by = {s.name: s for s in ds.samples}
    for name, row in expected.items():
        assert by[name].annotation.mask.tolist() == [row]
    if rel.startswith(CSS):
        assert ds.classes[:6] == ["Void", "Animal", "Archway", "Bicyclist", "Child", "Road"]
    semantic_masks.save(ds, tmp_path)
    assert detect_format(tmp_path)[0] == "semantic_masks"
    again = semantic_masks.load(tmp_path)
    assert again.classes == ds.classes
    assert_same_dataset(ds, again)
    assert Image.open(tmp_path / "masks" / Path(ds.samples[0].name).with_suffix(".png")).mode == "P"


def test_rgb_masks_keep_their_colours(formats_dir: Path, tmp_path: Path) -> None:
    ds = semantic_masks.load(formats_dir / f"{CSS}/dataset")
    semantic_masks.save(ds, tmp_path)
    rgb = np.asarray(Image.open(tmp_path / "masks/0001.png").convert("RGB"))
    assert rgb[0, 0].tolist() == [0, 128, 192]  # Bicyclist keeps its colour in the palette


def test_unknown_colours_and_unmatched_files(tmp_path: Path, image_factory) -> None:
    image_factory("images/a.png", width=4, height=2)
    image_factory("images/b.png", width=4, height=2)
    (tmp_path / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\nroad:128,64,128::\n")
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[0, :2] = (128, 64, 128)
    arr[1, 3] = (1, 2, 3)
    (tmp_path / "masks").mkdir()
    Image.fromarray(arr, "RGB").save(tmp_path / "masks/a.png")
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "masks/orphan.png")
    ds = semantic_masks.load(tmp_path)
    assert ds.classes == ["background", "road"]
    a = {s.name: s for s in ds.samples}["a.png"].annotation
    assert a.mask.tolist() == [[1, 1, 0, 0], [0, 0, 0, 255]]
    b = {s.name: s for s in ds.samples}["b.png"]
    assert b.annotation is None
    reasons = " | ".join(p.reason for p in ds.problems)
    assert "(1, 2, 3)" in reasons and "no mask" in reasons and "without an image" in reasons


def test_grey_index_masks_and_instances(tmp_path: Path, image_factory) -> None:
    image_factory("images/x.jpg", width=5, height=3)
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.array([[0, 2, 2, 255, 0]] * 3, np.uint8), "L").save(tmp_path / "masks/x.png")
    ds = semantic_masks.load(tmp_path)
    assert ds.classes == ["class_0", "class_1", "class_2"]
    assert ds.samples[0].annotation.mask[0].tolist() == [0, 2, 2, 255, 0]
    inst = FormatDataset(task=Task.SEGMENTATION, classes=["bg", "cell"], samples=[Sample(
        name="y.jpg", image_path=image_factory("src/y.jpg", width=6, height=4), width=6, height=4,
        annotation=Instances(Boxes([[1, 1, 3, 3]], [1]), [[[1, 1, 3, 1, 3, 3, 1, 3]]]))])
    semantic_masks.save(inst, tmp_path / "out")
    got = semantic_masks.load(tmp_path / "out")
    assert got.classes == ["bg", "cell"]
    expected = np.zeros((4, 6), int)
    expected[1:3, 1:3] = 1  # pycocotools rasterises the 2x2 square to 2x2 pixels
    assert got.samples[0].annotation.mask.tolist() == expected.tolist()


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="images/ and masks/"):
        semantic_masks.load(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images/a.png").write_bytes(b"junk")
    (tmp_path / "masks/a.png").write_bytes(b"junk")
    assert semantic_masks.detect(tmp_path) > 0
    ds = semantic_masks.load(tmp_path)
    assert ds.samples == [] and "unreadable" in ds.problems[0].reason
    with pytest.raises(FormatError, match="per-pixel"):
        semantic_masks.save(FormatDataset(task=Task.DETECTION, classes=["a"], samples=[
            Sample(name="b.png", annotation=Boxes([[0, 0, 1, 1]], [0]))]), tmp_path / "o")


def test_voc_and_yolo_folders_are_not_claimed(tmp_path: Path, image_factory) -> None:
    image_factory("images/a.jpg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels/a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    assert semantic_masks.detect(tmp_path) == 0.0
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "SegmentationClass").mkdir()
    Image.new("P", (4, 4)).save(tmp_path / "SegmentationClass/a.png")
    assert semantic_masks.detect(tmp_path) == 0.0
    assert isinstance(SemanticMask(np.zeros((2, 2), int)), SemanticMask)


def test_instances_of_class_zero_get_a_background_class_on_export(dsb_dir: Path, tmp_path: Path) -> None:
    """DSB2018 (one class, "nucleus", index 0) exported as semantic masks: nuclei must not become background."""
    import shutil

    from visionloop.formats import kaggle_masks

    for sample in sorted((dsb_dir / "stage1_train").iterdir())[:2]:
        shutil.copytree(sample, tmp_path / "kaggle" / sample.name)
    inst = kaggle_masks.load(tmp_path / "kaggle")
    assert inst.classes == ["nucleus"]
    semantic_masks.save(inst, tmp_path / "out")
    got = semantic_masks.load(tmp_path / "out")
    assert got.classes == ["background", "nucleus"]
    by_name = {Path(s.name).stem: s.annotation for s in got.samples}
    for s in inst.samples:
        ann, h, w = s.annotation, s.height, s.width
        union = np.any([ann.mask(i, h, w) for i in range(len(ann))], axis=0)
        mask = by_name[Path(s.name).stem].mask
        assert union.any() and np.array_equal(mask == 1, union) and set(np.unique(mask)) == {0, 1}
