"""Shared test fixtures: real data locations, small synthetic images, fresh projects."""

from __future__ import annotations

import io
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VISIONLOOP_SHARED", REPO.parent / "shared"))

# Fixtures of the deploy tests (export, inference, inference server): BCCD cell classifier, packages.
pytest_plugins = ["tests.deploy_fixtures"]


@contextmanager
def fresh_postgres_database(base: str, *, prefix: str = "vl_test") -> Iterator[str]:
    """A new database on the PostgreSQL server of the URL ``base``, dropped (with its connections) afterwards;
    yields its URL."""
    from sqlalchemy import create_engine, make_url, text

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pytest_configure(config: pytest.Config) -> None:
    """Several test processes share the cores: each gets its share of OpenMP/BLAS threads (one each for `make
    test`'s two on 2 cores), unless the environment says otherwise, and so do the commands the tests start. Torch
    threads that outnumber the cores wait for each other at every barrier; see ``_adaptive_threads_for_real_data_training``."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share = str(max(1, (os.cpu_count() or 1) // workers))
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(variable, share)
        torch = sys.modules.get("torch")  # read its variables when imported: set it directly if it already is
        if torch is not None:
            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run tests marked slow (long, on real data)")


SLOW_SKIP = "slow: run with --slow"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
"""Under CI nothing a test needs may be missing: a skip (no browser, no ../shared, no PostgreSQL) is a failure."""


def _start_order(items: list[pytest.Item]) -> Callable[[pytest.Item], int]:
    """A test's rank in the order modules are started: real-data training that CI runs (``slow`` + ``ci``, minutes
    each) first, then the benchmark smokes, the other modules holding a slow test that CI runs, and the rest."""
    def module(it: pytest.Item) -> str:
        return it.module.__name__ if it.module is not None else ""

    long = {module(it) for it in items if "slow" in it.keywords and "ci" in it.keywords}
    return lambda it: (0 if module(it) in long and module(it).startswith("tests.training.") else
                       1 if module(it).startswith("tests.benchmarks.") else 2 if module(it) in long else 3)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # long modules first (a stable sort: each module's tests stay together): `make test` hands whole modules to its
    # two processes in this order, and a long one handed out last would leave the other process idle meanwhile
    items.sort(key=_start_order(items))
    if config.getoption("--slow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason=SLOW_SKIP)
    for item in items:
        # slow tests also marked `ci` are the representative subset that `make test` (and so CI) runs
        if "slow" in item.keywords and "ci" not in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    """With ``CI=true`` a skipped test fails, except slow tests left out on purpose (``--slow`` runs them)."""
    outcome = yield
    report = outcome.get_result()
    if not IN_CI or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if SLOW_SKIP in reason:
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, where nothing a test needs may be missing: {reason}"


@pytest.fixture(autouse=True)
def _adaptive_threads_for_real_data_training(request: pytest.FixtureRequest,
                                             monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The real-data training subsets CI runs (``slow`` + ``ci``) start on one torch thread and grow to the cores the
    other processes leave free, as the platform's background jobs do (``visionloop.training.threads``).

    Two OpenMP threads on two cores that other jobs also use wait for each other at every barrier: the DSB2018
    Mask R-CNN subset took 712 s with two threads at load average 4, and 266 s with one thread at load average 7;
    on a quiet machine one thread took 227 s where two take 167 s.
    """
    if request.node.get_closest_marker("slow") is None or request.node.get_closest_marker("ci") is None:
        yield
        return
    import torch

    from visionloop.training.threads import ENV_VARIABLE

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv(ENV_VARIABLE, f"1:{max(1, os.cpu_count() or 1)}")
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path}; put the shared/ folder beside the repo or set VISIONLOOP_SHARED")
    return path


@pytest.fixture(scope="session")
def bccd_dir() -> Path:
    return _need(SHARED / "datasets" / "bccd")


@pytest.fixture(scope="session")
def dsb_dir() -> Path:
    return _need(SHARED / "datasets" / "dsb2018-nuclei")


@pytest.fixture(scope="session")
def formats_dir() -> Path:
    """``shared/formats/datumaro/tests/assets``: real annotation files written by other tools."""
    return _need(SHARED / "formats" / "datumaro" / "tests" / "assets")


def make_image_bytes(width: int = 64, height: int = 48, *, fmt: str = "JPEG", mode: str = "RGB", seed: int = 0) -> bytes:
    """A small noisy image encoded in ``fmt``; different seeds give perceptually different images."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    im = Image.fromarray(arr, "RGB").resize((width, height), Image.NEAREST)
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def image_factory(tmp_path: Path):
    """``image_factory(name, **kw) -> Path`` writes a synthetic image under tmp_path."""

    def make(name: str, **kw: object) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = kw.pop("fmt", None) or {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF"}.get(path.suffix.lower(), "JPEG")
        path.write_bytes(make_image_bytes(fmt=fmt, **kw))  # type: ignore[arg-type]
        return path

    return make


@pytest.fixture
def project_factory(tmp_path: Path):
    """``project_factory(task) -> Project`` in a fresh directory; closed at teardown."""
    from visionloop.storage import Project

    made = []

    def make(task: str = "detection", name: str = "p") -> Project:
        p = Project.create(tmp_path / f"{name}-{len(made)}", task=task)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def synthetic_project(tmp_path: Path):
    """``synthetic_project(task, **kw) -> Project`` with version v1 (see ``tests.synthetic``); closed at teardown."""
    from tests.synthetic import make_project

    made = []

    def make(task: str = "classification", **kw: object):
        p = make_project(tmp_path / f"{task}-{len(made)}", task=task, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
