"""Alias of :mod:`visionloop.core.package`, where the package contract lives (below export and inference alike).

Import from ``visionloop.core.package`` (or ``visionloop.export`` / ``visionloop.inference``); this name remains only
until the last callers have moved.
"""

from visionloop.core import package as _package
from visionloop.core.package import *  # noqa: F403

__all__ = list(_package.__all__)
