"""Small synthetic classification/tagging projects for the data, training and evaluation tests.

Each class has its own colour; images are noisy squares in that colour (tagging: one coloured quadrant per tag), so
even a randomly initialised backbone's features separate them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from visionloop.core.annotations import Label, Tags
from visionloop.core.imageio import probe
from visionloop.storage import NewImage, Project

COLOURS = [(220, 40, 40), (40, 200, 60), (50, 70, 220), (230, 200, 30)]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _add(project: Project, data: bytes, name: str, meta: dict | None = None) -> int:
    sha = project.blobs.put(data)
    info = probe(data)
    [(image_id, _)] = project.add_images([NewImage(sha256=sha, width=info.width, height=info.height,
                                                   format=info.format, name=name, meta=meta or {})])
    return image_id


def make_project(root: Path, *, task: str, n_per_class: int = 12, classes: int = 3, size: int = 40,
                 seed: int = 0, version: str = "v1") -> Project:
    """A project with a version ``version`` (70/15/15 split)."""
    from visionloop.storage.versions import create_version

    rng = np.random.default_rng(seed)
    p = Project.create(root, task=task)
    ids = p.class_ids([f"c{k}" for k in range(classes)])
    cid = [ids[f"c{k}"] for k in range(classes)]
    n = 0
    for k in range(classes):
        for j in range(n_per_class):
            noise = rng.integers(-60, 60, size=(size, size, 3))
            if task == "classification":
                arr = np.clip(np.array(COLOURS[k]) + noise, 0, 255)
                ann = Label(cid[k])
            else:
                arr = np.clip(128 + noise, 0, 255)
                tags = {k} | ({(k + 1) % classes} if j % 3 == 0 else set())
                half = size // 2
                for t in tags:
                    y0, x0 = (t // 2) * half, (t % 2) * half
                    arr[y0:y0 + half, x0:x0 + half] = np.clip(np.array(COLOURS[t]) + noise[:half, :half], 0, 255)
                ann = Tags(frozenset(cid[t] for t in tags))
            image_id = _add(p, _png(arr), f"img-{k}-{j}.png")
            p.save_annotation(image_id, ann, base_revision=None, author="test")
            n += 1
    create_version(p, name=version, seed=seed, phash_distance=-1)
    return p
