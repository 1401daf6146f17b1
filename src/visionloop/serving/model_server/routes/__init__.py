"""One router per resource of the model server.

``GUARDED`` routers need the API token when tokens are configured (the app adds that dependency when it includes
them); ``CONTROL`` routers (reload, rollback, canary) need an admin token, never a prediction token; ``health``
(liveness) never needs one.
"""

from __future__ import annotations

from visionloop.serving.model_server.routes import control, health, metrics, models, predictions, ready

__all__ = ["CONTROL", "GUARDED", "health"]

GUARDED = (predictions.router, models.router, ready.router, metrics.router)
CONTROL = (control.router,)
