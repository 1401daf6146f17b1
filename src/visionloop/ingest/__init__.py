"""Bringing images and annotations into a project: format import, archives, bad-input reports."""

from visionloop.ingest.importer import ImportReport, import_source

__all__ = ["ImportReport", "import_source"]
