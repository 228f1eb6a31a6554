#!/usr/bin/env bash
# Set up (if needed) and start Latent Loom; arguments go to the `latentloom` command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/latentloom "$@"
