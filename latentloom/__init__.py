"""Latent Loom. Installed, `latentloom.app`, `latentloom.nodes`, `latentloom.resources` and
`latentloom.workflows` live in this package; in a source checkout they are the repository's
top-level folders, which this package's path includes."""
from pathlib import Path

_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "app" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821  (a package's __path__)
