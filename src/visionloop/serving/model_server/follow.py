"""Follow mode: a served model that follows the package deployed in a project of the platform.

The server polls the project API's ``GET {project_url}/deployment`` (with a project API token of any role); when the
deployed model differs from the one it serves it hot-reloads it: back to its ``previous`` package when that is the one
deployed (a rollback in the project, no download), else it downloads ``GET {project_url}/deployment/package`` (one
archive, at most ``max_package_bytes``) and reloads that. A project server that is down or slow, a download that
fails and a package that is refused leave the served model as it is; the same refused model is not downloaded again
until the deployment changes. ``project_url`` is the project's API URL, ``http://HOST:PORT/api/v1/projects/NAME``.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from visionloop.core.errors import VisionloopError
from visionloop.core.package import Package, PackageError, load_package
from visionloop.serving.model_server.reload import DEFAULT_MAX_PACKAGE_BYTES, ModelControl, ReloadRefusedError
from visionloop.serving.model_server.served import package_version

__all__ = ["FollowSettings", "ProjectFollower", "fetch_deployed_package", "fetch_deployment"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class FollowSettings:
    project_url: str
    """``http://HOST:PORT/api/v1/projects/NAME``."""
    token: str
    """A project API token (viewer is enough)."""
    model: str
    """The served model that follows the project's deployment."""
    interval_s: float = 10.0
    """Seconds between polls."""
    timeout_s: float = 30.0
    """Seconds a poll may take (the package download: ``timeout_s`` between bytes)."""
    max_package_bytes: int = DEFAULT_MAX_PACKAGE_BYTES

    def __post_init__(self) -> None:
        if not self.project_url.startswith(("http://", "https://")) or "/projects/" not in self.project_url:
            raise VisionloopError(f"--follow {self.project_url!r}: give the project's API URL, "
                                  "http://HOST:PORT/api/v1/projects/NAME")
        if self.interval_s <= 0 or self.timeout_s <= 0:
            raise VisionloopError("follow interval and timeout must be positive seconds")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def fetch_deployment(settings: FollowSettings) -> dict[str, Any]:
    """The project's deployment (``GET .../deployment``); VisionloopError with the reason when it cannot be read."""
    url = settings.project_url.rstrip("/") + "/deployment"
    try:
        r = httpx.get(url, headers=settings.headers, timeout=settings.timeout_s)
    except httpx.HTTPError as e:
        raise VisionloopError(f"cannot reach {url}: {e}; is the platform running?") from e
    if r.status_code != 200:
        raise VisionloopError(f"GET {url} answered {r.status_code}: {r.text[:200]}; check the URL and --follow-token")
    return r.json()


def fetch_deployed_package(settings: FollowSettings, dest: Path) -> Package:
    """Download the project's deployed package to ``dest`` (a file, at most ``max_package_bytes``) and load it."""
    url = settings.project_url.rstrip("/") + "/deployment/package"
    limit, size = settings.max_package_bytes, 0
    try:
        with httpx.stream("GET", url, headers=settings.headers, timeout=settings.timeout_s) as r:
            if r.status_code != 200:
                raise VisionloopError(f"GET {url} answered {r.status_code}: {r.read()[:200]!r}")
            with dest.open("wb") as f:
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise VisionloopError(f"the deployed package from {url} exceeds {limit:,} bytes; raise "
                                              "--max-package-mb")
                    f.write(chunk)
    except httpx.HTTPError as e:
        raise VisionloopError(f"downloading {url} failed: {e}") from e
    return load_package(dest)


class ProjectFollower:
    """Keeps ``settings.model`` on the package deployed in the project (see the module docstring)."""

    def __init__(self, control: ModelControl, settings: FollowSettings) -> None:
        self.control, self.settings = control, settings
        self.last_error: str | None = None
        """Why the last poll changed nothing although the deployment differs (None: in step)."""
        self.changes = 0
        """Reloads and rollbacks made by following."""
        self.last_poll: float | None = None
        """When the last poll ended, Unix time."""
        self._refused: str | None = None

    def status(self) -> dict[str, Any]:
        """What ``GET /v1/models/NAME`` shows of the following: the project, the last poll, the changes made and
        why the last poll changed nothing although the deployment differs (None: in step)."""
        return {"project_url": self.settings.project_url, "interval_s": self.settings.interval_s,
                "last_poll": self.last_poll, "changes": self.changes, "last_error": self.last_error}

    async def poll(self) -> dict[str, Any] | None:
        """One poll: the change's record when the model was reloaded or rolled back, else None."""
        s = self.settings
        try:
            deployment = await asyncio.to_thread(fetch_deployment, s)
        except VisionloopError as e:
            return self._failed(str(e))
        sha = deployment.get("model_sha256")
        if not deployment.get("package") or not sha:
            return None  # nothing deployed: keep serving what we have
        wanted, served = sha[:12], self.control.require(s.model)
        if wanted == served.version:
            self.last_error = None
            return None
        if wanted == self._refused:
            return None
        try:
            if served.previous is not None and package_version(served.previous) == wanted:
                change = await self.control.rollback(s.model)
            else:
                with tempfile.TemporaryDirectory(prefix="visionloop-follow-") as tmp:
                    pkg = await asyncio.to_thread(fetch_deployed_package, s, Path(tmp) / "deployed.vlpkg")
                if package_version(pkg) != wanted:
                    return self._failed("the deployment changed during the download; taking it at the next poll")
                change = await self.control.reload(s.model, pkg, action="follow")
        except (ReloadRefusedError, PackageError) as e:  # the package itself is bad: not again
            self._refused = wanted
            return self._failed(str(e))
        except (VisionloopError, OSError) as e:  # the network or the disk: next poll
            return self._failed(str(e))
        self.last_error, self.changes = None, self.changes + 1
        log.info("model %s now serves %s (%s in the project)", s.model, wanted, deployment.get("package"))
        return change

    def _failed(self, why: str) -> None:
        if why != self.last_error:
            log.warning("following %s: %s; the served model stays", self.settings.project_url, why)
        self.last_error = why
        return None

    async def run(self) -> None:
        """Poll every ``interval_s`` until cancelled."""
        while True:
            await self.poll()
            self.last_poll = time.time()
            await asyncio.sleep(self.settings.interval_s)
