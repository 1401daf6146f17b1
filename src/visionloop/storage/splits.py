"""Leak-free, stratified train/val/test assignment: perceptual hashes, grouping, and the greedy split.

Pure functions over plain Python/numpy values; :mod:`visionloop.storage.versions` feeds them from the project.

Pipeline:

1. :func:`phash_hex` — a 64-bit perceptual hash (DCT hash from ``imagehash``) of each image, decoded small.
2. :func:`near_duplicate_pairs` — pairs of hashes within a Hamming distance, found without comparing all pairs.
3. :func:`connected_groups` joins near-duplicates, frames of one video and members of one source group into groups.
4. :func:`assign_groups` puts each group wholly into one split, approaching the fractions overall and per class.
"""

from __future__ import annotations

import random
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

__all__ = [
    "SPLITS",
    "SplitMode",
    "GroupItem",
    "assign_groups",
    "class_presence",
    "connected_groups",
    "group_hint",
    "near_duplicate_pairs",
    "phash_hex",
    "source_split",
    "straddling_groups",
]

SPLITS: tuple[str, str, str] = ("train", "val", "test")


class SplitMode(StrEnum):
    """How a version assigns splits: ``random`` (seeded, leak-free, stratified) or ``source`` (the source's own)."""

    RANDOM = "random"
    SOURCE = "source"


_SOURCE_WORDS = {
    "train": "train", "training": "train", "trainval": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}


def source_split(subset: str | None) -> str | None:
    """The split a source subset name stands for, or None when it names none.

    The subset is what an importer read from the source (``instances_val2017.json`` -> ``val2017``, a ``valid/``
    folder, VOC ``ImageSets/Main/trainval.txt``). The first word of letters decides, case-insensitively:
    ``train``/``training``/``trainval`` -> ``train``; ``val``/``valid``/``validation``/``dev`` -> ``val``;
    ``test``/``testing`` -> ``test``. So ``val2017`` is ``val``; ``default`` or ``batch1`` are None.
    """
    if not subset:
        return None
    word = re.match(r"[a-z]*", subset.strip().lower())
    return _SOURCE_WORDS.get(word.group(0) if word else "")


def phash_hex(data: bytes) -> str:
    """64-bit perceptual hash of an encoded image as 16 hex digits.

    JPEGs are decoded at reduced size (``draft``), which is several times faster than a full decode and gives the
    same hash for practical purposes (phash works on a 32x32 grey thumbnail).
    """
    import imagehash

    from visionloop.core.imageio import decode

    return str(imagehash.phash(decode(data, draft=(64, 64))))


def connected_groups(n: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Members of each connected component of the undirected graph over ``0..n-1`` with ``edges``.

    Components come in the order of their smallest member, members ascending (``scipy.sparse.csgraph``).
    """
    if n == 0:
        return []
    pairs = np.asarray(list(edges), dtype=np.int64).reshape(-1, 2)
    graph = coo_array((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    out: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        out.setdefault(label, []).append(i)
    return sorted(out.values(), key=lambda m: m[0])


def _chunks(bits: int, pieces: int) -> list[tuple[int, int]]:
    """(shift, width) of ``pieces`` contiguous bit fields covering ``bits`` bits."""
    base, extra = divmod(bits, pieces)
    out, shift = [], 0
    for k in range(pieces):
        width = base + (1 if k < extra else 0)
        out.append((shift, width))
        shift += width
    return out


def near_duplicate_pairs(hashes: Sequence[int], max_distance: int, *, bits: int = 64) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, whose hashes differ in at most ``max_distance`` bits.

    Multi-index hashing (pigeonhole): split the ``bits`` into ``max_distance + 1`` fields; two hashes within the
    distance agree exactly on at least one field. Candidates are the hashes sharing a field value, so the work is
    about ``n * (bucket size)`` instead of ``n**2``: with 64-bit hashes and distance 4 each field has 12-13 bits,
    and 100k distinct hashes give buckets of a few dozen. Identical hashes are collapsed first, so thousands of
    exact copies cost nothing. ``max_distance < 0`` disables matching.
    """
    n = len(hashes)
    if n < 2 or max_distance < 0:
        return []
    arr = np.asarray([int(h) for h in hashes], dtype=np.uint64)
    uniq, rep, inverse = np.unique(arr, return_index=True, return_inverse=True)
    pairs: list[tuple[int, int]] = []
    # exact copies: chain members of each identical-hash class
    order = np.argsort(inverse, kind="stable")
    inv_sorted = inverse[order]
    same = np.flatnonzero(inv_sorted[1:] == inv_sorted[:-1])
    pairs.extend((int(order[k]), int(order[k + 1])) for k in same)
    # near copies among distinct hashes
    if len(uniq) < 2 or max_distance == 0:
        return pairs
    pieces = min(max_distance + 1, bits)
    found: set[tuple[int, int]] = set()
    for shift, width in _chunks(bits, pieces):
        keys = (uniq >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(keys, kind="stable")
        ks = keys[order]
        starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        ends = np.r_[starts[1:], len(ks)]
        for s, e in zip(starts, ends, strict=True):
            if e - s < 2:
                continue
            members = order[s:e]
            vals = uniq[members]
            for a in range(len(members) - 1):
                dist = np.bitwise_count(vals[a + 1:] ^ vals[a])
                for b in np.flatnonzero(dist <= max_distance):
                    u, v = int(members[a]), int(members[a + 1 + b])
                    found.add((min(u, v), max(u, v)))
    for u, v in sorted(found):
        a, b = int(rep[u]), int(rep[v])
        pairs.append((min(a, b), max(a, b)))
    return pairs


@dataclass
class GroupItem:
    """One group of images that must share a split.

    ``classes``: images of the group per class key (presence counts, used for stratification).
    ``hint``: a split the group must go to (from the images' ``split_hint``), or None.
    """

    key: Hashable
    size: int
    classes: dict[Hashable, int] = field(default_factory=dict)
    hint: str | None = None


def _targets(total: float, fractions: Sequence[float], groups_with: int) -> np.ndarray:
    """Target count per split; when the class is in enough groups, every split with a share gets at least 1."""
    f = np.asarray(fractions, dtype=np.float64)
    tgt = f * total
    positive = int((f > 0).sum())
    if groups_with >= positive and (tgt[f > 0] < 1).any():
        tgt = np.where(f > 0, 1 + f * (total - positive), 0.0)
    return tgt


def assign_groups(
    groups: Sequence[GroupItem], fractions: Sequence[float], *, seed: int = 0, splits: Sequence[str] = SPLITS,
) -> dict[Hashable, str]:
    """Split name for each group key: every group wholly in one split, sizes and classes near the fractions.

    Algorithm (greedy least squares):

    * Groups with a ``hint`` go to that split first (derived projects keep the split of their source version).
    * The other groups are shuffled with ``random.Random(seed)`` (so ties differ between seeds) and then sorted by
      size, largest first (a stable sort, so equal sizes keep the seeded order): big groups are placed while there
      is still room for them.
    * Each group goes to the split where adding it lowers the squared distance to the targets the most. The
      distance sums, over the group's classes, ``((count + added - target) / total_c) ** 2`` (each class normalised by
      its own total, so a rare class weighs as much as a common one and the group follows its rarest class), plus
      the same term for the split's image count. Targets are ``fraction * total``; when a class occurs in at least as
      many groups as there are non-empty splits, each such split targets at least one (``1 + f * (total - k)``), so
      every class reaches every split when the counts allow.
    * Remaining ties go to the seeded order of the splits.

    Deterministic for a given input and seed.
    """
    f = np.asarray(fractions, dtype=np.float64)
    if len(f) != len(splits):
        raise ValueError(f"need one fraction per split {list(splits)}, got {list(fractions)}")
    k = len(splits)
    index = {s: i for i, s in enumerate(splits)}
    total_images = float(sum(g.size for g in groups)) or 1.0
    class_total: dict[Hashable, float] = {}
    class_groups: dict[Hashable, int] = {}
    for g in groups:
        for c, n in g.classes.items():
            class_total[c] = class_total.get(c, 0.0) + n
            class_groups[c] = class_groups.get(c, 0) + 1
    class_keys = sorted(class_total, key=repr)
    cidx = {c: i for i, c in enumerate(class_keys)}
    targets = np.zeros((len(class_keys), k))
    for c, i in cidx.items():
        targets[i] = _targets(class_total[c], f, class_groups[c])
    size_target = _targets(total_images, f, len(groups))
    counts = np.zeros((len(class_keys), k))
    sizes = np.zeros(k)
    scale = np.asarray([class_total[c] for c in class_keys]) if class_keys else np.zeros(0)

    out: dict[Hashable, str] = {}

    def place(g: GroupItem, s: int) -> None:
        out[g.key] = splits[s]
        sizes[s] += g.size
        for c, n in g.classes.items():
            counts[cidx[c], s] += n

    free: list[GroupItem] = []
    for g in groups:
        if g.hint is not None and g.hint in index:
            place(g, index[g.hint])
        else:
            free.append(g)
    rng = random.Random(seed)
    rng.shuffle(free)
    free.sort(key=lambda g: -g.size)
    tie_order = list(range(k))
    rng.shuffle(tie_order)
    allowed = [s for s in tie_order if f[s] > 0] or tie_order
    for g in free:
        rows = [cidx[c] for c in g.classes]
        add = np.asarray([g.classes[c] for c in g.classes], dtype=np.float64)
        best, best_cost = allowed[0], np.inf
        for s in allowed:
            before_c = counts[rows, s] - targets[rows, s]
            delta = (((before_c + add) ** 2 - before_c**2) / scale[rows] ** 2).sum() if rows else 0.0
            before_s = sizes[s] - size_target[s]
            delta += ((before_s + g.size) ** 2 - before_s**2) / total_images**2
            if delta < best_cost - 1e-12:
                best, best_cost = s, delta
        place(g, best)
    return out


def group_hint(hints: Iterable[str | None], splits: Sequence[str] = SPLITS) -> str | None:
    """The split a group must go to: when every member has a hint, the most common one (ties: split order)."""
    values = list(hints)
    if not values or any(h not in splits for h in values):
        return None
    counts = {s: values.count(s) for s in splits}
    return max(splits, key=lambda s: counts[s])


def straddling_groups(groups: Sequence[Sequence[int]], split_of: Mapping[int, str]) -> list[list[int]]:
    """The groups whose members sit in more than one split (leaks: near-duplicates or one video across splits)."""
    return [list(g) for g in groups if len({split_of[i] for i in g}) > 1]


def class_presence(class_counts: Mapping[Hashable, int]) -> dict[Hashable, int]:
    """1 per class present (the unit of stratification: images containing the class)."""
    return {c: 1 for c, n in class_counts.items() if n > 0}
