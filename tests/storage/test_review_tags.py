"""Rejections carry issue tags and a comment drawn on the image (a point or a box), checked against the image."""

from __future__ import annotations

import pytest

from visionloop.core.errors import AnnotationValidationError, NotFoundError
from visionloop.storage import NewImage
from visionloop.storage.review import REJECT_TAGS, check_comment, review_history, set_review_state


def test_tags_and_comment_are_recorded_with_the_rejection(project_factory) -> None:
    p = project_factory("detection")
    [(image_id, _)] = p.add_images([NewImage(sha256=p.blobs.put(b"x" * 8), width=64, height=48, format="jpeg",
                                             name="a.jpg")])
    set_review_state(p, [image_id], "rejected", author="rita", reason="a cell is missing",
                     tags=["missing_object", "missing_object", "loose_box"], comment={"box": [1, 2, 30, 40]})
    [event] = review_history(p, image_id)
    assert event.tags == ("missing_object", "loose_box") and event.comment == {"box": [1.0, 2.0, 30.0, 40.0]}
    assert event.to_json()["tags"] == ["missing_object", "loose_box"]
    with pytest.raises(AnnotationValidationError, match="only with a rejection"):
        set_review_state(p, [image_id], "approved", author="rita", tags=["other"])
    with pytest.raises(NotFoundError, match="wrong_class"):  # the message lists the known tags
        set_review_state(p, [image_id], "rejected", author="rita", reason="x", tags=["ugly"])
    with pytest.raises(AnnotationValidationError, match="inside the 64x48 image"):
        set_review_state(p, [image_id], "rejected", author="rita", reason="x", comment={"point": [10, 49]})
    set_review_state(p, [image_id], "approved", author="rita")
    assert review_history(p, image_id)[-1].tags == () and review_history(p, image_id)[-1].comment is None
    assert "other" in REJECT_TAGS


@pytest.mark.parametrize("bad", [{"point": [1]}, {"circle": [1, 2]}, {"box": [5, 5, 1, 1]}, {"point": [1, True]},
                                 {"point": [1, 2], "box": [1, 2, 3, 4]}, {"point": [float("nan"), 1]}, []])
def test_bad_comment_geometry(bad) -> None:
    with pytest.raises(AnnotationValidationError, match="review comment"):
        check_comment(bad, 10, 10)
