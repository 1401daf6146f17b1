"""Promotion: the challenger exported as a package, checked, and deployed in the project.

The package goes to ``PROJECT/packages/<run id>`` (the name the platform gives a run's package), is loaded with the
torch-free :class:`~visionloop.inference.Predictor` and must answer a real image before ``PROJECT/deployment.json``
names it (written through :func:`visionloop.storage.deployment.write_deployment`, which keeps the replaced deployment
as ``previous`` for a rollback). Running platform servers pick the new record up at their next request; model servers
that follow the project reload it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from visionloop.core.errors import ConflictError
from visionloop.storage.deployment import PACKAGES_DIR, write_deployment

__all__ = ["package_and_deploy"]


def package_and_deploy(project: Any, run_id: str, *, by: str, check_image: bytes | None = None) -> dict[str, Any]:
    """Export ``run_id`` to ``PROJECT/packages/<run_id>``, check that it predicts ``check_image`` (a test image),
    and deploy it; returns the deployment record. ConflictError (nothing deployed) when the check fails."""
    from visionloop.export.api import export_run
    from visionloop.inference import Predictor

    out = Path(project.root) / PACKAGES_DIR / run_id
    path = export_run(project, run_id, out, name=run_id, overwrite=True)
    try:
        with Predictor(path, sessions=1) as predictor:
            sha = predictor.manifest.model_sha256
            if check_image is not None:
                predictor.predict(check_image)
    except Exception as e:  # noqa: BLE001 - onnxruntime's errors: the package is broken, the deployment stays
        raise ConflictError(f"the challenger's package {run_id!r} failed its check prediction "
                            f"({type(e).__name__}: {e}); the champion stays deployed") from e
    return write_deployment(project.root, package=run_id, by=by, package_version=sha[:12] if sha else None,
                            model_sha256=sha, action="promote")
