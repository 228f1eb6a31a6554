#!/usr/bin/env bash
# Wheels the GPU machine lacks (its image has torch, transformers, accelerate, peft, safetensors,
# pillow, scipy, opencv): run here before a device run; .whl/ is git-ignored and travels with `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl diffusers==0.42.1 importlib_metadata torchsde==0.2.6 trampoline==0.1.2
ls .whl
