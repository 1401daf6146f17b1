import numpy as np
import pytest
from pycocotools import mask as coco_mask

from visionloop.core import (
    RLE,
    AnnotationValidationError,
    Boxes,
    Instances,
    Label,
    SemanticMask,
    Tags,
    annotation_class_counts,
    annotation_from_payload,
    annotation_to_payload,
)
from visionloop.core.annotations import _rle_runs, validate_for_image
from visionloop.core.ontology import ClassDef, Ontology, remap_annotation
from visionloop.core.records import ImageRecord


def roundtrip(ann):
    return annotation_from_payload(annotation_to_payload(ann))


def test_every_type_round_trips_through_its_payload():
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:10, 3:9] = True
    anns = [
        Label(3),
        Tags(frozenset({1, 4})),
        Tags(),
        Boxes([[1, 2, 10, 20], [0, 0, 5, 5]], [1, 2], score=[0.5, 0.9], track_id=[7, 8]),
        Boxes.empty(),
        Instances(Boxes([[3, 5, 9, 10], [0, 0, 4, 4]], [1, 1]), [RLE.encode(mask), [[0, 0, 4, 0, 4, 4, 0, 4]]]),
        SemanticMask(np.array([[0, 1, 1], [2, 255, 0]])),
    ]
    for ann in anns:
        assert roundtrip(ann) == ann, ann


def test_boxes_validation_names_expected_and_actual():
    with pytest.raises(AnnotationValidationError, match=r"expected \(N, 4\), got \(2, 3\)"):
        Boxes(np.zeros((2, 3)), [0, 0])
    with pytest.raises(AnnotationValidationError, match=r"expected \(2,\), got \(3,\)"):
        Boxes(np.zeros((2, 4)), [0, 0, 1])
    with pytest.raises(AnnotationValidationError, match="x2 >= x1"):
        Boxes([[10, 0, 5, 5]], [0])
    with pytest.raises(AnnotationValidationError, match=r"\[0, 1\]"):
        Boxes([[0, 0, 5, 5]], [0], score=[1.5])
    with pytest.raises(AnnotationValidationError, match="class id"):
        Label(-1)
    with pytest.raises(AnnotationValidationError, match="ring"):
        Instances(Boxes([[0, 0, 1, 1]], [0]), [[[0, 0, 1, 1]]])


def test_clip_reports_changed_boxes():
    b = Boxes([[-5, 2, 10, 10], [1, 1, 3, 3], [600, 400, 700, 500]], [0, 0, 1])
    clipped, changed = b.clip(640, 480)
    assert changed == [0, 2]
    assert clipped.xyxy[0].tolist() == [0, 2, 10, 10]
    assert clipped.xyxy[2].tolist() == [600, 400, 640, 480]


def test_rle_and_polygon_masks_agree():
    inst = Instances(Boxes([[2, 2, 8, 8]], [0]), [[[2, 2, 8, 2, 8, 8, 2, 8]]])
    m = inst.mask(0, 12, 12)
    assert m.shape == (12, 12) and m[4, 4] and not m[0, 0]
    assert RLE.encode(m).area() == int(m.sum())


def test_class_counts_and_remap():
    b = Boxes([[0, 0, 1, 1]] * 3, [1, 1, 2])
    assert annotation_class_counts(b) == {1: 2, 2: 1}
    assert annotation_class_counts(remap_annotation(b, {1: 2})) == {2: 3}
    assert remap_annotation(Tags(frozenset({1, 2})), {1: 2}) == Tags(frozenset({2}))
    sem = remap_annotation(SemanticMask(np.array([[1, 2]])), {2: 1})
    assert sem.mask.tolist() == [[1, 1]]


def test_ontology_lookup_suggests_close_names():
    onto = Ontology((ClassDef(id=1, name="Platelets"), ClassDef(id=2, name="RBC")))
    assert onto.by_name("RBC").id == 2
    with pytest.raises(Exception, match="Platelets"):
        onto.by_name("Platelet")
    with pytest.raises(AnnotationValidationError):
        Ontology((ClassDef(id=1, name="a"), ClassDef(id=1, name="b")))
    assert Ontology.from_json(onto.to_json()) == onto


def test_video_frame_record_needs_video_id():
    with pytest.raises(AnnotationValidationError, match="video_id"):
        ImageRecord(id=1, sha256="0" * 64, width=1, height=1, format="png", name="f", frame_index=3)


# --- validation against the image (one check for import and save) -------------------------------------------------

def test_rle_runs_match_pycocotools_on_random_masks():
    rng = np.random.default_rng(0)
    for k in range(200):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        if k % 3 == 0:
            m = np.zeros((h, w), np.uint8)
            m[rng.integers(0, h):, rng.integers(0, w):] = 1
        counts = coco_mask.encode(np.asfortranarray(m))["counts"].decode()
        runs = _rle_runs(counts)
        flat = np.repeat(np.arange(len(runs)) % 2, runs).astype(np.uint8)
        assert flat.reshape(w, h).T.tolist() == m.tolist()
        assert RLE((h, w), counts).decode().tolist() == m.astype(bool).tolist()


@pytest.mark.parametrize("counts", ["", "garbage!", "\u00e9\u00e9", "0" * 20, "Z" * 30, "o", "1O1O1O"])
def test_garbage_rle_counts_are_refused_before_decoding(counts):
    with pytest.raises(AnnotationValidationError, match="RLE"):
        RLE((375, 500), counts)


@pytest.mark.parametrize("size", [(0, 5), (5,), ("a", 5), (True, 5), (2**21, 5), (1.5, 2)])
def test_bad_rle_size_is_refused(size):
    with pytest.raises(AnnotationValidationError, match="RLE.size"):
        RLE(size, "1")


def test_huge_class_ids_and_bad_numbers_are_validation_errors():
    for payload in (
        {"type": "label", "class_id": 10**21},
        {"type": "boxes", "xyxy": [[0, 0, 1, 1]], "class_id": [10**21]},
        {"type": "boxes", "xyxy": [[0, 0, 1, 1]], "class_id": [2**40]},
        {"type": "boxes", "xyxy": [["a", 0, 1, 1]], "class_id": [0]},
        {"type": "boxes", "xyxy": [[0, 0, 1, 1]], "class_id": [0], "score": [float("nan")]},
        {"type": "tags", "class_ids": [-1]},
        {"type": "instances", "xyxy": [[0, 0, 1, 1]], "class_id": [0], "segmentations": [{"polygons": [[0, 0, 1, "x", 1, 1]]}]},
        {"type": "instances", "xyxy": [[0, 0, 1, 1]], "class_id": [0], "segmentations": [{"rle": {"size": [5], "counts": "1"}}]},
        {"type": "semantic", "size": [100000, 100000], "classes": {"0": "1"}},
        {"type": "semantic", "size": "x", "classes": {}},
        {"type": "nope"}, {"xyxy": []}, [], {"type": "boxes", "xyxy": 5},
    ):
        with pytest.raises(AnnotationValidationError):
            annotation_from_payload(payload)
    for payload in ({"type": "label", "class_id": 10**21}, {"type": "boxes", "xyxy": [[0, 0, 1, 1]], "class_id": [10**21]}):
        with pytest.raises(AnnotationValidationError, match=r"0\.\.2147483647"):  # says what a class id may be
            annotation_from_payload(payload)


def test_validate_for_image_clips_tiny_overshoot_and_refuses_the_rest():
    fitted, notes = validate_for_image(Boxes([[-0.5, 0, 500.4, 375]], [0]), 500, 375, clip_outside=False)
    assert fitted.xyxy.tolist() == [[0, 0, 500, 375]] and notes == []
    for bad in ([[0, 0, 1e308, 10]], [[0, 0, 560, 10]], [[600, 10, 700, 20]], [[-50, -50, -10, -10]]):
        with pytest.raises(AnnotationValidationError, match="inside the 500x375 image"):
            validate_for_image(Boxes(bad, [0]), 500, 375, clip_outside=False)
    # import keeps what is inside: clips and says so, drops a box entirely outside
    fitted, notes = validate_for_image(Boxes([[0, 0, 560, 10], [600, 10, 700, 20], [1, 1, 2, 2]], [0, 1, 2]),
                                       500, 375, clip_outside=True)
    assert fitted.xyxy.tolist() == [[0, 0, 500, 10], [1, 1, 2, 2]] and fitted.class_id.tolist() == [0, 2]
    assert len(notes) == 2 and "clipped" in notes[0] and "dropped" in notes[1]


def test_validate_for_image_checks_masks():
    ok = RLE.encode(np.ones((375, 500), bool))
    wrong = RLE.encode(np.ones((100, 100), bool))
    box = Boxes([[0, 0, 10, 10]], [0])
    assert validate_for_image(Instances(box, [ok]), 500, 375, clip_outside=False)[0] == Instances(box, [ok])
    with pytest.raises(AnnotationValidationError, match="RLE size"):
        validate_for_image(Instances(box, [wrong]), 500, 375, clip_outside=True)
    # well-formed runs covering 100000x100000 pixels (built without the 10 GB mask), on a 500x375 image
    runs = coco_mask.frPyObjects({"size": [100000, 100000], "counts": [4 * 10**9, 0, 4 * 10**9, 0, 2 * 10**9]},
                                 100000, 100000)
    huge = RLE((100000, 100000), runs["counts"].decode())
    with pytest.raises(AnnotationValidationError, match="RLE size"):
        validate_for_image(Instances(box, [huge]), 500, 375, clip_outside=False)
    with pytest.raises(AnnotationValidationError, match="outline"):
        validate_for_image(Instances(box, [[[0, 0, 900, 0, 900, 10]]]), 500, 375, clip_outside=False)
    clipped, notes = validate_for_image(Instances(box, [[[0, 0, 900, 0, 900, 10]]]), 500, 375, clip_outside=True)
    assert clipped.segmentations[0] == [[0, 0, 500, 0, 500, 10]] and notes
    with pytest.raises(AnnotationValidationError, match="semantic mask shape"):
        validate_for_image(SemanticMask(np.zeros((10, 10), np.int32)), 500, 375, clip_outside=False)
