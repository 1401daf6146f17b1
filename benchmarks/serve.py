"""Inference serving benchmark: raw onnxruntime vs our server (batching on/off) vs the PyTorch eager model served alike.

For a MobileNetV3-Large classifier (224x224) and a detector (Faster R-CNN MobileNetV3-Large 320 FPN), on real BCCD
JPEGs (640x480), all in one run on this machine:

1. raw, in process: decode + preprocess + onnxruntime, batch 1 on one session (the latency floor), and the pool's
   throughput with one session per core (the throughput limit);
2. our server (uvicorn + FastAPI, raw-body POST /v1/models/NAME/predict) at concurrency 1, 8 and 32, with dynamic
   batching on and off: requests/s, p50, p99;
3. the PyTorch eager model behind the same server and batching (torch threads = 1, one worker per core);
4. memory: the server's RSS while many clients hold large uploads open, with the in-flight byte budget and with one
   too large to matter (``memory_under_held_uploads``).

The server runs in a child process; load comes from a minimal asyncio HTTP/1.1 keep-alive client (so the client's own
CPU cost stays small) against 127.0.0.1 only, bounded by a request count and a time limit per measurement. Weights
are random (seeded): speed does not depend on them. Results: benchmarks/results/serve.json (``--smoke``: a < 60 s
run for CI, written to serve.smoke.json).

    nice -n 10 python benchmarks/serve.py [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, write_result  # noqa: E402

BCCD = SHARED / "datasets" / "bccd" / "BCCD" / "JPEGImages"
HOST = "127.0.0.1"


# ---- models ------------------------------------------------------------------------------------------------------
def build_model(kind: str) -> Any:
    import torch
    import torchvision

    torch.manual_seed(0)
    if kind == "classifier":
        return torchvision.models.mobilenet_v3_large(num_classes=3).eval()
    return torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=4).eval()


def export(kind: str, out: Path) -> Path:
    from visionloop.core.preprocess import Preprocess
    from visionloop.export.onnx_export import export_model

    model = build_model(kind)
    if kind == "classifier":
        return export_model(model, task="classification", classes=["RBC", "WBC", "Platelets"], out=out,
                            preprocess=Preprocess(size=(224, 224), resize="shorter_crop"), name="classifier",
                            architecture="mobilenet_v3_large")
    return export_model(model, task="detection", classes=["RBC", "WBC", "Platelets"], out=out, name="detector",
                        architecture="fasterrcnn_mobilenet_v3_large_320_fpn", thresholds={"score": 0.05})


# ---- server child --------------------------------------------------------------------------------------------------
def serve_child(cfg: dict[str, Any]) -> None:
    from visionloop.core.package import load_package
    from visionloop.serving.model_server.app import create_inference_app
    from visionloop.serving.model_server.batching import BatchConfig
    from visionloop.serving.model_server.server import serve_inference

    pkg = load_package(cfg["package"])
    batching = BatchConfig(enabled=cfg["batch"], max_batch=cfg["max_batch"], max_wait_ms=cfg["max_wait_ms"])
    if cfg["backend"] == "torch":
        import torch

        from visionloop.inference.predictor import default_sessions
        from visionloop.inference.torch_predictor import TorchPredictor

        torch.set_num_threads(1)
        runner = TorchPredictor(build_model(cfg["model"]), pkg, workers=default_sessions())
        app = create_inference_app(runners={pkg.name: (pkg, runner)}, batching=batching)
    elif "max_inflight_mb" in cfg:  # the memory bound measurement
        mib = 1024 * 1024
        app = create_inference_app([pkg], batching=batching, max_request_bytes=cfg["upload_mb"] * mib,
                                   max_batch_bytes=cfg["upload_mb"] * mib, max_inflight_bytes=cfg["max_inflight_mb"] * mib)
    else:
        app = create_inference_app([pkg], batching=batching)
    serve_inference(app, host=HOST, port=cfg["port"], log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ChildServer:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = {**cfg, "port": free_port()}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ChildServer:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-child", json.dumps(self.cfg)])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server child exited with {self.proc.returncode}")
            try:
                status, _ = asyncio.run(one_request(self.cfg["port"], b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n"))
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError("server child did not become ready in 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ---- load generator ------------------------------------------------------------------------------------------------
async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def one_request(port: int, raw: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(raw)
        await writer.drain()
        return await _read_response(reader)
    finally:
        writer.close()


def predict_request(model: str, body: bytes) -> bytes:
    return (f"POST /v1/models/{model}/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def load(port: int, requests: list[bytes], *, concurrency: int, total: int, max_seconds: float,
               warmup: int) -> dict[str, Any]:
    """``concurrency`` keep-alive connections each sending one request at a time, until ``total`` or the time limit."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = 0.0
    counting = False

    async def worker(i: int) -> None:
        nonlocal sent, errors
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            k = i
            while True:
                if counting and (sent >= total or time.perf_counter() > stop_at):
                    return
                if not counting and sent >= warmup:
                    return
                sent += 1
                raw = requests[k % len(requests)]
                k += concurrency
                t = time.perf_counter()
                writer.write(raw)
                status, _ = await _read_response(reader)
                if counting:
                    latencies.append(time.perf_counter() - t)
                    errors += status != 200
        finally:
            writer.close()

    await asyncio.gather(*(worker(i) for i in range(min(concurrency, max(1, warmup)))))
    counting, sent = True, 0
    t0 = time.perf_counter()
    stop_at = t0 + max_seconds
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    wall = time.perf_counter() - t0
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else float("nan")

    return {"concurrency": concurrency, "requests": len(lat), "errors": errors, "seconds": round(wall, 3),
            "req_per_s": round(len(lat) / wall, 2), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "mean_ms": round(1000 * statistics.fmean(lat), 2) if lat else float("nan")}


# ---- raw in-process ------------------------------------------------------------------------------------------------
def raw_onnx(package: Path, images: list[bytes], *, n: int) -> dict[str, Any]:
    from visionloop.inference.predictor import Predictor, default_sessions

    one = Predictor(package, sessions=1)
    for im in images[:3]:
        one.predict(im)
    t_dec, t_all = [], []
    prepared = []
    for i in range(n):
        data = images[i % len(images)]
        t = time.perf_counter()
        p = one.prepare(data)
        t_dec.append(time.perf_counter() - t)
        one.run_prepared([p])
        t_all.append(time.perf_counter() - t)
        prepared.append(p)
    model_only = []
    for p in prepared[: max(5, n // 2)]:
        t = time.perf_counter()
        one.run_prepared([p])
        model_only.append(time.perf_counter() - t)
    pool = Predictor(package, sessions=default_sessions())
    pool.predict_batch(images[: 2 * pool.n_sessions])
    batch = [images[i % len(images)] for i in range(max(n, 4 * pool.n_sessions))]
    t = time.perf_counter()
    pool.predict_batch(batch)
    thr = len(batch) / (time.perf_counter() - t)
    pool.close()
    return {
        "batch1_decode_preprocess_ms": round(1000 * statistics.median(t_dec), 2),
        "batch1_model_ms": round(1000 * statistics.median(model_only), 2),
        "batch1_total_ms_p50": round(1000 * statistics.median(t_all), 2),
        "pool_sessions": pool.n_sessions,
        "pool_throughput_img_per_s": round(thr, 2),
    }


def bench_model(kind: str, package: Path, images: list[bytes], *, smoke: bool, state: dict[str, Any]) -> dict[str, Any]:
    name = "classifier" if kind == "classifier" else "detector"
    heavy = kind != "classifier"
    n_raw = 8 if smoke else (40 if heavy else 150)
    out: dict[str, Any] = {"raw_onnxruntime": raw_onnx(package, images, n=n_raw)}
    print(f"[{name}] raw: {out['raw_onnxruntime']}", flush=True)
    reqs = [predict_request(name, b) for b in images]
    concs = [1, 8] if smoke else [1, 8, 32]
    configs = [("onnx", True), ("onnx", False), ("torch", True)]
    if smoke:
        configs = [("onnx", True), ("torch", True)]
    for backend, batch in configs:
        key = f"server_{backend}_{'batch' if batch else 'nobatch'}"
        cfg = {"backend": backend, "batch": batch, "package": str(package), "model": kind,
               "max_batch": 8 if heavy else 16, "max_wait_ms": 2.0}
        rows = []
        with ChildServer(cfg) as srv:
            for c in concs:
                if smoke:
                    total, secs = (6 if heavy else 30), 8.0
                else:
                    total, secs = (60 + 4 * c if heavy else 300 + 20 * c), (25.0 if heavy else 15.0)
                row = asyncio.run(load(srv.cfg["port"], reqs, concurrency=c, total=total, max_seconds=secs,
                                       warmup=min(c, 8) if not smoke else 2))
                print(f"[{name}] {key} c={c}: {row}", flush=True)
                rows.append(row)
        out[key] = rows
        state["done"] = state.get("done", 0) + 1
    raw_ms = out["raw_onnxruntime"]["batch1_total_ms_p50"]
    for key in ("server_onnx_batch", "server_onnx_nobatch"):
        if key in out:
            c1 = next(r for r in out[key] if r["concurrency"] == 1)
            out[f"{key}_c1_overhead_vs_raw"] = round(c1["p50_ms"] / raw_ms - 1.0, 3)
    return out


# ---- memory bound --------------------------------------------------------------------------------------------------
def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc (Linux only)")


def held_uploads(package: Path, *, clients: int, upload_mb: int, budgets_mb: list[int],
                 settle_s: float = 2.0) -> list[dict[str, Any]]:
    """Server RSS while ``clients`` connections each send all but the last MiB of an ``upload_mb`` MiB body and wait:
    with an in-flight budget (the server answers 503 past it) and with one too large to matter (the baseline)."""
    rows = []
    for budget in budgets_mb:
        cfg = {"backend": "onnx", "batch": True, "package": str(package), "model": "classifier", "max_batch": 16,
               "max_wait_ms": 2.0, "max_inflight_mb": budget, "upload_mb": upload_mb}
        with ChildServer(cfg) as srv:
            assert srv.proc is not None
            idle = _rss_mib(srv.proc.pid)
            head = (f"POST /v1/models/classifier/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {upload_mb << 20}\r\n\r\n").encode()
            chunk, socks = b"\0" * (1 << 20), []
            try:
                for _ in range(clients):
                    s = socket.create_connection((HOST, srv.cfg["port"]), timeout=30)
                    socks.append(s)
                    s.sendall(head)
                    for _ in range(upload_mb - 1):
                        s.sendall(chunk)
                time.sleep(settle_s)  # let the server read what was sent
                held = _rss_mib(srv.proc.pid)
                refused = 0
                for s in socks:
                    s.settimeout(0.5)
                    with contextlib.suppress(OSError):  # no answer yet: the upload is held open
                        refused += s.recv(64).startswith(b"HTTP/1.1 503")
            finally:
                for s in socks:
                    s.close()
        rows.append({"clients": clients, "upload_mib": upload_mb, "inflight_budget_mib": budget,
                     "rss_idle_mib": round(idle), "rss_held_mib": round(held), "rss_growth_mib": round(held - idle),
                     "answered_503": refused})
        print(f"[memory] {rows[-1]}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI (< 60 s)")
    ap.add_argument("--serve-child", help=argparse.SUPPRESS)
    ap.add_argument("--only", choices=["classifier", "detector"], help="benchmark one model only")
    args = ap.parse_args()
    if args.serve_child:
        serve_child(json.loads(args.serve_child))
        return
    files = sorted(BCCD.glob("*.jpg"))[:32]
    if not files:
        raise SystemExit(f"no BCCD images under {BCCD}; set VISIONLOOP_SHARED")
    images = [f.read_bytes() for f in files]
    t0 = time.time()
    results: dict[str, Any] = {}
    kinds = [args.only] if args.only else (["classifier"] if args.smoke else ["classifier", "detector"])
    with tempfile.TemporaryDirectory(prefix="vl-bench-serve-") as tmp:
        for kind in kinds:
            pkg = export(kind, Path(tmp) / kind)
            results[kind] = bench_model(kind, pkg, images, smoke=args.smoke, state={})
            if kind == "classifier":
                clients, upload, settle = (6, 8, 1.0) if args.smoke else (16, 16, 2.0)
                results["memory_under_held_uploads"] = held_uploads(
                    pkg, clients=clients, upload_mb=upload, budgets_mb=[2 * upload, 64 * clients * upload],
                    settle_s=settle)
    meta = {"images": f"{len(images)} BCCD JPEGs 640x480", "seconds": round(time.time() - t0, 1),
            "load_client": "asyncio raw HTTP/1.1 keep-alive, one request in flight per connection, 127.0.0.1",
            "server": "uvicorn (httptools, uvloop) single process; batching max_wait 2 ms; ORT 1 thread x cores "
                      "sessions; torch eager: torch threads 1, one worker per core",
            "models": {"classifier": "mobilenet_v3_large 224x224 (3 classes, random weights)",
                       "detector": "fasterrcnn_mobilenet_v3_large_320_fpn (4 classes, random weights)"}}
    path = write_result("serve", {**meta, "results": results}, smoke=args.smoke)
    print(f"wrote {path} in {meta['seconds']} s")


if __name__ == "__main__":
    main()
