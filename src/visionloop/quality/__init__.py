"""Dataset quality: information reduction (derived projects); health checks and leak finding build on it."""

from visionloop.quality.derive import DeriveReport, DeriveTarget, derive_project

__all__ = ["DeriveReport", "DeriveTarget", "derive_project"]
