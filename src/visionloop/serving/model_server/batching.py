"""Dynamic batching: concurrent requests for one model share model calls.

Each model has an asyncio queue and one worker task per predictor session. A worker takes the first waiting request,
then everything already queued (up to ``max_batch``); if that showed concurrent load (more than one request was
waiting) and the batch is not full, it waits up to ``max_wait_ms`` for more. The batch (encoded images) goes to a
thread pool where it is decoded, preprocessed and run with one onnxruntime session; Pillow and onnxruntime release the
GIL, so the workers use every core while the event loop keeps accepting requests.

A lone request is never held back (latency at low load equals unbatched); under load batches fill by themselves.
``max_batch=1`` turns batching off while keeping the same bounded worker pool.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from visionloop.core.errors import ImageError, VisionloopError
from visionloop.inference.results import Prediction
from visionloop.serving.model_server.limits import OverloadedError
from visionloop.serving.model_server.metrics import InferenceMetrics

__all__ = ["BatchConfig", "Batcher", "ChunkRunner"]


class ChunkRunner(Protocol):
    """What a batcher drives: :class:`visionloop.inference.Predictor` (or a torch twin for benchmarks)."""

    n_sessions: int

    def predict_chunk(self, images: list[Any], *, score_threshold: float | None = None,
                      ) -> list[Prediction | ImageError]: ...


@dataclass(frozen=True, kw_only=True)
class BatchConfig:
    enabled: bool = True
    max_batch: int = 16
    max_wait_ms: float = 2.0
    max_queue: int = 256
    """Images allowed to wait per model; beyond that the server answers 503 with ``Retry-After``."""

    def __post_init__(self) -> None:
        if self.max_queue < 1:  # asyncio.Queue(maxsize=0) would be unbounded
            raise VisionloopError(f"max_queue must be at least 1, got {self.max_queue}")

    @property
    def effective_max_batch(self) -> int:
        return max(1, self.max_batch) if self.enabled else 1


@dataclass
class _Item:
    data: Any
    future: asyncio.Future[Prediction | ImageError]
    score_threshold: float | None = None
    queued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Queue + workers for one model; ``await submit(image_bytes)`` returns the Prediction or the ImageError."""

    def __init__(self, name: str, runner: ChunkRunner, config: BatchConfig, *, metrics: InferenceMetrics) -> None:
        self.name, self.runner, self.config, self.metrics = name, runner, config, metrics
        self.workers = max(1, int(runner.n_sessions))
        self._queue: asyncio.Queue[_Item] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    async def start(self) -> None:
        if self._tasks:
            return
        self._queue = asyncio.Queue(maxsize=self.config.max_queue)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=f"visionloop-batch-{self.name}")
        self._tasks = [asyncio.create_task(self._work(), name=f"batcher-{self.name}-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._queue is not None:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if not item.future.done():
                    item.future.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, data: Any, *, score_threshold: float | None = None) -> Prediction | ImageError:
        """The prediction for ``data`` (or its ImageError); ``score_threshold`` replaces the package's thresholds for
        this image. OverloadedError when the queue is full or the workers are not started."""
        if self._queue is None:
            raise OverloadedError(f"model {self.name!r} is not started yet; retry when /ready answers 200")
        item = _Item(data=data, future=asyncio.get_running_loop().create_future(), score_threshold=score_threshold)
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            raise OverloadedError(
                f"model {self.name!r} has {self.config.max_queue} requests waiting; retry later") from None
        self.metrics.queue_depth.labels(self.name).set(self._queue.qsize())
        return await item.future

    async def _work(self) -> None:
        assert self._queue is not None and self._executor is not None
        q, loop = self._queue, asyncio.get_running_loop()
        max_batch, wait_s = self.config.effective_max_batch, self.config.max_wait_ms / 1000.0
        while True:
            batch = [await q.get()]
            while len(batch) < max_batch and not q.empty():
                batch.append(q.get_nowait())
            if 1 < len(batch) < max_batch and wait_s > 0:
                deadline = loop.time() + wait_s
                while len(batch) < max_batch:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(q.get(), left))
                    except TimeoutError:
                        break
                    while len(batch) < max_batch and not q.empty():
                        batch.append(q.get_nowait())
            self.metrics.queue_depth.labels(self.name).set(q.qsize())
            batch = [it for it in batch if not it.future.done()]  # cancelled by a disconnected client
            if not batch:
                continue
            groups: dict[float | None, list[_Item]] = {}
            for it in batch:  # one model call per threshold asked (almost always one)
                groups.setdefault(it.score_threshold, []).append(it)
            for threshold, items in groups.items():
                await self._run(items, threshold)

    async def _run(self, items: list[_Item], score_threshold: float | None) -> None:
        assert self._executor is not None
        t0 = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, partial(self.runner.predict_chunk, [it.data for it in items],
                                        score_threshold=score_threshold))
        except Exception as e:  # noqa: BLE001 - a model failure must reach every waiting request
            for it in items:
                if not it.future.done():
                    it.future.set_exception(e)
            return
        self.metrics.batch_size.labels(self.name).observe(len(items))
        self.metrics.batch_seconds.labels(self.name).observe(time.perf_counter() - t0)
        for it, res in zip(items, results, strict=True):
            if not it.future.done():
                it.future.set_result(res)
