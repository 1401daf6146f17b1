"""Settings: one pydantic-settings object, read from ``VISIONLOOP_*`` environment variables, passed explicitly."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VISIONLOOP_", extra="ignore")

    max_image_pixels: int = 100_000_000
    """Images above this many pixels are refused at ingest (decompression-bomb guard); a project's own
    ``max_image_pixels`` in its ``visionloop.toml`` wins (see ``storage.project.project_settings``)."""
    max_file_bytes: int = 512 * 1024 * 1024
    """Files above this size are refused at ingest."""
    max_archive_members: int = 1_000_000
    max_archive_bytes: int = 64 * 1024**3
    """Total uncompressed size an archive may unpack to."""
    thumbnail_size: int = 256
    """Default thumbnail size of the project API; sizes are 64, 128, 256 or 512 (others snap to the next one)."""
    thumbnail_cache_bytes: int = 1024**3
    """Disk the project API's thumbnail cache may use per project; the least recently used go beyond it."""
    api_max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body the project API reads (an annotation save, a sign-in); larger ones get 413."""
    import_batch: int = 256
    """Images per database transaction during import; a kill loses at most one batch, a re-run completes it."""
    weights_dir: str | None = None
    """Directory of pretrained weight files for offline machines (also ``TORCH_HOME``/``HF_HOME`` caches)."""
    admin_password: SecretStr | None = None
    """Password of the ``admin`` user that a server's first start creates in a project without users; when unset, a
    random one is printed once. Users and tokens of the project API live in each project's database
    (``visionloop user ...``)."""
    job_threads: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 1) - 1))
    """Threads (OMP/MKL/torch) a background job of the platform server uses while other work wants the CPU; one
    core stays for the pages."""
    job_threads_max: int = Field(default_factory=lambda: os.cpu_count() or 1)
    """Threads a training job may grow to while the other processes leave those cores free, measured every few
    seconds (``visionloop.training.threads``); at most ``job_threads`` when this is lower."""
    job_nice: int = 10
    """How much lower a background job's priority is than the server's (``nice``), so the pages stay fast."""
    job_log_bytes: int = 64 * 1024
    """Tail of a background job's log (stderr) the server keeps in the job's record."""
    job_cancel_grace_s: float = 10.0
    """After cancel, seconds a job's process group has to stop on SIGTERM before it gets SIGKILL."""
    job_max_queued: int = 50
    """Jobs that may wait in a platform server's queue (all projects); one more is refused with 409 until some ran."""
    job_keep_exports: int = 5
    """Export zips kept per project for download; older ones are removed when a newer export is done."""
    import_max_bytes: int = 4 * 1024**3
    """Largest upload to ``POST .../imports`` (all files together, or the one archive); larger ones get 413."""
    prediction_cache_entries: int = 2048
    """Predictions of the deployed model on project images kept per server (least recently used go first)."""
    active_max_pool: int = 1000
    """Unlabelled images one ``GET .../next`` request scores with the deployed model (a seeded sample of a larger
    pool); ``visionloop next`` on the server ranks them all."""
    progress_file: str | None = None
    """Set by the platform server for the commands its jobs run: JSON lines of progress (see ``core.progress``)."""
    projects_dir: str | None = None
    """Folder where the platform server creates the projects made with ``POST /api/v1/projects``; when unset, the
    folder holding the first served project."""
    assist_onnx_encoder: str | None = None
    """Image encoder (ONNX) of a promptable segmentation model of the SAM family that the operator supplies for
    assisted segmentation; with ``assist_onnx_decoder`` it adds the ``onnx`` method (see
    ``visionloop.inference.assist.onnx_prompt``). Unset: the classical methods only."""
    assist_onnx_decoder: str | None = None
    """Prompt decoder (ONNX) that goes with ``assist_onnx_encoder``."""
    assist_embedding_cache: int = 8
    """Image embeddings of the ONNX assist model kept per server (least recently used go first)."""
    assist_image_cache: int = 4
    """Decoded images kept per server for assisted segmentation (a person clicks on one image several times)."""
    assist_max_clicks: int = 64
    """Clicks one assisted-segmentation request may hold; more are refused with 400."""
    webhook_concurrency: int = 4
    """Deliveries the platform server's webhook worker sends at once (all projects together)."""
    webhook_timeout_s: float = 10.0
    """Seconds a receiver has to answer a delivery; no answer in time counts as a failed attempt."""
    webhook_max_attempts: int = 12
    """Attempts of a delivery before it is given up (``failed``; an admin can retry it)."""
    webhook_backoff_s: float = 30.0
    """Wait after a delivery's first failed attempt; it doubles with each failure (times a random 0.5-1)."""
    webhook_backoff_max_s: float = 6 * 3600.0
    """Longest wait between two attempts of a delivery."""
    webhook_poll_s: float = 2.0
    """How often the webhook worker looks for deliveries that are due when it has nothing to send."""
    webhook_private_hosts: bool = True
    """Deliveries may go to loopback, private and link-local addresses (the company's own systems, the usual
    receivers of a self-hosted platform). Off: a receiver's host must resolve to public addresses only, and the
    delivery connects to the address that was checked (no second lookup), so a webhook cannot reach inside the
    network the server runs in."""
    event_keep_days: float = 90.0
    """Events, and deliveries that are done (delivered or given up), older than this are removed by the platform
    server (once an hour); pending deliveries and their events stay until they are done."""
