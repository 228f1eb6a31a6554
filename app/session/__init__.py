"""The session layer: documents, overrides, validation, the runtime, runs and sweeps (no Qt)."""
from latentloom.app.session.readers import Document, open_document, register
from latentloom.app.session.session import Prepared, Session, models_dirs_from

__all__ = ["Document", "Prepared", "Session", "models_dirs_from", "open_document", "register"]
