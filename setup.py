"""Packaging: the repository's app/, nodes/, resources/ and workflows/ install as latentloom.app,
latentloom.nodes, latentloom.resources and latentloom.workflows (metadata is in pyproject.toml)."""
from setuptools import find_namespace_packages, setup

FOLDERS = ("app", "nodes", "resources", "workflows")
packages = ["latentloom"]
for folder in FOLDERS:
    packages += [f"latentloom.{p}" for p in find_namespace_packages(include=[folder, f"{folder}.*"])]
setup(
    packages=packages,
    package_dir={"latentloom": "latentloom", **{f"latentloom.{f}": f for f in FOLDERS}},
    package_data={f"latentloom.{f}": ["**/*"] for f in ("resources", "workflows")},
    include_package_data=True,
)
