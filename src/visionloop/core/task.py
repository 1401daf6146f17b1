"""The kind of problem a project solves."""

from enum import StrEnum


class Task(StrEnum):
    """What one image's annotation says.

    - ``classification``: exactly one class per image (:class:`~visionloop.core.Label`).
    - ``tagging``: any set of classes per image, possibly empty (:class:`~visionloop.core.Tags`).
    - ``detection``: boxes in xyxy pixels (:class:`~visionloop.core.Boxes`); video tracking is detection on frames
      whose boxes carry track ids.
    - ``segmentation``: instance masks (:class:`~visionloop.core.Instances`) or a semantic class map
      (:class:`~visionloop.core.SemanticMask`).
    """

    CLASSIFICATION = "classification"
    TAGGING = "tagging"
    DETECTION = "detection"
    SEGMENTATION = "segmentation"
