import numpy as np
import pytest

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
