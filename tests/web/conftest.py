"""Browser tests of the web platform: a real server on 127.0.0.1, Debian's Chromium driven by Playwright.

Fixtures (reuse them in every ``tests/web/test_*.py``):

- ``browser`` (module): headless Chromium at ``CHROMIUM`` (a missing browser skips, which fails under ``CI=true``).
- ``bccd_project`` (module): a detection project holding the first ``BCCD_IMAGES`` BCCD images with their boxes, in a
  folder of projects, with an ``admin`` whose password is ``ADMIN_PASSWORD``; ``served`` (module): a
  :class:`Served` platform (``PlatformThread``) on it. ``served.add_user(name, role)`` makes a user of the project
  with password ``USER_PASSWORD``.
- ``page`` (function): a fresh browser context and page signed in as the admin, on the projects page;
  ``sign_in(page, url, user, password)`` signs in through the form.
- ``shot(page, name)``: a full-page screenshot under the test's ``tmp_path`` (look at it with the file viewer);
  the path is returned. With ``VISIONLOOP_SCREENSHOT_DIR`` set, a copy goes there too (the README's pictures).

Helpers for other projects: ``make_bccd_project(folder, n, name=...)``, ``serve(paths, projects_dir=...)``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from visionloop.storage import Project
from visionloop.storage.users import Role, add_user, ensure_admin

CHROMIUM = "/usr/bin/chromium"
ADMIN_PASSWORD = "admin-pass-for-tests"
USER_PASSWORD = "user-pass-for-tests"
BCCD_IMAGES = 12
PROJECT = "bccd"


def bccd_subset(bccd_dir: Path, out: Path, n: int) -> Path:
    """A VOC folder ``out/BCCD`` with the first ``n`` BCCD images and their annotation files; returns ``out``."""
    voc = out / "BCCD"
    (voc / "Annotations").mkdir(parents=True, exist_ok=True)
    (voc / "JPEGImages").mkdir(exist_ok=True)
    for xml in sorted((bccd_dir / "BCCD" / "Annotations").glob("*.xml"))[:n]:
        shutil.copy(xml, voc / "Annotations" / xml.name)
        shutil.copy(bccd_dir / "BCCD" / "JPEGImages" / f"{xml.stem}.jpg", voc / "JPEGImages" / f"{xml.stem}.jpg")
    return out


def make_bccd_project(bccd_dir: Path, folder: Path, n: int = BCCD_IMAGES, *, name: str = PROJECT) -> Path:
    """A detection project ``folder/name`` with ``n`` BCCD images (and boxes) and the admin; returns its path."""
    from visionloop.ingest import import_source

    source = bccd_subset(bccd_dir, folder.parent / f"{name}-source", n)
    path = folder / name
    with Project.create(path, task="detection", name=name) as p:
        import_source(p, source, progress=False)
        ensure_admin(p, password=ADMIN_PASSWORD)
    return path


@dataclass
class Served:
    """A running platform: ``url``, the project ``path`` and ``name``, the folder of projects."""

    url: str
    path: Path
    name: str
    projects_dir: Path
    server: object = field(repr=False)

    def add_user(self, user: str, role: Role | str, *, password: str = USER_PASSWORD) -> str:
        """A user of the project with ``role`` and ``password`` (made once); returns the name."""
        from visionloop.core.errors import ConflictError

        project = self.server.app.state.projects.get(self.name)  # the server's open project
        with suppress(ConflictError):
            add_user(project, user, role=role, password=password)
        return user


@contextmanager
def serve(paths: list[Path], *, projects_dir: Path | None = None, port: int = 0) -> Iterator[object]:
    """A ``PlatformThread`` on ``paths`` (started and stopped; ``port``: 0 for a free one); yields it."""
    from visionloop.core.settings import Settings
    from visionloop.web import PlatformThread

    with PlatformThread(paths, settings=Settings(), projects_dir=projects_dir, port=port) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per test module: Playwright's sync API may run once at a time in a process, so a browser kept
    for the whole session would stop any later test from starting its own."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def bccd_project(bccd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("projects")
    return make_bccd_project(bccd_dir, folder)


@pytest.fixture(scope="module")
def served(bccd_project: Path) -> Iterator[Served]:
    with serve([bccd_project], projects_dir=bccd_project.parent) as server:
        yield Served(url=server.url, path=bccd_project, name=PROJECT, projects_dir=bccd_project.parent,
                     server=server)


def sign_in(page: object, url: str, user: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    """Open the app at ``url``, sign in through the form and wait for the projects page."""
    page.goto(f"{url}/#/signin")
    page.fill("#signin-user", user)
    page.fill("#signin-password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=projects-page]")


@contextmanager
def csp_page(browser: object, url: str, user: str = "admin", password: str = ADMIN_PASSWORD, *,
             timeout_ms: int = 60_000) -> Iterator[object]:
    """A page signed in as ``user`` under the Content-Security-Policy the server sends (the other tests bypass it:
    their own string predicates are eval'd in the page). Fails when anything was blocked or threw while the
    ``with`` block ran."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        sign_in(page, url, user, password)
        yield page
    finally:
        context.close()
    assert not problems, problems[:3]


@pytest.fixture
def new_page(browser: object) -> Iterator[Callable[[], object]]:
    """``new_page()`` -> a page in a fresh context (its own cookies and storage); all closed at teardown."""
    contexts = []

    def make() -> object:
        # the tests' own string predicates (wait_for_function) are eval'd in the page: the app's CSP forbids that,
        # so tests run with it bypassed, and test_shell.py checks every page under the real CSP
        context = browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True)
        context.set_default_timeout(15_000)
        contexts.append(context)
        p = context.new_page()
        # the browser's errors are printed, so a failing test shows them
        p.on("console", lambda m: m.type in ("error", "warning") and print(f"[browser {m.type}] {m.text}"))
        p.on("pageerror", lambda e: print(f"[page error] {e}"))
        return p

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], object], served: Served) -> object:
    """A page signed in as the admin of ``served``, on the projects page."""
    p = new_page()
    sign_in(p, served.url)
    return p


SCREENSHOT_DIR = os.environ.get("VISIONLOOP_SCREENSHOT_DIR")
"""When set, ``shot`` also writes each screenshot there (e.g. ``docs/screenshots`` for the README)."""


@pytest.fixture
def shot(tmp_path: Path) -> Callable[[object, str], Path]:
    def take(page: object, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if SCREENSHOT_DIR:
            Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(SCREENSHOT_DIR) / path.name)
        return path

    return take

