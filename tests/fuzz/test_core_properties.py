"""Property tests (Hypothesis) of the core annotation types: whatever a data file or a client sends, construction and
payload parsing either give a valid annotation or raise AnnotationValidationError; valid ones round-trip exactly.

Bounded (``max_examples``) and derandomised so CI runs the same examples every time and stays fast.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pycocotools import mask as mask_utils

from visionloop.core.annotations import (
    MAX_CLASS_ID,
    RLE,
    Boxes,
    Instances,
    Label,
    SemanticMask,
    Tags,
    annotation_from_payload,
    annotation_to_payload,
)
from visionloop.core.errors import AnnotationValidationError

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
"""Any JSON-like value, as a malformed file or request holds."""

MASKS = hnp.arrays(np.bool_, st.tuples(st.integers(1, 24), st.integers(1, 24)))


@PROPERTY
@given(MASKS)
def test_rle_round_trip(mask: np.ndarray) -> None:
    rle = RLE.encode(mask)
    assert rle.size == mask.shape
    assert np.array_equal(rle.decode(), mask)
    assert rle.area() == int(mask.sum())
    again = RLE(size=rle.size, counts=rle.counts)  # what a stored payload rebuilds
    assert again == rle
    h, w = mask.shape
    runs = mask_utils.frPyObjects({"size": [h, w], "counts": _runs(mask)}, h, w)
    assert runs["counts"].decode("ascii") == rle.counts  # the same string pycocotools makes from raw run lengths


def _runs(mask: np.ndarray) -> list[int]:
    flat = mask.reshape(-1, order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], edges, [len(flat)]])).tolist()
    return [0, *counts] if flat[0] else counts


@PROPERTY
@given(st.tuples(st.integers(-3, 40), st.integers(-3, 40)), st.text(max_size=30))
def test_rle_of_any_counts_is_valid_or_refused(size: tuple[int, int], counts: str) -> None:
    try:
        rle = RLE(size=size, counts=counts)
    except AnnotationValidationError:
        return
    mask = rle.decode()  # a string that passed validation decodes to its own size
    assert mask.shape == rle.size and 0 <= rle.area() <= size[0] * size[1]


@PROPERTY
@given(ANY_VALUE)
def test_label_and_tags_accept_ids_only(value: object) -> None:
    try:
        label = Label(value)  # type: ignore[arg-type]
    except AnnotationValidationError:
        pass
    else:
        assert isinstance(label.class_id, int) and 0 <= label.class_id <= MAX_CLASS_ID
    try:
        tags = Tags(frozenset(value) if isinstance(value, list) and all(
            isinstance(v, int | str | float | bool) or v is None for v in value) else value)  # type: ignore[arg-type]
    except (AnnotationValidationError, TypeError):  # TypeError: iterating a non-iterable, the caller's mistake
        pass
    else:
        assert all(isinstance(c, int) and 0 <= c <= MAX_CLASS_ID for c in tags.class_ids)


FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**30), 10**30)


@PROPERTY
@given(st.lists(st.lists(FLOATS, min_size=0, max_size=5), max_size=5), st.lists(ANY_VALUE, max_size=5))
def test_boxes_are_valid_or_refused(xyxy: list[list[float]], class_id: list[object]) -> None:
    try:
        boxes = Boxes(xyxy, class_id)  # type: ignore[arg-type]
    except AnnotationValidationError:
        return
    assert boxes.xyxy.shape == (len(boxes), 4) and np.isfinite(boxes.xyxy).all()
    assert (boxes.xyxy[:, 2] >= boxes.xyxy[:, 0]).all() and (boxes.xyxy[:, 3] >= boxes.xyxy[:, 1]).all()
    assert boxes.class_id.shape == (len(boxes),) and ((boxes.class_id >= 0) & (boxes.class_id <= MAX_CLASS_ID)).all()


COORD = st.floats(0, 4000, allow_nan=False, width=32)


@st.composite
def valid_boxes(draw: st.DrawFn) -> Boxes:
    n = draw(st.integers(0, 6))
    corners = [sorted(draw(st.lists(COORD, min_size=2, max_size=2))) for _ in range(2 * n)]
    xyxy = [[corners[2 * i][0], corners[2 * i + 1][0], corners[2 * i][1], corners[2 * i + 1][1]] for i in range(n)]
    ids = draw(st.lists(st.integers(0, MAX_CLASS_ID), min_size=n, max_size=n))
    scores = draw(st.none() | st.lists(st.floats(0, 1), min_size=n, max_size=n))
    return Boxes(np.asarray(xyxy, dtype=np.float64).reshape(-1, 4), ids, scores)


@PROPERTY
@given(valid_boxes(), MASKS)
def test_payload_round_trip(boxes: Boxes, mask: np.ndarray) -> None:
    for ann in (boxes, Instances(boxes, [RLE.encode(mask)] * len(boxes)), SemanticMask(mask.astype(np.uint8) * 3)):
        payload = annotation_to_payload(ann)
        assert annotation_to_payload(annotation_from_payload(payload)) == payload


@PROPERTY
@given(st.dictionaries(st.sampled_from(["type", "class_id", "class_ids", "xyxy", "segmentations", "size",
                                        "classes", "score", "track_id", "attributes"]), ANY_VALUE, max_size=6),
       st.sampled_from(["label", "tags", "boxes", "instances", "semantic", "other"]))
def test_any_payload_is_parsed_or_refused(payload: dict[str, object], kind: str) -> None:
    payload = {**payload, "type": kind}
    try:
        ann = annotation_from_payload(payload)
    except AnnotationValidationError:
        return
    assert annotation_to_payload(annotation_from_payload(annotation_to_payload(ann))) == annotation_to_payload(ann)
