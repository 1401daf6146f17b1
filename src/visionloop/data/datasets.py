"""torch Datasets over the items of a dataset version (classification and tagging).

Class ids in annotations are the project's stable ids; models use contiguous indexes in the order of
:func:`class_list` (the version ontology's active classes sorted by id).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from visionloop.core.annotations import Label, Tags
from visionloop.core.errors import ConflictError
from visionloop.core.ontology import Ontology
from visionloop.data.cache import ImageCache

__all__ = ["ImageDataset", "LabelledItems", "class_list", "labelled_items"]


def class_list(ontology: Ontology) -> list[dict[str, Any]]:
    """``[{"id", "name"}]`` of the active classes sorted by id: output index i <-> class id."""
    return [{"id": c.id, "name": c.name} for c in sorted(ontology.active, key=lambda c: c.id)]


@dataclass
class LabelledItems:
    """Aligned lists: ``shas[i]``, ``names[i]``, ``image_ids[i]`` and ``targets[i]`` ((N,) int64 class indexes for
    classification, (N, C) float32 0/1 for tagging). ``skipped``: reason -> count."""

    shas: list[str]
    names: list[str]
    image_ids: list[int]
    targets: np.ndarray
    skipped: dict[str, int]

    def __len__(self) -> int:
        return len(self.shas)


def labelled_items(items: Sequence[Any], *, task: str, class_ids: Sequence[int]) -> LabelledItems:
    """Turn version items into model targets; unannotated items and classes outside ``class_ids`` are skipped."""
    index = {cid: i for i, cid in enumerate(class_ids)}
    shas, names, ids, targets = [], [], [], []
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for it in items:
        ann = it.annotation
        if ann is None:
            skip("unannotated")
            continue
        if task == "classification":
            if not isinstance(ann, Label):
                raise ConflictError(f"image {it.image.id} has a {type(ann).__name__}, a classification run needs Label")
            if ann.class_id not in index:
                skip("retired_class")
                continue
            targets.append(index[ann.class_id])
        elif task == "tagging":
            if not isinstance(ann, Tags):
                raise ConflictError(f"image {it.image.id} has a {type(ann).__name__}, a tagging run needs Tags")
            row = np.zeros(len(class_ids), np.float32)
            for c in ann.class_ids:
                if c in index:
                    row[index[c]] = 1.0
            targets.append(row)
        else:
            raise ConflictError(f"task {task!r} is not classification or tagging")
        shas.append(it.image.sha256)
        names.append(it.image.name)
        ids.append(it.image.id)
    if task == "classification":
        arr = np.asarray(targets, np.int64)
    else:
        arr = np.asarray(targets, np.float32).reshape(len(targets), len(class_ids))
    return LabelledItems(shas, names, ids, arr, skipped)


class ImageDataset(Dataset):
    """``ds[i] -> (image tensor (3, H, W) float32, target)``; target: int64 scalar or (C,) float32.

    ``kind``: ``"train"`` (cached downsized image -> ``transform`` with random augmentation) or ``"eval"`` (cached
    preprocess geometry -> ``transform`` = :func:`visionloop.data.augment.eval_transform`).
    """

    def __init__(self, data: LabelledItems, *, cache: ImageCache, transform: Callable[[Any], torch.Tensor],
                 kind: str) -> None:
        self.data, self.cache, self.transform, self.kind = data, cache, transform, kind

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        arr = self.cache.get(self.data.shas[i], self.kind)
        # train transforms get a PIL image (torchvision copies it; cached arrays stay read-only and shared)
        x = self.transform(Image.fromarray(arr) if self.kind == "train" else arr)
        return x, torch.as_tensor(self.data.targets[i])
