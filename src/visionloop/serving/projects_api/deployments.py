"""The model deployed in each project, for predictions in the platform itself: a package loaded with the torch-free
:class:`~visionloop.inference.Predictor` (onnxruntime), swapped without a gap, and its predictions of project images
kept in a bounded LRU cache.

Deploying loads the new package and has it answer one check image while the old one keeps serving; only then does the
new one take over (a package that fails to load or to answer is refused and the old one stays). The choice is kept in
``PROJECT/deployment.json``, so a restarted server deploys the same package again on first use.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.errors import ConflictError, NotFoundError, VisionloopError
from visionloop.core.package import PackageError
from visionloop.core.settings import Settings
from visionloop.inference import Predictor
from visionloop.serving.jobs.kinds import PACKAGES_DIR
from visionloop.storage.jobs import Job
from visionloop.storage.project import Project

__all__ = ["DEPLOYMENT_FILE", "Deployed", "Deployments", "deploy_after_packaging", "list_package_dirs"]

log = logging.getLogger(__name__)

DEPLOYMENT_FILE = "deployment.json"
SESSIONS = 1
"""onnxruntime sessions of a deployed model, one thread each. Each session holds its own buffers: the default Faster
R-CNN took ~460 MB with one session and ~770 MB with two (measured), so the platform, which serves pages too, keeps
one; a model server (``visionloop serve``) is the place for throughput."""
_CHECK_IMAGE = np.full((64, 64, 3), 127, dtype=np.uint8)


def list_package_dirs(project: Project) -> list[Path]:
    """Folders of ``PROJECT/packages`` holding a ``manifest.json``, by name."""
    root = Path(project.root) / PACKAGES_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and (p / "manifest.json").is_file())


def _package_path(project: Project, name: str) -> Path:
    known = {p.name: p for p in list_package_dirs(project)}
    if name not in known:
        raise NotFoundError("package", name, choices=sorted(known) or ["none yet: export one (POST .../packages)"])
    return known[name]


@dataclass(frozen=True)
class Deployed:
    package: str
    predictor: Predictor
    deployed_at: datetime
    deployed_by: str

    def to_json(self) -> dict[str, Any]:
        m = self.predictor.manifest
        return {"package": self.package, "task": str(m.task), "classes": m.class_names,
                "model_sha256": m.model_sha256, "deployed_at": self.deployed_at, "deployed_by": self.deployed_by}


class Deployments:
    """The deployed model per project name; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._active: dict[str, Deployed] = {}
        self._lock = threading.Lock()
        self._swap = threading.Lock()  # one load at a time: loading takes memory and a core
        self._cache: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def _load(self, project: Project, name: str, *, by: str, at: datetime) -> Deployed:
        path = _package_path(project, name)
        try:
            predictor = Predictor(path, sessions=SESSIONS, max_pixels=self.settings.max_image_pixels)
            predictor.predict(_CHECK_IMAGE)
        except (PackageError, VisionloopError) as e:
            raise ConflictError(f"package {name!r} cannot be deployed: {e}; the deployed model stays") from e
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors: the package is broken, the server is not
            raise ConflictError(f"package {name!r} failed its check prediction ({type(e).__name__}: {e}); the "
                                "deployed model stays") from e
        return Deployed(package=name, predictor=predictor, deployed_at=at, deployed_by=by)

    def deploy(self, project: Project, name: str, *, by: str) -> Deployed:
        """Load ``name``, check it, then swap it in (the old model serves until then) and record the choice."""
        with self._swap:
            new = self._load(project, name, by=by, at=datetime.now(UTC))
            with self._lock:
                old = self._active.get(project.name)
                self._active[project.name] = new
            record = {"package": name, "deployed_at": new.deployed_at.isoformat(), "deployed_by": by}
            tmp = Path(project.root) / f".{DEPLOYMENT_FILE}.tmp"
            tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
            os.replace(tmp, Path(project.root) / DEPLOYMENT_FILE)
        if old is not None:
            old.predictor.close()
        return new

    def get(self, project: Project) -> Deployed | None:
        """The deployed model; the one ``deployment.json`` names is loaded on first use after a restart."""
        with self._lock:
            found = self._active.get(project.name)
        if found is not None:
            return found
        try:
            record = json.loads((Path(project.root) / DEPLOYMENT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        with self._swap:
            with self._lock:
                if project.name in self._active:
                    return self._active[project.name]
            try:
                loaded = self._load(project, record["package"], by=record.get("deployed_by", ""),
                                    at=datetime.fromisoformat(record["deployed_at"]))
            except (ConflictError, NotFoundError, KeyError, ValueError):
                return None  # the package was removed or broke: nothing is deployed
            with self._lock:
                self._active[project.name] = loaded
        return loaded

    def require(self, project: Project) -> Deployed:
        found = self.get(project)
        if found is None:
            raise NotFoundError("deployed model", project.name,
                                hint="deploy a package first: POST .../deployment {\"package\": NAME}")
        return found

    def predict_image(self, project: Project, image_id: int) -> dict[str, Any]:
        """The deployed model's prediction of a project image (cached by model and image content)."""
        deployed = self.require(project)
        sha = project.image(image_id).sha256
        key = (deployed.predictor.manifest.model_sha256 or deployed.package, sha)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        out = deployed.predictor.predict(project.blobs.read(sha)).to_json()
        with self._lock:
            self._cache[key] = out
            while len(self._cache) > max(0, self.settings.prediction_cache_entries):
                self._cache.popitem(last=False)
        return out

    @property
    def cached(self) -> int:
        with self._lock:
            return len(self._cache)

    def close(self) -> None:
        with self._lock:
            active, self._active = list(self._active.values()), {}
            self._cache.clear()
        for d in active:
            d.predictor.close()


def deploy_after_packaging(deployments: Deployments) -> Callable[[Project, Job, dict[str, Any]], None]:
    """The job queue's follow-up of a package job made with ``deploy`` (a run trained with ``deploy``): the package
    is deployed in the platform at once, the way ``POST .../deployment`` does; nothing more is queued. A package that
    cannot be deployed is logged and the old deployment stays."""

    def follow(project: Project, job: Job, result: dict[str, Any]) -> None:
        if job.params.get("deploy"):
            try:
                deployments.deploy(project, str(job.params["name"]), by=job.created_by)
            except (VisionloopError, PackageError, OSError) as e:
                log.warning("package %s of project %s was not deployed: %s", job.params["name"], project.name, e)

    return follow
