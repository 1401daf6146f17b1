"""Per-annotator statistics: speed, acceptance, honeypot score, agreement with others, and per-day series.

Time is read from save timestamps (annotation revisions and honeypot/consensus answers): the time between two
consecutive saves of one annotator counts as work on the later save's image when it is at most ``gap_cap_s``
(default 10 minutes); a longer gap starts a new session and counts nothing (the first save of a session has no
measured time). Hence:

- ``hours``: measured working time; ``images_per_hour`` and ``objects_per_hour``: distinct images saved and the
  objects (boxes, instances, tags, labels, classes of a semantic mask) of each image's last save, per working hour;
- ``median_seconds_per_image``: the median, over images with measured time, of the time spent on each;
- ``acceptance_rate``: approved / (approved + rejected) review decisions on the annotator's work items (the
  approval of a consensus image whose answers agreed is no review and does not count);
- ``honeypot_score``: the mean score of their honeypot answers (F1, Jaccard, ...: see ``quality.agreement``);
- ``agreement``: the mean agreement of their consensus answers with the other annotators' answers of the image;
- ``days``: the same counts per UTC day, for trend charts.

Only users of the project are listed (imports and merges are not people).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from visionloop.storage.models import AnnotationRow, RevisionRow
from visionloop.storage.project import Project
from visionloop.storage.users import list_users
from visionloop.storage.work import CONSENSUS_AUTHOR
from visionloop.storage.work_rows import AnswerRow, AssignmentRow, WorkEventRow

__all__ = ["DEFAULT_GAP_CAP_S", "AnnotatorStats", "annotator_stats", "payload_objects"]

DEFAULT_GAP_CAP_S = 600.0


def payload_objects(payload: dict[str, Any]) -> int:
    """Objects in an annotation payload: boxes or instances, tags, 1 for a label, classes of a semantic mask."""
    kind = payload.get("type")
    if kind in ("boxes", "instances"):
        return len(payload.get("class_id", []))
    if kind == "tags":
        return len(payload.get("class_ids", []))
    if kind == "semantic":
        return len(payload.get("classes", {}))
    return 1


@dataclass
class _Day:
    objects: dict[int, int] = field(default_factory=dict)
    """image id -> objects of its last save that day"""
    seconds: float = 0.0
    approved: int = 0
    rejected: int = 0
    honeypots: list[float] = field(default_factory=list)

    def to_json(self, day: str) -> dict[str, Any]:
        return {"day": day, "images": len(self.objects), "objects": sum(self.objects.values()), "hours": self.seconds / 3600,
                "approved": self.approved, "rejected": self.rejected,
                "honeypot_score": statistics.fmean(self.honeypots) if self.honeypots else None}


@dataclass(frozen=True)
class AnnotatorStats:
    name: str
    role: str
    images: int
    objects: int
    hours: float
    images_per_hour: float | None
    objects_per_hour: float | None
    median_seconds_per_image: float | None
    approved: int
    rejected: int
    acceptance_rate: float | None
    honeypots: int
    honeypot_score: float | None
    consensus_answers: int
    agreement: float | None
    days: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _per(count: int, hours: float) -> float | None:
    return count / hours if hours > 0 else None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def annotator_stats(
    project: Project, *, names: Sequence[str] | None = None, gap_cap_s: float = DEFAULT_GAP_CAP_S,
) -> list[AnnotatorStats]:
    """Statistics of each project user (or of ``names``), by name."""
    users = {u.name: u.role.value for u in list_users(project) if names is None or u.name in names}
    who = list(users)
    saves: dict[str, list[tuple[datetime, int, dict[str, Any]]]] = defaultdict(list)
    with project.engine.connect() as conn:
        for r in conn.execute(select(RevisionRow.author, RevisionRow.created_at, AnnotationRow.image_id,
                                     RevisionRow.payload)
                              .join(AnnotationRow, AnnotationRow.id == RevisionRow.annotation_id)
                              .where(RevisionRow.author.in_(who))):
            saves[r.author].append((_utc(r.created_at), r.image_id, r.payload))
        answers = conn.execute(select(AnswerRow.annotator, AnswerRow.created_at, AnswerRow.image_id,
                                      AnswerRow.payload, AnswerRow.kind, AnswerRow.score)
                               .where(AnswerRow.annotator.in_(who))).all()
        decisions = conn.execute(select(AssignmentRow.annotator, WorkEventRow.state, WorkEventRow.created_at)
                                 .join(AssignmentRow, AssignmentRow.id == WorkEventRow.assignment_id)
                                 .where(AssignmentRow.annotator.in_(who), AssignmentRow.kind != "gold",
                                        WorkEventRow.author != CONSENSUS_AUTHOR,
                                        WorkEventRow.state.in_(["approved", "rejected"]))).all()
    days: dict[str, dict[str, _Day]] = defaultdict(lambda: defaultdict(_Day))
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for a in answers:
        saves[a.annotator].append((_utc(a.created_at), a.image_id, a.payload))
        if a.score is not None and a.score.get("score") is not None:
            scores[a.annotator][a.kind].append(float(a.score["score"]))
            if a.kind == "gold":
                days[a.annotator][_utc(a.created_at).date().isoformat()].honeypots.append(float(a.score["score"]))
    verdicts: dict[str, dict[str, int]] = defaultdict(lambda: {"approved": 0, "rejected": 0})
    for d in decisions:
        verdicts[d.annotator][d.state] += 1
        day = days[d.annotator][_utc(d.created_at).date().isoformat()]
        setattr(day, d.state, getattr(day, d.state) + 1)
    out = []
    for name in sorted(who):
        spent: dict[int, float] = defaultdict(float)
        last_objects: dict[int, int] = {}
        previous: datetime | None = None
        for at, image_id, payload in sorted(saves[name], key=lambda s: s[0]):
            gap = (at - previous).total_seconds() if previous is not None else None
            previous = at
            day = days[name][at.date().isoformat()]
            day.objects[image_id] = last_objects[image_id] = payload_objects(payload)
            if gap is not None and gap <= gap_cap_s:
                spent[image_id] += gap
                day.seconds += gap
        hours = sum(spent.values()) / 3600
        n_images, n_objects = len(last_objects), sum(last_objects.values())
        v = verdicts[name]
        decided = v["approved"] + v["rejected"]
        out.append(AnnotatorStats(
            name=name, role=users[name], images=n_images, objects=n_objects, hours=hours,
            images_per_hour=_per(n_images, hours), objects_per_hour=_per(n_objects, hours),
            median_seconds_per_image=statistics.median(t for t in spent.values() if t > 0)
            if any(t > 0 for t in spent.values()) else None,
            approved=v["approved"], rejected=v["rejected"],
            acceptance_rate=v["approved"] / decided if decided else None,
            honeypots=len(scores[name]["gold"]), honeypot_score=_mean(scores[name]["gold"]),
            consensus_answers=len(scores[name]["consensus"]), agreement=_mean(scores[name]["consensus"]),
            days=[days[name][d].to_json(d) for d in sorted(days[name])]))
    return out
