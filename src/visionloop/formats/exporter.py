"""Export a project (its current head annotations, or a frozen dataset version) in any registered format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from visionloop.core.ontology import remap_annotation
from visionloop.formats import get_format
from visionloop.formats.base import FormatDataset, Sample, safe_for_export
from visionloop.storage.project import Project


def project_dataset(project: Project, *, version: str | None = None) -> FormatDataset:
    """The project (or one of its versions) as a format-neutral dataset with class indexes into ``classes``."""
    if version is not None:
        from visionloop.storage.versions import get_version, version_items

        info = get_version(project, version)
        onto = info.ontology
        rows = [(it.image, it.annotation, it.split) for it in version_items(project, version)]
    else:
        onto = project.ontology()
        heads = project.heads()
        rows = [(im, heads.get(im.id, (None, None))[1], None) for im in project.images()]
    classes = onto.names
    to_local = {c.id: i for i, c in enumerate(onto.active)}
    cache = project.root / ".cache" / "remote-blobs"
    samples = []
    for image, ann, split in rows:
        samples.append(Sample(
            name=image.name, image_path=project.blobs.local_path(image.sha256, cache),
            annotation=None if ann is None else remap_annotation(ann, to_local),
            width=image.width, height=image.height, video_id=image.video_id, frame_index=image.frame_index,
            timestamp=image.timestamp, subset=split or image.meta.get("subset"), meta=_export_meta(image),
        ))
    # two images imported under one name (from different sources) get ``name~<sha8>`` so neither is overwritten
    return safe_for_export(FormatDataset(task=project.task, classes=classes, samples=samples), per_subset=False)


def _export_meta(image: Any) -> dict[str, Any]:
    """What a format may write back besides the annotation: the image's hash, and the image-level tags a detection
    or segmentation source carried (CVAT ``<tag>``, Label Studio choices), kept in the image's metadata on import."""
    meta: dict[str, Any] = {"sha256": image.sha256}
    tags = image.meta.get("tags")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        meta["tags"] = tags
    return meta


def export_project(project: Project, out: str | Path, *, format: str, version: str | None = None) -> dict[str, Any]:
    """Write the project in ``format`` under ``out``; returns a summary (images, annotated, classes)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = project_dataset(project, version=version)
    get_format(format).save(ds, out)
    return {
        "out": str(out), "format": format, "version": version, "images": len(ds.samples),
        "annotated": sum(s.annotation is not None for s in ds.samples), "classes": ds.classes,
    }
