#!/usr/bin/env bash
# On the GPU machine (the device tool's `run`, carry [".whl"]), in the repo root:
#   bash benchmarks/gpu_device.sh            -> $OUT/gpu-bench.json, $OUT/gpu-check.txt, $OUT/log.txt
# Installs the carried wheels beside the image's torch, checks pixels against diffusers on CUDA,
# then runs the benchmark; each step is time-boxed so the whole call fits one 10-minute command.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/log.txt"
timeout 120 python3 -m benchmarks.gpu_check > "$OUT/gpu-check.txt" 2>&1; echo "gpu_check rc=$?" | tee -a "$OUT/log.txt"
timeout 420 python3 -m benchmarks.gpu_bench --json "$OUT/gpu-bench.json" 2>&1 | tee -a "$OUT/log.txt"
