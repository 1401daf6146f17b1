"""One router per resource of the model server.

``GUARDED`` routers need the API token when tokens are configured (the app adds that dependency when it includes
them); ``health`` (liveness) never does.
"""

from __future__ import annotations

from visionloop.serving.model_server.routes import health, metrics, models, predictions, ready

__all__ = ["GUARDED", "health"]

GUARDED = (predictions.router, models.router, ready.router, metrics.router)
