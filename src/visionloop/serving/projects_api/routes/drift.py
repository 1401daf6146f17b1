"""Drift routes: the reports of past drift checks, a new check as a job, and the latest report as Prometheus metrics.

A check compares recent production samples with the deployed model's training data (see
:mod:`visionloop.active.drift_check`); it embeds and predicts images, so it runs as a ``drift`` job, never in the
request. ``GET .../metrics`` answers the latest report in the Prometheus text format for a scraper that sends a
project token (``Authorization: Bearer``; a viewer's token is enough).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from visionloop.active.drift import IMAGE_STATS, DriftThresholds
from visionloop.active.drift_check import parse_window
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.serving.projects_api.drift_schemas import DriftCheckRequest, DriftReportsPublic
from visionloop.serving.projects_api.job_schemas import JobPublic
from visionloop.serving.projects_api.routes.jobs import JobQueueDep, job_public
from visionloop.storage.drift import MAX_REPORTS, DriftReport, latest_drift_report, list_drift_reports

__all__ = ["drift_metrics", "router"]

router = APIRouter(prefix="/projects/{project}", tags=["drift"], responses=ERROR_RESPONSES)

_GAUGES = (
    ("mmd", "visionloop_drift_mmd", "Unbiased MMD² of production vs reference embeddings."),
    ("mmd_p", "visionloop_drift_mmd_p", "Permutation p-value of the MMD (alert below 0.01)."),
    ("psi", "visionloop_drift_psi", "Population stability index of the predicted classes (alert above 0.2)."),
    ("confidence_p", "visionloop_drift_confidence_p", "Two-sample p-value of the confidences (alert below 0.01)."),
)


class _ReportCollector:
    """The latest report of one project as gauges labelled with the project (none when there is no report)."""

    def __init__(self, project: str, report: DriftReport | None) -> None:
        self.project, self.report = project, report

    def collect(self) -> Iterator[Metric]:
        r, label = self.report, [self.project]
        if r is None:
            return
        for key, name, doc in _GAUGES:
            value = getattr(r, key)
            if value is not None:
                g = GaugeMetricFamily(name, doc + " Latest drift report.", labels=["project"])
                g.add_metric(label, float(value))
                yield g
        psi = GaugeMetricFamily("visionloop_drift_image_psi", "PSI of an image statistic (size, brightness, blur). "
                                "Latest drift report.", labels=["project", "stat"])
        for stat in IMAGE_STATS:
            if stat in r.image_stats:
                psi.add_metric([self.project, stat], float(r.image_stats[stat]["psi"]))
        yield psi
        for name, doc, value in (
            ("visionloop_drift_alert", "1 when the latest drift report alerted.", float(r.alert)),
            ("visionloop_drift_production_samples", "Production samples the latest drift report compared.",
             float(r.n_production)),
            ("visionloop_drift_report_timestamp_seconds", "When the latest drift report was made (Unix time).",
             r.created_at.timestamp() if r.created_at else 0.0),
        ):
            g = GaugeMetricFamily(name, doc, labels=["project"])
            g.add_metric(label, value)
            yield g


def drift_metrics(project: str, report: DriftReport | None) -> bytes:
    """The Prometheus text exposition of ``report`` for ``project``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(project, report))  # type: ignore[arg-type]
    return generate_latest(registry)


@router.get("/drift", response_model=DriftReportsPublic, summary="Drift reports, newest first")
def get_drift_reports(project: ProjectDep, limit: Annotated[int, Query(ge=1, le=MAX_REPORTS)] = 100,
                      ) -> dict[str, Any]:
    return {"thresholds": DriftThresholds().to_json(),
            "reports": [r.to_json() for r in list_drift_reports(project, limit=limit)]}


@router.post("/drift", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Queue a drift check (the drift job) of the deployed model or another package")
def start_drift_check(body: DriftCheckRequest, project: ProjectDep, user: AdminDep, queue: JobQueueDep) -> JobPublic:
    parse_window(body.window)  # a bad window is a 422 now, not a failed job later
    params = {k: v for k, v in body.model_dump().items() if v not in (None, False)}
    return job_public(queue.submit(project, kind="drift", params=params, created_by=user.name))


@router.get("/metrics", response_class=Response, summary="The latest drift report as Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}})
def get_metrics(project: ProjectDep) -> Response:
    return Response(drift_metrics(project.name, latest_drift_report(project)), media_type=CONTENT_TYPE_LATEST)
