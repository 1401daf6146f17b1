"""Immutable dataset versions: a frozen list of (image, annotation revision, split), an ontology snapshot, a hash.

Training, evaluation and export always name a version, so a model can be traced to exactly the data it saw.
Nothing here changes a version after :func:`create_version` wrote it; later edits append revisions that a version
does not see (``version_items`` returns the frozen revisions, not the current heads).

The content hash is sha256 over the task, the ontology snapshot and the sorted
``(image sha256, canonical revision payload JSON, split)`` of every item, so two versions with the same content have the
same hash whatever their names and creation times.

Splits are leak-free and stratified; see :func:`create_version` and :mod:`visionloop.storage.splits`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, insert, select, update

from visionloop.core.annotations import Annotation, annotation_from_payload
from visionloop.core.errors import AnnotationValidationError, ConflictError, ImageError, NotFoundError
from visionloop.core.ontology import Ontology
from visionloop.core.records import ImageRecord
from visionloop.core.task import Task
from visionloop.storage.events import EventKind, emit_event, version_created_payload
from visionloop.storage.models import AnnotationRow, HeadCountRow, ImageRow, RevisionRow, VersionItemRow, VersionRow
from visionloop.storage.production import ProductionSampleRow
from visionloop.storage.project import Project, _image_record, subsets_of
from visionloop.storage.review import ReviewState, state_filter
from visionloop.storage.splits import (
    SPLITS,
    GroupItem,
    SplitMode,
    assign_groups,
    class_presence,
    connected_groups,
    group_hint,
    near_duplicate_pairs,
    phash_hex,
    source_split,
    straddling_groups,
)

__all__ = [
    "SPLITS",
    "MissingSourceSplitError",
    "SplitMode",
    "VersionInfo",
    "VersionItem",
    "compute_missing_phashes",
    "create_version",
    "get_version",
    "list_versions",
    "version_items",
    "version_warnings",
]

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: ``"phash"``, ``"split"``."""

_HASH_MAGIC = b"visionloop-version/1\n"
_PHASH_BATCH = 512
_EXAMPLES = 10


class MissingSourceSplitError(ConflictError):
    """``splits="source"`` but some images carry no subset that names train, val or test.

    ``missing``: how many; ``total``: images in the version; ``examples``: a few of their names; ``subsets``: the
    unrecognised subset names found among them (with counts; ``""`` for no subset at all).
    """

    def __init__(self, *, missing: int, total: int, examples: list[str], subsets: dict[str, int]) -> None:
        self.missing, self.total, self.examples, self.subsets = missing, total, examples, subsets
        named = ", ".join(f"{k or '(none)'}: {n}" for k, n in sorted(subsets.items()))
        super().__init__(
            f"{missing} of {total} images have no source split (subsets {named}; e.g. {', '.join(examples)}); "
            "--splits source keeps the train/val/test the source came with and does not invent one for them: "
            "re-import them from files or folders named train/val/test, or use --splits random"
        )


@dataclass(frozen=True)
class VersionInfo:
    """A version's header.

    ``summary``: ``images`` (count), ``splits`` {split: images}, ``fractions`` {split: achieved fraction},
    ``classes`` {class name: {split: instances}}, ``groups`` (near-duplicate/video/source groups), ``near_duplicate_pairs``,
    ``largest_group``, ``hinted_groups``, ``unannotated`` (images without annotation), ``phash_failed``, ``leaks``
    (groups that straddle splits: ``groups``, ``images``, ``examples`` as lists of image names, ``same_image``: images
    the source lists in several splits; always 0 for random splits, which keep groups whole; reported, never
    changed, for source splits).
    ``params``: what it was created with (``splits``, ``seed``, ``fractions``, ``include_unannotated``,
    ``phash_distance``, ``author``).
    """

    name: str
    task: Task
    hash: str
    created_at: datetime
    ontology: Ontology
    params: dict[str, Any]
    summary: dict[str, Any]

    @property
    def splits(self) -> dict[str, int]:
        return dict(self.summary.get("splits", {}))


@dataclass(frozen=True)
class VersionItem:
    """One frozen item: the image, its annotation at the frozen revision (None: not annotated), its split."""

    image: ImageRecord
    annotation: Annotation | None
    split: str
    """``"train"``, ``"val"`` or ``"test"``."""
    revision_id: int | None = None
    """Database id of the frozen revision (None when not annotated)."""


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _info(row: Any) -> VersionInfo:
    return VersionInfo(
        name=row.name, task=Task(row.task), hash=row.hash, created_at=row.created_at,
        ontology=Ontology.from_json(row.ontology), params=dict(row.params or {}), summary=dict(row.summary or {}),
    )


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(x) for x in fractions)
    if len(values) != 3 or any(not (0 <= x <= 1) for x in values) or abs(sum(values) - 1) > 1e-6:
        raise AnnotationValidationError(
            "split fractions", expected="three numbers in [0, 1] for train, val, test that sum to 1",
            actual=list(fractions), hint="for example 0.7 0.15 0.15",
        )
    return values  # type: ignore[return-value]


def _next_name(conn: Connection) -> str:
    names = conn.execute(select(VersionRow.name)).scalars().all()
    numbers = [int(m.group(1)) for n in names if (m := re.fullmatch(r"v(\d+)", n))]
    return f"v{max(numbers, default=0) + 1}"


# ---- perceptual hashes ----------------------------------------------------------------------------------------


def _phash_or_none(project: Project, sha: str) -> str | None:
    try:
        return phash_hex(project.blobs.read(sha))
    except (ImageError, OSError):
        return None


def compute_missing_phashes(
    project: Project, *, image_ids: Sequence[int] | None = None, workers: int | None = None,
    progress: ProgressFn | None = None,
) -> int:
    """Compute and store the perceptual hash of every image (or of ``image_ids``) that has none; returns how many.

    Images are decoded at reduced size in a thread pool and the hashes are written in batches, so an interrupted run
    keeps what it computed. Images that cannot be decoded keep no hash (they then group only by video/source).
    """
    q = (select(ImageRow.id, ImageRow.sha256).where(ImageRow.phash.is_(None), ImageRow.deleted_at.is_(None))
         .order_by(ImageRow.id))
    with project.engine.connect() as conn:
        todo = [(r.id, r.sha256) for r in conn.execute(q)]
    if image_ids is not None:
        wanted = set(image_ids)
        todo = [t for t in todo if t[0] in wanted]
    if not todo:
        return 0
    workers = workers or min(8, os.cpu_count() or 1)
    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(todo), _PHASH_BATCH):
            batch = todo[start:start + _PHASH_BATCH]
            hashes = list(pool.map(lambda t: _phash_or_none(project, t[1]), batch))
            project.set_phashes({i: h for (i, _), h in zip(batch, hashes, strict=True) if h is not None})
            done += len(batch)
            if progress:
                progress("phash", done, len(todo))
    return len(todo)


# ---- create -----------------------------------------------------------------------------------------------------


@dataclass
class _Item:
    image_id: int
    name: str
    sha256: str
    video_id: str | None
    meta: dict[str, Any]
    phash: str | None
    revision_id: int | None
    payload: dict[str, Any] | None
    counts: dict[int, int]


def _read_items(conn: Connection, *, include_unannotated: bool, approved_only: bool = False) -> list[_Item]:
    q = (
        select(ImageRow.id, ImageRow.name, ImageRow.sha256, ImageRow.video_id, ImageRow.meta, ImageRow.phash,
               AnnotationRow.id.label("ann_id"), AnnotationRow.head_revision_id, RevisionRow.payload)
        .outerjoin(AnnotationRow, AnnotationRow.image_id == ImageRow.id)
        .outerjoin(RevisionRow, RevisionRow.id == AnnotationRow.head_revision_id)
        .where(ImageRow.deleted_at.is_(None))
        .order_by(ImageRow.id)
    )
    if approved_only:
        q = q.where(state_filter(ReviewState.APPROVED))
    counts: dict[int, dict[int, int]] = {}
    for r in conn.execute(select(HeadCountRow.annotation_id, HeadCountRow.class_id, HeadCountRow.count)):
        counts.setdefault(r.annotation_id, {})[r.class_id] = r.count
    items = []
    for r in conn.execute(q):
        if r.head_revision_id is None and not include_unannotated:
            continue
        items.append(_Item(
            image_id=r.id, name=r.name, sha256=r.sha256, video_id=r.video_id, meta=r.meta or {}, phash=r.phash,
            revision_id=r.head_revision_id, payload=r.payload,
            counts=counts.get(r.ann_id, {}) if r.ann_id is not None else {},
        ))
    return items


def _parse_phash(value: str | None) -> int | None:
    """The 64-bit hash of a stored 16-hex-digit phash (as :func:`phash_hex` writes); None for anything else."""
    if not value or len(value) != 16:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


def _groups(items: list[_Item], phash_distance: int) -> tuple[list[list[int]], int]:
    """Item indexes per group (near-duplicates, one video, one meta ``group``) and the near-duplicate pair count."""
    hashed = [(i, h) for i, it in enumerate(items) if (h := _parse_phash(it.phash)) is not None]
    pairs = near_duplicate_pairs([h for _, h in hashed], phash_distance) if phash_distance >= 0 else []
    edges = [(hashed[a][0], hashed[b][0]) for a, b in pairs]
    by_key: dict[tuple[str, str], list[int]] = {}
    for i, it in enumerate(items):
        if it.video_id:
            by_key.setdefault(("video", it.video_id), []).append(i)
        group = it.meta.get("group")
        if group is not None and group != "":
            by_key.setdefault(("group", str(group)), []).append(i)
    for members in by_key.values():
        edges.extend((members[0], m) for m in members[1:])
    return connected_groups(len(items), edges), len(pairs)


def _random_splits(
    items: list[_Item], members: list[list[int]], fractions: tuple[float, float, float], seed: int, *,
    hints: bool = True,
) -> tuple[dict[int, str], int]:
    """Split per item index from the greedy stratified assignment of whole groups, and the hinted group count
    (``hints=False`` ignores the images' ``split_hint``)."""
    groups: list[GroupItem] = []
    for g_members in members:
        classes: Counter[int] = Counter()
        for i in g_members:
            classes.update(class_presence(items[i].counts))
        hint = group_hint(items[i].meta.get("split_hint") for i in g_members) if hints else None
        groups.append(GroupItem(key=g_members[0], size=len(g_members), classes=dict(classes), hint=hint))
    placed = assign_groups(groups, fractions, seed=seed)
    split_of = {i: placed[g.key] for g, g_members in zip(groups, members, strict=True) for i in g_members}
    return split_of, sum(1 for g in groups if g.hint is not None)


def _source_splits(items: list[_Item]) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Split per item index from the subset its importer recorded (MissingSourceSplitError when any has none), and
    the splits of each item the source lists in several (a byte-identical image under ``train/`` and ``val/``): it
    is put in the first one the source gave and reported as a leak, never silently."""
    split_of: dict[int, str] = {}
    several: dict[int, list[str]] = {}
    missing: list[int] = []
    for i, it in enumerate(items):
        splits = list(dict.fromkeys(s for name in subsets_of(it.meta) if (s := source_split(name)) is not None))
        if not splits:
            missing.append(i)
            continue
        split_of[i] = splits[0]
        if len(splits) > 1:
            several[i] = splits
    if missing:
        subsets = Counter(str(items[i].meta.get("subset") or "") for i in missing)
        raise MissingSourceSplitError(missing=len(missing), total=len(items),
                                      examples=[items[i].name for i in missing[:5]], subsets=dict(subsets))
    return split_of, several


def _base_splits(conn: Connection, base: str) -> dict[int, str]:
    """Split per image id of version ``base``."""
    vid = _version_row(conn, base).id
    return {r.image_id: r.split for r in conn.execute(
        select(VersionItemRow.image_id, VersionItemRow.split).where(VersionItemRow.version_id == vid))}


def _frozen_test_splits(
    items: list[_Item], members: list[list[int]], base_split: dict[int, str], randoms: set[int],
    fractions: tuple[float, float, float], seed: int,
) -> tuple[dict[int, str], dict[str, int]]:
    """Split per item index when a base version's test set stays frozen (see ``create_version(base=...)``); items
    left without a split are held out. Also the counts of what happened (``kept``, ``held_out``, ``new``,
    ``new_test``: new random-slice images put in test)."""
    split_of: dict[int, str] = {}
    held_out = 0
    free_random: list[list[int]] = []
    free_other: list[list[int]] = []
    for g in members:
        old = [i for i in g if items[i].image_id in base_split]
        for i in old:
            split_of[i] = base_split[items[i].image_id]
        new = [i for i in g if items[i].image_id not in base_split]
        if not new:
            continue
        if old:
            joined = group_hint(split_of[i] for i in old) or split_of[old[0]]
            for i in new:
                if joined != "test" or items[i].image_id in randoms:
                    split_of[i] = joined
                else:
                    held_out += 1
        elif all(items[i].image_id in randoms for i in new):
            free_random.append(new)
        else:
            free_other.append(new)
    train_val = (fractions[0], fractions[1], 0.0)
    if sum(train_val) <= 0:
        train_val = (1.0, 0.0, 0.0)
    for groups, fr in ((free_random, fractions), (free_other, train_val)):
        if groups:
            sub = _Sub(items, groups)
            placed, _ = _random_splits(sub.items, sub.members, fr, seed, hints=False)
            split_of.update({sub.index[k]: s for k, s in placed.items()})
    new_items = [i for i in split_of if items[i].image_id not in base_split]
    return split_of, {"kept": len(split_of) - len(new_items), "new": len(new_items), "held_out": held_out,
                      "new_test": sum(1 for i in new_items if split_of[i] == "test")}


class _Sub:
    """Some groups of items renumbered from 0 (``index``: new item index -> original index)."""

    def __init__(self, items: list[_Item], groups: list[list[int]]) -> None:
        self.index = [i for g in groups for i in g]
        self.items = [items[i] for i in self.index]
        starts = np.cumsum([0] + [len(g) for g in groups])
        self.members = [list(range(a, b)) for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True)]


def _keep_placed(
    items: list[_Item], members: list[list[int]], split_of: dict[int, str],
) -> tuple[list[_Item], list[list[int]], dict[int, str]]:
    """Items, groups and splits without the items that have no split, renumbered."""
    kept = [i for i in range(len(items)) if i in split_of]
    new_index = {old: k for k, old in enumerate(kept)}
    groups = [[new_index[i] for i in g if i in new_index] for g in members]
    return [items[i] for i in kept], [g for g in groups if g], {new_index[i]: s for i, s in split_of.items()}


def _leaks(
    items: list[_Item], members: list[list[int]], split_of: dict[int, str], several: dict[int, list[str]] | None = None,
) -> dict[str, Any]:
    """Groups that straddle splits, and images that the source itself lists in several splits (``same_image``:
    each is one group of its own, shown in every split it was listed in, the first being where it was put)."""
    leaking = straddling_groups(members, split_of)
    several = several or {}
    examples = [[f"{items[i].name} ({split_of[i]})" for i in g[:4]] for g in leaking[:_EXAMPLES]]
    examples += [[f"{items[i].name} ({s}{', kept here' if k == 0 else ', same bytes'})" for k, s in enumerate(splits)]
                 for i, splits in list(several.items())[:max(0, _EXAMPLES - len(examples))]]
    return {
        "groups": len(leaking) + len(several),
        "images": sum(len(g) for g in leaking) + len(several),
        "same_image": len(several),
        "examples": examples,
    }


def _content_hash(task: Task, ontology: Ontology, records: list[tuple[str, Any, str]]) -> str:
    h = hashlib.sha256(_HASH_MAGIC)
    h.update(_canonical({"task": task.value, "ontology": ontology.to_json()}) + b"\n")
    for line in sorted(_canonical(list(r)) for r in records):
        h.update(line + b"\n")
    return h.hexdigest()


def create_version(
    project: Project,
    *,
    name: str | None = None,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    include_unannotated: bool = False,
    phash_distance: int = 4,
    author: str = "cli",
    splits: SplitMode | str = SplitMode.RANDOM,
    progress: ProgressFn | None = None,
    approved_only: bool = False,
    base: str | None = None,
) -> VersionInfo:
    """Freeze the project's current annotations into a new, immutable version with a train/val/test split.

    ``name`` defaults to the next free ``v1``, ``v2``, ...; an existing name is a ConflictError. Images without an
    annotation are left out unless ``include_unannotated`` (an empty Boxes/Tags counts as annotated).

    Split (deterministic for ``seed``; see :func:`visionloop.storage.splits.assign_groups` for the greedy rule):

    * Groups that never straddle splits: near-duplicates (64-bit perceptual hashes within ``phash_distance`` bits,
      joined transitively; a negative distance turns this off), frames of one video (same ``video_id``), and images
      sharing ``meta["group"]`` (e.g. crops of one parent image, patients, scenes).
    * Stratified by class: each group is placed where it brings per-class image counts closest to the fractions,
      each class normalised by its total, so a group follows its rarest class (detection/segmentation: rarest class
      present; tagging: rarest tag; classification: its label). Every split targets at least one image of each class
      that occurs in at least three groups, so rare classes reach val and test when the counts allow.
    * ``meta["split_hint"]``: when every image of a group carries one, the group goes to that split (the most common
      hint if they disagree) before the greedy pass. Derived projects (:mod:`visionloop.quality.derive`) set it so a
      derived version keeps the split of its source version.

    ``splits="source"`` keeps instead the split each image came with from its source (the subset its importer
    recorded: COCO ``instances_val2017.json``, ``train/``/``val/`` class folders, VOC ``ImageSets/Main``, YOLO
    ``images/train``; mapped by :func:`visionloop.storage.splits.source_split`), so a published result can be
    reproduced on its official split; ``seed``, ``fractions`` and split hints are then not used. Every image must
    have one: otherwise MissingSourceSplitError says how many do not (nothing is guessed for them). The leak check
    still runs: groups that straddle the source's splits are reported in ``summary["leaks"]``, never moved; so is an
    image the source lists in several splits (its byte-identical copies, stored once, ``meta["subsets"]``): it is
    put in the first split the source gave and counted in ``leaks["same_image"]``.

    ``approved_only`` keeps only images whose review state is ``approved`` (see :mod:`visionloop.storage.review`).

    ``base``: a version whose test set stays frozen (the retrain-and-compare loop). Every image of ``base`` that is
    still annotated keeps its split (with its current annotation; ``approved_only`` then applies to the other images
    only). A new image joins the split of a ``base`` image it is grouped with (near-duplicate, video, meta group),
    except that a new image grouped with a ``base`` test image is left out of the version (``summary["held_out"]``)
    unless it is in the production random slice. Other new images go to train and val only, in the proportions of
    ``fractions``, except groups of production random-slice images (``production_samples.random_slice``), which are
    split in the usual proportions: so the test set grows only by the unbiased random slice, never by actively chosen
    images. ``split_hint`` is not followed for new images (it could name test). ``splits`` must be ``random``.

    Missing perceptual hashes are computed first (and stored, so the next version is fast). The version is written
    in one transaction, with its ``version.created`` event (webhooks). ``progress(stage, done, total)`` is called during long stages.
    """
    fr = _check_fractions(fractions)
    try:
        mode = SplitMode(splits)
    except ValueError:
        raise NotFoundError("split mode", splits, choices=[m.value for m in SplitMode]) from None
    if base is not None and mode is not SplitMode.RANDOM:
        raise ConflictError("a version based on another keeps that version's splits and splits the new images at "
                            "random: drop splits=source (--splits source) or base")
    if name is not None and (not name or name != name.strip() or len(name) > 128):
        raise AnnotationValidationError("version name", expected="1-128 characters without surrounding spaces",
                                        actual=repr(name))
    if phash_distance >= 0:
        compute_missing_phashes(project, progress=progress)
    with project.transaction() as conn:
        if name is None:
            name = _next_name(conn)
        elif conn.execute(select(VersionRow.id).where(VersionRow.name == name)).first() is not None:
            raise ConflictError(f"version {name!r} exists already and versions never change; choose another name")
        ontology = project.ontology(conn)
        target = list(fr) if mode is SplitMode.RANDOM else None  # source splits have no target
        params = {"splits": mode.value, "seed": seed, "fractions": target, "include_unannotated": include_unannotated,
                  "phash_distance": phash_distance, "author": author}
        if approved_only:
            params["approved_only"] = True
        base_split = _base_splits(conn, base) if base is not None else None
        if base is not None:
            params["base"] = base
        version_id = conn.execute(insert(VersionRow).values(
            name=name, task=project.task.value, hash="", ontology=ontology.to_json(), params=params, summary={},
        )).inserted_primary_key[0]
        items = _read_items(conn, include_unannotated=include_unannotated,
                            approved_only=approved_only and base_split is None)
        if base_split is not None and approved_only:
            approved = set(conn.execute(select(ImageRow.id).where(state_filter(ReviewState.APPROVED))).scalars())
            items = [it for it in items if it.image_id in base_split or it.image_id in approved]
        if not items:
            raise ConflictError(
                "nothing to put in a version: no approved annotated images; approve some in review first"
                if approved_only else
                "nothing to put in a version: the project has no annotated images; import or annotate some, "
                "or pass include_unannotated=True (--include-unannotated)"
            )
        late = [it for it in items if it.phash is None] if phash_distance >= 0 else []
        for it in late:  # images added after the phash pass, or undecodable
            it.phash = _phash_or_none(project, it.sha256)
            if it.phash is not None:
                conn.execute(update(ImageRow).where(ImageRow.id == it.image_id).values(phash=it.phash))
        members, n_pairs = _groups(items, phash_distance)
        if progress:
            progress("split", 0, len(members))
        frozen: dict[str, int] = {}
        if base_split is not None:
            randoms = set(conn.execute(select(ProductionSampleRow.image_id)
                                       .where(ProductionSampleRow.random_slice.is_(True))).scalars())
            split_of, frozen = _frozen_test_splits(items, members, base_split, randoms, fr, seed)
            items, members, split_of = _keep_placed(items, members, split_of)
            several, hinted = {}, 0
        elif mode is SplitMode.SOURCE:
            (split_of, several), hinted = _source_splits(items), 0
        else:
            split_of, hinted = _random_splits(items, members, fr, seed)
            several = {}
        if progress:
            progress("split", len(members), len(members))

        records = [(it.sha256, it.payload, split_of[i]) for i, it in enumerate(items)]
        digest = _content_hash(project.task, ontology, records)
        split_sizes = Counter(split_of.values())
        class_split: dict[str, dict[str, int]] = {}
        names = {c.id: c.name for c in ontology.classes}
        for i, it in enumerate(items):
            for cid, n in it.counts.items():
                cname = names.get(cid)
                if cname is None:  # e.g. background 0 of a semantic mask
                    continue
                per = class_split.setdefault(cname, dict.fromkeys(SPLITS, 0))
                per[split_of[i]] += int(n)
        summary = {
            "images": len(items),
            "splits": {s: split_sizes.get(s, 0) for s in SPLITS},
            "fractions": {s: round(split_sizes.get(s, 0) / len(items), 4) for s in SPLITS},
            "target_fractions": dict(zip(SPLITS, target, strict=True)) if target else None,
            "classes": {c.name: class_split.get(c.name, dict.fromkeys(SPLITS, 0)) for c in ontology.active}
            | {k: v for k, v in class_split.items() if ontology.get(k) is None},  # retired ids still in use
            "split_source": mode.value,
            "groups": len(members),
            "largest_group": max(len(m) for m in members),
            "near_duplicate_pairs": n_pairs,
            "leaks": _leaks(items, members, split_of, several),
            "hinted_groups": hinted,
            "unannotated": sum(1 for it in items if it.revision_id is None),
            "phash_failed": sum(1 for it in items if it.phash is None) if phash_distance >= 0 else 0,
        }
        if base_split is not None:
            summary["base"] = {"version": base, **frozen}
        conn.execute(insert(VersionItemRow), [
            {"version_id": version_id, "image_id": it.image_id, "revision_id": it.revision_id, "split": split_of[i]}
            for i, it in enumerate(items)
        ])
        conn.execute(update(VersionRow).where(VersionRow.id == version_id).values(hash=digest, summary=summary))
        row = conn.execute(select(VersionRow).where(VersionRow.id == version_id)).one()
        emit_event(conn, EventKind.VERSION_CREATED, version_created_payload(
            project.name, name=name, content_hash=digest, author=author, splits=summary["splits"],
            images=summary["images"], params=params))
        return _info(row)


def version_warnings(info: VersionInfo) -> list[str]:
    """What a person should know about a version just made: leaks kept from the source's splits, empty splits,
    classes that no val or test image shows, images that could not be hashed for near-duplicate grouping."""
    out = []
    summary = info.summary
    leaks = summary.get("leaks") or {}
    if leaks.get("groups"):
        out.append(f"{leaks['groups']} groups of near-duplicate or related images ({leaks['images']} images) straddle "
                   f"the source's splits, e.g. {leaks['examples'][0]}; kept as the source has them (see "
                   "summary.leaks)")
    empty = [s for s, n in (summary.get("splits") or {}).items() if n == 0]
    if empty:
        out.append(f"split {', '.join(empty)} has no image ({summary.get('images', 0)} images in all): metrics "
                   "on it cannot be computed; annotate more images")
    for name, per in (summary.get("classes") or {}).items():
        missing = [s for s in ("val", "test") if per.get(s, 0) == 0]
        if missing and sum(per.values()) > 0:
            out.append(f"class {name!r} has no instance in {' or '.join(missing)}: its accuracy will not be measured")
    if summary.get("phash_failed"):
        out.append(f"{summary['phash_failed']} images could not be decoded to find near-duplicates; they are grouped "
                   "by video and meta group only")
    return out


# ---- read -------------------------------------------------------------------------------------------------------


def list_versions(project: Project) -> list[VersionInfo]:
    """Every version, oldest first."""
    with project.engine.connect() as conn:
        return [_info(r) for r in conn.execute(select(VersionRow).order_by(VersionRow.id))]


def _version_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(VersionRow).where(VersionRow.name == name)).first()
    if row is None:
        names = conn.execute(select(VersionRow.name).order_by(VersionRow.id)).scalars().all()
        raise NotFoundError("version", name, choices=list(names) or ["none yet: create one with visionloop version create"])
    return row


def get_version(project: Project, name: str) -> VersionInfo:
    """The version called ``name``; NotFoundError lists the known names."""
    with project.engine.connect() as conn:
        return _info(_version_row(conn, name))


def version_items(project: Project, name: str, *, split: str | None = None) -> list[VersionItem]:
    """The frozen items of a version (all, or one split), ordered by image id.

    Annotations are those of the frozen revisions, not the current heads.
    """
    if split is not None and split not in SPLITS:
        raise NotFoundError("split", split, choices=list(SPLITS))
    with project.engine.connect() as conn:
        vid = _version_row(conn, name).id
        q = (
            select(ImageRow, VersionItemRow.split, VersionItemRow.revision_id, RevisionRow.payload)
            .join(ImageRow, ImageRow.id == VersionItemRow.image_id)
            .outerjoin(RevisionRow, RevisionRow.id == VersionItemRow.revision_id)
            .where(VersionItemRow.version_id == vid)
            .order_by(VersionItemRow.image_id)
        )
        if split is not None:
            q = q.where(VersionItemRow.split == split)
        rows = conn.execute(q).all()
    return [
        VersionItem(
            image=_image_record(r), split=r.split, revision_id=r.revision_id,
            annotation=None if r.payload is None else annotation_from_payload(r.payload),
        )
        for r in rows
    ]
