from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.synthetic import make_project
from visionloop.core.errors import ConflictError
from visionloop.core.preprocess import Preprocess
from visionloop.data import (
    AugmentPolicy,
    ImageCache,
    ImageDataset,
    class_list,
    eval_transform,
    labelled_items,
    train_transform,
)
from visionloop.storage.versions import get_version, version_items


@pytest.fixture
def project(tmp_path):
    p = make_project(tmp_path / "p", task="classification", n_per_class=5, size=300)
    yield p
    p.close()


def test_labelled_items_and_dataset(project):
    classes = class_list(get_version(project, "v1").ontology)
    assert [c["name"] for c in classes] == ["c0", "c1", "c2"]
    ids = [c["id"] for c in classes]
    items = version_items(project, "v1")
    data = labelled_items(items, task="classification", class_ids=ids)
    assert len(data) == 15 and data.targets.dtype == np.int64 and set(data.targets) == {0, 1, 2}
    dropped = labelled_items(items, task="classification", class_ids=ids[:2])
    assert len(dropped) == 10 and dropped.skipped == {"retired_class": 5}
    with pytest.raises(ConflictError):
        labelled_items(items, task="tagging", class_ids=ids)

    pre = Preprocess(size=(64, 64))
    cache = ImageCache(project.blobs, preprocess=pre)
    tr = ImageDataset(data, cache=cache, transform=train_transform(AugmentPolicy(), pre), kind="train")
    x, y = tr[0]
    assert x.shape == (3, 64, 64) and int(y) == data.targets[0]
    assert max(cache.get(data.shas[0], "train").shape[:2]) <= 80  # downsized once: shorter side <= 1.25 x 64
    ev = ImageDataset(data, cache=cache, transform=eval_transform(pre), kind="eval")
    from visionloop.core.imageio import decode

    assert np.allclose(ev[1][0].numpy(), pre(decode(project.blobs.path(data.shas[1]))))
    misses = cache.misses
    ev[1]
    tr[0]
    assert cache.misses == misses and cache.hits >= 2


def test_cache_respects_its_memory_budget(project):
    items = version_items(project, "v1")
    pre = Preprocess(size=(64, 64))
    cache = ImageCache(project.blobs, preprocess=pre, max_bytes=64 * 64 * 3 * 2)
    for it in items:
        cache.get(it.image.sha256, "eval")
    assert cache.nbytes <= 64 * 64 * 3 * 2
    assert isinstance(cache.get(items[-1].image.sha256, "eval"), np.ndarray)
    assert torch.is_tensor(eval_transform(pre)(cache.get(items[0].image.sha256, "eval")))
