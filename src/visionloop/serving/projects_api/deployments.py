"""The model deployed in each project, for predictions in the platform itself: a package loaded with the torch-free
:class:`~visionloop.inference.Predictor` (onnxruntime), swapped without a gap, and its predictions of project images
kept in a bounded LRU cache.

Deploying loads the new package and has it answer one check image while the old one keeps serving; only then does the
new one take over (a package that fails to load or to answer is refused and the old one stays). The choice is kept in
``PROJECT/deployment.json``, so a restarted server deploys the same package again on first use; it also holds the
deployment it replaced (``previous``, what :meth:`Deployments.rollback` deploys again) and a bounded ``history``.
A change of the file by another process (``visionloop deploy rollback PROJECT``) is picked up at the next request.
Model servers that follow the project (``visionloop serve --follow``) poll ``GET .../deployment`` and download the
package as one archive (:meth:`Deployments.archive`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import zipfile
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
from visionloop.storage.deployment import DEPLOYMENT_FILE, read_deployment, write_deployment
from visionloop.storage.jobs import Job
from visionloop.storage.project import Project

__all__ = ["DEPLOYMENT_FILE", "Deployed", "Deployments", "deploy_after_packaging", "list_package_dirs"]

log = logging.getLogger(__name__)

SESSIONS = 1
"""onnxruntime sessions of a deployed model, one thread each. Each session holds its own buffers: the default Faster
R-CNN took ~460 MB with one session and ~770 MB with two (measured), so the platform, which serves pages too, keeps
one; a model server (``visionloop serve``) is the place for throughput."""
_CHECK_IMAGE = np.full((64, 64, 3), 127, dtype=np.uint8)
_ARCHIVES = 4
"""Package archives kept for download (:meth:`Deployments.archive`)."""
_ARCHIVE_FILES = ("manifest.json", "model.onnx", "README.md")


def _manifest_sha(package_dir: Path) -> str | None:
    """The model sha256 a package folder's manifest records now (None: unreadable)."""
    try:
        return json.loads((package_dir / "manifest.json").read_text(encoding="utf-8")).get("model_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _signature(project: Project) -> tuple[int, int] | None:
    try:
        st = (Path(project.root) / DEPLOYMENT_FILE).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


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
    previous: dict[str, Any] | None = None
    """The deployment this one replaced (package, package_version, deployed_at, deployed_by), if any."""
    history: tuple[dict[str, Any], ...] = ()
    """Earlier deployments, newest first (at most ``HISTORY``)."""

    @property
    def package_version(self) -> str | None:
        """The first 12 hex digits of the model's sha256, as model servers name it in every prediction."""
        sha = self.predictor.manifest.model_sha256
        return sha[:12] if sha else None

    def to_json(self) -> dict[str, Any]:
        m = self.predictor.manifest
        return {"package": self.package, "task": str(m.task), "classes": m.class_names,
                "model_sha256": m.model_sha256, "package_version": self.package_version, "run_id": m.run_id,
                "deployed_at": self.deployed_at, "deployed_by": self.deployed_by, "previous": self.previous,
                "history": list(self.history)}


class Deployments:
    """The deployed model per project name; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._active: dict[str, Deployed] = {}
        self._lock = threading.Lock()
        self._swap = threading.Lock()  # one load at a time: loading takes memory and a core
        self._cache: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._seen: dict[str, tuple[int, int] | None] = {}
        self._archives: OrderedDict[tuple[str, str], Path] = OrderedDict()
        self._archive_dir: Path | None = None
        self._archived = 0

    def _load(self, project: Project, name: str, *, by: str, at: datetime,
              record: dict[str, Any] | None = None) -> Deployed:
        path = _package_path(project, name)
        try:
            predictor = Predictor(path, sessions=SESSIONS, max_pixels=self.settings.max_image_pixels)
            predictor.predict(_CHECK_IMAGE)
        except (PackageError, VisionloopError) as e:
            raise ConflictError(f"package {name!r} cannot be deployed: {e}; the deployed model stays") from e
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors: the package is broken, the server is not
            raise ConflictError(f"package {name!r} failed its check prediction ({type(e).__name__}: {e}); the "
                                "deployed model stays") from e
        record = record or {}
        return Deployed(package=name, predictor=predictor, deployed_at=at, deployed_by=by,
                        previous=record.get("previous"), history=tuple(record.get("history") or ()))

    def deploy(self, project: Project, name: str, *, by: str, action: str = "deploy") -> Deployed:
        """Load ``name``, check it, then swap it in (the old model serves until then) and record the choice, with
        the deployment it replaces as ``previous`` (redeploying the same package keeps the earlier ``previous``)."""
        with self._swap:
            new = self._load(project, name, by=by, at=datetime.now(UTC))
            record = write_deployment(project.root, package=name, by=by, package_version=new.package_version,
                                      model_sha256=new.predictor.manifest.model_sha256, action=action,
                                      at=new.deployed_at)
            new = Deployed(package=name, predictor=new.predictor, deployed_at=new.deployed_at, deployed_by=by,
                           previous=record["previous"], history=tuple(record["history"]))
            with self._lock:
                old = self._active.get(project.name)
                self._active[project.name] = new
                self._seen[project.name] = _signature(project)
        if old is not None:
            old.predictor.close()
        return new

    def rollback(self, project: Project, *, by: str) -> Deployed:
        """Deploy the package deployed before the current one again (checked like any deployment); the current one
        becomes ``previous``, so a second rollback undoes the first. ConflictError when there is nothing to roll
        back to, or when that package's model changed since it was deployed."""
        record = read_deployment(project.root)
        previous = (record or {}).get("previous")
        if not previous or not previous.get("package"):
            raise ConflictError(f"project {project.name!r} has no earlier deployment to roll back to; deploy a "
                                "package first (POST .../deployment)")
        path = _package_path(project, previous["package"])
        sha = previous.get("model_sha256")
        if sha and _manifest_sha(path) != sha:
            raise ConflictError(f"package {previous['package']!r} holds another model than the one deployed before "
                                f"(sha256 {sha[:12]}...); deploy the package you want by name")
        return self.deploy(project, previous["package"], by=by, action="rollback")

    def get(self, project: Project) -> Deployed | None:
        """The deployed model; the one ``deployment.json`` names is loaded on first use after a restart, and again
        when another process changed the file (a package that no longer loads leaves the current one serving)."""
        sig = _signature(project)
        with self._lock:
            found = self._active.get(project.name)
            if found is not None and (sig is None or self._seen.get(project.name) == sig):
                return found
        record = read_deployment(project.root)
        if record is None:
            return found
        with self._swap:
            with self._lock:
                current = self._active.get(project.name)
                if current is not None and self._seen.get(project.name) == sig:
                    return current
                self._seen[project.name] = sig
            try:
                loaded = self._load(project, record["package"], by=record.get("deployed_by", ""),
                                    at=datetime.fromisoformat(record["deployed_at"]), record=record)
            except (ConflictError, NotFoundError, KeyError, ValueError, TypeError) as e:
                if current is not None:
                    log.warning("project %s: deployment.json names %s, which cannot be deployed (%s); %s stays",
                                project.name, record.get("package"), e, current.package)
                return current  # the package was removed or broke
            with self._lock:
                self._active[project.name] = loaded
        if current is not None:
            current.predictor.close()
        return loaded

    def archive(self, project: Project) -> tuple[Deployed, Path]:
        """The deployed package as one ``.vlpkg`` archive (manifest, model, model card), built once per model and
        kept for later downloads (the last few); NotFoundError when nothing is deployed."""
        deployed = self.require(project)
        key = (project.name, deployed.predictor.manifest.model_sha256 or deployed.package)
        with self._swap:
            with self._lock:
                if key in self._archives and self._archives[key].is_file():
                    self._archives.move_to_end(key)
                    return deployed, self._archives[key]
            if self._archive_dir is None:
                self._archive_dir = Path(tempfile.mkdtemp(prefix="visionloop-deployed-"))
            src = _package_path(project, deployed.package)
            if _manifest_sha(src) != deployed.predictor.manifest.model_sha256:
                raise ConflictError(f"package {deployed.package!r} was overwritten since it was deployed; deploy it "
                                    "again (POST .../deployment) so the platform and its model servers agree")
            self._archived += 1
            out = self._archive_dir / f"{self._archived}.vlpkg"
            tmp = out.with_suffix(".tmp")
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
                for name in _ARCHIVE_FILES:
                    f = src / name
                    if f.is_file() and not f.is_symlink():
                        zf.write(f, name)
            os.replace(tmp, out)
            with self._lock:
                self._archives[key] = out
                while len(self._archives) > _ARCHIVES:
                    _, old = self._archives.popitem(last=False)
                    old.unlink(missing_ok=True)
        return deployed, out

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
        if self._archive_dir is not None:
            shutil.rmtree(self._archive_dir, ignore_errors=True)
            self._archive_dir = None
        self._archives.clear()


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
