"""The session layer: documents, overrides, validation, the runtime, runs and sweeps (no Qt)."""
from app.session.readers import Document, open_document, register
from app.session.session import Prepared, Session, models_dirs_from

__all__ = ["Document", "Prepared", "Session", "models_dirs_from", "open_document", "register"]
