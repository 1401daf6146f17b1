"""A kill -9 in the middle of an import leaves the project consistent; running the import again completes it."""

import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import select

from tests.conftest import REPO, make_image_bytes
from visionloop.storage import Project
from visionloop.storage.models import ImportRow

N = 300


def write_coco(root, n):
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        (root / "images" / f"{i}.jpg").write_bytes(make_image_bytes(64, 48, seed=i))
        images.append({"id": i + 1, "file_name": f"{i}.jpg", "width": 64, "height": 48})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2, "bbox": [1, 2, 10, 10],
                     "area": 100, "iscrowd": 0})
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))


def test_killed_import_resumes_to_the_same_result(tmp_path):
    src = tmp_path / "src"
    write_coco(src, N)
    Project.create(tmp_path / "p", task="detection").close()
    env = {**os.environ, "VISIONLOOP_IMPORT_BATCH": "20", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "visionloop.cli.main", "import", str(tmp_path / "p"), str(src / "annotations.json"),
           "--format", "coco", "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = tmp_path / "p" / "db.sqlite"
    deadline = time.time() + 60
    # wait until some batches are committed, then kill -9 in the middle of the import
    while time.time() < deadline:
        time.sleep(0.05)
        if proc.poll() is not None:
            break
        with Project.open(tmp_path / "p") as p:
            if p.count_images() >= 60:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Project.open(tmp_path / "p") as p:
        partial = p.count_images()
        heads = p.heads()
        # consistent: every stored image has its blob and its annotation; no annotation without image
        assert all(p.blobs.exists(im.sha256) for im in p.images())
        assert set(heads) == {im.id for im in p.images()}
    assert 0 < partial < N, f"the kill did not land mid-import ({partial} of {N} imported)"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["images_added"] == N - partial and report["images_existing"] == partial
    with Project.open(tmp_path / "p") as p:
        s = p.stats()
        assert s["images"] == N and s["annotations"] == N and s["classes"] == {"a": N // 2, "b": N // 2}
        assert all(len(p.history(im.id)) == 1 for im in p.images()[:50])
        with p.engine.connect() as c:  # the killed run is not left 'running' forever
            statuses = [r.status for r in c.execute(select(ImportRow.status).order_by(ImportRow.id))]
        assert statuses == ["interrupted", "done"]
    assert db.exists()
