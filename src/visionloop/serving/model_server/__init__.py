"""The model server (FastAPI): model packages behind ``/v1/models/...`` with dynamic batching, tokens and metrics.

- ``app``: ``create_inference_app`` (its state, one ``ModelServerState``, on ``app.state.model_server``)
- ``deps``: ``ModelServerState`` and typed dependencies (``StateDep``, ``ModelsDep``, ``ModelDep``)
- ``routes``: one router per resource (predictions, models, health and readiness, metrics)
- ``served``, ``batching``, ``uploads``, ``limits``, ``metrics``, ``prediction_log``, ``tokens``: what routes use
- ``server``: ``serve_inference`` (foreground) and ``InferenceServerThread`` (tests, benchmarks)
"""

from __future__ import annotations

__all__: list[str] = []
