"""The model deployed in a project, as recorded on disk: ``PROJECT/deployment.json`` names a package of
``PROJECT/packages/``.

The platform (:mod:`visionloop.serving.projects_api.deployments`) loads and serves it, and picks up a change another
process made; the retrain-and-compare loop (:mod:`visionloop.active.loop_promote`) writes it when it promotes a
challenger, through :func:`write_deployment` (an atomic replace, so a reader never sees half a record), keeping the
deployment it replaced as ``previous`` so that a rollback works after a promotion as after a deployment by hand.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from visionloop.core.errors import NotFoundError

__all__ = ["DEPLOYMENT_FILE", "HISTORY", "PACKAGES_DIR", "deployed_package_dir", "read_deployment", "write_deployment"]

DEPLOYMENT_FILE = "deployment.json"
PACKAGES_DIR = "packages"
HISTORY = 20
"""Earlier deployments kept in the record's ``history``, newest first."""


def read_deployment(root: str | Path) -> dict[str, Any] | None:
    """``{"package", "package_version", "model_sha256", "deployed_at", "deployed_by", "action", "previous",
    "history"}`` of the project at ``root``, or None when nothing is deployed (or the record cannot be read)."""
    try:
        record = json.loads((Path(root) / DEPLOYMENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("package"), str) else None


def _entry(record: dict[str, Any]) -> dict[str, Any]:
    """One deployment of a record, without its own ``previous`` and ``history``."""
    return {k: record.get(k) for k in ("package", "package_version", "model_sha256", "deployed_at", "deployed_by",
                                       "action")}


def write_deployment(root: str | Path, *, package: str, by: str, package_version: str | None = None,
                     model_sha256: str | None = None, action: str = "deploy", at: datetime | None = None,
                     ) -> dict[str, Any]:
    """Record ``package`` (a folder name of ``PROJECT/packages``) as deployed, atomically, with the deployment it
    replaces as ``previous`` (what a rollback deploys again) and earlier ones in ``history`` (newest first, at most
    :data:`HISTORY`); redeploying the same package keeps the earlier ``previous``. Returns the record."""
    at = at or datetime.now(UTC)
    old = read_deployment(root)
    record: dict[str, Any] = {"package": package, "package_version": package_version, "model_sha256": model_sha256,
                              "deployed_at": at.isoformat(), "deployed_by": by, "action": action}
    if old is not None and old["package"] == package:
        record["previous"], record["history"] = old.get("previous"), old.get("history") or []
    elif old is not None:
        record["previous"] = _entry(old)
        record["history"] = ([_entry(old)] + list(old.get("history") or []))[:HISTORY]
    else:
        record["previous"], record["history"] = None, []
    tmp = Path(root) / f".{DEPLOYMENT_FILE}.tmp"
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, Path(root) / DEPLOYMENT_FILE)
    return record


def deployed_package_dir(root: str | Path) -> Path | None:
    """The folder of the deployed package, or None when nothing is deployed; NotFoundError when the record names a
    package that is not a folder of ``PROJECT/packages`` (removed, or a name that leaves the folder)."""
    record = read_deployment(root)
    if record is None:
        return None
    base = (Path(root) / PACKAGES_DIR).resolve()
    name = record["package"]
    path = (base / name).resolve()
    if path.parent != base or not (path / "manifest.json").is_file():
        raise NotFoundError("deployed package", name, hint="deploy an existing package again")
    return path
