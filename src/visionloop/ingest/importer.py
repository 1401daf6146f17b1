"""Import a folder, file or archive in any registered format into a project.

Each image is read once: hashed (sha256), its header probed (size limits, truncation, EXIF orientation), stored in
the blob store by atomic rename, and recorded with its annotation in a batch transaction. An image larger than 4096 px
on a side also gets its tile pyramid (:mod:`visionloop.storage.tiles`). A kill mid-import loses
at most the open batch; running the same import again skips what is stored (images by sha256, annotations whose
payload is already in the image's history) and completes the rest.

One import runs at a time per project (:mod:`visionloop.ingest.runs`: a second one gets a clear
:class:`~visionloop.ingest.runs.ImportRunningError`, a killed one is detected and marked ``interrupted``).
Byte-identical images that the source annotates differently are reported as conflicts
(:mod:`visionloop.ingest.conflicts`) and resolved as ``on_conflict`` says.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import select

from visionloop.core.annotations import (
    Annotation,
    Boxes,
    Instances,
    Label,
    SemanticMask,
    Tags,
    annotation_class_counts,
    annotation_from_payload,
    annotation_to_payload,
    validate_for_image,
)
from visionloop.core.errors import AnnotationValidationError, FormatError, ImageError
from visionloop.core.imageio import probe
from visionloop.core.ontology import remap_annotation
from visionloop.core.progress import progress_file
from visionloop.core.task import Task
from visionloop.formats import detect_source, get_format, unwrap_folder
from visionloop.formats._paths import (
    LINK_OUT,
    UnsafePathError,
    leads_out,
    safe_export_name,
    safe_relative_name,
    walk_files,
)
from visionloop.formats.base import FormatDataset, Problem, Sample, is_image_file
from visionloop.ingest.archives import extract, is_archive
from visionloop.ingest.conflicts import Conflict, OnConflict, SubsetConflict, describe, merge_annotations
from visionloop.ingest.runs import ImportRun, start_run
from visionloop.storage.models import AnnotationRow, ImageRow, RevisionRow
from visionloop.storage.project import NewImage, Project, image_key, subsets_of
from visionloop.storage.tiles import TileStore, needs_pyramid

__all__ = ["ImportReport", "OnConflict", "adapt", "images_only", "import_source"]

READERS = 4
"""Threads that read, hash, probe and store image files."""


@dataclass
class ImportReport:
    source: str
    format: str
    images_seen: int = 0
    images_added: int = 0
    images_existing: int = 0
    annotations_saved: int = 0
    annotations_unchanged: int = 0
    classes_added: list[str] = field(default_factory=list)
    instances: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    """Byte-identical images annotated differently under two names (both annotations, and what was kept)."""
    subset_conflicts: list[SubsetConflict] = field(default_factory=list)
    """Byte-identical images the source lists in several subsets (kept once, with every subset in its meta)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "format": self.format, "images_seen": self.images_seen,
            "images_added": self.images_added, "images_existing": self.images_existing,
            "annotations_saved": self.annotations_saved, "annotations_unchanged": self.annotations_unchanged,
            "classes_added": self.classes_added, "instances": self.instances,
            "problems": [{"path": p.path, "reason": p.reason, "action": p.action} for p in self.problems],
            "conflicts": [c.to_json() for c in self.conflicts],
            "subset_conflicts": [c.to_json() for c in self.subset_conflicts],
        }


def images_only(root: Path, task: Task) -> FormatDataset:
    """A folder (or single file) of images without annotations; symbolic links leading out of the folder are not
    read (each is a problem)."""
    if root.is_file():
        return FormatDataset(task=task, samples=[Sample(name=root.name, image_path=root)])
    links_out: list[Path] = []
    files = [p for p in walk_files(root, links_out=links_out) if is_image_file(p)]
    return FormatDataset(
        task=task, samples=[Sample(name=p.relative_to(root).as_posix(), image_path=p) for p in files],
        problems=[Problem(path=p.relative_to(root).as_posix(), action="not read", reason=LINK_OUT) for p in links_out])


@dataclass(frozen=True)
class _Folder:
    """The folder an import reads (the source folder, an annotation file's folder, an extracted archive): an image
    found inside it that a symbolic link takes outside it is not read, whatever the format."""

    path: Path
    real: Path
    named: Path | None = None
    """The file the user named as the source (read even when it is a link: the user chose it)."""

    @classmethod
    def of(cls, root: Path) -> _Folder:
        if root.is_dir():
            return cls(Path(os.path.abspath(root)), root.resolve())
        return cls(Path(os.path.abspath(root.parent)), root.parent.resolve(), Path(os.path.abspath(root)))

    def link_out(self, path: Path) -> bool:
        where = Path(os.path.abspath(path))
        if where == self.named:
            return False
        if where != self.path and self.path not in where.parents:
            return False  # a format's own finder looked beside the folder; it checks links there
        return leads_out(path, self.real)

    def links_out(self) -> list[str]:
        """Every symbolic link under the folder that leads outside it, relative to it."""
        found: list[Path] = []
        for _ in walk_files(self.path, links_out=found):
            pass
        return [p.relative_to(self.path).as_posix() for p in found]


def adapt(ann: Annotation, task: Task) -> Annotation:
    """Fit an annotation to the project's task by information reduction; raises when information would be invented."""
    if task is Task.DETECTION and isinstance(ann, Instances):
        return ann.boxes
    if task is Task.TAGGING and isinstance(ann, Label):
        return Tags(frozenset({ann.class_id}))
    if task is Task.TAGGING and isinstance(ann, Boxes | Instances):
        boxes = ann.boxes if isinstance(ann, Instances) else ann
        return Tags(frozenset(boxes.class_id.tolist()))
    if task is Task.CLASSIFICATION and isinstance(ann, Tags) and len(ann.class_ids) == 1:
        return Label(next(iter(ann.class_ids)))
    return ann


def _resolve(source: Path, project: Project, fmt: str | None, report_problems: list[Problem]) -> tuple[Path, str, FormatDataset]:
    root = source
    if is_archive(source):
        root, probs = extract(source, project.root / ".cache" / "archives", project.settings)
        report_problems.extend(probs)
    if fmt is None:
        root = unwrap_folder(root)  # dataset.zip holding dataset/BCCD/..., a folder dropped in the browser
        fmt = detect_source(root)  # a format, "images" for a folder of nothing but images, else FormatError
    if fmt == "images":
        return root, fmt, images_only(root, project.task)
    return root, fmt, get_format(fmt).load(root)


def import_source(
    project: Project, source: str | Path, *, format: str | None = None, author: str = "import",
    create_classes: bool = True, progress: bool = False, on_conflict: OnConflict | str = OnConflict.FIRST,
) -> ImportReport:
    """Import ``source`` (folder, annotation file or archive) into ``project``; returns a per-file report.

    ``format`` is a registry name from :data:`visionloop.formats.FORMATS`, ``"images"`` for plain images, or None to
    detect it. Unknown class names are added to the ontology unless ``create_classes`` is False, in which case their
    instances are dropped and reported. ``on_conflict`` (``first``, ``last``, ``merge``) decides what is stored for
    a byte-identical image that two annotation files annotate differently (see :mod:`visionloop.ingest.conflicts`).
    Raises :class:`~visionloop.ingest.runs.ImportRunningError` while another import into the project runs.
    """
    source = Path(source)
    policy = OnConflict.parse(on_conflict)
    if not source.exists():
        raise FormatError(source, format, "no such file or folder")
    run = start_run(project, str(source.resolve()), format)
    report = ImportReport(source=str(source), format=format or "")
    try:
        _run(project, run, source, format, report, author=author, create_classes=create_classes,
             progress=progress, policy=policy)
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        run.finish(status, {**report.to_json(), "error": f"{type(e).__name__}: {e}"[:500]}, format=report.format)
        raise
    run.finish("done", report.to_json(), format=report.format)
    return report


@dataclass
class _Context:
    """What every batch of one import shares."""

    project: Project
    local_to_project: dict[int, int]
    onto: Any
    author: str
    report: ImportReport
    policy: OnConflict
    counts: Counter[str] = field(default_factory=Counter)
    seen: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """Image key -> (name, payload stored) of each annotated image met so far in this import (payloads are the
    compact form: a semantic mask is RLE)."""
    counted: dict[str, Counter[str]] = field(default_factory=dict)
    """Image key -> instances it added to ``counts`` (replaced when a conflict stores another annotation)."""
    subset_names: dict[str, dict[str, str]] = field(default_factory=dict)
    """Image key -> {subset: sample name} met in this import."""
    subsets_reported: dict[str, int] = field(default_factory=dict)
    """Image key -> how many subsets its last subset conflict named."""


def _run(
    project: Project, run: ImportRun, source: Path, format: str | None, report: ImportReport, *, author: str,
    create_classes: bool, progress: bool, policy: OnConflict,
) -> None:
    root, fmt, ds = _resolve(source, project, format, report.problems)
    report.format = fmt
    report.problems.extend(ds.problems)
    folder = _Folder.of(root)
    if root.is_dir():  # a file's folder is not walked: it may hold much more than the dataset
        named = {p.path for p in report.problems}
        report.problems.extend(Problem(path=rel, action="not read", reason=LINK_OUT)
                               for rel in folder.links_out() if rel not in named)

    before = set(project.ontology().names)
    known = {n: project.ontology().get(n) for n in ds.classes}
    if create_classes:
        mapping_names = project.class_ids(ds.classes, create=True)
    else:
        mapping_names = {n: c.id for n, c in known.items() if c is not None}
    local_to_project = {i: mapping_names[n] for i, n in enumerate(ds.classes) if n in mapping_names}
    report.classes_added = [n for n in project.ontology().names if n not in before]
    ctx = _Context(project, local_to_project, project.ontology(), author, report, policy)

    size = project.settings.import_batch
    stream = progress_file(project.settings.progress_file)
    columns = (TextColumn("[bold]import"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # Reading, hashing, probing and writing blobs release the GIL: a small pool keeps both cores busy while the
    # database work of the previous batch runs.
    with Progress(*columns, disable=not progress, transient=True) as bar, ThreadPoolExecutor(READERS) as pool:
        task_id = bar.add_task("import", total=len(ds.samples))
        chunks = [ds.samples[i:i + size] for i in range(0, len(ds.samples), size)]

        def submit(chunk: list[Sample]) -> list[Future[NewImage | None]]:
            return [pool.submit(_read_sample, project, s, report, folder) for s in chunk]

        pending = submit(chunks[0]) if chunks else []
        for k, chunk in enumerate(chunks):
            news = [f.result() for f in pending]
            if k + 1 < len(chunks):  # read the next batch while this one is written to the database
                pending = submit(chunks[k + 1])
            report.images_seen += len(chunk)
            batch = [(s, n) for s, n in zip(chunk, news, strict=True) if n is not None]
            if batch:
                _commit(ctx, batch)
            run.beat()
            bar.advance(task_id, len(chunk))
            if stream is not None:
                stream.write(fraction=report.images_seen / len(ds.samples), force=k + 1 == len(chunks),
                             message=f"{report.images_seen}/{len(ds.samples)} images read")
    report.instances = {name: n for name, n in ctx.counts.items() if n > 0}


def _read_sample(project: Project, sample: Sample, report: ImportReport, folder: _Folder) -> NewImage | None:
    where = sample.name
    if sample.image_path is None and sample.image_data is None:
        if not any(where in p.path or where in p.reason for p in report.problems):  # loaders often said so already
            report.problems.append(Problem(path=where, reason="annotation names an image that is not there"))
        return None
    try:
        if sample.image_data is not None:
            data, source_uri = sample.image_data, f"{sample.meta.get('annotation_file', where)} (embedded image)"
        else:
            path = cast(Path, sample.image_path)  # not None: checked above
            if folder.link_out(path):
                rel = Path(os.path.abspath(path)).relative_to(folder.path).as_posix()
                if not any(p.path == rel for p in report.problems):  # not already named by the folder's walk
                    report.problems.append(Problem(path=where, action="not read", reason=LINK_OUT))
                return None
            size = path.stat().st_size
            if size > project.settings.max_file_bytes:
                raise ImageError(where, f"file of {size:,} bytes exceeds VISIONLOOP_MAX_FILE_BYTES")
            data, source_uri = path.read_bytes(), str(path.resolve())
        if len(data) > project.settings.max_file_bytes:
            raise ImageError(where, f"{len(data):,} bytes exceed VISIONLOOP_MAX_FILE_BYTES")
        info = probe(data, name=where, max_pixels=project.settings.max_image_pixels)
    except ImageError as e:
        report.problems.append(Problem(path=where, reason=e.reason))
        return None
    except OSError as e:
        report.problems.append(Problem(path=where, reason=f"cannot read file: {e}"))
        return None
    sha = hashlib.sha256(data).hexdigest()
    project.blobs.put(data, sha)
    if needs_pyramid(info.width, info.height):
        _build_tiles(project, sha, data, where, report)
    meta = dict(sample.meta)
    if info.orientation != 1:
        meta["exif_orientation"] = info.orientation
    if info.mode not in {"RGB", "L"}:
        meta["mode"] = info.mode
    if sample.subset:
        meta["subset"] = sample.subset
    if (sample.width, sample.height) not in {(None, None), (info.width, info.height)}:
        report.problems.append(Problem(path=where, action="kept", reason=(
            f"annotation says {sample.width}x{sample.height} but the image is {info.width}x{info.height}")))
    return NewImage(
        sha256=sha, width=info.width, height=info.height, format=info.format, name=_stored_name(sample.name),
        source_uri=source_uri, video_id=sample.video_id, frame_index=sample.frame_index,
        timestamp=sample.timestamp, meta=meta,
    )


def _build_tiles(project: Project, sha: str, data: bytes, where: str, report: ImportReport) -> None:
    """The tile pyramid of an image larger than 4096 px on a side, built now (bounded memory, one at a time) so it
    opens at once in the browser; an image whose tiles cannot be made is kept, and the problem reported."""
    try:
        TileStore.of(project).ensure(sha, lambda: data, name=where)
    except ImageError as e:
        report.problems.append(Problem(path=where, action="kept without tiles", reason=(
            f"{e.reason}; the image is stored, and `visionloop tiles PROJECT` tries its tiles again")))


def _stored_name(name: str) -> str:
    """The image name a project keeps: as the source gives it when it is a safe relative path, else made safe
    (a name is shown by the API and used as a path on export; it never holds ``..``, a drive or a NUL)."""
    try:
        return safe_relative_name(name)
    except UnsafePathError:
        return safe_export_name(name)


def _resolve_conflict(ctx: _Context, key: str, sha256: str, name: str, ann: Annotation) -> Annotation | None:
    """The annotation to store for an image met before in this import (None: keep what is stored)."""
    first_name, first_payload = ctx.seen[key]
    if first_payload == annotation_to_payload(ann):
        return ann
    first = annotation_from_payload(first_payload)
    kept: Annotation | None = first
    how = "kept the first"
    if ctx.policy is OnConflict.LAST:
        kept, how = ann, "kept the last"
    elif ctx.policy is OnConflict.MERGE:
        merged = merge_annotations(first, ann)
        kept, how = (merged, "merged both") if merged is not None else (first, "cannot merge these; kept the first")
    ctx.report.conflicts.append(Conflict(sha256=sha256, first_name=first_name, first=first_payload,
                                         second_name=name, second=annotation_to_payload(ann),
                                         kept=ctx.policy.value if how != "cannot merge these; kept the first"
                                         else OnConflict.FIRST.value))
    ctx.report.problems.append(Problem(path=f"{first_name} = {name}", action=f"conflict: {how}", reason=(
        f"byte-identical images, different annotations ({describe(first, ctx.onto)} vs "
        f"{describe(ann, ctx.onto)}); both are in the report's conflicts; --on-conflict first|last|merge chooses")))
    if kept is first:
        return None
    ctx.seen[key] = (first_name, annotation_to_payload(kept))
    return kept


def _commit(ctx: _Context, batch: list[tuple[Sample, NewImage]]) -> None:
    project, report, onto, author = ctx.project, ctx.report, ctx.onto, ctx.author
    with project.transaction() as conn:
        results = project.add_images([n for _, n in batch], conn=conn)
        ids = [image_id for image_id, _ in results]
        _report_subsets(ctx, conn, batch, ids)
        heads = dict(conn.execute(select(AnnotationRow.image_id, AnnotationRow.head).where(AnnotationRow.image_id.in_(ids))).all())
        history: dict[int, list[Any]] = {}
        for image_id, payload in conn.execute(
            select(AnnotationRow.image_id, RevisionRow.payload)
            .join(RevisionRow, RevisionRow.annotation_id == AnnotationRow.id)
            .where(AnnotationRow.image_id.in_(ids))
        ):
            history.setdefault(image_id, []).append(payload)
        fresh: list[tuple[int, Annotation]] = []
        fresh_payloads: dict[int, dict[str, Any]] = {}
        for (sample, new), (image_id, created) in zip(batch, results, strict=True):
            if created:
                report.images_added += 1
            else:
                report.images_existing += 1
            if sample.annotation is None:
                continue
            try:
                ann = _to_project(sample.annotation, ctx.local_to_project, project.task, sample.name, report)
                ann, notes = validate_for_image(ann, new.width, new.height, clip_outside=True)
                report.problems.extend(Problem(path=sample.name, action="clipped", reason=n) for n in notes)
                key = image_key(new)
                if key in ctx.seen:
                    resolved = _resolve_conflict(ctx, key, new.sha256, sample.name, ann)
                    if resolved is None:
                        continue
                    ann = resolved
                else:
                    ctx.seen[key] = (sample.name, annotation_to_payload(ann))
                if image_id not in heads and image_id not in fresh_payloads:
                    project._check(ann, onto)
                    fresh.append((image_id, ann))
                    fresh_payloads[image_id] = annotation_to_payload(ann)
                else:
                    payload = annotation_to_payload(ann)
                    if payload in history.get(image_id, []) or fresh_payloads.get(image_id) == payload:
                        report.annotations_unchanged += 1
                        continue
                    if image_id in fresh_payloads:  # the same image twice in one batch: first one must be stored
                        project.save_new_annotations(fresh, author=author, conn=conn, onto=onto)
                        heads.update({i: 1 for i, _ in fresh})
                        history.update({i: [fresh_payloads[i]] for i, _ in fresh})
                        fresh, fresh_payloads = [], {}
                    project.save_annotation(image_id, ann, base_revision=heads.get(image_id), author=author,
                                            conn=conn, _onto=onto)
                    history.setdefault(image_id, []).append(payload)
                    heads[image_id] = (heads.get(image_id) or 0) + 1
                report.annotations_saved += 1
                added = Counter({onto.by_id(cid).name: n for cid, n in annotation_class_counts(ann).items()})
                ctx.counts.subtract(ctx.counted.get(key, Counter()))  # a conflict replaced what was counted
                ctx.counts.update(added)
                ctx.counted[key] = added
            except AnnotationValidationError as e:
                report.problems.append(Problem(path=sample.name, reason=f"annotation not imported: {e}"))
        project.save_new_annotations(fresh, author=author, conn=conn, onto=onto)


def _report_subsets(ctx: _Context, conn: Any, batch: list[tuple[Sample, NewImage]], ids: list[int]) -> None:
    """Report each image that now carries several source subsets (this import's, or an earlier one's too)."""
    mine = {}
    for (sample, new), image_id in zip(batch, ids, strict=True):
        if sample.subset:
            key = image_key(new)
            ctx.subset_names.setdefault(key, {}).setdefault(sample.subset, new.name)
            mine[image_id] = (key, new.sha256)
    if not mine:
        return
    for r in conn.execute(select(ImageRow.id, ImageRow.name, ImageRow.meta).where(ImageRow.id.in_(list(mine)))):
        key, sha = mine[r.id]
        subsets = subsets_of(r.meta or {})
        if len(subsets) < 2 or ctx.subsets_reported.get(key) == len(subsets):
            continue
        ctx.subsets_reported[key] = len(subsets)
        names = [ctx.subset_names[key].get(s, r.name) for s in subsets]
        ctx.report.subset_conflicts = [c for c in ctx.report.subset_conflicts if c.sha256 != sha]
        ctx.report.subset_conflicts.append(SubsetConflict(sha256=sha, subsets=subsets, names=names))
        ctx.report.problems.append(Problem(path=" = ".join(f"{n} ({s})" for n, s in zip(names, subsets, strict=True)), action="kept once, in all subsets",
                                           reason=(
            f"byte-identical image listed in subsets {', '.join(subsets)}; stored once with every subset "
            "(a version made with --splits source reports it as a leak between splits)")))


def _to_project(
    ann: Annotation, local_to_project: dict[int, int], task: Task, where: str, report: ImportReport,
) -> Annotation:
    """Map the format's class indexes to project ids; drop (and report) instances of classes not mapped."""
    boxes = ann.boxes if isinstance(ann, Instances) else ann if isinstance(ann, Boxes) else None
    if boxes is not None:
        keep = [i for i, c in enumerate(boxes.class_id.tolist()) if c in local_to_project]
        if len(keep) < len(boxes):
            report.problems.append(Problem(path=where, action="dropped", reason=(
                f"{len(boxes) - len(keep)} instance(s) of unknown classes")))
            sub = boxes.take(keep)
            ann = Instances(sub, [ann.segmentations[i] for i in keep]) if isinstance(ann, Instances) else sub
    elif isinstance(ann, Label) and ann.class_id not in local_to_project:
        raise AnnotationValidationError("label", expected="a known class", actual=ann.class_id)
    elif isinstance(ann, Tags) and not ann.class_ids <= set(local_to_project):
        report.problems.append(Problem(path=where, action="dropped", reason="tags of unknown classes"))
        ann = Tags(frozenset(c for c in ann.class_ids if c in local_to_project))
    elif isinstance(ann, SemanticMask):
        pass
    return adapt(remap_annotation(ann, local_to_project), task)
