"""Bringing images and annotations into a project: format import, archives, bad-input reports."""

from visionloop.ingest.conflicts import Conflict, OnConflict
from visionloop.ingest.importer import ImportReport, import_source
from visionloop.ingest.runs import ImportRunningError

__all__ = ["Conflict", "ImportReport", "ImportRunningError", "OnConflict", "import_source"]
