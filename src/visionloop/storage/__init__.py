"""The project store: database (SQLite/PostgreSQL via SQLAlchemy), blob store, revisions and versions."""

from visionloop.storage.blobs import BlobStore
from visionloop.storage.project import NewImage, Project, Revision

__all__ = ["BlobStore", "NewImage", "Project", "Revision"]
