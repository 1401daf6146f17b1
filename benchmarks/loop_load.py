"""Latency of the people and the servers while the loop trains: the web API's and the model server's p99 in three
conditions, measured in one run on this machine.

1. ``idle``: nothing else runs;
2. ``job_queue``: a training runs through the platform's job queue (``POST .../runs``: the real ``serving/jobs``
   runner, a niced child process with its threads bounded by ``Settings.job_threads``, growing to
   ``job_threads_max`` while cores are free);
3. ``unniced``: the same training command started the bad way, at normal priority with as many threads as cores
   (``OMP_NUM_THREADS`` = cores), beside the same servers.

The platform (``visionloop serve-projects``) and the model server (``visionloop serve``, a MobileNetV3-Large
classifier package with random weights: speed does not depend on them) run as child processes at normal priority;
two client threads of this process send a bounded number of requests each (one at a time, a short pause between):
``GET .../images?limit=50`` (a page of the image grid) to the platform, a real BCCD JPEG to the model server's
``predict``. The training is a detector (the task's default model) on a few BCCD images, one epoch: its wall time in
each case is the training's own speed. Each figure holds p50/p99/max in milliseconds and the number of requests;
``ratios`` divide each condition's p99 by idle's, and the unniced training's wall time by the job queue's. The
machine's 1-minute load average before and after each measurement (``load_average_1min``) tells how much other work
shared the cores.

Results: benchmarks/results/loop_load.json (``--smoke``: fewer images and requests, and both trainings are stopped
once the requests are measured, so no training time; loop_load.smoke.json).

    python benchmarks/loop_load.py [--smoke]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, write_result  # noqa: E402
from serve import export  # noqa: E402

BCCD = SHARED / "datasets" / "bccd"
PROJECT = "bccd"
"""The project's name (its folder, as ``train_detect._project`` makes it)."""
TOKEN = "loop-load-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _project(tmp: Path, n_images: int) -> tuple[Path, str, str]:
    """BCCD's first ``n_images`` (Pascal VOC) in a detection project with one version (as ``train_detect.py`` makes
    it), and an admin token; (root, version, token)."""
    from train_detect import _project as bccd_project

    from visionloop.storage.users import add_user, issue_token, new_token_secret
    from visionloop.storage.versions import list_versions

    secret = new_token_secret()
    with bccd_project(None, tmp, limit=n_images) as p:
        version = list_versions(p)[0].name
        add_user(p, "bench", role="admin")
        issue_token(p, "bench", name="bench", secret=secret)
        return Path(p.root), version, secret


class Child:
    """A ``visionloop`` command in a child process (its own process group), stopped on exit."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None, log: Path) -> None:
        self.log = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "visionloop.cli.main", *args], env=env,
                                     stdout=self.log, stderr=self.log, start_new_session=True)

    def wait_http(self, url: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the child stopped (exit {self.proc.returncode}); see {self.log.name}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{url} did not answer within {timeout:g} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def _stats(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"requests": 0}
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return {"requests": len(ms), "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(q[98], 2),
            "max_ms": round(max(ms), 2)}


def measure(requests: dict[str, Callable[[httpx.Client], httpx.Response]], urls: dict[str, str], *, n: int,
            pause_s: float, until: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """``n`` requests per target, one at a time with ``pause_s`` between, all targets at once; stops early when
    ``until()`` holds (the training ended). Latency of each answered request, ms; any non-2xx is counted."""
    times: dict[str, list[float]] = {k: [] for k in requests}
    errors = dict.fromkeys(requests, 0)

    def client(name: str) -> None:
        with httpx.Client(base_url=urls[name], timeout=120) as c:
            for _ in range(n):
                if until():
                    return
                t0 = time.perf_counter()
                r = requests[name](c)
                dt = (time.perf_counter() - t0) * 1000
                if r.is_success:
                    times[name].append(dt)
                else:
                    errors[name] += 1
                time.sleep(pause_s)

    threads = [threading.Thread(target=client, args=(k,)) for k in requests]
    t0, load0 = time.monotonic(), os.getloadavg()[0]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"seconds": round(time.monotonic() - t0, 1),
            "load_average_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
            **{k: {**_stats(v), "errors": errors[k]} for k, v in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="a short run for CI (fewer images and requests)")
    ap.add_argument("--images", type=int, default=None, help="BCCD images in the training project")
    ap.add_argument("--requests", type=int, default=None, help="requests per server and condition")
    args = ap.parse_args()
    n_images = args.images or (8 if args.smoke else 40)
    n_requests = args.requests or (25 if args.smoke else 400)
    train = {"epochs": 1, "image_size": 256 if args.smoke else 320, "batch_size": 2}
    cores = os.cpu_count() or 1
    jpeg = sorted((BCCD / "BCCD" / "JPEGImages").glob("*.jpg"))[-1].read_bytes()

    with tempfile.TemporaryDirectory(prefix="visionloop-loop-load-") as tmp_name:
        tmp = Path(tmp_name)
        root, version, secret = _project(tmp, n_images)
        package = export("classifier", tmp / "classifier.vlpkg")
        web_port, model_port = _free_port(), _free_port()
        web = Child(["serve-projects", str(root), "--port", str(web_port)], log=tmp / "web.log")
        model = Child(["serve", str(package), "--port", str(model_port), "--token", TOKEN], log=tmp / "model.log")
        try:
            urls = {"web_api": f"http://127.0.0.1:{web_port}", "model_server": f"http://127.0.0.1:{model_port}"}
            web.wait_http(urls["web_api"] + "/health")
            model.wait_http(urls["model_server"] + "/health")
            auth = {"Authorization": f"Bearer {secret}"}
            requests = {
                "web_api": lambda c: c.get(f"/api/v1/projects/{PROJECT}/images", params={"limit": 50}, headers=auth),
                "model_server": lambda c: c.post("/v1/models/classifier/predict", content=jpeg,
                                                 headers={"Authorization": f"Bearer {TOKEN}"}),
            }
            measure(requests, urls, n=5, pause_s=0.0)  # warm-up: sessions, caches, connections
            results: dict[str, Any] = {"idle": measure(requests, urls, n=n_requests, pause_s=0.02)}

            # 2. through the platform's job queue
            api = httpx.Client(base_url=urls["web_api"] + f"/api/v1/projects/{PROJECT}", headers=auth, timeout=60)
            job = api.post("/runs", json={"version": version, **train}).raise_for_status().json()
            state: dict[str, Any] = {"job": job}

            def job_ended() -> bool:
                state["job"] = api.get(f"/jobs/{job['id']}").json()
                return state["job"]["state"] not in ("queued", "running")

            while api.get(f"/jobs/{job['id']}").json()["state"] == "queued":
                time.sleep(0.2)
            started = time.monotonic()
            polled = {"at": 0.0, "ended": False}

            def job_ended_cached() -> bool:  # one status request per second at most
                if time.monotonic() - polled["at"] > 1.0:
                    polled["at"], polled["ended"] = time.monotonic(), job_ended()
                return polled["ended"]

            results["job_queue"] = measure(requests, urls, n=n_requests, pause_s=0.02, until=job_ended_cached)
            if args.smoke and not job_ended():
                api.post(f"/jobs/{job['id']}/cancel").raise_for_status()
            while not job_ended():
                time.sleep(0.5)
            queued_wall = time.monotonic() - started
            if state["job"]["state"] != "done" and not args.smoke:
                raise RuntimeError(f"the training job ended {state['job']['state']}: {state['job']['error']}")
            while any(j["state"] in ("queued", "running") for j in api.get("/jobs").json()):
                time.sleep(0.5)  # its follow-up (evaluate) ends before the next condition

            # 3. the bad way: unniced, threads = cores
            env = {**os.environ, "OMP_NUM_THREADS": str(cores), "MKL_NUM_THREADS": str(cores)}
            env.pop("VISIONLOOP_ADAPTIVE_THREADS", None)
            started = time.monotonic()
            bad = Child(["train", str(root), "--version", version, "--epochs", str(train["epochs"]),
                         "--image-size", str(train["image_size"]), "--batch-size", str(train["batch_size"]),
                         "--json"], env=env, log=tmp / "train.log")
            results["unniced"] = measure(requests, urls, n=n_requests, pause_s=0.02,
                                         until=lambda: bad.proc.poll() is not None)
            if args.smoke:
                bad.stop()
            code = bad.proc.wait()
            unniced_wall = time.monotonic() - started
            bad.stop()
            if code != 0 and not args.smoke:
                raise RuntimeError(f"the unniced training failed (exit {code}): "
                                   f"{(tmp / 'train.log').read_text()[-1500:]}")
            api.close()
        finally:
            web.stop()
            model.stop()

    ratios = {f"{cond}_{k}_p99_vs_idle": round(results[cond][k]["p99_ms"] / results["idle"][k]["p99_ms"], 2)
              for cond in ("job_queue", "unniced") for k in requests if results[cond][k].get("p99_ms")}
    if not args.smoke:
        results["job_queue"]["training_seconds"] = round(queued_wall, 1)
        results["unniced"]["training_seconds"] = round(unniced_wall, 1)
        ratios["unniced_training_seconds_vs_job_queue"] = round(unniced_wall / queued_wall, 2)
    data = {"cores": cores, "training": {"images": n_images, "model": "task default (detection)", **train},
            "requests_per_condition": n_requests, "conditions": results, "ratios": ratios,
            "job_settings": _job_settings()}
    path = write_result("loop_load", data, smoke=args.smoke)
    for cond in ("idle", "job_queue", "unniced"):
        r = results[cond]
        print(f"{cond:10s} web p99 {r['web_api'].get('p99_ms', '-'):>8} ms ({r['web_api']['requests']} req)   "
              f"model p99 {r['model_server'].get('p99_ms', '-'):>8} ms ({r['model_server']['requests']} req)"
              + (f"   training {r['training_seconds']} s" if "training_seconds" in r else ""))
    print("ratios:", ratios)
    print(f"wrote {path}")


def _job_settings() -> dict[str, int]:
    from visionloop.core.settings import Settings

    s = Settings()
    return {"job_nice": s.job_nice, "job_threads": s.job_threads, "job_threads_max": s.job_threads_max}


if __name__ == "__main__":
    main()
