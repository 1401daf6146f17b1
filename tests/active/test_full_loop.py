"""The whole loop on real data (issue point 8), every server real on 127.0.0.1: BCCD cell crops, a small approved
seed trains the champion, deployed in the project and served by a model server; production images (crops of BCCD
images the project never saw) are predicted by the model server, which sends them back (the random slice and classes
of interest) to the platform; a scripted reviewer labels them with the stored labels and approves them; the loop
freezes a version (the test set grows only by the random slice), trains the challenger, finds it better on the frozen
test set, promotes and deploys it; the platform serves it, and the model server, following the project, hot-reloads
it and names it in its predictions. Nothing is lost or duplicated on the way."""

from __future__ import annotations

import hashlib
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.active.loop_projects import bccd_crops_loop_project
from tests.deploy_fixtures import jpeg_bytes
from tests.serving.conftest import bearer_headers
from visionloop.active.loop import loop_options, run_cycle
from visionloop.active.loop_promote import package_and_deploy
from visionloop.active.samplers import load_sampling_config
from visionloop.core import Label
from visionloop.core.settings import Settings
from visionloop.serving.model_server.app import create_inference_app
from visionloop.serving.model_server.feedback import FeedbackSettings
from visionloop.serving.model_server.follow import FollowSettings
from visionloop.serving.model_server.server import InferenceServerThread
from visionloop.serving.projects_api.server import ServerThread
from visionloop.storage import Project
from visionloop.storage.deployment import read_deployment
from visionloop.storage.production import list_production_samples
from visionloop.storage.review import ReviewState, set_review_state
from visionloop.storage.users import Role
from visionloop.storage.versions import version_items
from visionloop.training.api import train

CLASSES = ("WBC", "RBC", "Platelets")
SEED_IMAGES = 24
"""The first BCCD images make the project (the seed); production crops come from the next ones."""
SAMPLING = load_sampling_config({"seed": 0, "samplers": [{"kind": "random", "rate": 0.25},
                                                         {"kind": "classes", "classes": list(CLASSES)}]})
"""Every prediction is sent back: a quarter as the random slice, every one as a class of interest."""


def _production_crops(bccd_dir: Path, start: int, n_images: int) -> list[tuple[bytes, str]]:
    """(JPEG bytes, true class) of every cell box of BCCD images ``start .. start + n_images`` (distinct bytes)."""
    out: dict[str, tuple[bytes, str]] = {}
    for xml in sorted((bccd_dir / "BCCD" / "Annotations").glob("*.xml"))[start:start + n_images]:
        im = Image.open(bccd_dir / "BCCD" / "JPEGImages" / f"{xml.stem}.jpg").convert("RGB")
        for obj in ET.parse(xml).getroot().iter("object"):
            name = obj.findtext("name", "").strip()
            bb = obj.find("bndbox")
            x1, y1, x2, y2 = (int(float(bb.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
            if name in CLASSES and x2 - x1 >= 8 and y2 - y1 >= 8:
                data = jpeg_bytes(im.crop((x1, y1, x2, y2)))
                out[hashlib.sha256(data).hexdigest()] = (data, name)
    return list(out.values())


def _wait(what: str, check, timeout: float = 300.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_production_feedback_review_retrain_promote_and_hot_reload(bccd_dir: Path, tmp_path: Path) -> None:
    path, unapproved = bccd_crops_loop_project(bccd_dir, tmp_path / "projects", n=SEED_IMAGES, seed_train_images=1)
    with Project.open(path) as p:
        # the seed's unapproved crops stay out of this loop: only production images are the new reviewed work
        champion = train(p, version="v1", strategy="linear", progress=False, log=lambda _s: None).run_id
        package_and_deploy(p, champion, by="admin")
        edge = bearer_headers(p, Role.ANNOTATOR, user="edge-server")["Authorization"].split()[1]
        v1 = {it.image.id: it.split for it in version_items(p, "v1")}
    crops = _production_crops(bccd_dir, SEED_IMAGES, 14)
    truth = {hashlib.sha256(data).hexdigest(): name for data, name in crops}

    with ServerThread(path.parent, settings=Settings()) as platform:
        project = platform.app.state.projects.get(path.name)
        feedback = FeedbackSettings(url=f"{platform.url}/api/v1/projects/{path.name}", token=edge, sampling=SAMPLING,
                                    spool_dir=tmp_path / "spool", retry_min_s=0.05, retry_max_s=0.5,
                                    max_pending=4 * len(crops))  # the stream outruns the sender: none dropped
        follow = FollowSettings(project_url=f"{platform.url}/api/v1/projects/{path.name}", token=edge, model="cells",
                                interval_s=0.5)  # the model server follows the project's deployment
        app = create_inference_app({"cells": path / "packages" / champion}, sessions=1, feedback=feedback,
                                   follow=follow)
        with InferenceServerThread(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
            sender = app.state.model_server.feedback
            before = [http.post("/v1/models/cells/predict", content=data).json() for data, _ in crops]
            assert {a["package_version"] for a in before} == {read_deployment(path)["package_version"]}
            _wait("every sample stored", lambda: sender.counts()["sent"] == len(crops))
            assert sender.counts()["dropped"] == 0

            # the scripted reviewer: the stored label of each production image, then approved
            samples = list_production_samples(project, limit=10_000)
            assert len(samples) == len(crops) and len({s.request_id for s in samples}) == len(crops)
            ids = project.class_ids(list(CLASSES), create=False)
            images = {s.image_id: project.image(s.image_id).sha256 for s in samples}
            assert set(images.values()) == set(truth)  # every image arrived, once
            for image_id, sha in images.items():
                project.save_annotation(image_id, Label(ids[truth[sha]]), base_revision=None, author="reviewer")
            set_review_state(project, list(images), ReviewState.APPROVED, author="reviewer")
            randoms = {s.image_id for s in samples if s.random_slice}
            assert 0 < len(randoms) < len(samples)

            cycle = run_cycle(project, loop_options(project, min_new=len(crops), author="admin")).cycle
            assert cycle.state == "promoted" and cycle.ci_low > 0, cycle.reason
            assert cycle.new_annotations == len(crops) and cycle.champion_run == champion

            deployed = read_deployment(path)
            assert deployed["package"] == cycle.challenger_run
            # the platform serves the promoted package, and the model server hot-reloads it by following the project
            platform_view = httpx.get(f"{platform.url}/api/v1/projects/{path.name}/deployment",
                                      headers={"Authorization": f"Bearer {edge}"}, timeout=120).json()
            assert platform_view["package"] == deployed["package"]
            _wait("the model server on the promoted package", lambda: http.post(
                "/v1/models/cells/predict", content=crops[0][0]).json()["package_version"] == deployed["package_version"])
            assert deployed["package_version"] != before[0]["package_version"]

    with Project.open(path) as p:
        v2 = {it.image.id: it.split for it in version_items(p, cycle.version)}
        assert {i: v2[i] for i in v1} == v1  # the seed's splits stayed, its test set frozen
        assert set(images) <= set(v2) and not set(unapproved) & set(v2)
        new_test = {i for i in images if v2[i] == "test"}
        assert new_test <= randoms  # only the random slice may grow the test set
        print(f"full loop: {len(crops)} production crops ({len(randoms)} random slice, {len(new_test)} of them to "
              f"test); champion accuracy {cycle.champion_value:.4f}, challenger {cycle.challenger_value:.4f}, "
              f"95% CI [{cycle.ci_low:+.4f}, {cycle.ci_high:+.4f}] over {cycle.details['images']} test crops")
