"""The projects one server serves, opened once for the server's lifetime and looked up by name."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from visionloop.core.errors import ConflictError, NotFoundError
from visionloop.core.settings import Settings
from visionloop.storage.project import CONFIG_FILE, Project

__all__ = ["ProjectRegistry", "find_project_dirs"]


def find_project_dirs(paths: Path | str | Sequence[Path | str]) -> list[Path]:
    """Project directories named by ``paths``.

    Each path is a project directory (it holds ``visionloop.toml``) or a folder whose direct sub-folders are projects.
    """
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise NotFoundError("project", "(none given)", choices=["pass at least one project directory"])
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if (path / CONFIG_FILE).is_file():
            found.append(path)
            continue
        children = sorted(p for p in path.iterdir() if (p / CONFIG_FILE).is_file()) if path.is_dir() else []
        if not children:
            raise NotFoundError(
                "project", str(path),
                choices=[f"a directory holding {CONFIG_FILE} (create one with: visionloop init PROJECT --task ...)"
                         " or a folder of such directories"],
            )
        found.extend(children)
    return found


class ProjectRegistry:
    """Open projects by name; :meth:`close` releases their database connections.

    :meth:`add` serves one more project while the server runs; ``lock`` is held while adding (hold it around a
    check-then-create so two requests cannot make the same project).
    """

    def __init__(self, projects: Sequence[Project]) -> None:
        self._projects: dict[str, Project] = {}
        self.lock = threading.RLock()
        for project in projects:
            self.add(project)

    def add(self, project: Project) -> None:
        """Serve ``project`` too; ConflictError when its name cannot be used in a URL or is served already."""
        if "/" in project.name or not project.name:
            raise ConflictError(
                f"project name {project.name!r} at {project.root} cannot be used in a URL; "
                f"set name = \"...\" without '/' in its {CONFIG_FILE}"
            )
        with self.lock:
            if project.name in self._projects:
                raise ConflictError(
                    f"two projects are named {project.name!r} ({self._projects[project.name].root} and "
                    f"{project.root}); rename one in its {CONFIG_FILE} to serve both"
                )
            self._projects = {**self._projects, project.name: project}  # readers never see a dict being changed

    @classmethod
    def open(cls, dirs: Sequence[Path], *, settings: Settings) -> ProjectRegistry:
        opened: list[Project] = []
        try:
            for d in dirs:
                opened.append(Project.open(d, settings=settings))
            return cls(opened)
        except BaseException:
            for p in opened:
                p.close()
            raise

    @property
    def names(self) -> list[str]:
        return list(self._projects)

    def __len__(self) -> int:
        return len(self._projects)

    def get(self, name: str) -> Project:
        try:
            return self._projects[name]
        except KeyError:
            raise NotFoundError("project", name, choices=self.names) from None

    def all(self) -> list[Project]:
        return list(self._projects.values())

    def close(self) -> None:
        for project in self._projects.values():
            project.close()
